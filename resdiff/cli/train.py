import os

import click

from .. import constraints as cons
from . import options

T = cons.MNIST_TRAIN
PRECISION_HELP = (
    "fp32: float32 throughout (the reference); bf16: matmul and convolution "
    "operands rounded to bfloat16, float32 accumulation, residual stream, "
    "loss and weights; tf32: CUDA's TF32 matmuls (fp32 on a CPU)."
)
OPTIMIZER_HELP = (
    "gd: full-batch gradient descent; sgd: mini-batch (--batch-size) gradient "
    "descent; adam-full: full-batch Adam; adam: mini-batch Adam."
)


@options.command("mnist-train", short_help="Figures 6-7: train a completed ResNet on MNIST.")
@options.option(
    T,
    "arch",
    "--arch",
    show_default=True,
    help="fc: completed FC ResNet (Fig. 6); conv: completed conv ResNet (Fig. 7).",
)
@options.option(T, "size", "--size", show_default=True, help="Width and depth D = L.")
@options.option(T, "optimizer", "--optimizer", show_default=True, help=OPTIMIZER_HELP)
@options.option(
    T,
    "batch_size",
    "--batch-size",
    show_default=True,
    help="Mini-batch size (ignored by gd and adam-full).",
)
@options.option(T, "epochs", "--epochs", show_default=True)
@options.option(
    T,
    "lr",
    "--lr",
    help="Learning rate [default: the tuned rate of --arch and --optimizer, docs/lr_sweep.md].",
)
@options.option(
    T,
    "n_train",
    "--n-train",
    show_default=True,
    help="Training images, a random subset drawn by --seed.",
)
@options.option(T, "n_test", "--n-test", help="Test images, a seeded subset [default: all 10,000].")
@options.sigma_options(T)
@options.option(
    T, "device", "--device", show_default=True, help="auto: CUDA when PyTorch sees a GPU, else CPU."
)
@options.option(T, "precision", "--precision", show_default=True, help=PRECISION_HELP)
@options.data_dir_option
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False),
    default=None,
    help="Checkpoint written after every epoch [default: OUT.ckpt]; removed "
    "when the run completes.",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue from the checkpoint of an interrupted run with the same "
    "parameters (starts afresh when there is none).",
)
@options.allow_long_option
@options.common("mnist-train.csv")
def mnist_train(
    arch,
    size,
    optimizer,
    batch_size,
    epochs,
    lr,
    n_train,
    n_test,
    sigma_w2,
    sigma_b2,
    device,
    precision,
    data_dir,
    checkpoint,
    resume,
    seed,
    out,
    quiet,
    allow_long,
):
    """Figures 6-7: train the completed ResNet (D = L = SIZE, tanh, NTK
    parametrisation, all layers trained) on MNIST with mean-squared-error loss on
    one-hot targets; report the test accuracy after every epoch.

    CSV columns: arch, optimizer, size, epoch, train_loss, test_accuracy, diverged, lr
    (one row per epoch; wall times per epoch are in the sidecar).
    """
    from ..experiments import mnist_train as exp
    from ..progress import info

    exp.require_torch()  # one line and exit 2 when the `train` extra is missing
    if lr is None:
        lr = exp.default_lr(arch, optimizer)
    checkpoint = checkpoint or f"{out}.ckpt"
    params = dict(
        arch=arch,
        size=size,
        optimizer=optimizer,
        batch_size=batch_size,
        epochs=epochs,
        lr=lr,
        n_train=n_train,
        n_test=n_test,
        sigma_w2=sigma_w2,
        sigma_b2=sigma_b2,
        seed=seed,
        device=device,
        precision=precision,
    )
    from ..errors import UserError

    try:
        options.run_and_write(
            "mnist-train",
            exp.mnist_train,
            params,
            out,
            quiet,
            allow_long,
            dict(data_dir=data_dir, checkpoint=checkpoint, resume=resume),
        )
    except BaseException as exc:  # Ctrl-C, SIGTERM (exit 130) or a crash: say how to go on
        if not isinstance(exc, UserError) and os.path.exists(checkpoint):
            info(
                f"resdiff mnist-train: the last finished epoch is in {checkpoint}; "
                "rerun the same command with --resume to continue"
            )
        raise
    if os.path.exists(checkpoint):
        os.unlink(checkpoint)
