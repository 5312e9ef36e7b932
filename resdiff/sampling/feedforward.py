"""The fully connected feedforward network E_phi of Figure 1 (docs/figures.md, "Models").

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
from ..activations import phi, phi_into
from ..rng import fill_normal_using, layer_noise, new_state, workspace
from . import driver
from .driver import within_bound
from .linalg import combine, dot, dots4, next_pivot, pivot_floor

CHOL_REL_TOL = 1e-13


@njit(inline="always")
def _dot(x, y):
    return dot(x, y, x.shape[0])


@njit(cache=True, error_model="numpy")
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
        m = A.shape[1]
        # column p of S into F[:, j], four rows at a time (each entry with dot()'s bits)
        cnt = 0
        i0 = i1 = i2 = 0
        for i in range(n):
            if used[i]:
                F[i, j] = 0.0
                continue
            if cnt == 0:
                i0 = i
            elif cnt == 1:
                i1 = i
            elif cnt == 2:
                i2 = i
            else:
                s0, s1, s2, s3 = dots4(Ap, A[i0], A[i1], A[i2], A[i], m)
                F[i0, j] = scale * s0 + shift
                F[i1, j] = scale * s1 + shift
                F[i2, j] = scale * s2 + shift
                F[i, j] = scale * s3 + shift
                cnt = -1
            cnt += 1
        for r in range(cnt):
            i = i0 if r == 0 else (i1 if r == 1 else i2)
            F[i, j] = scale * _dot(A[i], Ap) + shift
        for i in range(n):
            if not used[i]:
                F[i, j] = (F[i, j] - dot(F[i], Fp, j)) / piv
                d[i] -= F[i, j] * F[i, j]
        F[p, j] = piv
    return n


@njit(cache=True, error_model="numpy")
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


@njit(cache=True, error_model="numpy")
def _gram_layers(
    s,
    zz,
    lo,
    hi,
    depth,
    width,
    sigma_w2,
    sigma_b2,
    act,
    H,
    Phi,
    F,
    Z,
    d,
    used,
    y,
    var,
    want_cov,
    cov,
    rank_sum,
    work,
):
    """Layers ``lo .. hi - 1`` of one draw; the hidden state is ``Phi`` (N x width), the
    inputs ``zz`` before layer 1. At the last layer: ``y`` (N,), ``var`` (N,) and, if
    ``want_cov``, ``cov`` (N x N) of the conditional law of ``y``. ``rank_sum[0]`` adds
    up the factors' numerical ranks; ``work`` is the generator's work space. Returns
    ``(finite, layers done)``."""
    n = zz.shape[0]
    for layer in range(lo, hi):
        # layer 1: Cov = sigma_w^2 <z, z'> / d_in + sigma_b^2
        A = zz if layer == 0 else Phi
        scale = sigma_w2 / (zz.shape[1] if layer == 0 else width)
        if layer == depth - 1:
            _last_layer(A, scale, sigma_b2, want_cov, var, cov)
        k = lazy_pivoted_cholesky(A, scale, sigma_b2, F, d, used, CHOL_REL_TOL)
        rank_sum[0] += k
        if layer == depth - 1:
            # only coordinate 1 of the last layer is needed: one Gaussian vector
            eps = Z[0, :k]
            fill_normal_using(s, eps, work)
            for a in range(n):
                y[a] = dot(F[a], eps, k)
            return np.isfinite(y).all() and np.isfinite(var).all(), layer + 1
        fill_normal_using(s, Z[:k], work)
        combine(F, k, Z, H)  # h_{layer+1}
        finite = True
        for a in range(n):
            phi_into(act, H[a], Phi[a])
            for c in range(width):
                finite &= math.isfinite(Phi[a, c])  # no temporaries: allocations serialise threads
        if not finite:
            return False, layer + 1
    return True, hi


@njit(parallel=True, cache=True, error_model="numpy")
def gram_advance(
    key,
    draw_start,
    zz,
    depth,
    width,
    sigma_w2,
    sigma_b2,
    act,
    lo,
    hi,
    Phi,
    gen,
    alive,
    rank,
    y,
    var,
    covs,
):
    """Advance draws ``draw_start ...`` through layers ``lo .. hi - 1`` by the Gram
    sampler. Their hidden states ``Phi`` (draws x N x width), generator states ``gen``
    (draws x 4, stream ``(key, i, 0)``), flags ``alive`` and rank sums ``rank`` are set at
    ``lo = 0`` and carried between calls, so any split of the layers gives the same bits.
    At the last layer ``y``, ``var`` and (when ``covs`` is draws x N x N) ``covs`` are
    filled; ``rank`` becomes the mean numerical rank of the layers' factors."""
    n = zz.shape[0]
    want_cov = covs.shape[1] == n and n > 0 and covs.shape[0] == Phi.shape[0]
    for i in prange(Phi.shape[0]):
        if lo == 0:
            gen[i, :] = new_state(key, draw_start + i, 0)
            alive[i] = True
            rank[i] = 0.0
        if not alive[i]:
            continue
        H = np.empty((n, width))
        F = np.empty((n, n))
        Z = np.empty((n, width))
        d = np.empty(n)
        used = np.empty(n, np.bool_)
        rank_sum = np.array([rank[i]])
        cov = covs[i * np.int64(want_cov)]
        ok, done = _gram_layers(
            gen[i],
            zz,
            lo,
            hi,
            depth,
            width,
            sigma_w2,
            sigma_b2,
            act,
            H,
            Phi[i],
            F,
            Z,
            d,
            used,
            y[i],
            var[i],
            want_cov,
            cov,
            rank_sum,
            workspace(n * width),
        )
        rank[i] = rank_sum[0]
        if not ok:
            alive[i] = False
            rank[i] = rank_sum[0] / done
            y[i, :] = np.nan
        elif done == depth:
            rank[i] = rank_sum[0] / depth


@njit(cache=True, error_model="numpy")
def _explicit_layers(
    key,
    draw,
    zz,
    lo,
    hi,
    depth,
    width,
    sigma_w2,
    sigma_b2,
    act,
    H,
    Phi,
    eps_W,
    eps_W0,
    eps_b,
    y,
    var,
    want_cov,
    cov,
):
    """Layers ``lo .. hi - 1`` of one draw with explicit weights; the state is the
    pre-activations ``H`` (N x width). Returns False on divergence."""
    n, d_in = zz.shape
    b_scale = math.sqrt(sigma_b2)
    for layer in range(lo, hi):
        if layer == 0:
            layer_noise(key, draw, 0, eps_W0, eps_b)
            w_scale = math.sqrt(sigma_w2 / d_in)
            for a in range(n):
                for r in range(width):
                    H[a, r] = w_scale * _dot(eps_W0[r], zz[a]) + b_scale * eps_b[r]
            if depth == 1:
                _last_layer(zz, sigma_w2 / d_in, sigma_b2, want_cov, var, cov)
            continue
        w_scale = math.sqrt(sigma_w2 / width)
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
    if hi == depth:
        for a in range(n):
            y[a] = H[a, 0]
        return np.isfinite(var).all()
    return True


@njit(parallel=True, cache=True, error_model="numpy")
def explicit_advance(
    key, draw_start, zz, depth, width, sigma_w2, sigma_b2, act, lo, hi, H, alive, y, var, covs
):
    """As :func:`gram_advance`, with explicit weights (streams ``(key, i, layer + 1)``);
    the carried state is the pre-activations ``H`` (draws x N x width)."""
    n, d_in = zz.shape
    want_cov = covs.shape[1] == n and n > 0 and covs.shape[0] == H.shape[0]
    for i in prange(H.shape[0]):
        if lo == 0:
            alive[i] = True
        if not alive[i]:
            continue
        eps_W0 = np.empty((width, d_in))
        eps_W = np.empty((width, width))
        eps_b = np.empty(width)
        Phi = np.empty((n, width))
        cov = covs[i * np.int64(want_cov)]
        if not _explicit_layers(
            key,
            draw_start + i,
            zz,
            lo,
            hi,
            depth,
            width,
            sigma_w2,
            sigma_b2,
            act,
            H[i],
            Phi,
            eps_W,
            eps_W0,
            eps_b,
            y[i],
            var[i],
            want_cov,
            cov,
        ):
            alive[i] = False
            y[i, :] = np.nan


@njit(cache=True, error_model="numpy")
def _accumulate(y, var, covs, cov_sum, bound):
    """Mark as divergent (NaN rows) the draws with an output beyond ``bound`` or a
    non-finite conditional variance, and add the conditional covariances ``covs`` of the
    others to ``cov_sum`` (N x N; shape (0, 0) when no covariance is wanted) one draw at
    a time, in draw order: a caller that passes the same ``cov_sum`` to consecutive
    chunks gets the same sum, bit for bit, for any chunking and thread count."""
    for i in range(y.shape[0]):
        ok = True
        for a in range(y.shape[1]):
            ok &= within_bound(y[i, a], bound) and math.isfinite(var[i, a])
        if not ok:
            y[i, :] = np.nan
            var[i, :] = np.nan
        elif cov_sum.shape[0] > 0:
            cov_sum += covs[i]


def as_inputs(z):
    """Inputs as a contiguous (N, d_in) float array (1-D inputs become a column)."""
    z = np.asarray(z, dtype=float)
    if z.ndim == 1:
        z = z[:, None]
    return np.ascontiguousarray(z)


def stepper(sampler, key, zz, depth, width, sigma_w2, sigma_b2, act, cov_sum, bound):
    """``kernel(start, count, lo, hi, state)`` for :func:`resdiff.sampling.driver.run_chunked`:
    once ``hi = depth``, ``(y, var, rank)`` of the draws (``rank`` NaN for ``"explicit"``),
    with the conditional covariances added to ``cov_sum`` (see :func:`_accumulate`) and
    divergent draws as NaN rows."""
    zz = as_inputs(zz)
    n = zz.shape[0]
    want_cov = cov_sum.shape[0] > 0

    def kernel(start, count, lo, hi, state):
        if lo == 0:
            state["h"] = np.empty((count, n, width))
            state["gen"] = np.empty((count, 4), np.uint64)
            state["alive"] = np.empty(count, np.bool_)
            state["rank"] = np.full(count, np.nan)
            state["y"] = np.empty((count, n))
            state["var"] = np.empty((count, n))
            state["covs"] = np.zeros((count, n, n) if want_cov else (1, 1, 1))
        st = state
        if sampler == "gram":
            gram_advance(
                key,
                start,
                zz,
                depth,
                width,
                sigma_w2,
                sigma_b2,
                act,
                lo,
                hi,
                st["h"],
                st["gen"],
                st["alive"],
                st["rank"],
                st["y"],
                st["var"],
                st["covs"],
            )
        else:
            explicit_advance(
                key,
                start,
                zz,
                depth,
                width,
                sigma_w2,
                sigma_b2,
                act,
                lo,
                hi,
                st["h"],
                st["alive"],
                st["y"],
                st["var"],
                st["covs"],
            )
        if hi < depth:
            return None
        _accumulate(st["y"], st["var"], st["covs"], cov_sum, bound)
        return st["y"], st["var"], st["rank"]

    return kernel


def run_chunked(kernel, n_draws, label, chunk, depth, layers):
    """``(y, var, rank)`` of draws ``[0, n_draws)`` from a :func:`stepper` kernel, in
    chunks of draws and layers (:func:`resdiff.sampling.driver.run_chunked`)."""
    parts = {"var": [], "rank": []}

    def outputs(start, count, lo, hi, state):
        out = kernel(start, count, lo, hi, state)
        if out is None:
            return None
        parts["var"].append(out[1])
        parts["rank"].append(out[2])
        return out[0]

    y = driver.run_chunked(outputs, n_draws, label, chunk, depth, layers)
    return y, np.concatenate(parts["var"]), np.concatenate(parts["rank"])


def gram_paths(key, draw_start, n_draws, zz, depth, width, sigma_w2, sigma_b2, act, cov_sum, bound):
    """Draws ``draw_start ...`` at inputs ``zz`` (N x d_in) by the Gram sampler, all
    layers in one call.

    Returns ``y`` (n_draws, N), ``var`` (n_draws, N) and ``rank`` (n_draws,), the mean
    numerical rank of the layers' factors; adds the conditional covariances to
    ``cov_sum`` (see :func:`_accumulate`). Draw ``i`` uses only the stream
    ``(key, i, 0)``; divergent draws are NaN rows.
    """
    kernel = stepper("gram", key, zz, depth, width, sigma_w2, sigma_b2, act, cov_sum, bound)
    return kernel(draw_start, n_draws, 0, depth, {})


def explicit_paths(
    key, draw_start, n_draws, zz, depth, width, sigma_w2, sigma_b2, act, cov_sum, bound
):
    """As :func:`gram_paths`, with explicit weights (streams ``(key, i, layer + 1)``);
    ``rank`` is NaN (no factor)."""
    kernel = stepper("explicit", key, zz, depth, width, sigma_w2, sigma_b2, act, cov_sum, bound)
    return kernel(draw_start, n_draws, 0, depth, {})
