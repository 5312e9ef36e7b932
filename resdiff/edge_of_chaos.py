"""The edge of chaos of a feedforward network (Poole et al. 2016; Schoenholz et al. 2017).

For ``h_{l+1} = W_l phi(h_l) + b_l`` with ``W ~ N(0, sigma_w^2 / D)``, ``b ~ N(0, sigma_b^2)``
the pre-activation variance follows ``q_{l+1} = V(q_l) = sigma_w^2 E[phi(sqrt(q_l) Z)^2]
+ sigma_b^2``. The edge of chaos is the ``sigma_w^2`` at which, at the fixed point
``q* = V(q*)``, ``chi_1 = sigma_w^2 E[phi'(sqrt(q*) Z)^2] = 1``.

Gaussian expectations use Gauss-Hermite quadrature (exact for polynomials up to degree
2n - 1; with an even ``n`` there is no node at 0, so ReLU's kink gives the exact
``E[relu'(Z)^2] = 1/2`` and ``E[relu(sqrt(q) Z)^2] = q / 2``). Roots are found by
bracketing and bisection, so no SciPy is needed at run time.
"""

import math
from dataclasses import dataclass

import numpy as np

from .constraints import ParameterError
from .jit import njit
from .activations import activation as get_activation
from .activations import dphi, phi

GH_NODES = 200  # even: no node at the origin


def hermite_gauss(n):
    """Gauss-Hermite nodes and weights (weight ``exp(-x^2)``), by Newton's method on the
    orthonormal Hermite recurrence (Press et al., "Numerical Recipes", 3rd ed., 4.6.2),
    from the largest root down.

    Plain float arithmetic in a fixed order: unlike ``numpy.polynomial.hermite.hermgauss``
    (an eigenvalue solve in LAPACK) it gives the same bits on any CPU.
    """
    x = [0.0] * n
    w = [0.0] * n
    z = 0.0
    for i in range((n + 1) // 2):
        if i == 0:  # the largest root (Numerical Recipes' guess)
            z = math.sqrt(2 * n + 1) - 1.85575 * (2 * n + 1) ** -0.16667
        else:  # a quarter of the local spacing pi / sqrt(2n + 1 - z^2) below the last root
            z -= 0.25 * math.pi / math.sqrt(max(2 * n + 1 - z * z, 1.0))
        for _ in range(100):
            p1, p2 = math.pi**-0.25, 0.0
            for j in range(1, n + 1):
                p3, p2 = p2, p1
                p1 = z * math.sqrt(2.0 / j) * p2 - math.sqrt((j - 1) / j) * p3
            pp = math.sqrt(2.0 * n) * p2
            ratio = p1 / pp
            # Newton on p_n(z) / prod_{k < i} (z - x_k): the roots found are deflated away
            pole = 0.0
            for k in range(i):
                pole += 1.0 / (z - x[k])
            z, z_old = z - ratio / (1.0 - ratio * pole), z
            if abs(z - z_old) <= 3e-14:
                break
        x[i], x[n - 1 - i] = z, -z
        w[i] = w[n - 1 - i] = 2.0 / (pp * pp)
    return np.array(x[::-1]), np.array(w[::-1])


_X, _W = hermite_gauss(GH_NODES)
_X = math.sqrt(2.0) * _X  # E[f(Z)] = sum_i w_i f(sqrt(2) x_i) / sqrt(pi)
_W = _W / math.sqrt(math.pi)
Q_MAX = 1e8


@njit(cache=True)
def _mean_square(code, derivative, sd, x, w):
    """``E[f(sd Z)^2]`` with ``f = phi`` or ``phi'``, summed over the nodes in order (the
    edge of chaos, and every feedforward draw after it, is then the same on any CPU)."""
    acc = 0.0
    for i in range(x.shape[0]):
        v = dphi(code, sd * x[i]) if derivative else phi(code, sd * x[i])
        acc += w[i] * (v * v)
    return acc


def variance_map(code, q, sigma_w2, sigma_b2):
    """``V(q) = sigma_w^2 E[phi(sqrt(q) Z)^2] + sigma_b^2``."""
    return sigma_w2 * _mean_square(code, False, math.sqrt(max(q, 0.0)), _X, _W) + sigma_b2


def chi1(code, q, sigma_w2):
    """``chi_1 = sigma_w^2 E[phi'(sqrt(q) Z)^2]``."""
    return sigma_w2 * _mean_square(code, True, math.sqrt(max(q, 0.0)), _X, _W)


def bisect(f, lo, hi, xtol=1e-14, rtol=4e-16, maxiter=400):
    """A root of ``f`` in ``[lo, hi]`` where ``f(lo)`` and ``f(hi)`` differ in sign."""
    flo, fhi = f(lo), f(hi)
    if flo == 0.0:
        return lo
    if fhi == 0.0:
        return hi
    if np.sign(flo) == np.sign(fhi):
        raise ValueError("root not bracketed")
    for _ in range(maxiter):
        mid = 0.5 * (lo + hi)
        fmid = f(mid)
        if fmid == 0.0:
            return mid
        if np.sign(fmid) == np.sign(flo):
            lo, flo = mid, fmid
        else:
            hi = mid
        if hi - lo <= xtol + rtol * abs(mid):
            break
    return 0.5 * (lo + hi)


def fixed_point(code, sigma_w2, sigma_b2):
    """The positive fixed point ``q*`` of the variance map, or ``None`` when ``q`` grows
    without bound (no fixed point below ``Q_MAX``)."""
    g = lambda q: variance_map(code, q, sigma_w2, sigma_b2) - q  # noqa: E731
    if sigma_b2 == 0.0:
        # q = 0 is always a fixed point; look for a positive one above a tiny q
        lo = 1e-12
        if g(lo) <= 0.0:  # contracting towards 0 near the origin
            return 0.0 if g(Q_MAX) < 0.0 else None
    else:
        lo = 0.0
    hi = 1.0
    while g(hi) > 0.0:
        hi *= 2.0
        if hi > Q_MAX:
            return None
    return bisect(g, lo, hi)


@dataclass(frozen=True)
class EdgeOfChaos:
    activation: str
    sigma_b2: float
    sigma_w2: float
    q_star: float  # NaN when every q is a fixed point (ReLU without bias)
    chi_1: float


def edge_of_chaos(activation, sigma_b2):
    """The edge of chaos ``(sigma_w^2, q*)`` of ``activation`` for bias variance ``sigma_b2``.

    ReLU is positively homogeneous: ``chi_1 = sigma_w^2 / 2`` for every ``q``, so
    ``sigma_w^2 = 2``; with ``sigma_b^2 = 0`` every ``q`` is then a fixed point
    (``q*`` is reported as NaN), and with ``sigma_b^2 > 0`` there is none.
    """
    act = get_activation(activation)
    code = act.code
    if not sigma_b2 >= 0:
        raise ParameterError("sigma_b2", f"must be non-negative, got {sigma_b2!r}")
    if activation == "relu":
        if sigma_b2 > 0:
            raise ParameterError(
                "sigma_b2",
                f"relu has no edge of chaos with sigma_b2 = "
                f"{sigma_b2:g} > 0: at chi_1 = 1 (sigma_w2 = 2) the variance "
                "grows by sigma_b2 per layer",
            )
        return EdgeOfChaos(activation, 0.0, 2.0, math.nan, chi1(code, 1.0, 2.0))

    def excess(log_sw2):
        sw2 = math.exp(log_sw2)
        q = fixed_point(code, sw2, sigma_b2)
        if q is None:
            return math.inf  # variance explodes: past the edge on the chaotic side
        return chi1(code, q, sw2) - 1.0

    # scan sigma_w^2 on a log grid for the first sign change of chi_1 - 1
    grid = np.linspace(math.log(1e-2), math.log(1e2), 81)
    values = [excess(v) for v in grid]
    for i in range(len(grid) - 1):
        if math.isinf(values[i + 1]):
            # the fixed point disappeared before chi_1 reached 1 (swish, for instance)
            raise ParameterError(
                "sigma_b2",
                f"no edge of chaos for {activation} with sigma_b2 = "
                f"{sigma_b2:g}: the variance explodes for sigma_w2 >= "
                f"{math.exp(grid[i + 1]):.3g} while chi_1 < 1 at the fixed point",
            )
        if values[i] < 0.0 <= values[i + 1]:
            sw2 = math.exp(bisect(excess, grid[i], grid[i + 1]))
            q = fixed_point(code, sw2, sigma_b2)
            return EdgeOfChaos(activation, float(sigma_b2), sw2, q, chi1(code, q, sw2))
    raise ParameterError(
        "sigma_b2",
        f"no edge of chaos found for {activation} with "
        f"sigma_b2 = {sigma_b2:g} (chi_1 - 1 does not change sign for "
        "sigma_w2 in [0.01, 100])",
    )
