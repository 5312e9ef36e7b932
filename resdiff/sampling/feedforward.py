"""The fully connected feedforward network E_phi of Figure 1 (FIGURES.md, "Models").

Pre-activations ``h_1 = W_0 z + b_0`` (``W_0 ~ N(0, sigma_w^2 / d_in)``, fan-in ``d_in``,
which is 1 for the paper's scalar input), ``h_{l+1} = W_l phi(h_l) + b_l`` with
``W_l ~ N(0, sigma_w^2 / D)``, ``b ~ N(0, sigma_b^2)``, for ``l = 1 .. depth - 1``; the
output is ``y = h_{depth, 1}`` (pre-activation number 1 of the last layer).

Two exact samplers, as for the ResNet (:mod:`resdiff.sampling.resnet`):

* :func:`explicit_paths` draws the weights: O(D^2 N) per layer plus D^2 normals. It is
  the reference.
* :func:`gram_paths`: given ``A = phi(h_l)`` (one row per input), the D coordinates of
  ``h_{l+1}`` are i.i.d. ``N(0, S)``, ``S = sigma_w^2 A A^T / D + sigma_b^2 1 1^T``, so
  they are drawn through a factor of ``S``. The factor is a *lazy* pivoted Cholesky: it
  forms only the columns of ``S`` it pivots on, so a layer costs O(N k D) for a factor
  of numerical rank ``k`` (deep networks at the edge of chaos have k << N), plus k D
  normals.

Both also return, per draw, the *conditional* law of the output given the last hidden
layer: ``y | h_{depth-1} ~ N(0, S_depth)`` exactly, whatever the activation. Its
diagonal (and optionally the matrix) lets the caller average Gaussian CDFs and
covariances over draws (conditional Monte Carlo) instead of using the single ``y``
per draw. A draw whose pre-activations stop being finite is marked divergent (NaN).
"""
import math

import numpy as np

from ..jit import njit, prange
from ..models import phi
from ..rng import fill_normal, new_state
from .linalg import next_pivot, pivot_floor

CHOL_REL_TOL = 1e-13


@njit(cache=True, fastmath={"reassoc", "contract"})
def _dot(x, y):
    # reassociation lets LLVM vectorise the reduction (tests compare with explicit weights)
    acc = 0.0
    for i in range(x.shape[0]):
        acc += x[i] * y[i]
    return acc


@njit(cache=True, fastmath={"reassoc", "contract"})
def _dot_prefix(x, y, n):
    acc = 0.0
    for i in range(n):
        acc += x[i] * y[i]
    return acc


@njit(cache=True)
def lazy_pivoted_cholesky(A, scale, shift, F, d, used, rel_tol):
    """Factor ``S = scale * A A^T + shift`` (A: N x M) as ``F[:, :k] F[:, :k]^T``; return k.

    Only the diagonal and the ``k`` pivot columns of ``S`` are formed (O(N k M)).
    Pivoting stops when the largest remaining pivot is below ``rel_tol`` times the
    largest diagonal entry, as :func:`resdiff.sampling.linalg.pivoted_cholesky` does.
    ``F`` (N x N) is written in its first ``k`` columns only; ``d`` and ``used`` are
    work arrays of length N.
    """
    n = A.shape[0]
    for i in range(n):
        d[i] = scale * _dot(A[i], A[i]) + shift
        used[i] = False
    floor = pivot_floor(d, rel_tol)
    if floor < 0.0:
        return 0
    for j in range(n):
        p = next_pivot(d, used, floor)
        if p < 0:
            return j
        used[p] = True
        piv = math.sqrt(d[p])
        Ap = A[p]
        Fp = F[p]
        for i in range(n):
            if used[i]:
                F[i, j] = 0.0
                continue
            s_ip = scale * _dot(A[i], Ap) + shift
            F[i, j] = (s_ip - _dot_prefix(F[i], Fp, j)) / piv
            d[i] -= F[i, j] * F[i, j]
        F[p, j] = piv
    return n


@njit(cache=True)
def _combine(F, k, Z, H):
    """``H = F[:, :k] @ Z[:k]`` (rows of ``H`` are the inputs, columns the coordinates)."""
    n, width = H.shape
    for a in range(n):
        row = H[a]
        row[:] = 0.0
        for j in range(k):
            f = F[a, j]
            if f != 0.0:  # pivoted factor: rows pivoted before column j are zero there
                zj = Z[j]
                for c in range(width):
                    row[c] += f * zj[c]


@njit(cache=True)
def _last_layer(A, scale, shift, y_cov, var, cov):
    """Conditional covariance of ``y = h_{depth,1}`` given the last hidden layer."""
    n = A.shape[0]
    for a in range(n):
        var[a] = scale * _dot(A[a], A[a]) + shift
    if y_cov:
        for a in range(n):
            cov[a, a] = var[a]
            for b in range(a):
                cov[a, b] = cov[b, a] = scale * _dot(A[a], A[b]) + shift


@njit(cache=True)
def _gram_path(s, zz, depth, width, sigma_w2, sigma_b2, act, H, Phi, F, Z, d, used, y, var,
               want_cov, cov):
    """One draw: ``y`` (N,), ``var`` (N,) and, if ``want_cov``, ``cov`` (N x N) of the
    conditional law of ``y``; returns ``(finite, mean factor rank)``."""
    n = zz.shape[0]
    A = zz
    scale = sigma_w2 / zz.shape[1]  # layer 1: Cov = sigma_w^2 <z, z'> / d_in + sigma_b^2
    rank_sum = 0
    for layer in range(depth):
        if layer == depth - 1:
            _last_layer(A, scale, sigma_b2, want_cov, var, cov)
        k = lazy_pivoted_cholesky(A, scale, sigma_b2, F, d, used, CHOL_REL_TOL)
        rank_sum += k
        if layer == depth - 1:
            # only coordinate 1 of the last layer is needed: one Gaussian vector
            eps = Z[0, :k]
            fill_normal(s, eps)
            for a in range(n):
                y[a] = _dot_prefix(F[a], eps, k)
            ok = np.isfinite(y).all() and np.isfinite(var).all()
            return ok, rank_sum / depth
        fill_normal(s, Z[:k])
        _combine(F, k, Z, H)  # h_{layer+1}
        finite = True
        for a in range(n):
            for c in range(width):
                v = phi(act, H[a, c])
                Phi[a, c] = v
                finite &= math.isfinite(v)  # no temporary arrays: allocations serialise threads
        if not finite:
            return False, rank_sum / (layer + 1)
        A = Phi
        scale = sigma_w2 / width
    return True, 0.0  # not reached (depth >= 1)


@njit(cache=True)
def _accumulate(y, var, covs, cov_sum, bound):
    """Mark as divergent (NaN rows) the draws with an output beyond ``bound`` or a
    non-finite conditional variance, and add the conditional covariances ``covs`` of the
    others to ``cov_sum`` (N x N; shape (0, 0) when no covariance is wanted) one draw at
    a time, in draw order: a caller that passes the same ``cov_sum`` to consecutive
    chunks gets the same sum, bit for bit, for any chunking and thread count."""
    for i in range(y.shape[0]):
        ok = True
        for a in range(y.shape[1]):
            ok &= abs(y[i, a]) <= bound and math.isfinite(var[i, a])  # NaN fails both
        if not ok:
            y[i, :] = np.nan
            var[i, :] = np.nan
        elif cov_sum.shape[0] > 0:
            cov_sum += covs[i]


@njit(parallel=True, cache=True)
def gram_paths(key, draw_start, n_draws, zz, depth, width, sigma_w2, sigma_b2, act,
               cov_sum, bound):
    """Draws ``draw_start ...`` at inputs ``zz`` (N x d_in) by the Gram sampler.

    Returns ``y`` (n_draws, N), ``var`` (n_draws, N) and ``rank`` (n_draws,), the mean
    numerical rank of the layers' factors; adds the conditional covariances to
    ``cov_sum`` (see :func:`_accumulate`). Draw ``i`` uses only the stream
    ``(key, i, 0)``; divergent draws are NaN rows.
    """
    n = zz.shape[0]
    want_cov = cov_sum.shape[0] > 0
    y = np.empty((n_draws, n))
    var = np.empty((n_draws, n))
    rank = np.empty(n_draws)
    nc = n if want_cov else 1
    covs = np.zeros((n_draws if want_cov else 1, nc, nc))
    for i in prange(n_draws):
        s = new_state(key, draw_start + i, 0)
        H = np.empty((n, width))
        Phi = np.empty((n, width))
        F = np.empty((n, n))
        Z = np.empty((n, width))
        d = np.empty(n)
        used = np.empty(n, np.bool_)
        cov = covs[i * np.int64(want_cov)]
        ok, r = _gram_path(s, zz, depth, width, sigma_w2, sigma_b2, act, H, Phi, F, Z, d,
                           used, y[i], var[i], want_cov, cov)
        rank[i] = r
        if not ok:
            y[i, :] = np.nan
    _accumulate(y, var, covs, cov_sum, bound)
    return y, var, rank


@njit(cache=True)
def layer_noise(key, draw, layer, eps_W, eps_b):
    """The standard-normal parameters of layer ``layer`` (0: the input layer) of a draw."""
    s = new_state(key, draw, layer + 1)
    fill_normal(s, eps_W)
    fill_normal(s, eps_b)


@njit(cache=True)
def _explicit_path(key, draw, zz, depth, width, sigma_w2, sigma_b2, act, y, var, want_cov,
                   cov):
    n, d_in = zz.shape
    b_scale = math.sqrt(sigma_b2)
    eps_W0 = np.empty((width, d_in))
    eps_b = np.empty(width)
    layer_noise(key, draw, 0, eps_W0, eps_b)
    w_scale = math.sqrt(sigma_w2 / d_in)
    H = np.empty((n, width))
    for a in range(n):
        for r in range(width):
            H[a, r] = w_scale * _dot(eps_W0[r], zz[a]) + b_scale * eps_b[r]
    if depth == 1:
        _last_layer(zz, sigma_w2 / d_in, sigma_b2, want_cov, var, cov)
    eps_W = np.empty((width, width))
    Phi = np.empty((n, width))
    w_scale = math.sqrt(sigma_w2 / width)
    for layer in range(1, depth):
        layer_noise(key, draw, layer, eps_W, eps_b)
        for a in range(n):
            for c in range(width):
                Phi[a, c] = phi(act, H[a, c])
        if layer == depth - 1:
            _last_layer(Phi, sigma_w2 / width, sigma_b2, want_cov, var, cov)
        rows = 1 if layer == depth - 1 else width  # the last layer: coordinate 1 only
        finite = True
        for a in range(n):
            for r in range(rows):
                v = w_scale * _dot(eps_W[r], Phi[a]) + b_scale * eps_b[r]
                H[a, r] = v
                finite &= math.isfinite(v)
        if not finite:
            return False
    for a in range(n):
        y[a] = H[a, 0]
    return np.isfinite(var).all()


@njit(parallel=True, cache=True)
def explicit_paths(key, draw_start, n_draws, zz, depth, width, sigma_w2, sigma_b2, act,
                   cov_sum, bound):
    """As :func:`gram_paths`, with explicit weights (streams ``(key, i, layer + 1)``);
    ``rank`` is NaN (no factor)."""
    n = zz.shape[0]
    want_cov = cov_sum.shape[0] > 0
    y = np.empty((n_draws, n))
    var = np.empty((n_draws, n))
    nc = n if want_cov else 1
    covs = np.zeros((n_draws if want_cov else 1, nc, nc))
    for i in prange(n_draws):
        cov = covs[i * np.int64(want_cov)]
        if not _explicit_path(key, draw_start + i, zz, depth, width, sigma_w2, sigma_b2, act,
                              y[i], var[i], want_cov, cov):
            y[i, :] = np.nan
    _accumulate(y, var, covs, cov_sum, bound)
    return y, var, np.full(n_draws, np.nan)


def as_inputs(z):
    """Inputs as a contiguous (N, d_in) float array (1-D inputs become a column)."""
    z = np.asarray(z, dtype=float)
    if z.ndim == 1:
        z = z[:, None]
    return np.ascontiguousarray(z)


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
