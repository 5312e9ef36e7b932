import click

from .. import constraints as cons
from . import options

T = cons.MNIST_KERNEL
D = cons.MNIST_KERNEL_DYNAMICS
# the defaults of --dynamics gd / sgd; None on the command line means "not given"
DYNAMICS = options.experiment_defaults(D.experiment)
# the limit is trained with the networks' batches
SGD_BATCH = options.experiment_defaults(cons.MNIST_TRAIN.experiment)["batch_size"]


@options.command(
    "mnist-kernel", short_help="Figure 6, dashed line: MNIST kernel regression accuracy."
)
@options.option(
    T,
    "n_train",
    "--n-train",
    show_default=True,
    help="Training images, drawn at random (by --seed) from the 60,000.",
)
@options.option(
    T, "noise", "--noise", help="Noise variance of the GP posterior mean.  [default: 1/n-train]"
)
@options.sigma_options(T)
@options.option(
    T,
    "kernel",
    "--kernel",
    show_default=True,
    help="ntk: full-training NTK of the completed model (eq. 37); nngp: its GP kernel (eq. 35-36).",
)
@click.option(
    "--dynamics",
    type=click.Choice(["none", "gd", "sgd"]),
    default="none",
    show_default=True,
    help="none: kernel regression (gradient flow's end point from a zero "
    "function); gd / sgd: the limit trained like the networks, one row per "
    "(draw, epoch).",
)
@options.option(
    D,
    "epochs",
    "--epochs",
    default=None,
    help=f"Epochs of gd / sgd.  [default: {DYNAMICS['epochs']}]",
)
@options.option(
    D,
    "lr",
    "--lr",
    default=None,
    help="Learning rate of gd / sgd on the networks' loss (mean over N x 10 "
    "entries).  [default: mnist-train's rate for the FC network]",
)
@options.option(
    D,
    "batch_size",
    "--batch-size",
    default=None,
    help=f"Mini-batch of sgd (the networks' batches).  [default: {SGD_BATCH}]",
)
@options.option(
    D,
    "init",
    "--init",
    default=None,
    help="Initial function of gd / sgd: random = a GP prior draw (eq. 35-36), "
    f"as the networks start; zero.  [default: {DYNAMICS['init']}]",
)
@options.option(
    D,
    "draws",
    "--draws",
    default=None,
    help=f"Initial functions and batch orders of gd / sgd.  [default: {DYNAMICS['draws']}]",
)
@options.data_dir_option
@options.common("mnist-kernel.csv")
def mnist_kernel(
    n_train,
    noise,
    sigma_w2,
    sigma_b2,
    kernel,
    dynamics,
    epochs,
    lr,
    batch_size,
    init,
    draws,
    data_dir,
    seed,
    out,
    quiet,
):
    """Figure 6, theory: MNIST test accuracy of the completed FC ResNet in the doubly
    infinite limit (sigma_Z^2 = 1/784, sigma_Y^2 = 1, T = 1, tanh): a linear model with
    the kernel of eq. 37 (or eq. 35-36).

    --dynamics none (dashed line): kernel regression (GP posterior mean, one-hot targets,
    argmax). CSV columns: n_train, seed, accuracy (fraction), kernel, slope, offset,
    noise, sigma_w2, sigma_b2, n_test, correct.

    --dynamics gd / sgd: the limit trained as mnist-train trains the networks (same loss,
    rate, epochs, images, batches), from a GP prior draw. CSV columns: dynamics, init,
    draw, epoch, train_loss, test_accuracy, diverged, lr, batch_size, n_train, seed,
    kernel, slope, offset, prior_slope, prior_offset, sigma_w2, sigma_b2, n_test.
    """
    from ..experiments import mnist_kernel as experiment
    from ..progress import info

    dynamic_options = dict(epochs=epochs, lr=lr, batch_size=batch_size, init=init, draws=draws)
    if dynamics == "none":
        given = [f"--{k.replace('_', '-')}" for k, v in dynamic_options.items() if v is not None]
        if given:
            raise click.UsageError(f"{', '.join(given)}: only with --dynamics gd or sgd")
    elif noise is not None:
        raise click.UsageError("--noise applies to --dynamics none only")
    elif dynamics == "gd" and batch_size is not None:
        raise click.UsageError("--batch-size applies to --dynamics sgd only (gd is full batch)")
    if dynamics != "none":
        from ..experiments.mnist_train import default_lr

        params = dict(
            n_train=n_train,
            dynamics=dynamics,
            init=init or DYNAMICS["init"],
            epochs=epochs or DYNAMICS["epochs"],
            lr=default_lr("fc", dynamics) if lr is None else lr,
            batch_size=(batch_size or SGD_BATCH) if dynamics == "sgd" else None,
            draws=draws or DYNAMICS["draws"],
            sigma_w2=sigma_w2,
            sigma_b2=sigma_b2,
            kernel=kernel,
            seed=seed,
        )
        result = options.run_and_write(
            "mnist-kernel",
            experiment.mnist_kernel_dynamics,
            params,
            out,
            quiet,
            where=dict(data_dir=data_dir),
        )
        last = result.frame[result.frame["epoch"] == params["epochs"]]
        acc = ", ".join(f"{a:.4f}" for a in last["test_accuracy"])
        info(
            f"resdiff mnist-kernel: {dynamics} from a {params['init']} function, lr "
            f"{params['lr']:g}, {params['epochs']} epochs, n_train {n_train}: final test "
            f"accuracy {acc}; stability bound lr {result.meta['stability_bound_lr']:.4g}; "
            f"train {result.meta['train_s']:.2f} s, evaluate "
            f"{result.meta['evaluate_s']:.2f} s"
        )
        return
    params = dict(
        n_train=n_train,
        noise=1.0 / n_train if noise is None else noise,
        sigma_w2=sigma_w2,
        sigma_b2=sigma_b2,
        kernel=kernel,
        seed=seed,
    )
    result = options.run_and_write(
        "mnist-kernel", experiment.mnist_kernel, params, out, quiet, where=dict(data_dir=data_dir)
    )
    row = result.frame.iloc[0]
    info(
        f"resdiff mnist-kernel: test accuracy {row['accuracy']:.4f} "
        f"({row['correct']}/{row['n_test']}), {kernel}, n_train {n_train}; "
        f"data load {result.meta['load_s']:.2f} s, solve {result.meta['solve_s']:.2f} s"
    )
