"""Activations and model specifications (FIGURES.md, "Conventions" and "Models")."""
import math
from dataclasses import dataclass

import numpy as np
from numba import njit

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
        raise KeyError(f"unknown activation {name!r} (known: {', '.join(ACTIVATIONS)})")


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


@njit(inline="always")
def phi(code, x):
    if code == TANH:
        return math.tanh(x)
    if code == SWISH:
        # x * sigmoid(x), written to avoid overflow of exp for large |x|
        if x >= 0.0:
            return x / (1.0 + math.exp(-x))
        e = math.exp(x)
        return x * e / (1.0 + e)
    return x if x > 0.0 else 0.0


@njit(inline="always")
def dphi(code, x):
    if code == TANH:
        t = math.tanh(x)
        return 1.0 - t * t
    if code == SWISH:
        if x >= 0.0:
            s = 1.0 / (1.0 + math.exp(-x))
        else:
            e = math.exp(x)
            s = e / (1.0 + e)
        return s + x * s * (1.0 - s)
    return 1.0 if x > 0.0 else 0.0
