"""Activations and model specifications (docs/figures.md, "Conventions" and "Models")."""
import math
from dataclasses import dataclass

import numpy as np

from .fixedmath import sigmoid_parts
from .jit import njit

# Integer codes used inside Numba kernels.
TANH, SWISH, RELU = 0, 1, 2


@dataclass(frozen=True)
class Activation:
    name: str
    code: int
    d1_at_0: float  # phi'(0)
    d2_at_0: float  # phi''(0)

    def __call__(self, x):
        return apply_numpy(self.code, np.asarray(x, dtype=float))


ACTIVATIONS = {
    "tanh": Activation("tanh", TANH, 1.0, 0.0),
    "swish": Activation("swish", SWISH, 0.5, 0.5),
    "relu": Activation("relu", RELU, 1.0, 0.0),  # phi'(0) by the right derivative
}


def activation(name):
    """The :class:`Activation` called ``name``; ``KeyError`` names the known ones."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise KeyError(f"unknown activation {name!r} (known: {', '.join(ACTIVATIONS)})") from None


def apply_numpy(code, x):
    if code == TANH:
        return np.tanh(x)
    if code == SWISH:
        return x / (1.0 + np.exp(-x))
    return np.maximum(x, 0.0)


def derivative_numpy(code, x):
    if code == TANH:
        return 1.0 - np.tanh(x) ** 2
    if code == SWISH:
        s = 1.0 / (1.0 + np.exp(-x))
        return s + x * s * (1.0 - s)
    return (x > 0).astype(float)


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
    for d in range(h.size):
        out[d] = _tanh_pade(min(max(h[d], -TANH_PADE_MAX), TANH_PADE_MAX))
    for d in range(h.size):
        if abs(h[d]) > TANH_PADE_MAX:
            out[d] = math.tanh(h[d])


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
    return x if x > 0.0 else 0.0


@njit(inline="always")
def dphi(code, x):
    if code == TANH:
        t = tanh(x)
        return 1.0 - t * t
    if code == SWISH:
        e, n = sigmoid_parts(x)
        s = n / (1.0 + e)
        return s + x * s * (1.0 - s)
    return 1.0 if x > 0.0 else 0.0
