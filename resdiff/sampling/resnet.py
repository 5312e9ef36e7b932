"""The ResNet of eq. (26) at initialisation and the Euler scheme of its limiting SDE.

Two exact ways to simulate ``x_{t+dt} = x_t + phi(dW_t x_t + db_t)``:

* :func:`explicit_outputs` draws the weights ``dW_t = sigma_w sqrt(dt/D) eps_W`` and
  ``db_t = sigma_b sqrt(dt) eps_b`` (eq. 16-17): O(D^2 N) per layer. It is the
  reference, and the NTK and training need the weights themselves.
* :func:`gram_outputs` uses that, given the states ``X`` (one row per input here), the
  D coordinates of the pre-activations ``dW X + db`` are i.i.d.
  ``N(0, dt (sigma_w^2 X X^T / D + sigma_b^2 1 1^T))`` (docs/figures.md, "Exactness
  notes"), so it draws them through a factor of that N x N matrix: O(D N^2) per layer,
  exact in distribution for everything that only looks forward.

``mode=SDE`` runs the Euler discretisation (eq. 6) of the limiting SDE (eq. 29) with
the same Gaussian increments: ``x += phi'(0) h + phi''(0)/2 Var(h)``.

States are stored input-major (``X[n, d]``), so Gram entries are contiguous dot
products. A draw whose state stops being finite is marked divergent: its outputs are
NaN and the caller counts and reports it.
"""

import math

import numpy as np

from ..jit import njit, prange
from ..activations import phi, phi_into
from ..rng import fill_normal_using, layer_noise, new_state, workspace
from .linalg import combine, dot, dots4, gram_dots, pivoted_cholesky_using

RESNET, SDE = 0, 1
CHOL_REL_TOL = 1e-13


@njit(inline="always")
def _all_finite(X):
    """Like ``np.isfinite(X).all()`` without allocating a temporary."""
    for v in X.flat:
        if not math.isfinite(v):
            return False
    return True


@njit(inline="always")
def _add_phi(x, h, act, buf):
    """x += phi(h) (eq. 26), the activation chosen outside the loop."""
    phi_into(act, h, buf)
    for d in range(x.size):
        x[d] += buf[d]


@njit(cache=True, error_model="numpy")
def _gram_layers(s, X, lo, hi, depth, sigma_w2, sigma_b2, act, d1, d2, mode, S, F, Z, H, buf, work):
    """Advance one draw's states ``X`` (N x D) through layers ``lo .. hi - 1``, drawing
    from the generator state ``s`` (``work``: its work space); returns False on
    divergence."""
    n, width = X.shape
    dt = 1.0 / depth
    pivots, used = np.empty(n), np.empty(n, np.bool_)  # the factor's work arrays
    for _ in range(lo, hi):
        # covariance of the pre-activations at each coordinate (docs/figures.md, exactness)
        gram_dots(X, width, S)
        for a in range(n):
            for b in range(a + 1):
                S[a, b] = S[b, a] = dt * (sigma_w2 * S[a, b] / width + sigma_b2)
        for a in range(n):  # an overflowed state shows on the diagonal (no allocation)
            if not math.isfinite(S[a, a]):
                return False
        k = pivoted_cholesky_using(S, F, CHOL_REL_TOL, pivots, used)
        fill_normal_using(s, Z[:k], work)
        combine(F, k, Z, H)  # pre-activations: row a is input a at every coordinate
        for a in range(n):
            h = H[a]
            if mode == RESNET:
                _add_phi(X[a], h, act, buf)  # eq. (26)
            else:
                drift = 0.5 * d2 * S[a, a]  # eq. (29): phi''(0)/2 (sigma_b^2 + sigma_w^2 q) dt
                for d in range(width):
                    X[a, d] += d1 * h[d] + drift
    return _all_finite(X)


@njit(parallel=True, cache=True, error_model="numpy")
def gram_advance(
    key, draw_start, x0, X, gen, alive, lo, hi, depth, sigma_w2, sigma_b2, act, d1, d2, mode
):
    """Advance draws ``draw_start ...`` through layers ``lo .. hi - 1`` by the Gram
    sampler. Their states ``X`` (draws x N x D), generator states ``gen`` (draws x 4)
    and flags ``alive`` (draws,) are set from ``x0`` and stream ``(key, i, 0)`` at
    ``lo = 0`` and carried between calls, so any split of the layers gives the same bits.
    """
    n, width = x0.shape
    for i in prange(X.shape[0]):
        if lo == 0:
            gen[i, :] = new_state(key, draw_start + i, 0)
            X[i, :, :] = x0
            alive[i] = True
        if alive[i]:
            S = np.empty((n, n))
            F = np.empty((n, n))
            Z = np.empty((n, width))
            H = np.empty((n, width))
            buf = np.empty(width)
            work = workspace(n * width)
            alive[i] = _gram_layers(
                gen[i],
                X[i],
                lo,
                hi,
                depth,
                sigma_w2,
                sigma_b2,
                act,
                d1,
                d2,
                mode,
                S,
                F,
                Z,
                H,
                buf,
                work,
            )


@njit(cache=True, error_model="numpy")
def _explicit_layers(key, draw, X, lo, hi, depth, sigma_w2, sigma_b2, act, eps_W, eps_b, h):
    n, width = X.shape
    dt = 1.0 / depth
    w_scale = math.sqrt(sigma_w2 * dt / width)  # eq. (16)
    b_scale = math.sqrt(sigma_b2 * dt)
    for layer in range(lo, hi):
        layer_noise(key, draw, layer, eps_W, eps_b)
        for a in range(n):
            xa = X[a]
            top = width - width % 4
            for r in range(0, top, 4):  # four rows at a time, each with dot()'s bits
                s0, s1, s2, s3 = dots4(
                    xa, eps_W[r], eps_W[r + 1], eps_W[r + 2], eps_W[r + 3], width
                )
                h[r] = w_scale * s0 + b_scale * eps_b[r]
                h[r + 1] = w_scale * s1 + b_scale * eps_b[r + 1]
                h[r + 2] = w_scale * s2 + b_scale * eps_b[r + 2]
                h[r + 3] = w_scale * s3 + b_scale * eps_b[r + 3]
            for r in range(top, width):
                h[r] = w_scale * dot(eps_W[r], xa, width) + b_scale * eps_b[r]
            for r in range(width):
                X[a, r] += phi(act, h[r])  # eq. (26)
        if not _all_finite(X):
            return False
    return True


@njit(parallel=True, cache=True, error_model="numpy")
def explicit_advance(key, draw_start, x0, X, alive, lo, hi, depth, sigma_w2, sigma_b2, act):
    """As :func:`gram_advance` (mode RESNET), with explicit weights (layer ``l`` of draw
    ``i`` uses stream ``(key, i, l + 1)``)."""
    n, width = x0.shape
    for i in prange(X.shape[0]):
        if lo == 0:
            X[i, :, :] = x0
            alive[i] = True
        if alive[i]:
            eps_W = np.empty((width, width))
            eps_b = np.empty(width)
            h = np.empty(width)
            alive[i] = _explicit_layers(
                key, draw_start + i, X[i], lo, hi, depth, sigma_w2, sigma_b2, act, eps_W, eps_b, h
            )


def stepper(sampler, key, x0, depth, sigma_w2, sigma_b2, act, d1=1.0, d2=0.0, mode=RESNET, coord=0):
    """``kernel(start, count, lo, hi, state)`` for :func:`resdiff.sampling.driver.run_chunked`:
    coordinate ``coord`` of ``x_T`` (count x N, NaN rows for divergent draws) once
    ``hi = depth``. ``sampler``: ``"gram"`` (any ``mode``) or ``"explicit"``."""
    x0 = np.ascontiguousarray(x0, dtype=float)

    def kernel(start, count, lo, hi, state):
        if lo == 0:
            state["X"] = np.empty((count, *x0.shape))
            state["gen"] = np.empty((count, 4), np.uint64)
            state["alive"] = np.empty(count, np.bool_)
        if sampler == "gram":
            gram_advance(
                key,
                start,
                x0,
                state["X"],
                state["gen"],
                state["alive"],
                lo,
                hi,
                depth,
                sigma_w2,
                sigma_b2,
                act,
                d1,
                d2,
                mode,
            )
        else:
            explicit_advance(
                key, start, x0, state["X"], state["alive"], lo, hi, depth, sigma_w2, sigma_b2, act
            )
        if hi < depth:
            return None
        out = state["X"][:, :, coord].copy()
        out[~state["alive"]] = np.nan
        return out

    return kernel


def gram_outputs(key, draw_start, n_draws, x0, depth, sigma_w2, sigma_b2, act, d1, d2, mode, coord):
    """Coordinate ``coord`` of ``x_T`` for draws ``draw_start ...``: (n_draws, N), all
    layers in one call."""
    kernel = stepper("gram", key, x0, depth, sigma_w2, sigma_b2, act, d1, d2, mode, coord)
    return kernel(draw_start, n_draws, 0, depth, {})


def explicit_outputs(key, draw_start, n_draws, x0, depth, sigma_w2, sigma_b2, act, coord):
    """As :func:`gram_outputs` (mode RESNET), with explicit weights."""
    kernel = stepper("explicit", key, x0, depth, sigma_w2, sigma_b2, act, coord=coord)
    return kernel(draw_start, n_draws, 0, depth, {})


def resnet_inputs(z, width):
    """``x_0`` of the ``resnet`` model, input-major (N x D).

    1-D inputs (shape (N,)) are copied to all D coordinates; 2-D inputs (shape (N, 2))
    put ``z1`` on coordinates ``d <= D/2`` (1-based) and ``z2`` on the rest
    (docs/figures.md, [our reading]).
    """
    z = np.asarray(z, dtype=float)
    if z.ndim == 1:
        return np.repeat(z[:, None], width, axis=1)
    half = width // 2
    x0 = np.empty((z.shape[0], width))
    x0[:, :half] = z[:, :1]
    x0[:, half:] = z[:, 1:2]
    return x0


__all__ = ["RESNET", "SDE", "gram_outputs", "explicit_outputs", "resnet_inputs", "stepper"]
