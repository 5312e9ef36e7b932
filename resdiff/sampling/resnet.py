"""The ResNet of eq. (26) at initialisation and the Euler scheme of its limiting SDE.

Two exact ways to simulate ``x_{t+dt} = x_t + phi(dW_t x_t + db_t)``:

* :func:`explicit_outputs` draws the weights ``dW_t = sigma_w sqrt(dt/D) eps_W`` and
  ``db_t = sigma_b sqrt(dt) eps_b`` (eq. 16-17): O(D^2 N) per layer. It is the
  reference, and the NTK and training need the weights themselves.
* :func:`gram_outputs` uses that, given the states ``X`` (one row per input here), the
  D coordinates of the pre-activations ``dW X + db`` are i.i.d.
  ``N(0, dt (sigma_w^2 X X^T / D + sigma_b^2 1 1^T))`` (FIGURES.md, "Exactness
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
from ..models import RELU, SWISH, TANH, phi, tanh_into
from ..rng import fill_normal, new_state, next_normal
from .linalg import pivoted_cholesky

RESNET, SDE = 0, 1
CHOL_REL_TOL = 1e-13
# LLVM fast-math without 'nnan'/'ninf', so divergence checks (isfinite) stay valid; the
# summation order it picks is fixed at compile time, so results stay deterministic.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


@njit(inline="always")
def _all_finite(X):
    """Like ``np.isfinite(X).all()`` without allocating a temporary."""
    for v in X.flat:
        if not math.isfinite(v):
            return False
    return True


@njit(inline="always")
def _add_phi(x, h, act, buf):
    """x += phi(h), with the activation branch outside the loops."""
    if act == TANH:
        tanh_into(h, buf)
        for d in range(x.size):
            x[d] += buf[d]
    elif act == SWISH:
        for d in range(x.size):
            x[d] += phi(SWISH, h[d])
    else:
        for d in range(x.size):
            x[d] += phi(RELU, h[d])


@njit(cache=True, fastmath=FASTMATH)
def _gram_draw(s, x0, depth, sigma_w2, sigma_b2, act, d1, d2, mode, X, S, F, Z):
    """One draw of the final states into ``X`` (N x D); returns False on divergence."""
    n, width = X.shape
    h = np.empty(width)
    buf = np.empty(width)
    dt = 1.0 / depth
    X[:, :] = x0
    for _ in range(depth):
        # covariance of the pre-activations at each coordinate (FIGURES.md, exactness)
        for a in range(n):
            for b in range(a + 1):
                acc = 0.0
                for d in range(width):
                    acc += X[a, d] * X[b, d]
                S[a, b] = S[b, a] = dt * (sigma_w2 * acc / width + sigma_b2)
        for a in range(n):  # an overflowed state shows on the diagonal (no allocation)
            if not math.isfinite(S[a, a]):
                return False
        k = pivoted_cholesky(S, F, CHOL_REL_TOL)
        fill_normal(s, Z[:k])
        for a in range(n):
            # pre-activations of input a at every coordinate: h = F[a, :k] @ Z[:k]
            h[:] = 0.0
            for j in range(k):
                f = F[a, j]
                for d in range(width):
                    h[d] += f * Z[j, d]
            if mode == RESNET:
                _add_phi(X[a], h, act, buf)  # eq. (26)
            else:
                drift = 0.5 * d2 * S[a, a]  # eq. (29): phi''(0)/2 (sigma_b^2 + sigma_w^2 q) dt
                for d in range(width):
                    X[a, d] += d1 * h[d] + drift
    return _all_finite(X)


@njit(parallel=True, cache=True)
def gram_outputs(key, draw_start, n_draws, x0, depth, sigma_w2, sigma_b2, act, d1, d2,
                 mode, coord):
    """Coordinate ``coord`` of ``x_T`` for draws ``draw_start ...``: (n_draws, N)."""
    n, width = x0.shape
    out = np.empty((n_draws, n))
    for i in prange(n_draws):
        s = new_state(key, draw_start + i, 0)
        X = np.empty((n, width))
        S = np.empty((n, n))
        F = np.empty((n, n))
        Z = np.empty((n, width))
        if _gram_draw(s, x0, depth, sigma_w2, sigma_b2, act, d1, d2, mode, X, S, F, Z):
            out[i, :] = X[:, coord]
        else:
            out[i, :] = np.nan
    return out


@njit(cache=True)
def layer_noise(key, draw, layer, eps_W, eps_b):
    """The standard-normal parameters ``(eps_W, eps_b)`` of one layer of one draw (eq. 17).

    Each (draw, layer) has its own stream, so a backward pass can regenerate any layer.
    """
    s = new_state(key, draw, layer + 1)
    fill_normal(s, eps_W)
    fill_normal(s, eps_b)


@njit(cache=True)
def _explicit_draw(key, draw, x0, depth, sigma_w2, sigma_b2, act, X, eps_W, eps_b):
    n, width = X.shape
    dt = 1.0 / depth
    w_scale = math.sqrt(sigma_w2 * dt / width)  # eq. (16)
    b_scale = math.sqrt(sigma_b2 * dt)
    X[:, :] = x0
    h = np.empty(width)
    for layer in range(depth):
        layer_noise(key, draw, layer, eps_W, eps_b)
        for a in range(n):
            for r in range(width):
                acc = 0.0
                for c in range(width):
                    acc += eps_W[r, c] * X[a, c]
                h[r] = w_scale * acc + b_scale * eps_b[r]
            for r in range(width):
                X[a, r] += phi(act, h[r])  # eq. (26)
        if not _all_finite(X):
            return False
    return True


@njit(parallel=True, cache=True)
def explicit_outputs(key, draw_start, n_draws, x0, depth, sigma_w2, sigma_b2, act, coord):
    """As :func:`gram_outputs` (mode RESNET), with explicit weights."""
    n, width = x0.shape
    out = np.empty((n_draws, n))
    for i in prange(n_draws):
        X = np.empty((n, width))
        eps_W = np.empty((width, width))
        eps_b = np.empty(width)
        if _explicit_draw(key, draw_start + i, x0, depth, sigma_w2, sigma_b2, act, X,
                          eps_W, eps_b):
            out[i, :] = X[:, coord]
        else:
            out[i, :] = np.nan
    return out


def resnet_inputs(z, width):
    """``x_0`` of the ``resnet`` model, input-major (N x D).

    1-D inputs (shape (N,)) are copied to all D coordinates; 2-D inputs (shape (N, 2))
    put ``z1`` on coordinates ``d <= D/2`` (1-based) and ``z2`` on the rest
    (FIGURES.md, [our reading]).
    """
    z = np.asarray(z, dtype=float)
    if z.ndim == 1:
        return np.repeat(z[:, None], width, axis=1)
    half = width // 2
    x0 = np.empty((z.shape[0], width))
    x0[:, :half] = z[:, :1]
    x0[:, half:] = z[:, 1:2]
    return x0


__all__ = ["RESNET", "SDE", "gram_outputs", "explicit_outputs", "layer_noise",
           "resnet_inputs", "next_normal"]
