"""The edge-of-chaos solver (resdiff.edge_of_chaos) and `resdiff eoc`.

Checks use an independent quadrature (a fine trapezoid rule on the Gaussian density,
not Gauss-Hermite), so an error in the quadrature or in the root finding shows.
"""

import math

import numpy as np
import pytest

from resdiff.edge_of_chaos import edge_of_chaos, fixed_point
from resdiff.errors import UserError
from resdiff.activations import TANH, apply_numpy, derivative_numpy

_X = np.linspace(-12.0, 12.0, 200001)
_W = np.exp(-0.5 * _X**2) / math.sqrt(2 * math.pi) * (_X[1] - _X[0])


def gauss(f, q):
    """E[f(sqrt(q) Z)] by a fine trapezoid rule (independent of the solver's quadrature)."""
    return float(np.sum(_W * f(math.sqrt(q) * _X)))


def test_tanh_edge_of_chaos_values_and_chi1():
    sol = edge_of_chaos("tanh", 0.05)
    assert sol.sigma_w2 == pytest.approx(1.7610, abs=5e-4)
    assert sol.q_star == pytest.approx(0.570, abs=1e-3)
    # fixed point and chi_1 = 1, checked with the independent quadrature
    v = sol.sigma_w2 * gauss(lambda x: apply_numpy(TANH, x) ** 2, sol.q_star) + 0.05
    chi = sol.sigma_w2 * gauss(lambda x: derivative_numpy(TANH, x) ** 2, sol.q_star)
    assert v == pytest.approx(sol.q_star, abs=1e-9)
    assert chi == pytest.approx(1.0, abs=1e-9)
    # the check is sharp: sigma_w2 off by 1e-4 moves chi_1 by far more than the tolerance
    chi_off = (sol.sigma_w2 + 1e-4) * gauss(
        lambda x: derivative_numpy(TANH, x) ** 2, fixed_point(TANH, sol.sigma_w2 + 1e-4, 0.05)
    )
    assert abs(chi_off - 1.0) > 1e-6


@pytest.mark.parametrize("sigma_b2", [0.0, 0.2, 1.0])
def test_tanh_chi1_is_one_for_other_biases(sigma_b2):
    sol = edge_of_chaos("tanh", sigma_b2)
    assert sol.chi_1 == pytest.approx(1.0, abs=1e-10)
    if sigma_b2 == 0.0:  # the classical point: sigma_w2 = 1, q* = 0
        assert sol.sigma_w2 == pytest.approx(1.0, abs=1e-9)
        assert sol.q_star == pytest.approx(0.0, abs=1e-9)
    else:
        # 200-node Gauss-Hermite converges slowly when sqrt(q*) brings tanh's poles
        # (+-i pi/2) close to the real axis: ~1e-7 at sigma_b2 = 1 (q* ~ 3)
        chi = sol.sigma_w2 * gauss(lambda x: derivative_numpy(TANH, x) ** 2, sol.q_star)
        assert chi == pytest.approx(1.0, abs=1e-6)


def test_relu_edge_of_chaos():
    sol = edge_of_chaos("relu", 0.0)
    assert sol.sigma_w2 == 2.0 and sol.chi_1 == pytest.approx(1.0, abs=1e-12)
    assert math.isnan(sol.q_star)  # every q is a fixed point
    with pytest.raises(UserError, match="no edge of chaos"):
        edge_of_chaos("relu", 0.1)


def test_swish_without_edge_of_chaos_is_a_user_error():
    with pytest.raises(UserError, match="no edge of chaos for swish"):
        edge_of_chaos("swish", 0.05)


def test_cli_prints_sigma_w2_and_q_star(cli, tmp_path):
    res = cli("eoc")
    assert res.returncode == 0, res.stderr
    lines = dict(line.split(" = ") for line in res.stdout.strip().splitlines())
    assert float(lines["sigma_w2"]) == pytest.approx(1.76095, abs=1e-4)
    assert float(lines["q_star"]) == pytest.approx(0.5700, abs=1e-3)
    out = tmp_path / "eoc.csv"
    res = cli("eoc", "--activation", "relu", "--out", out)
    assert res.returncode == 0 and out.exists() and (tmp_path / "eoc.csv.json").exists()
    assert "sigma_w2 = 2" in res.stdout
    res = cli("eoc", "--activation", "swish")
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1 and "no edge of chaos" in res.stderr


def test_hermite_gauss_matches_numpy():
    """The fixed-order Newton solve gives NumPy's (LAPACK) Gauss-Hermite rule."""
    from numpy.polynomial.hermite import hermgauss

    from resdiff.edge_of_chaos import GH_NODES, hermite_gauss

    for n in (5, 60, GH_NODES):
        x, w = hermite_gauss(n)
        ref_x, ref_w = hermgauss(n)
        np.testing.assert_allclose(x, ref_x, rtol=0, atol=1e-13)
        np.testing.assert_allclose(w, ref_w, rtol=1e-10, atol=0)
