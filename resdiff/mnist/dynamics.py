"""GD and SGD training of the completed FC ResNet in the doubly infinite limit.

In the limit the network is the linear model ``f(z) = z beta + alpha`` (``beta``: Z x K,
``alpha``: K; one column per class), Section 5.4:

* its initial function is a draw from the GP prior of eq. 35-36: ``beta_jk ~ N(0,
  prior_slope)``, ``alpha_k ~ N(0, prior_offset)`` with the NNGP coefficients (or zero);
* its NTK is eq. 37, ``slope <z, z'> + offset``, the same for each of the K outputs, so
  one step of rate ``lr`` on the networks' loss ``(1 / (n K)) sum_{i,k} (f_k(z_i) -
  y_ik)^2`` over a batch of ``n`` images (mean over the n x K entries) moves the
  function by ``-lr K_ntk grad_f loss``, that is

      beta  <- beta  - eta slope  z^T r,
      alpha <- alpha - eta offset 1^T r,     r = f(z) - y,  eta = 2 lr / (n K).

This is GD on the linear model with the features ``Phi = [sqrt(slope) z, sqrt(offset)]``
of :mod:`resdiff.mnist.kernel` (weights ``w = theta / sqrt(scale)``): the kernel
regression there is its gradient-flow limit from a zero start. Here ``theta = [beta;
alpha]`` and ``scale = [slope, ..., slope, offset]``; full-batch GD runs in the (Z + 1)
dimensional feature space through ``X^T X`` (``X = [z, 1]``), never an n x n matrix.
"""

import math

import numpy as np

from .. import rng
from ..jit import njit, prange
from .data import epoch_permutation

PRIOR_PURPOSE = "mnist-kernel/prior"  # the stream of the random initial functions


def step_size(lr, batch, classes):
    """``eta = 2 lr / (batch classes)``: the gradient of the mean over batch x classes."""
    return 2.0 * lr / (batch * classes)


def feature_scale(dim, slope, offset):
    """``[slope] * dim + [offset]``: the NTK's variance per coordinate of ``theta``."""
    scale = np.full(dim + 1, float(slope))
    scale[dim] = offset
    return scale


def prior_theta(seed, draw, dim, classes, prior_slope, prior_offset):
    """``theta_0`` (Z + 1, K) of draw ``draw``: the GP prior of eq. 35-36 as Bayesian
    linear regression, from the stream ``(seed, PRIOR_PURPOSE, draw)``."""
    theta = rng.normals(seed, PRIOR_PURPOSE, draw, (dim + 1) * classes)
    theta = theta.reshape(dim + 1, classes)
    theta *= np.sqrt(feature_scale(dim, prior_slope, prior_offset))[:, None]
    return theta


@njit(cache=True)
def _largest_eigenvalue(a, tol, max_iter):
    """Power iteration from the all-ones vector with the Rayleigh quotient; for a
    matrix with non-negative entries (a Gram matrix of pixels) the top eigenvector is
    non-negative, so the start is never orthogonal to it. NaN if not converged."""
    n = a.shape[0]
    v = np.full(n, 1.0 / np.sqrt(n))
    lam = 0.0
    for _ in range(max_iter):
        w = np.zeros(n)
        for i in range(n):
            acc = 0.0
            for j in range(n):
                acc += a[i, j] * v[j]
            w[i] = acc
        new = 0.0
        norm = 0.0
        for i in range(n):
            new += v[i] * w[i]
            norm += w[i] * w[i]
        if norm == 0.0:
            return 0.0
        v = w / np.sqrt(norm)
        if abs(new - lam) <= tol * abs(new):
            return new
        lam = new
    return np.nan


def stability_bound(gram, scale, n, classes):
    """``(bound, sharpness)``: the largest eigenvalue ``sharpness`` of the full-batch
    loss's Hessian in the feature weights, ``(2 / (n K)) Phi^T Phi``, and the rate
    ``2 / sharpness`` above which GD diverges along its eigenvector."""
    root = np.sqrt(scale)
    scaled = np.ascontiguousarray(root[:, None] * gram * root[None, :])
    lam_max = _largest_eigenvalue(scaled, 1e-14, 20000)
    if not np.isfinite(lam_max):  # no usable eigengap: the dense solver (LAPACK)
        lam_max = float(np.linalg.eigvalsh(scaled)[-1])
    sharpness = 2.0 * lam_max / (n * classes)
    return (2.0 / sharpness if sharpness > 0 else math.inf), sharpness


@njit(cache=True, parallel=True)
def _gram_step(gram, theta, xty, yy):
    """``(G theta, sq_err)`` with ``sq_err_c = theta_c^T (G theta_c - 2 X^T Y_c) + Y_c^T
    Y_c``; every output row is one thread's sum in a fixed order, so the bits do not
    depend on the thread count (BLAS's small products did)."""
    rows, cols = theta.shape
    out = np.zeros((rows, cols))
    for i in prange(rows):
        for j in range(rows):
            g = gram[i, j]
            for c in range(cols):
                out[i, c] += g * theta[j, c]
    sq = yy.copy()
    for i in range(rows):
        for c in range(cols):
            sq[c] += theta[i, c] * (out[i, c] - 2.0 * xty[i, c])
    return out, sq


def gd(gram, xty, yy, theta0, scale, lr, n, classes, epochs):
    """Full-batch GD, one step per epoch, for every column of ``theta0`` at once.

    ``gram = X^T X``, ``xty = X^T Y`` and ``yy`` (the column sums of ``Y**2``) match the
    columns of ``theta0`` (Z + 1, C). Returns ``thetas`` (epochs, Z + 1, C), the iterate
    after each step, and ``sq_err`` (epochs, C), the squared residuals summed over the
    images before each step, computed in feature space:
    ``theta^T G theta - 2 theta^T X^T Y + Y^T Y``.
    """
    eta = step_size(lr, n, classes)
    theta = np.array(theta0, dtype=np.float64)
    thetas = np.empty((epochs,) + theta.shape)
    sq_err = np.empty((epochs, theta.shape[1]))
    rate = (eta * np.asarray(scale))[:, None]
    xty = np.ascontiguousarray(xty, dtype=np.float64)
    yy = np.ascontiguousarray(yy, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        for e in range(epochs):
            g_theta, sq_err[e] = _gram_step(gram, theta, xty, yy)
            theta -= rate * (g_theta - xty)
            thetas[e] = theta
    return thetas, sq_err


def sparse_rows(z):
    """``(indptr, indices, values)``: the rows of ``z`` in compressed sparse row form
    (MNIST images are about 80% zeros, so an SGD step reads a fifth of the pixels)."""
    z = np.asarray(z, dtype=np.float64)
    mask = z != 0.0
    indptr = np.zeros(z.shape[0] + 1, dtype=np.int64)
    np.cumsum(mask.sum(axis=1), out=indptr[1:])
    return indptr, np.nonzero(mask)[1].astype(np.int64), z[mask]


@njit(cache=True)
def _add_xt(indptr, indices, values, rows, r, out):
    """``out += X_rows^T r`` for ``X = [z, 1]`` (``z``: :func:`sparse_rows`), row ``i``
    of ``r`` belonging to image ``rows[i]``; summed in that order, a fixed one."""
    dim, classes = out.shape[0] - 1, out.shape[1]
    for i in range(rows.shape[0]):
        row = rows[i]
        for p in range(indptr[row], indptr[row + 1]):
            j, v = indices[p], values[p]
            for k in range(classes):
                out[j, k] += v * r[i, k]
        for k in range(classes):
            out[dim, k] += r[i, k]


@njit(cache=True)
def sparse_xty(indptr, indices, values, y, dim):
    """``X^T Y`` (Z + 1, K), Z = ``dim``, in image order (BLAS's order for this shape
    depends on its thread count)."""
    out = np.zeros((dim + 1, y.shape[1]))
    _add_xt(indptr, indices, values, np.arange(y.shape[0]), y, out)
    return out


@njit(cache=True)
def _sgd_epoch(indptr, indices, values, y, order, batch_size, theta, scale, two_lr_over_k):
    """One epoch of SGD steps over ``order``; updates ``theta`` in place and returns
    the sum of the squared residuals, each batch's measured before its step."""
    n, classes = order.shape[0], y.shape[1]
    dim = theta.shape[0] - 1
    r = np.empty((batch_size, classes))
    grad = np.empty((dim + 1, classes))
    total = 0.0
    for start in range(0, n, batch_size):
        nb = min(batch_size, n - start)
        for i in range(nb):  # r = z beta + alpha - y on the batch
            row = order[start + i]
            for k in range(classes):
                r[i, k] = theta[dim, k] - y[row, k]
            for p in range(indptr[row], indptr[row + 1]):
                j, v = indices[p], values[p]
                for k in range(classes):
                    r[i, k] += v * theta[j, k]
            for k in range(classes):
                total += r[i, k] * r[i, k]
        grad[:] = 0.0  # X_b^T r
        _add_xt(indptr, indices, values, order[start : start + nb], r, grad)
        eta = two_lr_over_k / nb  # step_size(lr, nb, classes)
        for j in range(dim + 1):
            c = eta * scale[j]
            for k in range(classes):
                theta[j, k] -= c * grad[j, k]
    return total


def sgd(rows, y, theta0, scale, lr, batch_size, epochs, seed, draw, on_epoch=None):
    """Mini-batch SGD over the networks' batches: epoch ``e`` visits
    ``epoch_permutation(seed, e, n, draw)`` in batches of ``batch_size`` (the last one
    may be smaller), one step each; ``rows`` is :func:`sparse_rows` of the images.

    Returns ``thetas`` (epochs, Z + 1, K) after each epoch and ``losses`` (epochs,): the
    mean of the epoch's batch losses, each measured before its step and weighted by the
    batch's size, as the networks' ``train_loss``.
    """
    n, classes = y.shape
    theta = np.array(theta0, dtype=np.float64)
    thetas = np.empty((epochs,) + theta.shape)
    losses = np.empty(epochs)
    y = np.ascontiguousarray(y, dtype=np.float64)
    scale = np.ascontiguousarray(scale, dtype=np.float64)
    for e in range(epochs):
        order = epoch_permutation(seed, e + 1, n, draw).astype(np.int64)
        total = _sgd_epoch(
            *rows, y, order, int(batch_size), theta, scale, step_size(lr, 1, classes)
        )
        thetas[e] = theta
        losses[e] = total / (n * classes)
        if on_epoch is not None:
            on_epoch()
    return thetas, losses


def accuracies(z_test, labels, thetas, chunk=2000):
    """Test accuracy of each iterate in ``thetas`` (E, Z + 1, K): the argmax of
    ``z beta + alpha``; NaN for an iterate with a non-finite score (a diverged run)."""
    epochs, width, classes = thetas.shape
    stacked = thetas.transpose(1, 0, 2).reshape(width, epochs * classes)
    correct = np.zeros(epochs, dtype=np.int64)
    finite = np.ones(epochs, dtype=bool)
    labels = np.asarray(labels)
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, z_test.shape[0], chunk):
            scores = z_test[start : start + chunk] @ stacked[:-1]
            scores += stacked[-1]
            scores = scores.reshape(scores.shape[0], epochs, classes)
            finite &= np.isfinite(scores).all(axis=(0, 2))
            pred = np.argmax(scores, axis=2)
            correct += (pred == labels[start : start + chunk, None]).sum(axis=0)
    acc = correct / z_test.shape[0]
    return np.where(finite, acc, np.nan)
