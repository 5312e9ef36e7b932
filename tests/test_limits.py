"""Section 5 limits (resdiff.limits)."""
import math

import numpy as np
import pytest

from resdiff import limits
from resdiff.sampling.resnet import resnet_inputs

E = math.e


def _start(z, width=8):
    return limits.initial_moments(resnet_inputs(np.asarray(z, float), width))


def test_closed_form_matches_numerical_ode():
    start = _start([0.0, 1.0, -1.5])
    for sw2, sb2, d1 in [(1.0, 1.0, 1.0), (2.0, 0.3, 1.0), (0.5, 0.0, 0.7)]:
        a = limits.moment_paths(start, sw2, sb2, d1, 0.0)
        b = limits.moment_paths(start, sw2, sb2, d1, 0.0, closed_form=False)
        np.testing.assert_allclose(a.lam, b.lam, rtol=1e-10)
        np.testing.assert_allclose(a.m, b.m, atol=1e-12)


def test_paper_transition_density_for_figure_2():
    start = _start([0.0, 1.0])
    end = limits.moment_paths(start, 1.0, 1.0, 1.0, 0.0)
    mean, cov = limits.transition_gaussian([0.0, 1.0], start, end)
    np.testing.assert_allclose(mean, [0.0, 1.0])
    np.testing.assert_allclose(cov, [[E - 1, E - 1], [E - 1, 2 * (E - 1)]])


def test_swish_ode_matches_rk4_refinement_and_explodes_later_for_small_sigma():
    start = _start([0.0, 1.0])
    a = limits.moment_paths(start, 1.0, 1.0, 0.5, 0.5, steps=2000)
    b = limits.moment_paths(start, 1.0, 1.0, 0.5, 0.5, steps=20000)
    np.testing.assert_allclose(a.lam, b.lam, rtol=1e-9)
    assert a.exploded_at is None
    # m grows (phi''(0) > 0 drift), q grows faster than the phi''(0) = 0 solution
    assert np.all(a.m > start.m)
    lin = limits.moment_paths(start, 1.0, 1.0, 0.5, 0.0)
    assert np.all(a.q > lin.q)


def test_explosion_time_is_where_the_ode_blows_up():
    start = _start([1.0])
    t_exp = limits.explosion_time(start, 4.0, 4.0, 0.5, 0.5)
    assert 0.1 < t_exp < 1.0
    before = limits.moment_paths(start, 4.0, 4.0, 0.5, 0.5, T=0.97 * t_exp)
    after = limits.moment_paths(start, 4.0, 4.0, 0.5, 0.5, T=1.03 * t_exp)
    assert before.exploded_at is None and np.all(np.isfinite(before.q))
    assert after.exploded_at == pytest.approx(t_exp)


def test_ntk_limits_paper_values():
    K_W, K_b = limits.ntk_limits(1.0 * 2.0, 1.0, 1.0, 1.0)
    assert K_W == pytest.approx(2 * E + 1)
    assert K_b == pytest.approx(E - 1)


def test_completed_kernels():
    ntk = limits.completed_kernel("ntk", 1.0, 0.01, 1 / 784)
    assert ntk.slope == pytest.approx(3 * E / 784)
    assert ntk.offset == pytest.approx(0.01 * (E + E - 1))
    nngp = limits.completed_kernel("nngp", 1.0, 0.01, 1 / 784)
    assert nngp.slope == pytest.approx(E / 784)
    assert nngp.offset == pytest.approx(0.01 * (E - 1))


def test_zero_weight_variance_is_the_continuous_limit():
    start = _start([0.5, 1.0])
    for sw2 in (1e-9, 0.0):
        end = limits.moment_paths(start, sw2, 0.3, 1.0, 0.0)
        np.testing.assert_allclose(end.lam, start.lam + 0.3, rtol=1e-8)
    a, b = limits.ntk_limits(2.0, 0.0, 0.3, 1.0), limits.ntk_limits(2.0, 1e-9, 0.3, 1.0)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)
    for kind in ("ntk", "nngp"):
        k0 = limits.completed_kernel(kind, 0.0, 0.3, 0.5)
        k1 = limits.completed_kernel(kind, 1e-9, 0.3, 0.5)
        assert k0.slope == pytest.approx(k1.slope) and k0.offset == pytest.approx(k1.offset)
