"""Activations (resdiff.activations)."""
import math

import numpy as np
import pytest
from numba import njit

from resdiff.activations import ACTIVATIONS, activation, derivative_numpy, dphi, phi, tanh


@njit
def _apply(code, x):
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = phi(code, x[i])
    return out


@njit
def _apply_d(code, x):
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = dphi(code, x[i])
    return out


@njit
def _tanh(x):
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = tanh(x[i])
    return out


def test_fast_tanh_is_within_two_ulp_everywhere():
    x = np.concatenate([np.linspace(-40, 40, 400001), np.geomspace(1e-300, 1.6, 10001)])
    ref = np.tanh(x)
    rel = np.abs(_tanh(x) - ref) / np.maximum(np.abs(ref), 1e-300)
    assert rel.max() < 5e-16


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_kernel_activations_match_numpy(name):
    act = activation(name)
    x = np.linspace(-50, 50, 20001)
    np.testing.assert_allclose(_apply(act.code, x), act(x), rtol=1e-15, atol=1e-300)
    np.testing.assert_allclose(_apply_d(act.code, x), derivative_numpy(act.code, x),
                               rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("name", ["tanh", "swish"])
def test_derivatives_at_zero(name):
    act = activation(name)
    h = 1e-4
    d1 = (act(h) - act(-h)) / (2 * h)
    d2 = (act(h) - 2 * act(0.0) + act(-h)) / h ** 2
    assert d1 == pytest.approx(act.d1_at_0, abs=1e-7)
    assert d2 == pytest.approx(act.d2_at_0, abs=1e-5)


def test_unknown_activation_names_the_known_ones():
    with pytest.raises(KeyError, match="tanh"):
        activation("sigmoid")


def test_swish_does_not_overflow():
    x = np.array([-1000.0, 1000.0])
    assert np.all(np.isfinite(_apply(activation("swish").code, x)))
    assert math.isclose(_apply(activation("swish").code, x)[1], 1000.0)


def test_swish_within_three_ulp_everywhere():
    """The libm-free swish (resdiff.fixedmath's exp) against an 80-bit reference: 3 ulp
    at most, as the same formula with libm's exp (its three roundings), for
    |x| < 708 (below -708, ``e^x`` is subnormal and has fewer bits, with libm's exp as
    with this one)."""
    rs = np.random.default_rng(3)
    x = np.concatenate([np.linspace(-40, 40, 200001), rs.normal(0, 1, 200_000),
                        rs.uniform(-740, -40, 50_000), np.geomspace(1e-300, 1.0, 5001),
                        -np.geomspace(1e-300, 1.0, 5001)])
    xl = x.astype(np.longdouble)
    ref = (xl / (1 + np.exp(-xl))).astype(float)
    got = _apply(activation("swish").code, x)
    normal = np.abs(x) < 708.0
    assert normal.sum() > 400_000
    x, ref, got = x[normal], ref[normal], got[normal]
    ulps = np.abs(got - ref) / np.spacing(np.abs(ref))
    assert ulps.max() <= 3.0, ulps.max()
    assert ulps.mean() < 0.4, ulps.mean()
    # the check has power: a relative error of 1e-15 is more than 3 ulp somewhere
    assert (np.abs(got * (1 + 1e-15) - ref) / np.spacing(np.abs(ref))).max() > 3.0
