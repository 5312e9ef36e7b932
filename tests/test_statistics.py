"""resdiff.statistics: mixture quantiles against SciPy, mapped quantiles and correlations
against plain numpy on the mapped draws, and the exact homogeneous shortcut."""

import numpy as np
import pytest
from scipy import stats

from resdiff import statistics
from resdiff.statistics import normal_mixture_quantiles

LEVELS = [0.05, 0.5, 0.95]


def test_mixture_quantiles():
    sd = np.array([[1.0, 0.0], [2.0, 0.0], [0.5, 0.0]])
    levels = np.array(LEVELS)
    q = normal_mixture_quantiles(sd, levels)
    for j, a in enumerate(levels):
        cdf = np.mean(stats.norm.cdf(q[j, 0] / sd[:, 0]))
        assert cdf == pytest.approx(a, abs=1e-10)
    assert np.all(q[:, 1] == 0.0)  # all mass at 0
    one = normal_mixture_quantiles(np.array([[1.5]]), levels)[:, 0]
    np.testing.assert_allclose(one, 1.5 * stats.norm.ppf(levels), atol=1e-10)


def _draws(n=200, m=5, seed=0):
    rs = np.random.default_rng(seed)
    return rs.standard_normal((n, m)) * np.arange(1, m + 1), rs


def test_empirical_quantiles_are_those_of_the_mapped_draws(monkeypatch):
    y, rs = _draws()
    P = rs.standard_normal((7, y.shape[1]))
    good = np.flatnonzero(rs.random(len(y)) > 0.1)
    expected = np.quantile(y[good] @ P.T, LEVELS, axis=0)
    np.testing.assert_allclose(
        statistics.quantiles(y, good, P, LEVELS), expected, rtol=1e-12, atol=1e-12
    )
    # outputs mapped a block at a time give the same numbers
    monkeypatch.setattr(statistics, "QUANTILE_BLOCK_BYTES", 8 * len(good) * 2)
    np.testing.assert_allclose(
        statistics.quantiles(y, good, P, LEVELS), expected, rtol=1e-12, atol=1e-12
    )
    cols = np.array([1, 4])
    np.testing.assert_allclose(
        statistics.quantiles(y, good, P, LEVELS, cols=cols),
        expected[:, cols],
        rtol=1e-12,
        atol=1e-12,
    )


def test_homogeneous_map_gives_quantiles_exactly():
    """Rows with one non-negative entry (``y(z) = |z| y(+-1)``): the quantiles of the two
    points, rescaled, with no interpolation of the empirical quantile."""
    y, _ = _draws(m=2)
    z = np.linspace(-2, 2, 9)
    P = np.column_stack([np.maximum(-z, 0.0), np.maximum(z, 0.0)])
    assert statistics.scaling_map(P) is not None
    good = np.arange(len(y))
    q = statistics.quantiles(y, good, P, LEVELS)
    np.testing.assert_array_equal(q[:, -1], 2.0 * np.quantile(y[:, 1], LEVELS))
    np.testing.assert_array_equal(q[:, 0], 2.0 * np.quantile(y[:, 0], LEVELS))
    assert statistics.scaling_map(np.array([[0.5, 0.5]])) is None
    assert statistics.scaling_map(np.array([[-1.0, 0.0]])) is None


def test_conditional_quantiles_map_the_variances():
    _, rs = _draws()
    var = rs.uniform(0.5, 2.0, (30, 3))
    P = np.diag([2.0, -1.0, 0.5])  # one entry per row: no cross terms
    good = np.arange(30)
    q = statistics.quantiles(None, good, P, LEVELS, var=var)
    np.testing.assert_allclose(
        q,
        normal_mixture_quantiles(np.sqrt(var * [4.0, 1.0, 0.25]), np.array(LEVELS)),
        rtol=1e-12,
        atol=1e-12,
    )


def test_covariance_and_correlation_match_numpy():
    y, rs = _draws()
    P = rs.standard_normal((6, y.shape[1]))
    P[2] = 0.0  # an output with zero variance
    good = np.arange(len(y))
    C = statistics.covariance(y, good, P)
    np.testing.assert_allclose(C, np.cov((y @ P.T).T), rtol=1e-10, atol=1e-12)
    rho, zero = statistics.correlation(C)
    assert zero.tolist() == [False, False, True, False, False, False]
    assert np.all(np.isnan(rho[2])) and np.all(np.isnan(rho[:, 2]))
    keep = [0, 1, 3, 4, 5]
    np.testing.assert_allclose(
        rho[np.ix_(keep, keep)], np.corrcoef((y @ P.T)[:, keep].T), atol=1e-12
    )
    # conditional: the mean of the summed conditional covariances
    cov_sum = np.eye(5) * 40.0
    np.testing.assert_allclose(statistics.covariance(y, good[:20], None, cov_sum), 2.0 * np.eye(5))


def test_quantile_se_is_the_batch_means_standard_error():
    y, _ = _draws(n=400, m=3)
    good = np.arange(400)
    se_max, se_median = statistics.quantile_se(y, good, None, [0.5], 3)
    batches = [np.median(y[b], axis=0) for b in np.array_split(good, statistics.SE_BATCHES)]
    se = np.std(batches, axis=0, ddof=1) / np.sqrt(statistics.SE_BATCHES)
    assert se_max == pytest.approx(se.max(), rel=1e-12)
    assert se_median == pytest.approx(np.median(se), rel=1e-12)
    assert statistics.quantile_se(y, good[:3], None, [0.5], 3) is None
