"""The finite NTK (eq. 30) of the ``resnet`` model, split into ``K_W`` and ``K_b``.

The network is ``x_{t+dt} = x_t + phi(h_t)``, ``h_t = dW_t x_t + db_t`` with
``dW_t = sigma_w sqrt(dt/D) eps_W`` and ``db_t = sigma_b sqrt(dt) eps_b`` (eq. 16-17),
output ``y = x_{T,1}``; gradients are taken with respect to the standard-normal
parameters ``eps`` (Section 5.1). With the adjoint ``a_t = dy/dx_t`` (``a_T = e_1``,
``a_t = a_{t+dt} + dW_t^T (phi'(h_t) * a_{t+dt})``) and ``g_t = phi'(h_t) * a_{t+dt}``:

    dy/d eps_W[r, c] = sigma_w sqrt(dt/D) g_t[r] x_t[c],   dy/d eps_b[r] = sigma_b sqrt(dt) g_t[r]

so for two inputs (primes) sharing the parameters, layer ``t`` contributes

    K_{W,t} = (sigma_w^2 dt / D) <g_t, g'_t> <x_t, x'_t>,     K_{b,t} = sigma_b^2 dt <g_t, g'_t>

and ``K_W``, ``K_b`` are the sums over the ``L`` layers (Section 5.3).

One draw is one forward pass of both inputs (states and ``phi'(h)`` kept: ``2 (L + 1) D``
floats each) and one backward pass. The weights are never stored: each layer's
``(eps_W, eps_b)`` is regenerated, row by row, from that layer's own counter-based
stream (the stream :func:`resdiff.sampling.resnet.layer_noise` reads, in the same
order), once going forward and once going back. Storing them instead would take
``L D^2`` floats per draw (1 GB per thread at L = D = 500); regenerating costs about as
much as the two matrix-vector products it feeds.
"""
import math

import numpy as np
from numba import njit, prange

from .models import dphi, phi
from .rng import new_state, next_normal

# columns of the array returned by :func:`ntk_draws`
K_W, K_B, Y1, Y2 = 0, 1, 2, 3


@njit(cache=True)
def _ntk_draw(key, draw, x0, depth, sigma_w2, sigma_b2, act, X, G, H, A, row, out):
    """NTK of one draw between the two rows of ``x0`` into ``out`` = (K_W, K_b, y, y').

    Work arrays: ``X`` (L+1, 2, D) states, ``G`` (L, 2, D) phi'(h), ``H`` and ``A``
    (2, D), ``row`` (D,). Returns False (and NaN in ``out``) if a state or adjoint stops
    being finite.
    """
    n, width = x0.shape
    dt = 1.0 / depth
    w_scale = math.sqrt(sigma_w2 * dt / width)  # eq. (16)
    b_scale = math.sqrt(sigma_b2 * dt)
    out[:] = np.nan
    X[0, :, :] = x0
    # forward: x_{t+dt} = x_t + phi(dW_t x_t + db_t) (eq. 26), weights streamed by row
    for layer in range(depth):
        s = new_state(key, draw, layer + 1)  # the layer's stream, as layer_noise
        for r in range(width):
            for c in range(width):
                row[c] = next_normal(s)
            for a in range(n):
                acc = 0.0
                for c in range(width):
                    acc += row[c] * X[layer, a, c]
                H[a, r] = w_scale * acc
        for r in range(width):
            bias = b_scale * next_normal(s)  # eps_b follows eps_W in the stream
            for a in range(n):
                h = H[a, r] + bias
                X[layer + 1, a, r] = X[layer, a, r] + phi(act, h)
                G[layer, a, r] = dphi(act, h)
        if not np.isfinite(X[layer + 1]).all():
            return False
    # backward: a_T = e_1; g_t = phi'(h_t) * a_{t+dt}; a_t = a_{t+dt} + dW_t^T g_t
    A[:, :] = 0.0
    A[:, 0] = 1.0
    k_w = 0.0
    k_b = 0.0
    for layer in range(depth - 1, -1, -1):
        gg = 0.0
        xx = 0.0
        for d in range(width):
            H[0, d] = G[layer, 0, d] * A[0, d]  # H now holds g_t
            H[1, d] = G[layer, 1, d] * A[1, d]
            gg += H[0, d] * H[1, d]
            xx += X[layer, 0, d] * X[layer, 1, d]
        k_w += gg * xx  # K_{W,t} without its factor sigma_w^2 dt / D
        k_b += gg       # K_{b,t} without its factor sigma_b^2 dt
        if layer == 0:
            break  # a_0 is not needed
        s = new_state(key, draw, layer + 1)
        for r in range(width):
            for c in range(width):
                row[c] = next_normal(s)
            g0 = w_scale * H[0, r]
            g1 = w_scale * H[1, r]
            for c in range(width):
                A[0, c] += g0 * row[c]
                A[1, c] += g1 * row[c]
        if not (np.isfinite(A).all()):
            return False
    out[K_W] = sigma_w2 * dt / width * k_w
    out[K_B] = sigma_b2 * dt * k_b
    out[Y1] = X[depth, 0, 0]
    out[Y2] = X[depth, 1, 0]
    return bool(np.isfinite(out).all())


@njit(parallel=True, cache=True)
def ntk_draws(key, draw_start, n_draws, x0, depth, sigma_w2, sigma_b2, act):
    """(n_draws, 4): ``K_W, K_b, y(x0[0]), y(x0[1])`` for draws ``draw_start ...``.

    ``x0`` is (2, D), input-major. Draw ``i`` uses only the streams ``(key, i, layer + 1)``,
    so results do not depend on the thread count or the chunking. A divergent draw is a
    row of NaN.
    """
    n, width = x0.shape
    if n != 2:
        raise ValueError("ntk_draws: x0 must have exactly two rows (inputs)")
    out = np.empty((n_draws, 4))
    for i in prange(n_draws):
        X = np.empty((depth + 1, n, width))
        G = np.empty((depth, n, width))
        H = np.empty((n, width))
        A = np.empty((n, width))
        row = np.empty(width)
        _ntk_draw(key, draw_start + i, x0, depth, sigma_w2, sigma_b2, act, X, G, H, A, row,
                  out[i])
    return out


def memory_bytes(depth, width, threads):
    """Working memory of :func:`ntk_draws`: states and phi'(h) of both inputs per thread."""
    return threads * 8 * (2 * (2 * depth + 1) * width + 5 * width)
