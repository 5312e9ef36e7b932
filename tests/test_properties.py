"""Hypothesis property tests of the pure functions."""

import math

import numpy as np
from hypothesis import given, settings, strategies as st

from resdiff import limits
from resdiff.sampling.resnet import resnet_inputs

zs = st.lists(st.floats(-3, 3, allow_nan=False), min_size=2, max_size=4)
variance = st.floats(0.0, 3.0, allow_nan=False)
positive = st.floats(0.05, 3.0, allow_nan=False)


def _start(z):
    return limits.initial_moments(resnet_inputs(np.asarray(z, float), 6))


@settings(max_examples=60, deadline=None)
@given(
    z=zs,
    sw2=positive,
    sb2=variance,
    d1=st.floats(0.1, 1.5),
    t1=st.floats(0.05, 1.0),
    t2=st.floats(0.05, 1.0),
)
def test_transition_covariance_is_psd_and_grows_with_T(z, sw2, sb2, d1, t1, t2):
    start = _start(z)
    lo, hi = sorted((t1, t2))
    covs = []
    for T in (lo, hi):
        end = limits.moment_paths(start, sw2, sb2, d1, 0.0, T=T)
        _, cov = limits.transition_gaussian(start.m, start, end)
        assert np.allclose(cov, cov.T)
        assert np.linalg.eigvalsh(cov).min() > -1e-9 * max(1.0, np.abs(cov).max())
        covs.append(cov)
    # the covariance only accumulates: Cov(T2) - Cov(T1) is PSD
    diff = covs[1] - covs[0]
    assert np.linalg.eigvalsh(diff).min() > -1e-9 * max(1.0, np.abs(diff).max())


@settings(max_examples=40, deadline=None)
@given(z=zs, sw2=positive, sb2=variance)
def test_limits_are_symmetric_in_the_inputs(z, sw2, sb2):
    start, rev = _start(z), _start(z[::-1])
    a = limits.moment_paths(start, sw2, sb2, 0.5, 0.5, steps=400)
    b = limits.moment_paths(rev, sw2, sb2, 0.5, 0.5, steps=400)
    if a.exploded_at is None:
        np.testing.assert_allclose(a.lam, b.lam[::-1, ::-1], rtol=1e-12, atol=1e-12)
    K = limits.ntk_limits(z[0] * z[1], sw2, sb2, 1.0)
    K_rev = limits.ntk_limits(z[1] * z[0], sw2, sb2, 1.0)
    assert K == K_rev


@settings(max_examples=40, deadline=None)
@given(sw2=positive, sb2=variance, T1=st.floats(0.05, 1.0), T2=st.floats(0.05, 1.0))
def test_ntk_limits_increase_with_T(sw2, sb2, T1, T2):
    lo, hi = sorted((T1, T2))
    a, b = limits.ntk_limits(1.0, sw2, sb2, 1.0, T=lo), limits.ntk_limits(1.0, sw2, sb2, 1.0, T=hi)
    assert b[0] >= a[0] - 1e-12 and b[1] >= a[1] - 1e-12
    assert a[1] >= 0 and math.isfinite(a[0])
