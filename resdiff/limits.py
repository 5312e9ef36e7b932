"""Section 5 of the paper: the doubly infinite limits, computed exactly.

* :func:`moment_paths`: the ODEs of Proposition 5.1 for ``m``, ``q`` and ``lambda``;
  closed form when ``phi''(0) = 0``, classical RK4 otherwise, with the deterministic
  explosion time when the solution blows up before ``T``.
* :func:`transition_gaussian`: the Gaussian transition density (eq. 34).
* :func:`ntk_limits`: ``K_W^inf`` and ``K_b^inf`` (Section 5.3).
* :func:`completed_kernel`: the GP kernel (eq. 35-36) and the full-training NTK
  (eq. 37) of the completed model, as the coefficients of an affine function of
  ``<z, z'>``.
"""

import math
from dataclasses import dataclass

import numpy as np

from .sampling.linalg import matmul_nt

EXPLOSION_Q = 1e12  # q beyond this counts as exploded (numerical ODE solve)


def _expm1_over(C):
    """(e^C - 1) / C, with its limit 1 at C = 0."""
    return 1.0 if C == 0.0 else math.expm1(C) / C


@dataclass(frozen=True)
class Moments:
    """``m`` (N,), ``q`` (N,), ``lam`` (N x N, diagonal = q) at time ``t``."""

    m: np.ndarray
    q: np.ndarray
    lam: np.ndarray
    exploded_at: float | None = None  # deterministic explosion time, if before T


def initial_moments(x0):
    """``m_0, q_0, lambda_0`` of the initial states ``x0`` (input-major, N x D)."""
    x0 = np.asarray(x0, dtype=float)
    width = x0.shape[1]
    lam = matmul_nt(x0, x0) / width  # fixed order: the same bits on any CPU
    return Moments(x0.mean(axis=1), np.diag(lam).copy(), lam)


def _ode_rhs(m, lam, sigma_w2, sigma_b2, d1, d2):
    # Proposition 5.1; with s_i = sigma_b^2 + sigma_w^2 q_i
    q = np.diag(lam)
    s = sigma_b2 + sigma_w2 * q
    dm = 0.5 * d2 * s
    dlam = 0.5 * d2 * (np.outer(s, m) + np.outer(m, s)) + d1**2 * (sigma_b2 + sigma_w2 * lam)
    # the diagonal of dlam is (d2 m_i + d1^2) s_i, i.e. dq of Proposition 5.1
    return dm, dlam


def moment_paths(start, sigma_w2, sigma_b2, d1, d2, T=1.0, steps=20000, closed_form=True):
    """Solve Proposition 5.1 from ``start`` (:class:`Moments`) to time ``T``.

    ``closed_form=False`` forces the RK4 solve (the tests compare the two).
    """
    if d2 == 0.0 and closed_form:
        # closed form: m_T = m_0, lambda_T = lambda_0 + (lambda_0 + sb2/sw2)(E - 1)
        C = d1**2 * sigma_w2 * T
        # lambda_0 + (lambda_0 + sb2/sw2)(E - 1), written to stay finite at sigma_w2 = 0
        lam = start.lam * math.exp(C) + sigma_b2 * d1**2 * T * _expm1_over(C)
        return Moments(start.m.copy(), np.diag(lam).copy(), lam)
    m, lam = start.m.astype(float).copy(), start.lam.astype(float).copy()
    h = T / steps
    for _k in range(steps):
        k1 = _ode_rhs(m, lam, sigma_w2, sigma_b2, d1, d2)
        k2 = _ode_rhs(m + 0.5 * h * k1[0], lam + 0.5 * h * k1[1], sigma_w2, sigma_b2, d1, d2)
        k3 = _ode_rhs(m + 0.5 * h * k2[0], lam + 0.5 * h * k2[1], sigma_w2, sigma_b2, d1, d2)
        k4 = _ode_rhs(m + h * k3[0], lam + h * k3[1], sigma_w2, sigma_b2, d1, d2)
        m = m + h / 6.0 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
        lam = lam + h / 6.0 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
        if not np.all(np.isfinite(lam)) or np.max(np.abs(lam)) > EXPLOSION_Q:
            t_exp = explosion_time(start, sigma_w2, sigma_b2, d1, d2)
            nan = np.full_like(lam, np.nan)
            return Moments(np.full_like(m, np.nan), np.diag(nan).copy(), nan, t_exp)
    return Moments(m, np.diag(lam).copy(), lam)


def explosion_time(start, sigma_w2, sigma_b2, d1, d2, t_max=1e3):
    """Earliest time at which the ODE of some input blows up (``inf`` if none by t_max).

    Each input's ``(m, q)`` solves its own 2-D autonomous ODE (Proposition 5.1); the
    blow-up time is ``int_{q_0}^inf dq / q'(q)`` along the path. We integrate with an
    adaptive step in ``t`` until ``q`` exceeds ``EXPLOSION_Q`` (the remaining time
    beyond that is O(1 / (d2 * sigma_w2 * sqrt(q))) and is added in closed form).
    """
    best = math.inf
    for i in range(start.m.shape[0]):
        m, q, t = float(start.m[i]), float(start.q[i]), 0.0
        while t < t_max:
            s = sigma_b2 + sigma_w2 * q
            dq = (d2 * m + d1**2) * s
            dm = 0.5 * d2 * s
            if q > EXPLOSION_Q:
                # for large q: m ~ sqrt(q * sigma_w2 ...) growth, dq ~ d2 m s; the rest of
                # the way to infinity takes at most 2 q / dq
                t += 2.0 * q / max(dq, 1e-300)
                best = min(best, t)
                break
            if dq <= 0 and dm <= 0:
                break  # q decreasing with m decreasing: no explosion
            h = 0.01 * min(
                1.0, (q + 1.0) / max(abs(dq), 1e-300), (abs(m) + 1.0) / max(abs(dm), 1e-300)
            )
            # RK2 (midpoint) is plenty for locating the blow-up
            sm, qm = m + 0.5 * h * dm, q + 0.5 * h * dq
            s2 = sigma_b2 + sigma_w2 * qm
            m += h * 0.5 * d2 * s2
            q += h * (d2 * sm + d1**2) * s2
            t += h
    return best


def transition_gaussian(x0_coord, start, end):
    """Mean and covariance of eq. (34) for one coordinate with initial values ``x0_coord``.

    ``mean_i = x0_i + m_T,i - m_0,i``; ``cov = (c_T - c_0)`` with
    ``c = lambda - m m^T`` (and ``v = q - m^2`` on the diagonal).
    """
    mean = np.asarray(x0_coord, dtype=float) + end.m - start.m
    c_T = end.lam - np.outer(end.m, end.m)
    c_0 = start.lam - np.outer(start.m, start.m)
    return mean, c_T - c_0


def ntk_limits(lam0, sigma_w2, sigma_b2, d1, T=1.0):
    """``(K_W^inf, K_b^inf)`` of Section 5.3 (phi''(0) = 0), ``C = phi'(0)^2 sigma_w^2 T``."""
    C = d1**2 * sigma_w2 * T
    E = math.exp(C)
    bias = sigma_b2 * d1**2 * T  # (sigma_b^2 / sigma_w^2) C, finite at sigma_w2 = 0
    K_W = lam0 * C * E + bias * (E - _expm1_over(C))  # ratio (C E - (E - 1))
    K_b = bias * _expm1_over(C)  # ratio (E - 1)
    return K_W, K_b


@dataclass(frozen=True)
class AffineKernel:
    """``K(z, z') = slope * <z, z'> + offset``."""

    slope: float
    offset: float


def completed_kernel(kind, sigma_w2, sigma_b2, sigma_z2, sigma_y2=1.0, d1=1.0, T=1.0):
    """Kernel of the completed model: ``"nngp"`` (eq. 35-36) or ``"ntk"`` (eq. 37)."""
    C = d1**2 * sigma_w2 * T
    E = math.exp(C)
    bias = sigma_b2 * d1**2 * T  # (sigma_b^2 / sigma_w^2) C, finite at sigma_w2 = 0
    if kind == "nngp":
        return AffineKernel(sigma_y2 * sigma_z2 * E, sigma_y2 * bias * _expm1_over(C))
    if kind == "ntk":  # ratio (C E + E - 1)
        return AffineKernel(
            sigma_y2 * sigma_z2 * (C + 2.0) * E, sigma_y2 * bias * (E + _expm1_over(C))
        )
    raise ValueError(f"unknown kernel {kind!r} (known: ntk, nngp)")


def _mq_rhs(m, q, sigma_w2, sigma_b2, d1, d2):
    s = sigma_b2 + sigma_w2 * q
    return 0.5 * d2 * s, (d2 * m + d1**2) * s  # Proposition 5.1, one input


def mean_integral(m0, q0, sigma_w2, sigma_b2, d1, d2, T=1.0, steps=20000):
    """``int_0^T m_t dt`` along the ODEs of Proposition 5.1 from ``(m0, q0)`` (classical
    RK4); NaN when ``q`` exceeds ``EXPLOSION_Q`` before ``T``."""
    if d2 == 0.0:
        return m0 * T
    m, q, acc = float(m0), float(q0), 0.0
    h = T / steps
    for _ in range(steps):
        k1 = _mq_rhs(m, q, sigma_w2, sigma_b2, d1, d2)
        k2 = _mq_rhs(m + 0.5 * h * k1[0], q + 0.5 * h * k1[1], sigma_w2, sigma_b2, d1, d2)
        k3 = _mq_rhs(m + 0.5 * h * k2[0], q + 0.5 * h * k2[1], sigma_w2, sigma_b2, d1, d2)
        k4 = _mq_rhs(m + h * k3[0], q + h * k3[1], sigma_w2, sigma_b2, d1, d2)
        # int m dt over the step by the same RK4 stages (dm/dt = k[0])
        acc += h * (m + h / 6.0 * (k1[0] + k2[0] + k3[0]))
        m += h / 6.0 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
        q += h / 6.0 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
        if not math.isfinite(q) or q > EXPLOSION_Q:
            return math.nan
    return acc


@dataclass(frozen=True)
class JacobianLimits:
    """Predictions for ``g_T`` of eq. (27) from ``g_0 = I`` (docs/jacobian.md); NaN where
    there is none (the moments when ``phi''(0) != 0``)."""

    logdet_mean: float
    logdet_var: float
    moment1_mean: float
    moment1_var: float
    moment2_mean: float
    moment2_mean_infinite_width: float


def jacobian_limits(m0, q0, width, sigma_w2, sigma_b2, d1, d2, T=1.0):
    """:class:`JacobianLimits` for the SDE (27) at width ``width``, ``x_0`` with mean
    ``m0`` and ``q0 = |x_0|^2 / D``; ``kappa = phi'(0)^2 sigma_w^2 T``.

    * ``log det g_T = phi'(0) tr W_T - kappa / 2 + phi''(0) sigma_w^2 int_0^T m_t dt``:
      Gaussian ``N(-kappa/2, kappa)`` at every D when ``phi''(0) = 0``; otherwise the
      mean gains ``phi''(0) sigma_w^2 int m_t dt``, with ``m_t`` of Proposition 5.1
      (exact as D -> infinity).
    * ``phi''(0) = 0``: ``E tr(g g^T) / D = e^kappa``; ``A = E tr (g g^T)^2`` and
      ``B = E (tr g g^T)^2`` solve a linear ODE with eigenvalues ``kappa (2 + 4/D)`` and
      ``kappa (2 - 2/D)``, so ``E moment2 = (D+2)/3 e^{(2+4/D) kappa} + (1-D)/3
      e^{(2-2/D) kappa}`` -> ``e^{2 kappa} (1 + 2 kappa)`` (the free multiplicative
      Brownian motion) as D -> infinity.
    """
    D = float(width)
    kappa = d1**2 * sigma_w2 * T
    logdet_mean = -0.5 * kappa + d2 * sigma_w2 * mean_integral(
        m0, q0, sigma_w2, sigma_b2, d1, d2, T
    )
    if d2 != 0.0:
        nan = math.nan
        return JacobianLimits(logdet_mean, kappa, nan, nan, nan, nan)
    up = math.exp((2.0 + 4.0 / D) * kappa)
    down = math.exp((2.0 - 2.0 / D) * kappa)
    m1 = math.exp(kappa)
    moment2 = (D + 2.0) / 3.0 * up + (1.0 - D) / 3.0 * down
    second = (D + 2.0) / (3.0 * D) * up - 2.0 * (1.0 - D) / (3.0 * D) * down  # E moment1^2
    return JacobianLimits(
        logdet_mean,
        kappa,
        m1,
        second - m1 * m1,
        moment2,
        math.exp(2.0 * kappa) * (1.0 + 2.0 * kappa),
    )


def threshold_time(m0, q0, sigma_w2, sigma_b2, d1, d2, threshold, steps=4000):
    """The deterministic time ``t*`` at which ``q_t`` of Proposition 5.1 reaches
    ``threshold`` from ``(m0, q0)`` (``0`` if ``q0 >= threshold``, ``inf`` if never).

    While ``q`` grows, time is a function of ``v = log(1 + q)``: ``dt/dv = (1 + q) / q'``,
    ``dm/dv = (1 + q) m' / q'``, integrated by classical RK4 in ``v`` from ``q0`` to the
    threshold, so the end point is exact and the blow-up (q ~ sec^2, eq. 32) costs no
    step control. ``q' <= 0`` on the way means ``q`` never gets there: ``inf``.
    """
    if q0 >= threshold:
        return 0.0
    v0, v1 = math.log1p(q0), math.log1p(threshold)
    h = (v1 - v0) / steps

    def rhs(v, m):
        q = math.expm1(v)
        dm, dq = _mq_rhs(m, q, sigma_w2, sigma_b2, d1, d2)
        if not dq > 0.0:
            return None
        return (1.0 + q) * dm / dq, (1.0 + q) / dq

    m, t, v = float(m0), 0.0, v0
    for k in range(steps):
        k1 = rhs(v, m)
        k2 = k1 and rhs(v + 0.5 * h, m + 0.5 * h * k1[0])
        k3 = k2 and rhs(v + 0.5 * h, m + 0.5 * h * k2[0])
        k4 = k3 and rhs(v + h, m + h * k3[0])
        if k4 is None:
            return math.inf
        m += h / 6.0 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
        t += h / 6.0 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
        v = v0 + (k + 1) * h
    return t


def euler_threshold_time(m0, q0, sigma_w2, sigma_b2, d1, d2, threshold, depth, horizon):
    """The first ``k dt`` (``dt = horizon / depth``) with ``q_k > threshold`` for the
    D -> infinity limit of the Euler scheme of eq. (29) at fixed ``dt`` (NaN if none):
    with ``v_k = dt (sigma_b^2 + sigma_w^2 q_k)`` and ``c_k = phi''(0) v_k / 2``, the
    coordinates' averages follow ``m_{k+1} = m_k + c_k`` and ``q_{k+1} = q_k + 2 c_k m_k +
    c_k^2 + phi'(0)^2 v_k`` exactly (the noise averages out). The SDE's passage times
    concentrate here as D grows; ``t*`` of :func:`threshold_time` is its dt -> 0 limit."""
    dt = horizon / depth
    m, q = float(m0), float(q0)
    for k in range(depth):
        v = dt * (sigma_b2 + sigma_w2 * q)
        c = 0.5 * d2 * v
        m, q = m + c, q + 2.0 * c * m + c * c + d1 * d1 * v
        if not q <= threshold:
            return (k + 1) * dt
    return math.nan
