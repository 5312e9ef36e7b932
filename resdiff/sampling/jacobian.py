"""The input-output Jacobian of Section 4: the ResNet (eq. 26), the Euler scheme of its
matrix SDE (eq. 27) with the inverse of eq. 28, and the feedforward network of Fig. 1.

Per draw, with the weights ``dW_t = sigma_w sqrt(dt/D) eps_W`` and ``db_t`` of layer
``t`` drawn from stream ``(key, draw, layer + 1)`` (:func:`resdiff.rng.layer_noise`, as
the explicit samplers), for ``c = phi'(0)``, ``k = phi''(0)``, ``a = sigma_w^2 / D``:

* ``resnet``: ``x += phi(h)``, ``h = dW x + db``; ``J <- (I + diag(phi'(h)) dW) J``
  (forward accumulation of ``J(x_t, x_0)``).
* ``sde``: the Euler scheme of eq. (27) alongside that of eq. (29), driven by the same
  ``dW``: ``x += c h + k/2 (sigma_b^2 + sigma_w^2 q) dt``,
  ``g <- g + c dW g + k a 1 (x^T g) dt`` (``d[W x 1^T (.) W]_t = a 1 x^T dt``).
* Both also integrate eq. (28) on the same path,
  ``G <- G (I - c dW - k a 1 x^T dt + c^2 a I dt)`` (``d[W]_t = a I dt``), and report
  ``||J G - I||_F / sqrt(D)``.
* ``network`` (the feedforward network of Fig. 1): ``J = d h_L / d h_1 =
  prod_l W_l diag(phi'(h_l))``.

The statistics of each Jacobian come from its singular values, found by one-sided
(Hestenes) Jacobi rotations in a fixed cyclic order: no LAPACK, so the same bits on any
CPU and for any thread count (each draw is one thread's work). Every product runs in a
fixed order (:func:`resdiff.sampling.linalg.combine`). The cost is ``O(L D^3)`` per draw
and method, as for any exact Jacobian (docs/jacobian.md, "Cost").
"""

import math

import numpy as np

from ..activations import dphi, phi
from ..jit import njit, prange
from ..rng import layer_noise
from .linalg import combine, dot

RESNET, SDE, NETWORK = 0, 1, 2
# columns of the statistics array returned by :func:`jacobian_draws`
LOGDET, MOMENT1, MOMENT2, SMAX, SMIN, INVERSE_ERROR = range(6)
STATISTICS = ("logdet", "moment1", "moment2", "smax", "smin", "inverse_error")
JACOBI_SWEEPS = 60  # a sweep without a rotation ends the iteration long before this
JACOBI_TOL = 1e-15  # rows i, j count as orthogonal when |<a_i, a_j>| <= tol |a_i| |a_j|
LN2 = math.log(2.0)


@njit(cache=True)
def _log_positive(s):
    """log s for s > 0 from its binary exponent and libm's log1p on [-1/2, 0) (exact
    argument), so only log1p, which resdiff.machine checks, is called."""
    mant, exp = math.frexp(s)  # s = mant 2^exp, mant in [1/2, 1)
    return exp * LN2 + math.log1p(mant - 1.0)


@njit(cache=True)
def singular_values(A, norms):
    """The singular values of the square matrix ``A`` (overwritten) into ``norms``, by
    one-sided Jacobi rotations of its rows (cyclic order); returns the sweeps taken."""
    n = A.shape[0]
    sweeps = 0
    for _ in range(JACOBI_SWEEPS):
        sweeps += 1
        rotated = False
        for i in range(n):
            norms[i] = dot(A[i], A[i], n)
        for i in range(n - 1):
            ai = A[i]
            for j in range(i + 1, n):
                aj = A[j]
                alpha = norms[i]
                beta = norms[j]
                gamma = dot(ai, aj, n)
                if abs(gamma) <= JACOBI_TOL * math.sqrt(alpha * beta) or gamma == 0.0:
                    continue
                rotated = True
                zeta = (beta - alpha) / (2.0 * gamma)
                t = (1.0 if zeta >= 0.0 else -1.0) / (abs(zeta) + math.sqrt(1.0 + zeta * zeta))
                c = 1.0 / math.sqrt(1.0 + t * t)
                s = c * t
                for d in range(n):
                    u = ai[d]
                    v = aj[d]
                    ai[d] = c * u - s * v
                    aj[d] = s * u + c * v
                norms[i] = alpha - t * gamma
                norms[j] = beta + t * gamma
        if not rotated:
            break
    for i in range(n):
        norms[i] = math.sqrt(dot(A[i], A[i], n))
    return sweeps


@njit(cache=True)
def _statistics(J, work, norms, out):
    """logdet, moment1, moment2, smax, smin of ``J`` into ``out[:5]`` (``work``: D x D)."""
    n = J.shape[0]
    work[:, :] = J
    singular_values(work, norms)
    logdet = 0.0
    m1 = 0.0
    m2 = 0.0
    smax = 0.0
    smin = math.inf
    for i in range(n):
        s = norms[i]
        logdet += _log_positive(s) if s > 0.0 else -math.inf
        m1 += s * s
        m2 += (s * s) * (s * s)
        smax = max(smax, s)
        smin = min(smin, s)
    out[LOGDET] = logdet
    out[MOMENT1] = m1 / n
    out[MOMENT2] = m2 / n
    out[SMAX] = smax
    out[SMIN] = smin


@njit(cache=True)
def _inverse_error(J, G, work):
    """``||J G - I||_F / sqrt(D)``."""
    n = J.shape[0]
    combine(J, n, G, work)
    acc = 0.0
    for i in range(n):
        work[i, i] -= 1.0
        acc += dot(work[i], work[i], n)
    return math.sqrt(acc / n)


@njit(cache=True)
def _resnet_layers(
    key,
    draw,
    lo,
    hi,
    depth,
    sigma_w2,
    sigma_b2,
    act,
    d1,
    d2,
    mode,
    eps_W,
    eps_b,
    x,
    h,
    fp,
    J,
    Jn,
    G,
    Gn,
):
    """Layers ``lo .. hi - 1`` of one draw of ``mode`` RESNET or SDE: the state ``x``,
    the Jacobian ``J`` (``Jn`` a work array), the inverse ``G`` (eq. 28; ``Gn``).
    Returns False on divergence. The results end in ``J``, ``G`` (swapped back)."""
    width = x.shape[0]
    dt = 1.0 / depth
    w_scale = math.sqrt(sigma_w2 * dt / width)  # eq. (16)
    b_scale = math.sqrt(sigma_b2 * dt)
    a_dt = sigma_w2 / width * dt  # d[W]_t = a I dt
    cw = d1 * w_scale
    kd = d2 * a_dt
    grow = 1.0 + d1 * d1 * a_dt
    for layer in range(lo, hi):
        layer_noise(key, draw, layer, eps_W, eps_b)
        q = dot(x, x, width) / width
        for r in range(width):
            h[r] = w_scale * dot(eps_W[r], x, width) + b_scale * eps_b[r]
        combine(eps_W, width, J, Jn)  # Jn = eps_W J, states at time t
        if mode == RESNET:
            for r in range(width):
                f = w_scale * dphi(act, h[r])
                for c in range(width):
                    Jn[r, c] = J[r, c] + f * Jn[r, c]
        else:
            # eq. (27): g + c dW g + k a 1 (x^T g) dt; fp = x^T g
            fp[:] = 0.0
            for r in range(width):
                xr = x[r]
                for c in range(width):
                    fp[c] += xr * J[r, c]
            for r in range(width):
                for c in range(width):
                    Jn[r, c] = J[r, c] + cw * Jn[r, c] + kd * fp[c]
        # eq. (28): G (I - c dW - k a 1 x^T dt + c^2 a I dt)
        combine(G, width, eps_W, Gn)  # Gn = G eps_W
        for r in range(width):
            row_sum = 0.0
            for c in range(width):
                row_sum += G[r, c]
            for c in range(width):
                Gn[r, c] = grow * G[r, c] - cw * Gn[r, c] - kd * row_sum * x[c]
        if mode == RESNET:
            for r in range(width):
                x[r] += phi(act, h[r])  # eq. (26)
        else:
            drift = 0.5 * d2 * dt * (sigma_b2 + sigma_w2 * q)  # eq. (29)
            for r in range(width):
                x[r] += d1 * h[r] + drift
        J[:, :] = Jn  # copies keep the caller's arrays the state (O(D^2) against O(D^3))
        G[:, :] = Gn
        if not (math.isfinite(dot(x, x, width)) and math.isfinite(J[0, 0] + G[0, 0])):
            return False
    return True


@njit(cache=True)
def _network_layers(
    key, draw, z, lo, hi, sigma_w2, sigma_b2, act, eps_W, eps_b, eps_W0, h, hn, fp, J, Jn, work
):
    """Layers ``lo .. hi - 1`` of one draw of the feedforward network: layer 0 sets
    ``h_1 = w_0 z + b_0`` and ``J = I``; layer ``l >= 1``, ``h_{l+1} = W_l phi(h_l) +
    b_l`` and ``J <- W_l diag(phi'(h_l)) J`` (``J = d h_L / d h_1`` at the end)."""
    width = h.shape[0]
    b_scale = math.sqrt(sigma_b2)
    w_scale = math.sqrt(sigma_w2 / width)
    for layer in range(lo, hi):
        if layer == 0:
            layer_noise(key, draw, 0, eps_W0, eps_b)
            for r in range(width):
                h[r] = math.sqrt(sigma_w2) * eps_W0[r, 0] * z + b_scale * eps_b[r]
            J[:, :] = 0.0
            for d in range(width):
                J[d, d] = 1.0
            continue
        layer_noise(key, draw, layer, eps_W, eps_b)
        for c in range(width):
            fp[c] = phi(act, h[c])
        for r in range(width):
            hn[r] = w_scale * dot(eps_W[r], fp, width) + b_scale * eps_b[r]
        for r in range(width):  # diag(phi'(h)) J, scaled by sigma_w / sqrt(D)
            f = w_scale * dphi(act, h[r])
            for c in range(width):
                work[r, c] = f * J[r, c]
        combine(eps_W, width, work, J)
        h[:] = hn
        if not (math.isfinite(dot(h, h, width)) and math.isfinite(J[0, 0])):
            return False
    return True


@njit(cache=True)
def _finish(J, G, with_inverse, work, norms, out):
    for v in J.flat:
        if not math.isfinite(v):
            out[:] = np.nan
            return
    _statistics(J, work, norms, out)
    out[INVERSE_ERROR] = _inverse_error(J, G, work) if with_inverse else np.nan


@njit(parallel=True, cache=True)
def jacobian_advance(
    key,
    draw_start,
    x0,
    z,
    lo,
    hi,
    depth,
    sigma_w2,
    sigma_b2,
    act,
    d1,
    d2,
    mode,
    X,
    J,
    G,
    alive,
    out,
):
    """Advance draws ``draw_start ...`` through layers ``lo .. hi - 1``. Their states
    ``X`` (draws x D), Jacobians ``J`` and inverses ``G`` (draws x D x D; ``G`` unused
    for NETWORK) and flags ``alive`` are set at ``lo = 0`` and carried between calls, so
    any split of the layers gives the same bits. At ``hi = depth``, ``out`` (draws x 6)
    receives the :data:`STATISTICS` (NaN rows for divergent draws). ``x0`` (D,) is the
    ResNet's input, ``z`` the feedforward's."""
    width = x0.shape[0]
    for i in prange(X.shape[0]):
        if lo == 0:
            alive[i] = True
            if mode != NETWORK:
                X[i, :] = x0
                J[i, :, :] = 0.0
                G[i, :, :] = 0.0
                for d in range(width):
                    J[i, d, d] = 1.0
                    G[i, d, d] = 1.0
        if not alive[i]:
            out[i, :] = np.nan
            continue
        eps_W = np.empty((width, width))
        eps_b = np.empty(width)
        Jn = np.empty((width, width))
        h = np.empty(width)
        fp = np.empty(width)
        if mode == NETWORK:
            ok = _network_layers(
                key,
                draw_start + i,
                z,
                lo,
                hi,
                sigma_w2,
                sigma_b2,
                act,
                eps_W,
                eps_b,
                np.empty((width, 1)),
                X[i],
                h,
                fp,
                J[i],
                Jn,
                Jn,
            )
        else:
            ok = _resnet_layers(
                key,
                draw_start + i,
                lo,
                hi,
                depth,
                sigma_w2,
                sigma_b2,
                act,
                d1,
                d2,
                mode,
                eps_W,
                eps_b,
                X[i],
                h,
                fp,
                J[i],
                Jn,
                G[i],
                np.empty((width, width)),
            )
        alive[i] = ok
        if not ok:
            out[i, :] = np.nan
        elif hi == depth:
            _finish(J[i], G[i], mode != NETWORK, Jn, np.empty(width), out[i])


def stepper(key, x0, z, depth, sigma_w2, sigma_b2, act, d1, d2, mode):
    """``kernel(start, count, lo, hi, state)`` for
    :func:`resdiff.sampling.driver.run_chunked`: the statistics (count x 6) once
    ``hi = depth``."""
    x0 = np.ascontiguousarray(x0, dtype=float)
    width = x0.shape[0]

    def kernel(start, count, lo, hi, state):
        if lo == 0:
            state["X"] = np.empty((count, width))
            state["J"] = np.empty((count, width, width))
            state["G"] = np.empty((count, width, width) if mode != NETWORK else (count, 1, 1))
            state["alive"] = np.empty(count, np.bool_)
            state["out"] = np.empty((count, 6))
        jacobian_advance(
            key,
            start,
            x0,
            float(z),
            lo,
            hi,
            depth,
            sigma_w2,
            sigma_b2,
            act,
            d1,
            d2,
            mode,
            state["X"],
            state["J"],
            state["G"],
            state["alive"],
            state["out"],
        )
        return state["out"].copy() if hi == depth else None

    return kernel


def jacobian_draws(key, draw_start, n_draws, x0, z, depth, sigma_w2, sigma_b2, act, d1, d2, mode):
    """(n_draws, 6): the :data:`STATISTICS` of draws ``draw_start ...``, all layers in
    one call. Draw ``i`` uses only the streams ``(key, i, layer + 1)``."""
    kernel = stepper(key, x0, z, depth, sigma_w2, sigma_b2, act, d1, d2, mode)
    return kernel(draw_start, n_draws, 0, depth, {})


def memory_bytes(width, threads, draws_in_chunk=None):
    """Working memory: per thread the weights and three D x D work arrays, per draw of
    a chunk its Jacobian and inverse (at least one draw per thread)."""
    draws_in_chunk = threads if draws_in_chunk is None else draws_in_chunk
    return 8 * width * width * (4 * threads + 2 * max(draws_in_chunk, threads))


def multiply_adds(depth, width, draws):
    """Multiply-adds of one method: two D x D products per layer and draw."""
    return 2 * draws * depth * width**3
