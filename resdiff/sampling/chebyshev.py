"""Chebyshev-Lobatto nodes and barycentric interpolation (1-D and tensor 2-D).

A network draw ``z -> y(z)`` of a smooth activation is an analytic function of the
input, so its values at ``K`` Chebyshev nodes on ``[z_min, z_max]`` determine its
values on a fine grid to high accuracy. Every evaluation here is a *linear* map from
node values to grid values, ``y_grid = P @ y_nodes``: interpolating each draw and
taking the covariance ``P C P^T`` of the node covariance ``C`` are the same thing.

Nodes are the Chebyshev points of the second kind (the extrema of ``T_{K-1}``, both ends
included), whose barycentric weights are ``(-1)^j``, halved at the two ends
(Berrut & Trefethen 2004, "Barycentric Lagrange interpolation", eq. 5.4).
"""

import math

import numpy as np


def nodes(k, lo=-1.0, hi=1.0):
    """``k >= 2`` Chebyshev-Lobatto points on ``[lo, hi]``, increasing, ends included."""
    if k < 2:
        raise ValueError("need at least 2 Chebyshev nodes")
    # math.cos (libm): NumPy's cos is a SIMD loop whose last bits depend on the CPU
    x = np.array([-math.cos(math.pi * j / (k - 1)) for j in range(k)])
    out = 0.5 * (lo + hi) + 0.5 * (hi - lo) * x
    out[0], out[-1] = lo, hi
    return out


def _weights(k):
    w = (-1.0) ** np.arange(k)
    w[0] *= 0.5
    w[-1] *= 0.5
    return w


def interpolation_matrix(k, lo, hi, points):
    """``P`` (len(points) x k) with ``P @ f(nodes(k, lo, hi)) ~= f(points)`` (barycentric)."""
    x = nodes(k, lo, hi)
    w = _weights(k)
    points = np.asarray(points, dtype=float)
    diff = points[:, None] - x[None, :]
    exact = diff == 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = w[None, :] / diff
        P = terms / terms.sum(axis=1, keepdims=True)
    hit = exact.any(axis=1)
    P[hit] = exact[hit].astype(float)  # a point on a node takes that node's value
    return P


def coefficients_matrix(k):
    """``T`` (k x k): Chebyshev coefficients ``c = T @ f(nodes)`` of the interpolant.

    ``f(x) = sum_m c_m T_m(x')`` with ``x'`` the point mapped to [-1, 1] (DCT-I of the
    node values). The size of the last coefficients estimates the interpolation error.
    """
    n = k - 1
    j = np.arange(k)
    # nodes(k) runs from -1 to 1, i.e. x_j = cos(pi (n - j) / n)
    T = np.array([[math.cos(m * (math.pi * (n - i) / n)) for i in j] for m in range(k)])
    T *= 2.0 / n
    T[:, 0] *= 0.5
    T[:, -1] *= 0.5
    T[0, :] *= 0.5
    T[-1, :] *= 0.5
    return T


def tensor_nodes(k, lo, hi):
    """Nodes of the ``k x k`` tensor grid as an array (k*k, 2), ``z1`` varying slowest."""
    x = nodes(k, lo, hi)
    z1, z2 = np.meshgrid(x, x, indexing="ij")
    return np.column_stack([z1.ravel(), z2.ravel()])


def tensor_interpolation_matrix(k, lo, hi, points1, points2):
    """``P`` mapping values at :func:`tensor_nodes` to the grid ``points1 x points2``
    (rows: ``z1`` slowest, as :func:`tensor_nodes`). Kronecker product of the 1-D maps."""
    return np.kron(
        interpolation_matrix(k, lo, hi, points1), interpolation_matrix(k, lo, hi, points2)
    )
