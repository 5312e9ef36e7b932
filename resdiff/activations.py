"""Activations and model specifications (docs/figures.md, "Conventions" and "Models").

The names, in the order of their integer codes (used inside Numba kernels), are
:data:`resdiff.constraints.ACTIVATIONS`: the one list that the parameter checks, the
command line and the kernels share.

Every activation is computed in a fixed order of IEEE operations, so a kernel gives the
same bits on any x86-64 CPU; libm is called only for ``tanh`` beyond ``|x| > 1.5``.
``exp`` (swish, gelu, erf) is :func:`resdiff.fixedmath.exp_nonpositive`; ``erf`` and
``sin`` are resdiff's own (:func:`erf`, :func:`sin`), not libm's.
"""

import math
from dataclasses import dataclass
from decimal import Decimal, localcontext

import numpy as np

from .constraints import ACTIVATIONS as NAMES
from .fixedmath import exp_nonpositive, fma, sigmoid_parts
from .jit import njit

# Integer codes used inside Numba kernels: the position in NAMES.
TANH, SWISH, RELU, GELU, ERF, SIN, IDENTITY = range(7)
assert NAMES[:7] == ("tanh", "swish", "relu", "gelu", "erf", "sin", "identity")


@dataclass(frozen=True)
class Activation:
    name: str
    code: int
    d1_at_0: float  # phi'(0)
    d2_at_0: float  # phi''(0)

    def __call__(self, x):
        return apply_numpy(self.code, np.asarray(x, dtype=float))


# code -> (phi'(0), phi''(0)); every phi has phi(0) = 0
_AT_0 = {
    TANH: (1.0, 0.0),
    SWISH: (0.5, 0.5),
    RELU: (1.0, 0.0),  # phi'(0) by the right derivative; phi''(0) does not exist
    GELU: (0.5, math.sqrt(2.0 / math.pi)),  # x Phi(x): phi'' = (2 - x^2) N(x)
    ERF: (2.0 / math.sqrt(math.pi), 0.0),
    SIN: (1.0, 0.0),
    IDENTITY: (1.0, 0.0),
}
ACTIVATIONS = {name: Activation(name, code, *_AT_0[code]) for code, name in enumerate(NAMES)}


def activation(name):
    """The :class:`Activation` called ``name``; ``KeyError`` names the known ones."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise KeyError(f"unknown activation {name!r} (known: {', '.join(ACTIVATIONS)})") from None


_np_erf = np.vectorize(math.erf, otypes=[float])
_np_erfc = np.vectorize(math.erfc, otypes=[float])


def _np_normal_pdf(x):
    return np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def apply_numpy(code, x):
    """phi by NumPy and libm: the reference the kernels are tested against."""
    if code == TANH:
        return np.tanh(x)
    if code == SWISH:
        return x / (1.0 + np.exp(-x))
    if code == GELU:
        return x * 0.5 * _np_erfc(-x / math.sqrt(2.0))
    if code == ERF:
        return _np_erf(x)
    if code == SIN:
        return np.sin(x)
    if code == IDENTITY:
        return np.array(x, dtype=float, copy=True)
    return np.maximum(x, 0.0)


def derivative_numpy(code, x):
    """phi' by NumPy and libm."""
    if code == TANH:
        return 1.0 - np.tanh(x) ** 2
    if code == SWISH:
        s = 1.0 / (1.0 + np.exp(-x))
        return s + x * s * (1.0 - s)
    if code == GELU:
        return 0.5 * _np_erfc(-x / math.sqrt(2.0)) + x * _np_normal_pdf(x)
    if code == ERF:
        return 2.0 / math.sqrt(math.pi) * np.exp(-x * x)
    if code == SIN:
        return np.cos(x)
    if code == IDENTITY:
        return np.ones_like(x, dtype=float)
    return (x > 0).astype(float)


def second_derivative_numpy(code, x):
    """phi'' by NumPy and libm (ReLU: 0 away from its kink)."""
    if code == TANH:
        t = np.tanh(x)
        return -2.0 * t * (1.0 - t * t)
    if code == SWISH:
        s = 1.0 / (1.0 + np.exp(-x))
        return s * (1.0 - s) * (2.0 + x * (1.0 - 2.0 * s))
    if code == GELU:
        return (2.0 - x * x) * _np_normal_pdf(x)
    if code == ERF:
        return -4.0 / math.sqrt(math.pi) * x * np.exp(-x * x)
    if code == SIN:
        return -np.sin(x)
    return np.zeros_like(x, dtype=float)


def _tanh_pade_coefficients(n=9):
    """Coefficients (in y = x^2) of Lambert's continued fraction for tanh truncated
    after 2n+1: tanh x ~ x Q(y) / P(y). For n = 9 the relative error is below 5e-16
    (2 ulp) on |x| <= 1.5 (tests/test_models.py)."""
    from numpy.polynomial import polynomial as poly

    a_prev, a, b_prev, b = np.array([1.0]), np.array([1.0]), np.array([0.0]), np.array([1.0])
    for k in range(1, n + 1):
        a_prev, a = a, poly.polyadd((2 * k + 1) * a, poly.polymul([0.0, 1.0], a_prev))
        b_prev, b = b, poly.polyadd((2 * k + 1) * b, poly.polymul([0.0, 1.0], b_prev))
    return tuple(a[::-1]), tuple(b[::-1])  # highest degree first, for Horner


TANH_P, TANH_Q = _tanh_pade_coefficients()
TANH_PADE_MAX = 1.5


@njit(inline="always")
def _tanh_pade(x):
    y = x * x
    p = 0.0
    for c in TANH_P:
        p = p * y + c
    q = 0.0
    for c in TANH_Q:
        q = q * y + c
    return x * q / p


@njit(inline="always")
def tanh(x):
    """tanh to 2 ulp, ~4x faster than libm: Pade form on |x| <= 1.5 (where ResNet
    pre-activations, of variance O(dt), almost always are), libm elsewhere."""
    if abs(x) > TANH_PADE_MAX:
        return math.tanh(x)
    return _tanh_pade(x)


@njit(inline="always")
def tanh_into(h, out):
    """``out[:] = tanh(h)``: a branch-free (SIMD) Pade pass, then libm for the rare
    |h| > 1.5."""
    outside = False
    for d in range(h.size):
        out[d] = _tanh_pade(min(max(h[d], -TANH_PADE_MAX), TANH_PADE_MAX))
        outside |= abs(h[d]) > TANH_PADE_MAX  # a branch-free OR, in the same SIMD pass
    if outside:
        for d in range(h.size):
            if abs(h[d]) > TANH_PADE_MAX:
                out[d] = math.tanh(h[d])


# --- erf: Taylor series and continued fraction, exp by resdiff.fixedmath ----------------
ERF_SERIES_MAX = 1.5  # |x| below: Taylor series; above: the continued fraction of erfc
ERF_ONE = 6.0  # erfc(6) = 2.2e-17 is below half an ulp of 1: erf = +-1 beyond
ERFC_CF_DEPTH = 100  # relative error of the fraction below 1e-16 from x = 1.25 on
VELTKAMP = 134217729.0  # 2^27 + 1: splits a double into two 26-bit halves
EXP_SMALL_MAX = 2.0**-15  # the bound on exp(a)'s argument in _exp_minus_square
TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
INV_SQRT_PI = 1.0 / math.sqrt(math.pi)
INV_SQRT_2 = 1.0 / math.sqrt(2.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
# erf x = x E(x^2), E(y) = 2/sqrt(pi) sum_n (-y)^n / (n! (2n + 1)), highest degree first;
# at |x| = 1.5 the first omitted term is 4e-19
ERF_TAYLOR = tuple(
    TWO_OVER_SQRT_PI * (-1.0) ** n / (math.factorial(n) * (2 * n + 1)) for n in range(30, -1, -1)
)


@njit(inline="always")
def _exp_minus_square(x):
    """exp(-x^2) without the rounding of x^2: x = hi + lo (Veltkamp), hi^2 exact, so
    exp(-x^2) = exp(-hi^2) exp(a) with a = -lo (x + hi), |a| <= 2^-25 x^2. exp(-hi^2) by
    fixedmath's exp; exp(a) by 1 + a + a^2/2 + a^3/6: where exp(-hi^2) is not 0
    (x^2 < 746), |a| < 2^-15 and the omitted a^4/24 is below 2^-64. a is clamped so a
    huge x gives 0, not 0 * inf."""
    c = VELTKAMP * x
    hi = c - (c - x)
    lo = x - hi
    a = min(max(-lo * (x + hi), -EXP_SMALL_MAX), EXP_SMALL_MAX)
    return exp_nonpositive(-hi * hi) * fma(fma(fma(a, 1.0 / 6.0, 0.5), a, 1.0), a, 1.0)


@njit(inline="always")
def _erf_series(a):
    """erf(a), |a| < 1.5, by its Taylor series (Horner in a^2)."""
    y = a * a
    p = 0.0
    for c in ERF_TAYLOR:
        p = p * y + c
    return a * p


@njit(inline="always")
def _erfc_fraction(a):
    """erfc(a), a >= 1.5: e^{-a^2} / sqrt(pi) / (a + (1/2) / (a + 1 / (a + (3/2) / ...)))."""
    f = a
    for n in range(ERFC_CF_DEPTH, 0, -1):
        f = a + (0.5 * n) / f
    return INV_SQRT_PI * _exp_minus_square(a) / f


@njit(inline="always")
def erfc_nonneg(a):
    """erfc(a) for a >= 0 (0 for a huge, NaN for NaN)."""
    if a < ERF_SERIES_MAX:
        return 1.0 - _erf_series(a)
    if a > 27.3:  # e^{-a^2} underflows
        return 0.0
    return _erfc_fraction(a)


@njit(inline="always")
def erf(x):
    """erf to a few ulp (tests/test_activations.py): resdiff's own, not libm's."""
    a = abs(x)
    if a < ERF_SERIES_MAX:
        r = _erf_series(a)
    elif a < ERF_ONE:
        r = 1.0 - _erfc_fraction(a)
    elif a >= ERF_ONE:
        r = 1.0
    else:
        return x  # NaN
    return r if x >= 0.0 else -r


@njit(inline="always")
def normal_cdf(x):
    """Phi(x) = erfc(-x / sqrt 2) / 2, accurate in the left tail too."""
    u = x * INV_SQRT_2
    if u < 0.0:
        return 0.5 * erfc_nonneg(-u)
    return 1.0 - 0.5 * erfc_nonneg(u)


# --- sin: Cody-Waite reduction by pi/2 in three parts, Taylor kernels on |r| <= pi/4 ------
def _pio2_parts():
    """pi/2 = P1 + P2 + P3 with P1, P2 of 33 significant bits, so k P1 and k P2 are exact
    for |k| < 2^20 (the reduction is then accurate to |x| < 2^20 pi/2 ~ 1.6e6)."""
    with localcontext() as ctx:
        ctx.prec = 80
        rest = Decimal("1.57079632679489661923132169163975144209858469968755291048747229615")
        parts = []
        for _ in range(2):
            exponent = math.frexp(float(rest))[1]
            scale = Decimal(2) ** (33 - exponent)
            part = float(int(rest * scale) / scale)
            parts.append(part)
            rest -= Decimal(part)
        parts.append(float(rest))
    return tuple(parts)


PIO2_1, PIO2_2, PIO2_3 = _pio2_parts()
TWO_OVER_PI = 2.0 / math.pi
# Taylor coefficients, highest degree first: sin r = r + r^3 S(r^2), cos r = 1 + r^2 C(r^2);
# on |r| <= pi/4 the first omitted terms are below 1e-19
SIN_TAYLOR = tuple((-1.0) ** k / math.factorial(2 * k + 1) for k in range(8, 0, -1))
COS_TAYLOR = tuple((-1.0) ** k / math.factorial(2 * k) for k in range(9, 0, -1))


@njit(inline="always")
def _sin_kernel(r):
    y = r * r
    p = 0.0
    for c in SIN_TAYLOR:
        p = p * y + c
    return r + r * y * p


@njit(inline="always")
def _cos_kernel(r):
    y = r * r
    p = 0.0
    for c in COS_TAYLOR:
        p = p * y + c
    return 1.0 + y * p


@njit(inline="always")
def _quadrant_sin(x, shift):
    """sin(x + shift pi/2): resdiff's own sin (shift 0) and cos (shift 1)."""
    if not math.isfinite(x):
        return x - x  # NaN
    k = math.floor(x * TWO_OVER_PI + 0.5)
    r = ((x - k * PIO2_1) - k * PIO2_2) - k * PIO2_3
    # k mod 4 in floating point: exact, and defined for every finite k
    quadrant = (np.int64(k - 4.0 * math.floor(0.25 * k)) + shift) & 3
    if quadrant == 0:
        return _sin_kernel(r)
    if quadrant == 1:
        return _cos_kernel(r)
    if quadrant == 2:
        return -_sin_kernel(r)
    return -_cos_kernel(r)


@njit(inline="always")
def sin(x):
    return _quadrant_sin(x, 0)


@njit(inline="always")
def cos(x):
    return _quadrant_sin(x, 1)


@njit(inline="always")
def swish(x):
    """``x sigmoid(x)`` to 3 ulp (as with libm's exp), without libm or branch (SIMD):
    ``x / (1 + e)`` for ``x >= 0`` and ``x e / (1 + e)`` below, ``e = exp(-|x|)`` by
    :func:`resdiff.fixedmath.exp_nonpositive`, so no ``exp`` overflows."""
    e, n = sigmoid_parts(x)
    return x * n / (1.0 + e)


@njit(inline="always")
def phi(code, x):
    if code == TANH:
        return tanh(x)
    if code == SWISH:
        return swish(x)
    if code == GELU:
        return x * normal_cdf(x)
    if code == ERF:
        return erf(x)
    if code == SIN:
        return sin(x)
    if code == IDENTITY:
        return x
    return x if x > 0.0 else 0.0


@njit(inline="always")
def _phi_loop(code, h, out):
    for d in range(h.size):
        out[d] = phi(code, h[d])


@njit(inline="always")
def phi_into(code, h, out):
    """``out[:] = phi(h)`` (1-D arrays) with the activation chosen once, outside the
    loop: each loop is then compiled for one activation (the same bits as :func:`phi`),
    and those without libm calls run in SIMD lanes. A loop over :func:`phi` with a code
    known only at run time carries every activation's code in its body and is several
    times slower."""
    if code == TANH:
        tanh_into(h, out)
    elif code == SWISH:
        _phi_loop(SWISH, h, out)
    elif code == GELU:
        _phi_loop(GELU, h, out)
    elif code == ERF:
        _phi_loop(ERF, h, out)
    elif code == SIN:
        _phi_loop(SIN, h, out)
    elif code == IDENTITY:
        _phi_loop(IDENTITY, h, out)
    else:
        _phi_loop(RELU, h, out)


@njit(inline="always")
def dphi(code, x):
    if code == TANH:
        t = tanh(x)
        return 1.0 - t * t
    if code == SWISH:
        e, n = sigmoid_parts(x)
        s = n / (1.0 + e)
        return s + x * s * (1.0 - s)
    if code == GELU:
        return normal_cdf(x) + x * INV_SQRT_2PI * exp_nonpositive(-0.5 * x * x)
    if code == ERF:
        return TWO_OVER_SQRT_PI * _exp_minus_square(x)
    if code == SIN:
        return cos(x)
    if code == IDENTITY:
        return 1.0
    return 1.0 if x > 0.0 else 0.0
