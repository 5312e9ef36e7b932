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


def _tan_solution(z, sw2, sb2, T, d1=0.5, d2=0.5):
    """``(m_T, q_T, explosion time)`` from eq. (31)-(32), the paper's closed form for
    phi''(0) != 0, for ``x_0 = z 1_D``; written independently of resdiff.limits through
    ``u = phi''(0) m + phi'(0)^2``: ``du/dt = (sigma_w^2 u^2 + A) / 2`` with
    ``q = u^2 / phi''(0)^2 + c`` and ``A = phi''(0)^2 (sigma_b^2 + sigma_w^2 c) > 0``, so
    ``u = (sqrt(A)/sigma_w) tan(sigma_w sqrt(A) t / 2 + theta_0)``."""
    u0 = d2 * z + d1**2
    c = z**2 - u0**2 / d2**2
    A = d2**2 * (sb2 + sw2 * c)
    assert A > 0  # the tan branch of eq. (31)
    sw, r = math.sqrt(sw2), math.sqrt(A)
    theta0 = math.atan(sw * u0 / r)
    u = r / sw * math.tan(0.5 * sw * r * T + theta0)
    return (u - d1**2) / d2, u**2 / d2**2 + c, (math.pi / 2 - theta0) * 2 / (sw * r)


def test_swish_ode_matches_the_papers_closed_form():
    z = [-1.0, 0.0, 0.5]
    end = limits.moment_paths(_start(z), 1.0, 1.0, 0.5, 0.5)
    for i, zi in enumerate(z):
        m_T, q_T, _ = _tan_solution(zi, 1.0, 1.0, 1.0)
        assert end.m[i] == pytest.approx(m_T, rel=1e-9)
        assert end.q[i] == pytest.approx(q_T, rel=1e-9)
        assert end.lam[i, i] == pytest.approx(q_T, rel=1e-9)  # d lambda on the diagonal
    # off the diagonal, Proposition 5.1's d lambda is linear in lambda given m and q:
    # lambda_T = e^{kT} lambda_0 + int_0^T e^{k(T-t)} a(t) dt, k = phi'(0)^2 sigma_w^2,
    # a = phi''(0)/2 (s_i m_j + s_j m_i) + phi'(0)^2 sigma_b^2, s = sigma_b^2 + sigma_w^2 q
    from scipy.integrate import quad

    def a(t, i, j):
        (mi, qi, _), (mj, qj, _) = _tan_solution(z[i], 1, 1, t), _tan_solution(z[j], 1, 1, t)
        return 0.25 * ((1 + qi) * mj + (1 + qj) * mi) + 0.25

    for i, j in ((0, 1), (0, 2), (1, 2)):
        k = 0.25
        lam_T = (
            math.exp(k) * z[i] * z[j]
            + quad(lambda t, k=k, i=i, j=j: math.exp(k * (1 - t)) * a(t, i, j), 0, 1, epsabs=1e-13)[
                0
            ]
        )
        assert end.lam[i, j] == pytest.approx(lam_T, rel=1e-8)
        assert end.lam[j, i] == pytest.approx(lam_T, rel=1e-8)
    # where the tan reaches pi/2 the ODE explodes: eq. (31)-(32) give the time
    t_exp = _tan_solution(0.0, 9.0, 9.0, 0.0)[2]
    assert t_exp == pytest.approx(2 * (math.pi / 3) / (3 * math.sqrt(1.6875)))
    assert limits.explosion_time(_start([0.0]), 9.0, 9.0, 0.5, 0.5) == pytest.approx(
        t_exp, rel=1e-3
    )
    assert limits.moment_paths(_start([0.0]), 9.0, 9.0, 0.5, 0.5).exploded_at is not None


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
