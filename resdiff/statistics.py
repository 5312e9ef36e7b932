"""Statistics of function draws: per-input quantiles, their batch-means standard
errors, and output covariances and correlations (Figs. 1, 4, 5, 8).

The draws are simulated at a set of points and mapped onto the outputs by a matrix,
``y_out = P y_points`` (``P = None``: the points are the outputs;
:mod:`resdiff.sampling.plan`). Two estimators of the same quantities:

* empirical: quantiles and the sample covariance of the draws;
* conditional (feedforward): the output is exactly Gaussian given the last hidden
  layer, ``y | h_{L-1} ~ N(0, S_L)``, so each draw contributes that Gaussian: quantiles
  are those of the mixture of ``N(0, S_L(z, z))`` over the draws
  (:func:`normal_mixture_quantiles`) and the covariance is the mean of ``S_L``
  (conditional Monte Carlo, "Rao-Blackwellisation").

Both are consistent for the same quantities; the conditional one has a much smaller
variance per draw (:func:`quantile_se` measures it by batch means). Correlations over a
grid are those of ``P C P^T``, i.e. exactly those of the mapped (interpolated) draws.
"""

import math

import numpy as np

from .jit import njit, prange
from .sampling.linalg import matmul, matmul_nt

QUANTILE_BLOCK_BYTES = 64 * 2**20  # mapped outputs held at once by empirical quantiles
SE_BATCHES = 10
SE_OUTPUTS = 40  # standard errors are computed on up to this many outputs


@njit(cache=True)
def _mixture_cdf(t, sd):
    acc = 0.0
    for p in range(sd.shape[0]):
        s = sd[p]
        if s > 0.0:
            acc += 0.5 * math.erfc(-t / (s * math.sqrt(2.0)))
        elif t >= 0.0:
            acc += 1.0  # a point mass at 0 (e.g. ReLU without bias at z = 0)
    return acc / sd.shape[0]


@njit(parallel=True, cache=True)
def normal_mixture_quantiles(sd, levels, rel_tol=1e-12):
    """Quantiles of the centred Gaussian mixtures ``(1/P) sum_p N(0, sd[p, u]^2)``.

    ``sd`` (P x U): one column per output; returns (len(levels), U). Bisection on the
    mixture CDF, to ``rel_tol`` times the largest standard deviation.
    """
    n_p, n_u = sd.shape
    out = np.empty((levels.shape[0], n_u))
    for u in prange(n_u):
        col = np.ascontiguousarray(sd[:, u])
        smax = col.max()
        for j in range(levels.shape[0]):
            a = levels[j]
            lo, hi = -40.0 * smax, 40.0 * smax
            if smax == 0.0:
                out[j, u] = 0.0
                continue
            for _ in range(200):
                mid = 0.5 * (lo + hi)
                if _mixture_cdf(mid, col) < a:
                    lo = mid
                else:
                    hi = mid
                if hi - lo <= rel_tol * smax:
                    break
            out[j, u] = 0.5 * (lo + hi)
    return out


def scaling_map(P):
    """For a map whose rows hold at most one entry, all >= 0 (the homogeneous plan), the
    column and the factor of each row; else None."""
    if P is None or np.any(P < 0) or np.any((P != 0).sum(axis=1) > 1):
        return None
    return P.argmax(axis=1), P.max(axis=1)


def quantiles(y, good, P, levels, var=None, cols=None):
    """Quantiles (len(levels), n_out) of the outputs ``cols`` (default: all) of ``P y``
    over the draws ``good``: empirical, or, given the conditional variances ``var``
    (draws x points), those of the Gaussian mixture."""
    levels = np.asarray(levels, dtype=float)
    scaling = scaling_map(P)
    if scaling is not None:
        # quantiles are positively homogeneous: q_p(c y) = c q_p(y) for c >= 0, so
        # those of the simulated points give every output exactly
        col, factor = scaling
        if cols is not None:
            col, factor = col[cols], factor[cols]
        q = quantiles(y, good, None, levels, var)
        return q[:, col] * factor
    if var is not None:
        var = var[good]
        if P is not None:
            var = matmul_nt(var, P * P)  # each output is a multiple of one point: no cross terms
        if cols is not None:
            var = var[:, cols]
        return normal_mixture_quantiles(np.ascontiguousarray(np.sqrt(var)), levels)
    y = y[good]
    n_out = (y.shape[1] if P is None else P.shape[0]) if cols is None else len(cols)
    out = np.empty((len(levels), n_out))
    block = max(1, QUANTILE_BLOCK_BYTES // (8 * max(len(y), 1)))
    idx = np.arange(y.shape[1] if P is None else P.shape[0]) if cols is None else cols
    for start in range(0, n_out, block):
        sel = idx[start : start + block]
        part = y[:, sel] if P is None else matmul_nt(y, P[sel])
        out[:, start : start + block] = np.quantile(part, levels, axis=0)
    return out


def quantile_se(y, good, P, levels, n_out, var=None):
    """Batch-means standard errors of :func:`quantiles` on up to SE_OUTPUTS outputs,
    ``(max, median)``; None with fewer than 4 draws."""
    n_batches = min(SE_BATCHES, len(good) // 2)
    if n_batches < 2:
        return None
    cols = np.unique(np.linspace(0, n_out - 1, min(n_out, SE_OUTPUTS)).astype(int))
    batches = np.array_split(good, n_batches)
    est = np.array([quantiles(y, b, P, levels, var, cols) for b in batches])
    se = est.std(axis=0, ddof=1) / np.sqrt(n_batches)
    return float(se.max()), float(np.median(se))


def covariance(y, good, P, cov_sum=None):
    """The covariance matrix of the outputs ``P y`` over the draws ``good``: the sample
    covariance, or, given the sum of the conditional covariances ``S_L`` over those
    draws, their mean (the output has mean 0 given the hidden layers)."""
    if cov_sum is not None:
        C = cov_sum / len(good)
    else:
        y = y[good]
        yc = (y - y.mean(axis=0)).T
        C = matmul_nt(yc, yc) / (y.shape[0] - 1)
    if P is not None:
        C = matmul_nt(matmul(P, C), P)  # the covariance of the interpolated (or rescaled) draws
    return C


def correlation(C):
    """``(rho, zero)``: the correlation matrix of covariance ``C``, clipped to [-1, 1],
    and the outputs with zero variance, whose rows and columns are NaN."""
    sd = np.sqrt(np.clip(np.diag(C), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.clip(C / np.outer(sd, sd), -1.0, 1.0)
    zero = sd == 0.0
    rho[zero, :] = np.nan
    rho[:, zero] = np.nan
    return rho, zero
