"""The fixed elementary functions (resdiff.fixedmath) against libm (numpy), in ulp."""

import numpy as np
import pytest

from resdiff import fixedmath as fm
from resdiff.jit import njit

RNG = np.random.default_rng(20261204)


@njit(error_model="numpy")
def _apply(code, x, out):
    for i in range(x.size):
        v = x[i]
        if code == 0:
            out[i] = fm.log_normal(v)
        elif code == 1:
            out[i] = fm.sin_kernel(v)
        elif code == 2:
            out[i] = fm.cos_kernel(v)
        elif code == 3:
            out[i] = fm.exp_nonpositive(v)
        elif code == 4:
            out[i] = fm.sqrt(v)
        else:
            out[i] = fm.fma(v, v, -1.0)


def apply(name, x):
    code = ["log", "sin", "cos", "exp", "sqrt", "fma"].index(name)
    x = np.ascontiguousarray(x, dtype=float)
    out = np.empty_like(x)
    _apply(code, x, out)
    return out


def ulps(got, want):
    """|got - want| in units of the last place of ``want`` (the subnormal spacing for
    results below the normal range)."""
    return np.abs(got - want) / np.spacing(np.abs(want))


def test_log_within_one_ulp():
    # the generator's arguments: u in [2^-40, 1], and positive normals of every exponent
    u = np.concatenate(
        [
            (RNG.integers(0, 2**40, 400_000) + 1.0) * 2.0**-40,
            2.0 ** RNG.uniform(-1022, 1023, 100_000),
            1.0 + RNG.uniform(-1e-3, 1e-3, 50_000),
            [1.0, np.sqrt(2.0)],
        ]
    )
    err = ulps(apply("log", u), np.log(u))
    assert err.max() <= 1.0, err.max()
    assert apply("log", np.array([1.0]))[0] == 0.0


def test_sin_cos_within_one_ulp():
    t = np.concatenate(
        [
            RNG.uniform(-np.pi / 4, np.pi / 4, 500_000),
            RNG.uniform(-1e-4, 1e-4, 10_000),
            [0.0, -np.pi / 4],
        ]
    )
    for name, ref in (("sin", np.sin), ("cos", np.cos)):
        err = ulps(apply(name, t), ref(t))
        assert err.max() <= 1.0, (name, err.max())


def test_exp_within_one_ulp_and_its_edges():
    x = np.concatenate(
        [
            -RNG.exponential(5.0, 300_000),
            RNG.uniform(-745.5, 0, 300_000),
            RNG.uniform(-745.2, -708, 50_000),
            [0.0, -0.0, -1e-300],
        ]
    )
    got, want = apply("exp", x), np.exp(x)
    assert ulps(got, want).max() <= 1.0, ulps(got, want).max()
    edge = apply("exp", np.array([-745.0, -745.2, -746.5, -np.inf, np.nan]))
    assert edge[0] == np.exp(-745.0) > 0 and edge[1] == 0.0 and edge[2] == 0.0
    assert edge[3] == 0.0 and np.isnan(edge[4])


def test_sqrt_and_fma_are_ieee():
    x = RNG.uniform(0, 100, 10_000)
    assert np.array_equal(apply("sqrt", x), np.sqrt(x))
    # fused: 1 + 2^-30 squared minus 1 keeps the 2^-60 term a separate product would drop
    v = np.array([1.0 + 2.0**-30])
    assert apply("fma", v)[0] == 2.0**-29 + 2.0**-60


@pytest.mark.parametrize("name", ["log", "sin", "cos", "exp"])
def test_the_ulp_check_has_power(name):
    """A coefficient error of 1e-15 relative (a few ulp) is what these tests catch:
    the same comparison against a perturbed reference fails."""
    x = {
        "log": RNG.uniform(0.5, 2.0, 10_000),
        "sin": RNG.uniform(0.3, 0.78, 10_000),
        "cos": RNG.uniform(0.3, 0.78, 10_000),
        "exp": RNG.uniform(-5, 0, 10_000),
    }[name]
    ref = {"log": np.log, "sin": np.sin, "cos": np.cos, "exp": np.exp}[name](x)
    assert ulps(apply(name, x), ref * (1 + 1e-15)).max() > 1.0
