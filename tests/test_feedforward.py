"""The feedforward network E_phi (resdiff.sampling.feedforward): lazy pivoted Cholesky,
Gram sampler against explicit weights and against exact kernels, the conditional law,
exact ReLU homogeneity, and the Figure 1 effect (tanh at the edge of chaos forgets z).

Tolerances: |z| < 4.5 per statistic (false-failure rate ~7e-6 each, tests/conftest.py);
two-sample KS tests at alpha = 1e-4. Each statistical test also shows that a wrong
variance is rejected.
"""

import math

import numba
import numpy as np
import pytest
from scipy import stats

from resdiff import rng
from resdiff.edge_of_chaos import edge_of_chaos
from resdiff.activations import RELU, SWISH, TANH
from resdiff.sampling import feedforward as ff
from resdiff.sampling.linalg import pivoted_cholesky
from tests.conftest import Z_CRIT, max_abs_z

ALPHA = 1e-4
SW2_EOC = edge_of_chaos("tanh", 0.05).sigma_w2


def paths(
    sampler,
    z,
    depth,
    width,
    draws,
    sw2,
    sb2,
    act,
    seed=0,
    cov=False,
    start=0,
    key=None,
    bound=np.inf,
):
    """``(y, var, cov_sum, rank)`` of draws ``start .. start + draws - 1``."""
    fn = ff.gram_paths if sampler == "gram" else ff.explicit_paths
    key = rng.stream_key(seed, f"test-ff/{sampler}") if key is None else key
    n = len(np.atleast_1d(z))
    cov_sum = np.zeros((n, n) if cov else (0, 0))
    y, var, rank = fn(
        key,
        start,
        draws,
        ff.as_inputs(np.asarray(z, float)),
        depth,
        width,
        sw2,
        sb2,
        act,
        cov_sum,
        bound,
    )
    return y, var, cov_sum, rank


def relu_kernel(a, b, c):
    """E[relu(u) relu(v)], (u, v) ~ N(0, [[a, c], [c, b]]) (arc-cosine kernel, degree 1)."""
    s = math.sqrt(a * b)
    if s == 0.0:
        return 0.0
    theta = math.acos(max(-1.0, min(1.0, c / s)))
    return s / (2 * math.pi) * (math.sin(theta) + (math.pi - theta) * math.cos(theta))


def relu_depth2_cov(z, sw2, sb2):
    """Exact Cov(h_2(z_i), h_2(z_j)) for ReLU: sw2 E[relu(h_1) relu(h_1')] + sb2."""
    z = np.asarray(z, float)
    k1 = sw2 * np.outer(z, z) + sb2
    n = len(z)
    return np.array(
        [
            [sw2 * relu_kernel(k1[i, i], k1[j, j], k1[i, j]) + sb2 for j in range(n)]
            for i in range(n)
        ]
    )


def test_lazy_pivoted_cholesky_matches_dense_factor():
    rs = np.random.default_rng(1)
    for n, m, shift in [(6, 3, 0.0), (8, 20, 0.3), (5, 1, 0.0), (4, 2, 1e-3)]:
        A = rs.standard_normal((n, m))
        S = 0.7 * A @ A.T + shift
        F = np.empty((n, n))
        k = ff.lazy_pivoted_cholesky(A, 0.7, shift, F, np.empty(n), np.empty(n, np.bool_), 1e-13)
        F2 = np.empty((n, n))
        assert k == pivoted_cholesky(S, F2, 1e-13)
        np.testing.assert_allclose(F[:, :k] @ F[:, :k].T, S, atol=1e-12)
        np.testing.assert_allclose(F[:, :k], F2[:, :k], atol=1e-12)


@pytest.mark.parametrize("sampler", ["gram", "explicit"])
def test_depth_one_and_two_match_exact_kernels(sampler):
    z = [-1.5, 0.0, 0.7, 2.0]
    sw2, sb2 = 1.3, 0.2
    # depth 1: h_1 = w_0 z + b_0, Cov = sw2 z z' + sb2, for any activation
    y, var, cov_sum, _ = paths(sampler, z, 1, 7, 20000, sw2, sb2, TANH, cov=True)
    exact = sw2 * np.outer(z, z) + sb2
    assert max_abs_z(y, np.zeros(4), exact) < Z_CRIT
    np.testing.assert_allclose(cov_sum / 20000, exact, rtol=1e-12)  # conditional law exact
    # depth 2, ReLU: the arc-cosine kernel, whatever the width (the mean over W_1 is exact)
    y = paths(sampler, z, 2, 5, 20000, sw2, sb2, RELU)[0]
    exact = relu_depth2_cov(z, sw2, sb2)
    assert max_abs_z(y, np.zeros(4), exact) < Z_CRIT
    assert max_abs_z(y, np.zeros(4), exact * 1.1) > Z_CRIT  # a 10% error is caught


@pytest.mark.parametrize(
    "act,sw2,sb2", [(TANH, SW2_EOC, 0.05), (RELU, 2.0, 0.0), (SWISH, 1.5, 0.1)]
)
def test_gram_matches_explicit_in_distribution(act, sw2, sb2):
    z = [-2.0, -0.3, 0.0, 1.0, 2.0]
    depth, width, n = 6, 6, 6000
    g, gv = paths("gram", z, depth, width, n, sw2, sb2, act, seed=1)[:2]
    e, ev = paths("explicit", z, depth, width, n, sw2, sb2, act, seed=2)[:2]
    for j in range(len(z)):
        if z[j] == 0.0 and sb2 == 0.0:
            assert np.all(g[:, j] == 0.0) and np.all(e[:, j] == 0.0)
            continue
        assert stats.ks_2samp(g[:, j], e[:, j]).pvalue > ALPHA
        assert stats.ks_2samp(gv[:, j], ev[:, j]).pvalue > ALPHA  # conditional variances
    # two-sample z-scores of the covariance entries (standard errors from the products,
    # valid for heavy tails too)
    mask = np.array(z) != 0.0 if sb2 == 0.0 else np.ones(len(z), bool)
    assert cov_zmax(g[:, mask], e[:, mask]) < Z_CRIT
    # the same check rejects a width scaled wrongly (sigma_w^2 / D -> sigma_w^2 / (D - 2))
    bad = paths("gram", z, depth, width, n, sw2 * width / (width - 2), sb2, act, seed=3)[0]
    assert cov_zmax(bad[:, mask], e[:, mask]) > Z_CRIT


def cov_zmax(a, b):
    """Largest |z| between the covariance matrices of samples ``a`` and ``b``."""

    def parts(x):
        x = x - x.mean(axis=0)
        prod = x[:, :, None] * x[:, None, :]
        return prod.mean(axis=0), prod.var(axis=0, ddof=1) / len(x)

    ca, va = parts(a)
    cb, vb = parts(b)
    return float(np.max(np.abs(ca - cb) / np.sqrt(va + vb)))


def test_conditional_variance_is_unbiased_for_the_variance():
    """E[S_L(z, z)] = Var(y(z)): the conditional law carries the same information."""
    z = [-2.0, 0.5, 2.0]
    n = 8000
    y, var, cov_sum, _ = paths("gram", z, 10, 12, n, SW2_EOC, 0.05, TANH, cov=True)
    np.testing.assert_allclose(np.diag(cov_sum) / n, var.mean(axis=0), rtol=1e-12)
    emp = y.var(axis=0, ddof=1)
    # SE of the empirical variance (Gaussian given S; conservative with the kurtosis)
    se = np.sqrt(np.var(y**2, axis=0, ddof=1) / n + np.var(var, axis=0, ddof=1) / n)
    assert np.max(np.abs(emp - var.mean(axis=0)) / se) < Z_CRIT


@pytest.mark.parametrize("sampler", ["gram", "explicit"])
def test_relu_without_bias_is_positively_homogeneous(sampler):
    z = np.array([-2.0, -1.0, -0.25, 0.0, 0.5, 1.0, 3.0])
    y = paths(sampler, z, 8, 10, 50, 2.0, 0.0, RELU)[0]
    i_neg, i_pos = 1, 5
    pred = np.where(z > 0, z, 0.0) * y[:, [i_pos]] + np.where(z < 0, -z, 0.0) * y[:, [i_neg]]
    scale = np.abs(y).max()
    assert np.max(np.abs(y - pred)) <= 1e-9 * scale  # exact up to rounding
    # with a bias the identity fails: the check is not vacuous
    yb = paths(sampler, z, 8, 10, 50, 2.0, 0.3, RELU)[0]
    predb = np.where(z > 0, z, 0.0) * yb[:, [i_pos]] + np.where(z < 0, -z, 0.0) * yb[:, [i_neg]]
    assert np.max(np.abs(yb - predb)) > 1e-3 * np.abs(yb).max()


def test_tanh_at_the_edge_of_chaos_forgets_the_input_with_depth():
    """Figure 1's point: at the EOC the output law stops depending on z with depth (equal
    variances, correlations -> 1); off the edge (chaotic sigma_w^2 = 4) it does not."""
    z = [-2.0, 0.0, 2.0]

    def summary(depth, sw2, n=400):
        _, _, cov_sum, _ = paths("gram", z, depth, 50, n, sw2, 0.05, TANH, cov=True)
        C = cov_sum / n
        sd = np.sqrt(np.diag(C))
        return sd.max() / sd.min(), C[0, 2] / (sd[0] * sd[2])

    ratio1, rho1 = summary(1, SW2_EOC)
    ratio100, rho100 = summary(100, SW2_EOC)
    assert ratio1 > 10 and rho1 < -0.9  # depth 1: h_1 = w_0 z + b_0
    assert ratio100 < 1.02 and rho100 > 0.9  # depth 100: z is nearly forgotten
    _, rho_chaos = summary(100, 4.0)
    assert rho_chaos < 0.5  # chaotic phase: correlations stay low


@pytest.mark.parametrize("sampler", ["gram", "explicit"])
def test_draws_do_not_depend_on_threads_or_chunks(sampler):
    z = np.linspace(-2, 2, 7)
    key = rng.stream_key(3, "test-ff/threads")
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = paths(sampler, z, 20, 16, 12, SW2_EOC, 0.05, TANH, cov=True, key=key)
        numba.set_num_threads(max(2, before) if numba.config.NUMBA_NUM_THREADS > 1 else 1)
        two = paths(sampler, z, 20, 16, 12, SW2_EOC, 0.05, TANH, cov=True, key=key)
    finally:
        numba.set_num_threads(before)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    # chunks of 5, 3 and 4 draws into one accumulator: the same sum, bit for bit
    fn = ff.gram_paths if sampler == "gram" else ff.explicit_paths
    acc = np.zeros((7, 7))
    ys = [
        fn(key, s, c, ff.as_inputs(z), 20, 16, SW2_EOC, 0.05, TANH, acc, np.inf)[0]
        for s, c in ((0, 5), (5, 3), (8, 4))
    ]
    np.testing.assert_array_equal(one[0], np.concatenate(ys))
    np.testing.assert_array_equal(one[2], acc)


def test_draws_beyond_the_bound_are_divergent_and_left_out_of_the_covariance():
    z = np.linspace(-2, 2, 5)
    key = rng.stream_key(4, "test-ff/bound")
    y, var, cov_all, _ = paths("gram", z, 3, 8, 40, 2.0, 0.1, RELU, cov=True, key=key)
    bound = np.quantile(np.abs(y).max(axis=1), 0.5)  # half of the draws go beyond it
    yb, varb, cov_b, _ = paths("gram", z, 3, 8, 40, 2.0, 0.1, RELU, cov=True, key=key, bound=bound)
    out = np.abs(y).max(axis=1) > bound
    assert 10 < out.sum() < 30
    assert np.isnan(yb[out]).all() and np.isnan(varb[out]).all()
    np.testing.assert_array_equal(yb[~out], y[~out])
    # the kept draws' conditional covariances alone: S_L = sw2 <phi(h), phi(h')> / D + sb2
    kept = np.zeros((5, 5))
    for i in np.flatnonzero(~out):
        one = np.zeros((5, 5))
        ff.gram_paths(key, i, 1, ff.as_inputs(z), 3, 8, 2.0, 0.1, RELU, one, np.inf)
        kept += one
    np.testing.assert_allclose(cov_b, kept, rtol=1e-13)
    assert not np.allclose(cov_b, cov_all)


@pytest.mark.parametrize("sampler", ["gram", "explicit"])
@pytest.mark.parametrize("act,sw2", [(TANH, SW2_EOC), (RELU, 2.0)])
def test_draws_do_not_depend_on_layer_chunks(sampler, act, sw2):
    """Chunks of layers, states carried between them, give the bits of one call: outputs,
    conditional variances, covariance sums and ranks; half of the draws go beyond the
    bound, which checks the alive flags."""
    z = np.linspace(-2, 2, 7)
    key = rng.stream_key(5, "test-ff/layer-chunks")
    free = ff.stepper(sampler, key, z, 9, 12, sw2, 0.05, act, np.zeros((7, 7)), np.inf)(
        0, 16, 0, 9, {}
    )[0]
    bound = np.quantile(np.abs(free).max(axis=1), 0.5)  # half of the draws go beyond it
    whole_cov = np.zeros((7, 7))
    whole = ff.stepper(sampler, key, z, 9, 12, sw2, 0.05, act, whole_cov, bound)(0, 16, 0, 9, {})
    for chunk, layers in ((16, 1), (5, 4), (3, 9)):
        cov = np.zeros((7, 7))
        kernel = ff.stepper(sampler, key, z, 9, 12, sw2, 0.05, act, cov, bound)
        y, var, rank = ff.run_chunked(kernel, 16, "test", chunk, 9, layers)
        np.testing.assert_array_equal(y, whole[0])
        np.testing.assert_array_equal(var, whole[1])
        np.testing.assert_array_equal(rank, whole[2])
        np.testing.assert_array_equal(cov, whole_cov)
    assert np.isnan(whole[0]).any() and np.isfinite(whole[0]).any()
