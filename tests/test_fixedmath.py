"""The fixed elementary functions (resdiff.fixedmath) against libm (numpy), in ulp."""

import numpy as np
import pytest

from resdiff import fixedmath as fm
from resdiff.jit import njit

RNG = np.random.default_rng(20261204)


FLOAT64 = ("exp", "fma")  # apply(name): the float64 forms
FLOAT32 = ("log", "sin", "cos", "sqrt", "fma")  # apply(name + "_f32"): the generator's


@njit(error_model="numpy")
def _apply(code, x, out):
    for i in range(x.size):
        v = x[i]
        if code == 0:
            out[i] = fm.exp_nonpositive(v)
        else:
            out[i] = fm.fma(v, v, -1.0)


@njit(error_model="numpy")
def _apply_f32(code, x, out):
    for i in range(x.size):
        v = x[i]
        if code == 0:
            out[i] = fm.log_f32(v)
        elif code == 1:
            out[i] = fm.sin_kernel_f32(v)
        elif code == 2:
            out[i] = fm.cos_kernel_f32(v)
        elif code == 3:
            out[i] = fm.sqrt_f32(v)
        else:
            out[i] = fm.fma_f32(v, v, np.float32(-1.0))


def apply(name, x):
    """``name`` (one of FLOAT64, or of FLOAT32 with ``_f32``) of each entry of ``x``."""
    if name.endswith("_f32"):
        code, kernel, dtype = FLOAT32.index(name[:-4]), _apply_f32, np.float32
    else:
        code, kernel, dtype = FLOAT64.index(name), _apply, np.float64
    x = np.ascontiguousarray(x, dtype=dtype)
    out = np.empty_like(x)
    kernel(code, x, out)
    return out


def ulps(got, want):
    """|got - want| in units of the last place of ``want`` (the subnormal spacing for
    results below the normal range)."""
    return np.abs(got - want) / np.spacing(np.abs(want))


def ulps_f32(got, want):
    """|got - want| (``want`` float64) in units of the last place of float32 ``want``."""
    spacing = np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
    return np.abs(got.astype(np.float64) - want) / spacing


# the generator's arguments: u on its grid ((k + 1) 2^-24, and (l + 1) 2^-32 below
# 2^-24), the angles at the midpoints of 2^22 cells of [-pi/4, pi/4)
GRID_U = np.concatenate(
    [
        (RNG.integers(0, 2**24, 1_000_000) + 1.0) * 2.0**-24,
        (np.arange(256) + 1.0) * 2.0**-32,
        1.0 - np.arange(0, 20_000) * 2.0**-24,
    ]
).astype(np.float32)
GRID_T = (((np.arange(0, 2**22, 3) + 0.5) * 2.0**-22 - 0.5) * np.float32(np.pi / 2)).astype(
    np.float32
)


def test_log_f32_within_float32_ulps():
    want = np.log(GRID_U.astype(np.float64))
    got = apply("log_f32", GRID_U)
    nonzero = want != 0
    assert ulps_f32(got[nonzero], want[nonzero]).max() <= 1.3
    assert got[~nonzero].tolist() == [0.0]  # log 1 = 0 exactly
    # and on every positive normal float32, not only the grid
    x = (2.0 ** RNG.uniform(-126, 127, 200_000)).astype(np.float32)
    assert ulps_f32(apply("log_f32", x), np.log(x.astype(np.float64))).max() <= 1.3


def test_sin_cos_f32_within_float32_ulps():
    for name, ref in (("sin_f32", np.sin), ("cos_f32", np.cos)):
        want = ref(GRID_T.astype(np.float64))
        nonzero = want != 0
        err = ulps_f32(apply(name, GRID_T)[nonzero], want[nonzero])
        assert err.max() <= 1.3, (name, err.max())


def test_sqrt_and_fma_f32_are_ieee():
    x = RNG.uniform(0, 100, 10_000).astype(np.float32)
    assert np.array_equal(apply("sqrt_f32", x), np.sqrt(x))
    # fused: (1 + 2^-12)^2 - 1 keeps the 2^-24 term that a float32 product rounds away
    v = np.array([1.0 + 2.0**-12], np.float32)
    assert apply("fma_f32", v)[0] == np.float32(2.0**-11 + 2.0**-24)


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


def test_fma_is_fused():
    # 1 + 2^-30 squared minus 1 keeps the 2^-60 term a separate product would drop
    v = np.array([1.0 + 2.0**-30])
    assert apply("fma", v)[0] == 2.0**-29 + 2.0**-60


@pytest.mark.parametrize("name", ["log_f32", "sin_f32", "cos_f32"])
def test_the_float32_ulp_check_has_power(name):
    """A coefficient error of 3e-7 relative (a few float32 ulp) fails the checks above."""
    x = GRID_U[:20_000] if name == "log_f32" else GRID_T[::50]
    ref = {"log_f32": np.log, "sin_f32": np.sin, "cos_f32": np.cos}[name](x.astype(np.float64))
    nonzero = ref != 0
    got = apply(name, x)[nonzero]
    assert ulps_f32(got, ref[nonzero]).max() <= 1.3
    assert ulps_f32(got, ref[nonzero] * (1 + 3e-7)).max() > 1.3


def test_the_ulp_check_has_power():
    """A coefficient error of 1e-15 relative (a few ulp) is what the exp test catches."""
    x = RNG.uniform(-5, 0, 10_000)
    assert ulps(apply("exp", x), np.exp(x) * (1 + 1e-15)).max() > 1.0
