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
    dlam = 0.5 * d2 * (np.outer(s, m) + np.outer(m, s)) + d1 ** 2 * (sigma_b2 + sigma_w2 * lam)
    # the diagonal of dlam is (d2 m_i + d1^2) s_i, i.e. dq of Proposition 5.1
    return dm, dlam


def moment_paths(start, sigma_w2, sigma_b2, d1, d2, T=1.0, steps=20000, closed_form=True):
    """Solve Proposition 5.1 from ``start`` (:class:`Moments`) to time ``T``.

    ``closed_form=False`` forces the RK4 solve (the tests compare the two).
    """
    if d2 == 0.0 and closed_form:
        # closed form: m_T = m_0, lambda_T = lambda_0 + (lambda_0 + sb2/sw2)(E - 1)
        C = d1 ** 2 * sigma_w2 * T
        # lambda_0 + (lambda_0 + sb2/sw2)(E - 1), written to stay finite at sigma_w2 = 0
        lam = start.lam * math.exp(C) + sigma_b2 * d1 ** 2 * T * _expm1_over(C)
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
            dq = (d2 * m + d1 ** 2) * s
            dm = 0.5 * d2 * s
            if q > EXPLOSION_Q:
                # for large q: m ~ sqrt(q * sigma_w2 ...) growth, dq ~ d2 m s; the rest of
                # the way to infinity takes at most 2 q / dq
                t += 2.0 * q / max(dq, 1e-300)
                best = min(best, t)
                break
            if dq <= 0 and dm <= 0:
                break  # q decreasing with m decreasing: no explosion
            h = 0.01 * min(1.0, (q + 1.0) / max(abs(dq), 1e-300),
                           (abs(m) + 1.0) / max(abs(dm), 1e-300))
            # RK2 (midpoint) is plenty for locating the blow-up
            sm, qm = m + 0.5 * h * dm, q + 0.5 * h * dq
            s2 = sigma_b2 + sigma_w2 * qm
            m += h * 0.5 * d2 * s2
            q += h * (d2 * sm + d1 ** 2) * s2
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
    C = d1 ** 2 * sigma_w2 * T
    E = math.exp(C)
    bias = sigma_b2 * d1 ** 2 * T  # (sigma_b^2 / sigma_w^2) C, finite at sigma_w2 = 0
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
    C = d1 ** 2 * sigma_w2 * T
    E = math.exp(C)
    bias = sigma_b2 * d1 ** 2 * T  # (sigma_b^2 / sigma_w^2) C, finite at sigma_w2 = 0
    if kind == "nngp":
        return AffineKernel(sigma_y2 * sigma_z2 * E, sigma_y2 * bias * _expm1_over(C))
    if kind == "ntk":  # ratio (C E + E - 1)
        return AffineKernel(sigma_y2 * sigma_z2 * (C + 2.0) * E,
                            sigma_y2 * bias * (E + _expm1_over(C)))
    raise ValueError(f"unknown kernel {kind!r} (known: ntk, nngp)")
