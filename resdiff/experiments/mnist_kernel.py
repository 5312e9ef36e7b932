"""Figure 6, theory: the completed FC ResNet in the doubly infinite limit on MNIST.

* :func:`mnist_kernel` (dashed line): kernel regression with the limit kernel (eq. 37
  "ntk", or eq. 35-36 "nngp"), GP posterior mean with noise variance ``noise`` (None:
  1 / n_train, as in Section 6.3).
* :func:`mnist_kernel_dynamics` (the limit trained like the networks): GD or SGD with
  the networks' loss, rate, epochs and batches on the limit's linear model, from a GP
  prior draw or a zero function (:mod:`resdiff.mnist.dynamics`); one row per (draw,
  epoch).

Both: ``n_train`` training images drawn by ``seed``
(:func:`resdiff.mnist.data.training_subset`, the networks' subset), the full
10,000-image test set, pixels / 255, one-hot targets, prediction = argmax.
"""

import time

import numpy as np
import pandas as pd

from ..constraints import (
    MNIST_KERNEL,
    MNIST_KERNEL_DYNAMICS,
    MNIST_SIGMA_B2,
    MNIST_SIGMA_W2,
    checked,
)
from ..mnist import data
from ..mnist import dynamics as dyn
from ..mnist import kernel as kr
from ..progress import progress
from . import Result


MNIST_RAISES = """ParameterError
        A parameter out of range (a ``ValueError`` naming the parameter).
    UserError
        MNIST cannot be found or downloaded (its message says where it looked)."""


@checked(MNIST_KERNEL)
def mnist_kernel(
    *,
    n_train: int = 20000,
    noise: float | None = None,
    sigma_w2: float = MNIST_SIGMA_W2,
    sigma_b2: float = MNIST_SIGMA_B2,
    kernel: str = "ntk",
    seed: int = 0,
    data_dir: str | None = None,
) -> Result:
    """MNIST test accuracy of kernel regression with the limit kernel of the completed
    FC ResNet (Figure 6, dashed line; Section 6.3): the GP posterior mean with one-hot
    targets, prediction = argmax.

    The defaults are the paper's: 20,000 training images, the full-training NTK of
    eq. 37 with ``sigma_w^2 = 1``, ``sigma_b^2 = 0.01``, noise 1 / 20,000.

    Parameters
    ----------
    n_train : int
        Training images, drawn at random (by ``seed``) from the 60,000.
    noise : float or None
        Noise variance of the posterior mean. None: ``1 / n_train``.
    sigma_w2, sigma_b2 : float
        Weight and bias variances.
    kernel : {"ntk", "nngp"}
        ``ntk``: the full-training NTK (eq. 37); ``nngp``: the GP kernel (eq. 35-36).
    seed : int
        Seed of the training subset.
    data_dir : str or None
        The folder of the four MNIST gzip IDX files. None: ``$RESDIFF_DATA_DIR``, else
        the user's cache (downloaded there when missing).

    Returns
    -------
    Result
        ``.frame``: one row ``n_train, seed, accuracy`` (a fraction), ``kernel, slope,
        offset, noise, sigma_w2, sigma_b2, n_test, correct``. ``.meta``: the formula,
        the solver, load and solve times.

    Raises
    ------
    {raises}

    Examples
    --------
    >>> import resdiff
    >>> r = resdiff.mnist_kernel(n_train=1000)  # doctest: +SKIP
    >>> r.frame["accuracy"].iloc[0]  # doctest: +SKIP
    """
    if noise is None:
        noise = 1.0 / n_train
    subset = data.training_subset(n_train, seed)
    slope, offset = kr.coefficients(kernel, sigma_w2, sigma_b2)
    started = time.perf_counter()
    mnist = data.load_mnist(data_dir)
    loaded = time.perf_counter()
    z = data.as_features(mnist.train_images[subset])
    y = data.one_hot(mnist.train_labels[subset])
    weights = kr.fit_weights(z, y, slope, offset, noise)
    scores = kr.predict(data.as_features(mnist.test_images), weights, slope, offset)
    correct = int(np.sum(np.argmax(scores, axis=1) == mnist.test_labels))
    done = time.perf_counter()
    n_test = int(mnist.test_labels.shape[0])
    frame = pd.DataFrame(
        [
            {
                "n_train": int(n_train),
                "seed": int(seed),
                "accuracy": correct / n_test,
                "kernel": kernel,
                "slope": slope,
                "offset": offset,
                "noise": float(noise),
                "sigma_w2": float(sigma_w2),
                "sigma_b2": float(sigma_b2),
                "n_test": n_test,
                "correct": correct,
            }
        ]
    )
    meta = {
        "data_dir": str(mnist.directory),
        "kernel_formula": "eq. 37 (full-training NTK)"
        if kernel == "ntk"
        else "eq. 35-36 (GP / NNGP)",
        "sigma_z2": kr.SIGMA_Z2,
        "sigma_y2": kr.SIGMA_Y2,
        "T": 1.0,
        "phi_prime_0": 1.0,
        "solver": "Cholesky of the (Z+1) x (Z+1) feature-space system (Woodbury)",
        "load_s": round(loaded - started, 3),
        "solve_s": round(done - loaded, 3),
    }
    return Result(frame, meta)


@checked(MNIST_KERNEL_DYNAMICS)
def mnist_kernel_dynamics(
    *,
    n_train: int = 20000,
    dynamics: str = "gd",
    init: str = "random",
    epochs: int = 120,
    lr: float | None = None,
    batch_size: int | None = None,
    draws: int = 1,
    sigma_w2: float = MNIST_SIGMA_W2,
    sigma_b2: float = MNIST_SIGMA_B2,
    kernel: str = "ntk",
    seed: int = 0,
    data_dir: str | None = None,
) -> Result:
    """The completed FC ResNet at D = L = infinity trained on MNIST like the networks
    (Figure 6, dotted theory lines): GD or SGD of the limit's linear model with the
    networks' loss, rate, epochs, images and batches, from a GP prior draw.

    The defaults are those of the paper's GD networks: 20,000 images, 120 epochs,
    their learning rate; one initial function.

    Parameters
    ----------
    n_train : int
        Training images, the networks' subset for ``seed``.
    dynamics : {"gd", "sgd"}
        Full-batch gradient descent, or mini-batch SGD in the networks' batch order.
    init : {"random", "zero"}
        The initial function: a GP prior draw (eq. 35-36), as the networks start, or 0.
    epochs : int
        Epochs of training.
    lr : float or None
        Learning rate on the networks' loss (mean over N x 10 entries). None: the rate
        :func:`mnist_train` uses for the FC network with that optimizer.
    batch_size : int or None
        The mini-batch of sgd (the networks' is 200); must be None with gd.
    draws : int
        Initial functions (and, for sgd, batch orders); draw 0 is the networks' order.
    sigma_w2, sigma_b2 : float
        Weight and bias variances.
    kernel : {"ntk", "nngp"}
        The training kernel: all layers trained (eq. 37) or the output layer only.
    seed : int
        Seed of the training subset, the initial functions and the batches.
    data_dir : str or None
        The folder of the MNIST files (see :func:`mnist_kernel`).

    Returns
    -------
    Result
        ``.frame``: one row per (draw, epoch): ``dynamics, init, draw, epoch,
        train_loss, test_accuracy, diverged, lr, batch_size, n_train, seed, kernel,
        slope, offset, prior_slope, prior_offset, sigma_w2, sigma_b2, n_test``.
        ``.meta``: the stability bound of the rate, timings.

    Raises
    ------
    {raises}

    Examples
    --------
    >>> import resdiff
    >>> r = resdiff.mnist_kernel_dynamics(n_train=1000, epochs=5)  # doctest: +SKIP
    """
    from .mnist_train import default_lr

    lr = default_lr("fc", dynamics) if lr is None else float(lr)
    subset = data.training_subset(n_train, seed)  # validates n_train and seed first
    slope, offset = kr.coefficients(kernel, sigma_w2, sigma_b2)
    prior_slope, prior_offset = kr.coefficients("nngp", sigma_w2, sigma_b2)
    started = time.perf_counter()
    mnist = data.load_mnist(data_dir)
    z = data.as_features(mnist.train_images[subset])
    y = data.one_hot(mnist.train_labels[subset])
    z_test = data.as_features(mnist.test_images)
    loaded = time.perf_counter()
    n, dim = z.shape
    classes = y.shape[1]
    scale = dyn.feature_scale(dim, slope, offset)
    gram = kr.affine_gram(z)
    bound, sharpness = dyn.stability_bound(gram, scale, n, classes)
    if init == "random":
        theta0 = [
            dyn.prior_theta(seed, d, dim, classes, prior_slope, prior_offset) for d in range(draws)
        ]
    else:
        theta0 = [np.zeros((dim + 1, classes)) for _ in range(draws)]
    prepared = time.perf_counter()
    rows = dyn.sparse_rows(z)
    if dynamics == "gd":  # every draw at once: the columns of one (Z + 1, K draws) theta
        xty = dyn.sparse_xty(*rows, y, dim)
        thetas, sq_err = dyn.gd(
            gram,
            np.tile(xty, draws),
            np.tile((y * y).sum(0), draws),
            np.hstack(theta0),
            scale,
            lr,
            n,
            classes,
            epochs,
        )
        thetas = thetas.reshape(epochs, dim + 1, draws, classes).transpose(2, 0, 1, 3)
        losses = sq_err.reshape(epochs, draws, classes).sum(axis=2).T / (n * classes)
    else:
        thetas = np.empty((draws, epochs, dim + 1, classes))
        losses = np.empty((draws, epochs))
        with progress(draws * epochs, f"mnist-kernel sgd, {draws} draw(s)") as bar:
            for d in range(draws):
                thetas[d], losses[d] = dyn.sgd(
                    rows,
                    y,
                    theta0[d],
                    scale,
                    lr,
                    batch_size,
                    epochs,
                    seed,
                    d,
                    on_epoch=lambda: bar.update(1),
                )
    trained = time.perf_counter()
    acc = np.stack([dyn.accuracies(z_test, mnist.test_labels, thetas[d]) for d in range(draws)])
    done = time.perf_counter()
    unstable = lr > bound
    diverged = unstable | (np.cumsum(~np.isfinite(losses), axis=1) > 0)
    epoch = np.arange(1, epochs + 1)
    frame = pd.DataFrame(
        {
            "dynamics": dynamics,
            "init": init,
            "draw": np.repeat(np.arange(draws), epochs),
            "epoch": np.tile(epoch, draws),
            "train_loss": losses.ravel(),
            "test_accuracy": acc.ravel(),
            "diverged": diverged.ravel(),
            "lr": lr,
            "batch_size": int(n if dynamics == "gd" else min(batch_size, n)),
            "n_train": int(n_train),
            "seed": int(seed),
            "kernel": kernel,
            "slope": slope,
            "offset": offset,
            "prior_slope": prior_slope,
            "prior_offset": prior_offset,
            "sigma_w2": float(sigma_w2),
            "sigma_b2": float(sigma_b2),
            "n_test": int(z_test.shape[0]),
        }
    )
    warnings = []
    if unstable:
        warnings.append(
            f"{dynamics} at lr {lr:g} is above the limit's stability bound "
            f"{bound:.4g} (2 / {sharpness:.4g}, the largest eigenvalue of the "
            "full-batch loss Hessian): the iteration diverges; every row is "
            "flagged diverged"
        )
    n_div = int(diverged[:, -1].sum())
    if n_div and not unstable:
        warnings.append(
            f"{dynamics} at lr {lr:g}: {n_div} of {draws} draw(s) diverged "
            "(non-finite loss); their rows are flagged diverged"
        )
    meta = {
        "data_dir": str(mnist.directory),
        "model": "the completed FC ResNet at D = L = infinity: f(z) = z beta + alpha",
        "initial_function": ("GP prior draw, eq. 35-36 (stream 'mnist-kernel/prior', one per draw)")
        if init == "random"
        else "zero",
        "training_kernel": "eq. 37 (full-training NTK)"
        if kernel == "ntk"
        else "eq. 35-36 (output layer trained only)",
        "loss": "mean squared error over all N x 10 one-hot entries (the networks')",
        "train_loss": "mean of the epoch's step losses (before each step), as mnist-train",
        "batches": "full batch"
        if dynamics == "gd"
        else "data.epoch_permutation(seed, epoch, n, draw); draw 0 = the networks' order",
        "lr": lr,
        "stability_bound_lr": bound,
        "hessian_max_eigenvalue": sharpness,
        "diverged_draws": n_div,
        "sigma_z2": kr.SIGMA_Z2,
        "sigma_y2": kr.SIGMA_Y2,
        "T": 1.0,
        "phi_prime_0": 1.0,
        "load_s": round(loaded - started, 3),
        "prepare_s": round(prepared - loaded, 3),
        "train_s": round(trained - prepared, 3),
        "evaluate_s": round(done - trained, 3),
    }
    return Result(frame, meta, warnings)


for _f in (mnist_kernel, mnist_kernel_dynamics):
    _f.__doc__ = _f.__doc__.replace("{raises}", MNIST_RAISES)
