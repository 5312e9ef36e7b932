"""Figures 6 and 7: MNIST training of the completed ResNets (Sections 6.3 and 6.4).

:func:`mnist_train` trains one model (``D = L = size``) and returns one row per epoch.
It writes no file but the checkpoint it is handed (``checkpoint=PATH``, from the
``mnist-train`` command or from the figure pipeline, which keeps one per training run
beside its CSV); ``resume=True`` continues from it. PyTorch is imported only when
training starts.

Data (docs/figures.md, Fig. 6): ``n_train`` training images drawn by ``seed`` with
:func:`resdiff.mnist.data.training_subset` (the same subset as ``mnist-kernel``),
pixels / 255, one-hot targets; the full test set, or a seeded subset of ``n_test``
images for the reduced presets.
"""

import os
import zlib

import numpy as np
import pandas as pd

from .. import numerics
from ..constraints import FULL_BATCH, MNIST_SIGMA_B2, MNIST_SIGMA_W2, MNIST_TRAIN, checked
from ..errors import UserError
from . import Result

INSTALL_HINT = (
    "mnist-train needs PyTorch, the optional extra 'train': "
    "pip install 'resdiff[train]' (CPU build: pip install torch==2.13.0 "
    "--index-url https://download.pytorch.org/whl/cpu)"
)

# Learning rates tuned for final test accuracy by docs/lr_sweep.py at reduced scale
# (FC: D = L <= 100, 5,000 images; conv: D = L <= 8, 2,000 images): among the rates
# that diverged at no size, the best final accuracy at the largest size swept. Table
# and scale: docs/lr_sweep.md. Full-batch conv training is not in the paper and was
# not swept: it reuses the mini-batch rates.
TUNED_LR = {
    ("fc", "gd"): 20.0,
    ("fc", "sgd"): 20.0,
    ("fc", "adam-full"): 0.01,
    ("fc", "adam"): 0.01,
    ("conv", "sgd"): 3.0,
    ("conv", "adam"): 0.1,
    ("conv", "gd"): 3.0,  # not swept: the conv sgd rate
    ("conv", "adam-full"): 0.1,  # not swept: the conv adam rate
}

_TEST_SUBSET_TAG = zlib.crc32(b"mnist-train/test_subset")


def default_lr(arch, optimizer):
    return TUNED_LR[(arch, optimizer)]


def require_torch():
    """Import PyTorch (the ``train`` extra) or raise a :class:`UserError` saying how.

    Before the first import, OpenMP threads are told to sleep rather than spin while
    idle (``OMP_WAIT_POLICY=PASSIVE`` unless set): on a machine whose cores are shared
    with other processes, spinning threads made small operations 10-400x slower here
    (docs/training.md); on an idle machine the difference is within noise.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import torch  # noqa: F401
    except ImportError:
        raise UserError(INSTALL_HINT) from None


def test_subset(n_test, seed):
    """Sorted indices of ``n_test`` test images (None or 10000: all of them)."""
    if n_test is None or n_test >= 10000:
        return np.arange(10000)
    ss = np.random.SeedSequence([int(seed), _TEST_SUBSET_TAG])
    return np.sort(np.random.default_rng(ss).choice(10000, size=int(n_test), replace=False))


def load_split(n_train, seed, n_test=None, data_dir=None):
    """``(x_train float32 (n, 784), y_train one-hot, x_test, test_labels, directory)``."""
    from ..mnist import data

    subset = data.training_subset(n_train, seed)  # validates n_train and seed
    mnist = data.load_mnist(data_dir)
    test = test_subset(n_test, seed)
    x_train = data.as_features(mnist.train_images[subset]).astype(np.float32)
    y_train = data.one_hot(mnist.train_labels[subset]).astype(np.float32)
    x_test = data.as_features(mnist.test_images[test]).astype(np.float32)
    return x_train, y_train, x_test, mnist.test_labels[test].astype(np.int64), mnist.directory


def _train_one(
    split,
    *,
    arch,
    size,
    optimizer,
    batch_size,
    epochs,
    lr,
    n_train,
    seed,
    device,
    sigma_w2,
    sigma_b2,
    n_test,
    checkpoint,
    resume,
    label,
    checkpoint_every=0.0,
    precision="fp32",
):
    from ..mnist import models, train

    dev = train.pick_device(device)
    precision_meta = train.set_precision(precision, dev)
    x_train, y_train, x_test, test_labels = split[:4]
    if arch == "conv":
        x_train, x_test = (models.as_model_input("conv", a) for a in (x_train, x_test))
    data = train.TrainData.from_numpy(x_train, y_train, x_test, test_labels, dev)
    model = models.build(
        arch, size, seed=seed, sigma_w2=sigma_w2, sigma_b2=sigma_b2, precision=precision
    )
    config = dict(
        arch=arch,
        size=int(size),
        optimizer=optimizer,
        precision=precision,
        batch_size=int(batch_size),
        epochs=int(epochs),
        lr=float(lr),
        n_train=int(n_train),
        seed=int(seed),
        sigma_w2=float(sigma_w2),
        sigma_b2=float(sigma_b2),
        n_test=None if n_test is None else int(n_test),
        numerics=training_numerics(arch),
        # float32 rounding depends on PyTorch's SIMD kernels: a run started with
        # AVX-512 kernels is not resumed with AVX2 ones (a CPU of another sitting)
        torch_cpu_capability=_torch_cpu_capability() if dev.type == "cpu" else None,
    )
    rows, meta = train.fit(
        model,
        data,
        optimizer=optimizer,
        lr=float(lr),
        batch_size=batch_size,
        epochs=epochs,
        seed=seed,
        device=dev,
        config=config,
        checkpoint=checkpoint,
        resume=resume,
        checkpoint_every=checkpoint_every,
        label=label,
    )
    frame = pd.DataFrame(rows, columns=["epoch", "train_loss", "test_accuracy", "diverged"])
    frame.insert(0, "size", int(size))
    frame.insert(0, "optimizer", optimizer)
    frame.insert(0, "arch", arch)
    frame["lr"] = float(lr)
    meta.update(precision_meta)
    if dev.type == "cuda":
        import torch

        meta.update(
            gpu=torch.cuda.get_device_name(dev),
            cudnn_allow_tf32=bool(torch.backends.cudnn.allow_tf32),
        )
    meta.update(
        depth=int(size),
        width=int(size),
        lr=float(lr),
        full_batch=optimizer in FULL_BATCH,
        torch=_torch_version(),
        # which SIMD kernels PyTorch ran: float32 rounding depends on it
        torch_cpu_capability=_torch_cpu_capability(),
        loss="mean squared error over all N x 10 one-hot entries",
        train_loss="mean of the epoch's step losses (before each step)",
    )
    return frame, meta


def training_numerics(arch):
    """The numerical versions of a training run (:mod:`resdiff.numerics`): part of the
    key of every checkpoint, so an interrupted run is never resumed by code that
    computes other numbers (a refactor still resumes it)."""
    return numerics.versions(f"{__name__}:mnist_train", {"arch": arch})


def _torch_version():
    import torch

    return torch.__version__


def _torch_cpu_capability():
    import torch

    return torch.backends.cpu.get_cpu_capability()


@checked(MNIST_TRAIN)
def mnist_train(
    *,
    arch: str = "fc",
    size: int = 10,
    optimizer: str = "sgd",
    batch_size: int = 200,
    epochs: int = 120,
    lr: float | None = None,
    n_train: int = 20000,
    seed: int = 0,
    device: str = "auto",
    sigma_w2: float = MNIST_SIGMA_W2,
    sigma_b2: float = MNIST_SIGMA_B2,
    n_test: int | None = None,
    data_dir: str | None = None,
    checkpoint: str | None = None,
    resume: bool = False,
    checkpoint_every: float = 0.0,
    precision: str = "fp32",
) -> Result:
    """Train the completed ResNet (D = L = ``size``, tanh, NTK parametrisation, all
    layers trained) on MNIST with mean-squared-error loss on one-hot targets; the test
    accuracy after every epoch (Figures 6 and 7, Sections 6.3-6.4). Needs PyTorch (the
    ``train`` extra).

    The defaults are one run of the paper's Figure 6: the FC network, SGD with batches
    of 200, 120 epochs, 20,000 training images, the full test set, at D = L = 10.

    Parameters
    ----------
    arch : {"fc", "conv"}
        The completed FC ResNet (Figure 6) or conv ResNet (Figure 7).
    size : int
        Width and depth D = L.
    optimizer : {"gd", "sgd", "adam-full", "adam"}
        Full-batch or mini-batch gradient descent, full-batch or mini-batch Adam.
    batch_size : int
        Mini-batch size (unused by gd and adam-full).
    epochs : int
        Epochs of training.
    lr : float or None
        Learning rate. None: the rate tuned for ``arch`` and ``optimizer``
        (docs/lr_sweep.md).
    n_train : int
        Training images, a random subset drawn by ``seed``.
    seed : int
        Seed of the subset, the initialisation and the batches.
    device : {"auto", "cpu", "cuda"}
        auto: CUDA when PyTorch sees a GPU, else the CPU.
    sigma_w2, sigma_b2 : float
        Weight and bias variances of the initialisation.
    n_test : int or None
        Test images, a seeded subset. None: all 10,000.
    data_dir : str or None
        The folder of the MNIST files (see :func:`resdiff.mnist_kernel`).
    checkpoint : str or None
        A file rewritten after an epoch once ``checkpoint_every`` seconds have passed
        since the last write (0: every epoch), and after the last epoch.
    resume : bool
        Continue from ``checkpoint`` when it exists and records the same run.
    checkpoint_every : float
        Seconds between checkpoint writes.
    precision : {"fp32", "bf16", "tf32"}
        fp32: float32 throughout (the reference); bf16: matmul and convolution
        operands rounded to bfloat16, float32 accumulation; tf32: CUDA's TF32 matmuls
        (fp32 on a CPU).

    Returns
    -------
    Result
        ``.frame``: one row per epoch: ``arch, optimizer, size, epoch, train_loss,
        test_accuracy, diverged, lr``. ``.meta``: wall times per epoch, the device and
        precision, the epoch at which training diverged (None if it did not).

    Raises
    ------
    ParameterError
        A parameter out of range (a ``ValueError`` naming the parameter).
    UserError
        PyTorch is not installed, or MNIST cannot be found.

    Examples
    --------
    >>> import resdiff
    >>> r = resdiff.mnist_train(size=4, epochs=2, n_train=500, n_test=500)  # doctest: +SKIP
    >>> r.frame[["epoch", "test_accuracy"]]  # doctest: +SKIP
    """
    require_torch()
    lr = default_lr(arch, optimizer) if lr is None else lr
    split = load_split(n_train, seed, n_test, data_dir)
    frame, meta = _train_one(
        split,
        arch=arch,
        size=size,
        optimizer=optimizer,
        batch_size=batch_size,
        epochs=epochs,
        lr=lr,
        n_train=n_train,
        seed=seed,
        device=device,
        sigma_w2=sigma_w2,
        sigma_b2=sigma_b2,
        n_test=n_test,
        checkpoint=checkpoint,
        resume=resume,
        checkpoint_every=checkpoint_every,
        precision=precision,
        label=f"{arch} {optimizer} D=L={size}",
    )
    meta["data_dir"] = str(split[4])
    meta["n_test_images"] = int(split[2].shape[0])
    warnings = []
    if meta["diverged_epoch"] is not None:
        warnings.append(
            f"{arch} {optimizer} D=L={size} lr={lr:g}: training diverged "
            f"(non-finite loss) at epoch {meta['diverged_epoch']}"
        )
    return Result(frame, meta, warnings)
