"""The ResNet recursion (eq. 26), its exact Gram sampler and the Euler scheme of the
limiting SDE (eq. 29), against each other and against exact moments.

Tolerances: |z| < 4.5 on every statistic (tests/conftest.py: max_abs_z), so a correct
implementation fails with probability ~1e-5 per statistic; KS tests use alpha = 1e-4.
Each test also shows that a deliberately wrong scaling is rejected.
"""

import math

import numpy as np
import pytest
from scipy import stats

from resdiff import limits, rng
from resdiff.activations import activation
from resdiff.sampling.resnet import RESNET, SDE, explicit_outputs, gram_outputs, resnet_inputs
from resdiff.sampling.linalg import pivoted_cholesky
from tests.conftest import Z_CRIT, max_abs_z

TANH = activation("tanh")
SWISH = activation("swish")
ALPHA = 1e-4


def gram(z, depth, width, draws, sw2=1.0, sb2=1.0, act=TANH, mode=RESNET, seed=0):
    key = rng.stream_key(seed, f"test/{mode}")
    return gram_outputs(
        key,
        0,
        draws,
        resnet_inputs(np.asarray(z, float), width),
        depth,
        sw2,
        sb2,
        act.code,
        act.d1_at_0,
        act.d2_at_0,
        mode,
        0,
    )


def euler_moments(z, depth, sw2, sb2, d1=1.0):
    """Exact mean and covariance of x_{T,1} under the Euler scheme (phi''(0) = 0).

    E[lambda_{k+1}] = E[lambda_k] + d1^2 dt (sw2 E[lambda_k] + sb2), whatever D, so
    Cov(x_T,1(z_i), x_T,1(z_j)) = (lambda_0 + sb2/sw2) ((1 + d1^2 sw2 dt)^L - 1).
    """
    z = np.asarray(z, float)
    lam0 = np.outer(z, z)
    growth = (1 + d1**2 * sw2 / depth) ** depth - 1
    return z, (lam0 + sb2 / sw2) * growth


def test_pivoted_cholesky_on_singular_matrices():
    rs = np.random.default_rng(0)
    for n, rank in [(5, 5), (6, 2), (4, 0), (3, 1)]:
        B = rs.standard_normal((n, rank))
        S = B @ B.T
        F = np.empty((n, n))
        k = pivoted_cholesky(S, F, 1e-13)
        assert k == rank
        np.testing.assert_allclose(F[:, :k] @ F[:, :k].T, S, atol=1e-12)


@pytest.mark.parametrize("depth,width", [(20, 5), (50, 30)])
def test_sde_matches_exact_euler_moments(depth, width):
    z = [0.0, 1.0, -0.5]
    y = gram(z, depth, width, 20000, mode=SDE)
    mean, cov = euler_moments(z, depth, 1.0, 1.0)
    assert max_abs_z(y, mean, cov) < Z_CRIT


def test_wrong_scaling_fails_the_moment_check():
    """dt instead of sqrt(dt) on the weights and biases (variances scaled by dt^2):
    the same check must reject it."""
    depth, width, z = 20, 5, [0.0, 1.0]
    dt = 1.0 / depth
    y = gram(z, depth, width, 20000, sw2=dt, sb2=dt, mode=SDE)  # variance dt*dt
    mean, cov = euler_moments(z, depth, 1.0, 1.0)
    assert max_abs_z(y, mean, cov) > 10 * Z_CRIT


def test_gram_sampler_matches_explicit_weights_in_distribution():
    """Exact identity in distribution: KS on each input and on a linear combination."""
    z = np.array([0.0, 1.0, 2.0])
    depth, width, draws = 12, 6, 6000
    x0 = resnet_inputs(z, width)
    y_g = gram(z, depth, width, draws)
    y_e = explicit_outputs(
        rng.stream_key(0, "test/explicit"), 0, draws, x0, depth, 1.0, 1.0, TANH.code, 0
    )
    for col in range(3):
        assert stats.ks_2samp(y_g[:, col], y_e[:, col]).pvalue > ALPHA
    assert stats.ks_2samp(y_g[:, 2] - y_g[:, 1], y_e[:, 2] - y_e[:, 1]).pvalue > ALPHA


def test_gram_sampler_ks_detects_a_wrong_width_scaling():
    """Power of the check above: sigma_w / D instead of sigma_w / sqrt(D) is rejected."""
    z = np.array([2.0])
    depth, width, draws = 12, 6, 6000
    x0 = resnet_inputs(z, width)
    y_wrong = gram(z, depth, width, draws, sw2=1.0 / width)
    y_e = explicit_outputs(
        rng.stream_key(0, "test/explicit"), 0, draws, x0, depth, 1.0, 1.0, TANH.code, 0
    )
    assert stats.ks_2samp(y_wrong[:, 0], y_e[:, 0]).pvalue < ALPHA


def test_resnet_converges_to_sde_as_depth_grows():
    """At fixed D the ResNet tends to the SDE as L grows (gap O(1/L)): agreement at
    L = 1600, and a detectable gap (tanh shrinks the variance) at L = 10."""
    z, width = [0.0, 1.0], 4
    deep_r = gram(z, 1600, width, 20000, seed=1)
    mean, cov = euler_moments(z, 1600, 1.0, 1.0)
    assert max_abs_z(deep_r, mean, cov) < Z_CRIT
    shallow = gram(z, 10, width, 20000, seed=2)
    mean, cov = euler_moments(z, 10, 1.0, 1.0)
    assert max_abs_z(shallow, mean, cov) > Z_CRIT
    assert shallow[:, 1].var() < cov[1, 1]


def test_large_width_matches_transition_density():
    """eq. (34) for the SDE at large D and L; the Euler bias is removed exactly by
    comparing with (1 + 1/L)^L in place of e."""
    z, depth = [0.0, 1.0], 200
    y = gram(z, depth, 200, 4000, mode=SDE, seed=3)
    start = limits.initial_moments(resnet_inputs(np.array(z), 200))
    end = limits.moment_paths(start, 1.0, 1.0, 1.0, 0.0)
    mean, cov = limits.transition_gaussian(z, start, end)
    scale = ((1 + 1 / depth) ** depth - 1) / (math.e - 1)
    assert max_abs_z(y, mean, cov * scale) < Z_CRIT


@pytest.mark.parametrize("mode,sw2,depth", [(SDE, 60.0, 40), (RESNET, 1e4, 300)])
def test_swish_divergence_is_reported_as_nan_rows(mode, sw2, depth):
    """The SDE's phi''(0)/2 q drift explodes in finite time; the ResNet's swish only
    grows geometrically, so it overflows only for huge sigma_w^2."""
    y = gram([3.0], depth, 10, 200, sw2=sw2, sb2=sw2, act=SWISH, mode=mode)
    bad = ~np.isfinite(y).all(axis=1)
    assert bad.any()
    assert np.all(np.isnan(y[bad]))


def test_draws_do_not_depend_on_chunking():
    z = resnet_inputs(np.array([0.5, 1.0]), 8)
    key = rng.stream_key(7, "test/chunks")
    args = (z, 10, 1.0, 1.0, TANH.code, 1.0, 0.0, RESNET, 0)
    whole = gram_outputs(key, 0, 30, *args)
    parts = np.concatenate([gram_outputs(key, 0, 11, *args), gram_outputs(key, 11, 19, *args)])
    assert np.array_equal(whole, parts)


@pytest.mark.parametrize(
    "sampler,mode,sw2", [("gram", RESNET, 1.0), ("explicit", RESNET, 1.0), ("gram", SDE, 2.0)]
)
def test_draws_do_not_depend_on_layer_chunks(sampler, mode, sw2):
    """A run cut into chunks of layers (states and generators carried between them) gives
    the same bits as one call; the swish SDE at sigma^2 = 2 diverges in part, which
    checks the alive flags."""
    from resdiff.sampling import driver
    from resdiff.sampling.resnet import stepper

    z = resnet_inputs(np.array([-1.0, 0.5, 3.0]), 10)
    key = rng.stream_key(7, "test/layer-chunks")
    kernel = stepper(sampler, key, z, 40, sw2, sw2, SWISH.code, 0.5, 0.5, mode)
    whole = kernel(0, 40, 0, 40, {})
    for chunk, layers in ((40, 1), (7, 6), (3, 40)):
        parts = driver.run_chunked(kernel, 40, "test", chunk, 40, layers)
        np.testing.assert_array_equal(parts, whole)
    if mode == SDE:
        assert np.isnan(whole).any() and np.isfinite(whole).any()
