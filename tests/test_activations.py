"""Activations (resdiff.activations)."""

import math

import numpy as np
import pytest
from numba import njit

from resdiff import constraints
from resdiff.activations import (
    ACTIVATIONS,
    activation,
    cos,
    derivative_numpy,
    dphi,
    erf,
    phi,
    phi_into,
    second_derivative_numpy,
    sin,
    tanh,
)


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
    # gelu's left tail: Phi(x) from erfc(-x / sqrt 2) rounds differently in each (the
    # division by sqrt 2 against a product by 1 / sqrt 2), ~1e-15 absolute
    atol = 4e-15 if name == "gelu" else 1e-300
    np.testing.assert_allclose(_apply(act.code, x), act(x), rtol=1e-15, atol=atol)
    np.testing.assert_allclose(
        _apply_d(act.code, x), derivative_numpy(act.code, x), rtol=1e-14, atol=1e-15
    )


SMOOTH = [n for n in ACTIVATIONS if n != "relu"]


@pytest.mark.parametrize("name", SMOOTH)
def test_derivatives_at_zero(name):
    """phi(0) = 0 and the recorded phi'(0), phi''(0) (phi''(0) decides explosion,
    Proposition 5.1) against central differences of the kernel's phi."""
    act = activation(name)
    h = 1e-4
    x = np.array([-h, 0.0, h])
    f = _apply(act.code, x)
    assert f[1] == 0.0
    d1 = (f[2] - f[0]) / (2 * h)
    d2 = (f[2] - 2 * f[1] + f[0]) / h**2
    assert d1 == pytest.approx(act.d1_at_0, abs=1e-7)
    assert d2 == pytest.approx(act.d2_at_0, abs=1e-5)
    assert second_derivative_numpy(act.code, np.array(0.0)) == pytest.approx(act.d2_at_0, abs=1e-15)


def test_the_derivative_check_rejects_a_wrong_second_derivative():
    """Power of the check above: gelu with the phi''(0) of swish fails it."""
    f = _apply(activation("gelu").code, np.array([-1e-4, 0.0, 1e-4]))
    d2 = (f[2] - 2 * f[1] + f[0]) / 1e-8
    assert d2 != pytest.approx(activation("swish").d2_at_0, abs=1e-5)


@pytest.mark.parametrize("name", SMOOTH)
def test_second_derivatives_match_differences_of_the_first(name):
    act = activation(name)
    x = np.linspace(-6, 6, 1201)
    h = 1e-5
    diff = (_apply_d(act.code, x + h) - _apply_d(act.code, x - h)) / (2 * h)
    np.testing.assert_allclose(second_derivative_numpy(act.code, x), diff, atol=2e-9)


def test_one_list_of_names():
    """The parameter checks, the CLI and the kernels share resdiff.constraints' tuple;
    the codes are positions in it."""
    assert tuple(ACTIVATIONS) == constraints.ACTIVATIONS
    assert [a.code for a in ACTIVATIONS.values()] == list(range(len(ACTIVATIONS)))


def _ulps(got, ref):
    return np.max(np.abs(got - ref) / np.spacing(np.maximum(np.abs(ref), 1e-300)))


@njit
def _erf(x):
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = erf(x[i])
    return out


@njit
def _sincos(x):
    out = np.empty((2, x.size))
    for i in range(x.size):
        out[0, i] = sin(x[i])
        out[1, i] = cos(x[i])
    return out


def test_own_erf_is_within_three_ulp_of_libm():
    x = np.concatenate([np.linspace(-8, 8, 160001), np.geomspace(1e-300, 2, 5001)])
    ref = np.array([math.erf(v) for v in x])
    assert _ulps(_erf(x), ref) <= 3
    assert np.isnan(_erf(np.array([np.nan]))[0])
    assert list(_erf(np.array([-np.inf, np.inf]))) == [-1.0, 1.0]


def test_own_sin_and_cos_are_within_one_ulp_of_libm():
    x = np.concatenate([np.linspace(-1e4, 1e4, 400001), np.geomspace(1e-300, 1e6, 5001)])
    s, c = _sincos(x)
    assert np.max(np.abs(s - np.sin(x))) <= 2.3e-16
    assert np.max(np.abs(c - np.cos(x))) <= 2.3e-16
    tiny = np.geomspace(1e-300, 1e-3, 1001)
    assert _ulps(_sincos(tiny)[0], np.sin(tiny)) <= 1
    assert np.isnan(_sincos(np.array([np.inf]))).all()


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
    x = np.concatenate(
        [
            np.linspace(-40, 40, 200001),
            rs.normal(0, 1, 200_000),
            rs.uniform(-740, -40, 50_000),
            np.geomspace(1e-300, 1.0, 5001),
            -np.geomspace(1e-300, 1.0, 5001),
        ]
    )
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


@njit(error_model="numpy")
def _phi_into(code, x):
    out = np.empty_like(x)
    phi_into(code, x, out)
    return out


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_phi_into_has_the_bits_of_phi(name):
    """The row form the samplers use (the activation chosen outside the loop) gives
    phi's bits everywhere, tanh's libm range, infinities and NaN included."""
    rng = np.random.default_rng(5)
    x = np.concatenate(
        [rng.standard_normal(997) * 10.0 ** rng.uniform(-8, 2, 997), [0.0, -0.0, 1.5, -1.6]]
    )
    x = np.concatenate([x, [np.inf, -np.inf, np.nan, 800.0, -800.0]])
    code = activation(name).code
    assert _phi_into(code, x).tobytes() == _apply(code, x).tobytes()
