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

from ..constraints import MNIST_KERNEL, MNIST_KERNEL_DYNAMICS, checked
from ..mnist import data
from ..mnist import dynamics as dyn
from ..mnist import kernel as kr
from ..progress import progress
from . import Result


@checked(MNIST_KERNEL)
def mnist_kernel(*, n_train, noise, sigma_w2, sigma_b2, kernel, seed, data_dir=None):
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
    frame = pd.DataFrame([{
        "n_train": int(n_train), "seed": int(seed), "accuracy": correct / n_test,
        "kernel": kernel, "slope": slope, "offset": offset, "noise": float(noise),
        "sigma_w2": float(sigma_w2), "sigma_b2": float(sigma_b2), "n_test": n_test,
        "correct": correct,
    }])
    meta = {
        "data_dir": str(mnist.directory),
        "kernel_formula": "eq. 37 (full-training NTK)" if kernel == "ntk"
                          else "eq. 35-36 (GP / NNGP)",
        "sigma_z2": kr.SIGMA_Z2, "sigma_y2": kr.SIGMA_Y2, "T": 1.0, "phi_prime_0": 1.0,
        "solver": "Cholesky of the (Z+1) x (Z+1) feature-space system (Woodbury)",
        "load_s": round(loaded - started, 3), "solve_s": round(done - loaded, 3),
    }
    return Result(frame, meta)


@checked(MNIST_KERNEL_DYNAMICS)
def mnist_kernel_dynamics(*, n_train, dynamics, init, epochs, lr, batch_size, draws,
                          sigma_w2, sigma_b2, kernel, seed, data_dir=None):
    """GD (``dynamics="gd"``) or SGD of the limit's linear model; ``lr`` None: the rate
    ``mnist-train`` uses for the FC network with that optimizer. ``kernel`` is the
    training kernel (``"ntk"``: all layers trained, eq. 37; ``"nngp"``: the output layer
    only); the random initial function is always a GP prior draw (eq. 35-36)."""
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
        theta0 = [dyn.prior_theta(seed, d, dim, classes, prior_slope, prior_offset)
                  for d in range(draws)]
    else:
        theta0 = [np.zeros((dim + 1, classes)) for _ in range(draws)]
    prepared = time.perf_counter()
    rows = dyn.sparse_rows(z)
    if dynamics == "gd":  # every draw at once: the columns of one (Z + 1, K draws) theta
        xty = dyn.sparse_xty(*rows, y, dim)
        thetas, sq_err = dyn.gd(gram, np.tile(xty, draws), np.tile((y * y).sum(0), draws),
                                np.hstack(theta0), scale, lr, n, classes, epochs)
        thetas = thetas.reshape(epochs, dim + 1, draws, classes).transpose(2, 0, 1, 3)
        losses = sq_err.reshape(epochs, draws, classes).sum(axis=2).T / (n * classes)
    else:
        thetas = np.empty((draws, epochs, dim + 1, classes))
        losses = np.empty((draws, epochs))
        with progress(draws * epochs, f"mnist-kernel sgd, {draws} draw(s)") as bar:
            for d in range(draws):
                thetas[d], losses[d] = dyn.sgd(rows, y, theta0[d], scale, lr, batch_size,
                                               epochs, seed, d, on_epoch=lambda: bar.update(1))
    trained = time.perf_counter()
    acc = np.stack([dyn.accuracies(z_test, mnist.test_labels, thetas[d])
                    for d in range(draws)])
    done = time.perf_counter()
    unstable = lr > bound
    diverged = unstable | (np.cumsum(~np.isfinite(losses), axis=1) > 0)
    epoch = np.arange(1, epochs + 1)
    frame = pd.DataFrame({
        "dynamics": dynamics, "init": init, "draw": np.repeat(np.arange(draws), epochs),
        "epoch": np.tile(epoch, draws), "train_loss": losses.ravel(),
        "test_accuracy": acc.ravel(), "diverged": diverged.ravel(), "lr": lr,
        "batch_size": int(n if dynamics == "gd" else min(batch_size, n)),
        "n_train": int(n_train), "seed": int(seed), "kernel": kernel, "slope": slope,
        "offset": offset, "prior_slope": prior_slope, "prior_offset": prior_offset,
        "sigma_w2": float(sigma_w2), "sigma_b2": float(sigma_b2),
        "n_test": int(z_test.shape[0]),
    })
    warnings = []
    if unstable:
        warnings.append(f"{dynamics} at lr {lr:g} is above the limit's stability bound "
                        f"{bound:.4g} (2 / {sharpness:.4g}, the largest eigenvalue of the "
                        "full-batch loss Hessian): the iteration diverges; every row is "
                        "flagged diverged")
    n_div = int(diverged[:, -1].sum())
    if n_div and not unstable:
        warnings.append(f"{dynamics} at lr {lr:g}: {n_div} of {draws} draw(s) diverged "
                        "(non-finite loss); their rows are flagged diverged")
    meta = {
        "data_dir": str(mnist.directory),
        "model": "the completed FC ResNet at D = L = infinity: f(z) = z beta + alpha",
        "initial_function": ("GP prior draw, eq. 35-36 (stream 'mnist-kernel/prior', "
                             "one per draw)") if init == "random" else "zero",
        "training_kernel": "eq. 37 (full-training NTK)" if kernel == "ntk"
                           else "eq. 35-36 (output layer trained only)",
        "loss": "mean squared error over all N x 10 one-hot entries (the networks')",
        "train_loss": "mean of the epoch's step losses (before each step), as mnist-train",
        "batches": "full batch" if dynamics == "gd" else
                   "data.epoch_permutation(seed, epoch, n, draw); draw 0 = the networks' order",
        "lr": lr, "stability_bound_lr": bound, "hessian_max_eigenvalue": sharpness,
        "diverged_draws": n_div,
        "sigma_z2": kr.SIGMA_Z2, "sigma_y2": kr.SIGMA_Y2, "T": 1.0, "phi_prime_0": 1.0,
        "load_s": round(loaded - started, 3), "prepare_s": round(prepared - loaded, 3),
        "train_s": round(trained - prepared, 3), "evaluate_s": round(done - trained, 3),
    }
    return Result(frame, meta, warnings)
