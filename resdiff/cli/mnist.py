import click

from .. import constraints as cons
from . import options

T = cons.MNIST_KERNEL


@options.command("mnist-kernel",
                 short_help="Figure 6, dashed line: MNIST kernel regression accuracy.")
@options.option(T, "n_train", "--n-train", default=20000, show_default=True,
                help="Training images, drawn at random (by --seed) from the 60,000.")
@options.option(T, "noise", "--noise", default=None,
                help="Noise variance of the GP posterior mean.  [default: 1/n-train]")
@options.sigma_options(T, 1.0, 0.01)
@options.option(T, "kernel", "--kernel", default="ntk", show_default=True,
              help="ntk: full-training NTK of the completed model (eq. 37); nngp: its GP "
                   "kernel (eq. 35-36).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Directory with the four MNIST gzip IDX files  [default: "
                   "$RESDIFF_DATA_DIR, else ~/.cache/resdiff/mnist]")
@options.common("mnist-kernel.csv")
def mnist_kernel(n_train, noise, sigma_w2, sigma_b2, kernel, data_dir, seed, out, quiet):
    """Figure 6, dashed line: MNIST test accuracy of kernel regression (GP posterior
    mean, one-hot targets, argmax) with the kernel of the completed FC ResNet in the
    doubly infinite limit (sigma_Z^2 = 1/784, sigma_Y^2 = 1, T = 1, tanh).

    CSV columns: n_train, seed, accuracy (fraction), kernel, slope, offset, noise,
    sigma_w2, sigma_b2, n_test, correct.
    """
    from ..experiments.mnist_kernel import mnist_kernel as run
    from ..progress import info
    params = dict(n_train=n_train, noise=1.0 / n_train if noise is None else noise,
                  sigma_w2=sigma_w2, sigma_b2=sigma_b2, kernel=kernel, seed=seed,
                  data_dir=data_dir)
    result = options.run_and_write("mnist-kernel", run, params, out, quiet)
    row = result.frame.iloc[0]
    info(f"resdiff mnist-kernel: test accuracy {row['accuracy']:.4f} "
         f"({row['correct']}/{row['n_test']}), {kernel}, n_train {n_train}; "
         f"data load {result.meta['load_s']:.2f} s, solve {result.meta['solve_s']:.2f} s")
