"""First passage of ``q_t = |x_t|^2 / D`` above a threshold (Proposition 5.1, Remark 3.3).

One input ``x_0 = z 1_D``; the pre-activations of a layer are i.i.d.
``N(0, dt (sigma_w^2 q_t + sigma_b^2))`` over the coordinates given ``x_t`` (the Gram
sampler of :mod:`resdiff.sampling.resnet` with N = 1), so a layer costs O(D). ``dt =
T / L`` for the horizon ``T``. Mode RESNET: ``x += phi(h)`` (eq. 26); SDE: the Euler
scheme of eq. (29), ``x += phi'(0) h + phi''(0)/2 (sigma_b^2 + sigma_w^2 q) dt``.
Draw ``i`` uses stream ``(key, i, 0)``, so any thread count gives the same bits.
"""

import math

import numpy as np

from ..activations import phi_into
from ..jit import njit, prange
from ..rng import fill_normal_using, new_state, workspace
from .resnet import RESNET, SDE  # noqa: F401  (the modes, re-exported)


@njit(inline="always")
def _mean_square(x, width):
    q = 0.0
    for d in range(width):
        q += x[d] * x[d]
    return q / width


@njit(cache=True, error_model="numpy")
def _first_passage(s, x, work, z, depth, horizon, threshold, sigma_w2, sigma_b2, act, d1, d2, mode):
    """The first ``(layer + 1) dt`` after which ``q > threshold``; NaN if none by T.
    ``x``: 3 D work values, the state, one layer's normals and their activations;
    ``work``: the generator's (:func:`resdiff.rng.workspace`)."""
    width = x.shape[0] // 3
    state, h, out = x[:width], x[width : 2 * width], x[2 * width :]
    dt = horizon / depth
    state[:] = z
    q = _mean_square(state, width)
    for layer in range(depth):
        var = dt * (sigma_w2 * q + sigma_b2)
        sd = math.sqrt(var)
        fill_normal_using(s, h, work)
        if mode == RESNET:
            for d in range(width):
                h[d] = sd * h[d]
            phi_into(act, h, out)  # the activation chosen once, not per coordinate
            for d in range(width):
                state[d] += out[d]
        else:
            drift = 0.5 * d2 * var
            for d in range(width):
                state[d] += d1 * sd * h[d] + drift
        q = _mean_square(state, width)  # also the next layer's
        if not q <= threshold:  # NaN (overflow) counts as beyond
            return (layer + 1) * dt
    return np.nan


@njit(parallel=True, cache=True)
def passage_times(
    key,
    draw_start,
    n_draws,
    z,
    width,
    depth,
    horizon,
    threshold,
    sigma_w2,
    sigma_b2,
    act,
    d1,
    d2,
    mode,
):
    """(n_draws,): the first-passage time of draws ``draw_start ...`` (NaN: none by T)."""
    out = np.empty(n_draws)
    for i in prange(n_draws):
        s = new_state(key, draw_start + i, 0)
        buf, work = np.empty(3 * width), workspace(width)
        out[i] = _first_passage(
            s, buf, work, z, depth, horizon, threshold, sigma_w2, sigma_b2, act, d1, d2, mode
        )
    return out
