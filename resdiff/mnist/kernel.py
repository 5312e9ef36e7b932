"""Kernel regression with the completed-model kernels (eq. 35-37): the limit line of Fig. 6.

The prediction is the GP posterior mean ``K_* (K + noise I)^{-1} Y`` with one-hot targets
``Y``; the predicted class is its argmax. The kernels are affine in ``<z, z'>``,
``K(z, z') = slope <z, z'> + offset``, so ``K = Phi Phi^T`` with the 785 features
``Phi = [sqrt(slope) z, sqrt(offset)]``, and by the push-through (Woodbury) identity

    K_* (K + noise I)^{-1} Y = Phi_* (Phi^T Phi + noise I)^{-1} Phi^T Y,

a 785 x 785 Cholesky solve, O(N Z^2), instead of an N x N one, O(N^3). This is Bayesian
linear regression with prior variances ``slope`` (weights) and ``offset`` (intercept).
:func:`direct_posterior_mean` is the N x N solve, kept as the test oracle.
"""

import math

import numpy as np

from .. import limits
from ..constraints import ParameterError
from ..errors import UserError

SIGMA_Z2 = 1.0 / 784  # input layer A ~ N(0, sigma_Z^2), docs/figures.md (completed FC ResNet)
SIGMA_Y2 = 1.0  # output layer G ~ N(0, sigma_Y^2 / D)
KINDS = ("ntk", "nngp")


def coefficients(kind, sigma_w2, sigma_b2, sigma_z2=SIGMA_Z2, sigma_y2=SIGMA_Y2, d1=1.0, T=1.0):
    """``(slope, offset)`` of the kernel: ``"ntk"`` (eq. 37) or ``"nngp"`` (eq. 35-36).

    ``d1 = phi'(0)`` (1 for tanh); finite at ``sigma_w2 = 0`` (limits.completed_kernel).
    """
    if kind not in KINDS:
        raise ParameterError("kernel", f"unknown kernel {kind!r}; choose from {', '.join(KINDS)}")
    k = limits.completed_kernel(kind, sigma_w2, sigma_b2, sigma_z2, sigma_y2, d1, T)
    return float(k.slope), float(k.offset)


def kernel_matrix(z1, z2, slope, offset):
    """``K(z1_i, z2_j) = slope <z1_i, z2_j> + offset``."""
    return slope * (np.asarray(z1, float) @ np.asarray(z2, float).T) + offset


def _check(slope, offset, noise):
    if not (slope >= 0 and offset >= 0 and math.isfinite(slope) and math.isfinite(offset)):
        raise UserError(
            f"kernel coefficients must be finite and non-negative (slope {slope}, offset {offset})"
        )
    if not (noise > 0 and math.isfinite(noise)):
        raise ParameterError("noise", f"must be a positive number, got {noise}")


def _cholesky(matrix, what):
    try:
        return np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        raise ParameterError(
            "noise",
            f"the {what} system is not numerically positive definite; increase the noise variance",
        ) from None


def affine_gram(z):
    """``X^T X`` for the unscaled affine features ``X = [z, 1]``: (Z + 1) x (Z + 1)."""
    z = np.asarray(z, dtype=np.float64)
    n, dim = z.shape
    gram = np.empty((dim + 1, dim + 1))
    gram[:dim, :dim] = z.T @ z  # symmetric rank-N update (BLAS syrk)
    gram[:dim, dim] = gram[dim, :dim] = z.sum(axis=0)
    gram[dim, dim] = n
    return gram


def fit_weights(z, y, slope, offset, noise):
    """Posterior mean of ``(beta, alpha)`` in ``y = sqrt(slope) beta.z + sqrt(offset) alpha``.

    Returns ``W`` (Z + 1, K): the solution of ``(Phi^T Phi + noise I) W = Phi^T Y`` by a
    Cholesky factorisation, with ``Phi = [sqrt(slope) z, sqrt(offset)]``.
    """
    _check(slope, offset, noise)
    z = np.asarray(z, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    dim = z.shape[1]
    a, b = math.sqrt(slope), math.sqrt(offset)
    gram = affine_gram(z)  # X^T X, X = [z, 1]; Phi^T Phi = S X^T X S
    gram[:dim, :dim] *= slope
    gram[:dim, dim] = gram[dim, :dim] = a * b * gram[:dim, dim]
    gram[dim, dim] *= offset
    gram[np.diag_indices_from(gram)] += noise
    rhs = np.empty((dim + 1, y.shape[1]))
    rhs[:dim] = a * (z.T @ y)
    rhs[dim] = b * y.sum(axis=0)
    chol = _cholesky(gram, f"{dim + 1} x {dim + 1}")
    # two triangular solves (numpy has no dedicated one; the factor is only 785 wide)
    return np.linalg.solve(chol.T, np.linalg.solve(chol, rhs))


def predict(z, weights, slope, offset):
    """``Phi(z) W``: the posterior mean at the rows of ``z``."""
    z = np.asarray(z, dtype=np.float64)
    dim = z.shape[1]
    return math.sqrt(slope) * (z @ weights[:dim]) + math.sqrt(offset) * weights[dim]


def posterior_mean(z_train, y_train, z_test, slope, offset, noise):
    """``K_* (K + noise I)^{-1} Y`` in the (Z + 1)-dimensional feature space."""
    weights = fit_weights(z_train, y_train, slope, offset, noise)
    return predict(z_test, weights, slope, offset)


def direct_posterior_mean(z_train, y_train, z_test, slope, offset, noise):
    """The same by the N x N kernel solve (O(N^3)): the test oracle for small N."""
    _check(slope, offset, noise)
    k = kernel_matrix(z_train, z_train, slope, offset)
    k[np.diag_indices_from(k)] += noise
    chol = _cholesky(k, "N x N kernel")
    alpha = np.linalg.solve(chol.T, np.linalg.solve(chol, np.asarray(y_train, float)))
    return kernel_matrix(z_test, z_train, slope, offset) @ alpha


def accuracy(scores, labels):
    """Fraction of rows whose argmax is the label."""
    return float(np.mean(np.argmax(scores, axis=1) == np.asarray(labels)))
