"""The counter-based Gaussian streams (resdiff.rng)."""
import numpy as np
import pytest
from scipy import stats

from resdiff import rng

ALPHA = 1e-5  # false-failure rate of each KS test


def test_normals_are_standard_normal_ks():
    x = rng.normals(0, "test/ks", 0, 200_000)
    assert stats.kstest(x, "norm").pvalue > ALPHA


def test_normal_tails_and_moments():
    x = rng.normals(1, "test/tail", 0, 1_000_000)
    n = x.size
    assert abs(x.mean()) < 4.5 / np.sqrt(n)
    assert abs(x.var() - 1) < 4.5 * np.sqrt(2 / n)
    # the ziggurat's tail and wedge paths: P(|x| > 3.6541...) (base strip edge) and beyond
    for c in (2.0, 3.0, 3.6541528853610088, 4.0):
        p = 2 * stats.norm.sf(c)
        assert abs((np.abs(x) > c).mean() - p) < 4.5 * np.sqrt(p * (1 - p) / n)


def test_streams_are_distinct_and_reproducible():
    a = rng.normals(5, "test/s", 0, 10_000)
    assert np.array_equal(a, rng.normals(5, "test/s", 0, 10_000))
    others = [rng.normals(5, "test/s", 1, 10_000), rng.normals(6, "test/s", 0, 10_000),
              rng.normals(5, "test/other", 0, 10_000)]
    for b in others:
        assert not np.array_equal(a, b)
        # independent streams: sample correlation is O(1/sqrt(n))
        assert abs(np.corrcoef(a, b)[0, 1]) < 4.5 / np.sqrt(a.size)


def test_ks_detects_a_wrong_generator():
    """The KS check above has power: a 5% scale error is rejected."""
    x = 1.05 * rng.normals(0, "test/ks", 0, 200_000)
    assert stats.kstest(x, "norm").pvalue < ALPHA


@pytest.mark.parametrize("substream", [0, 1, 7])
def test_substreams_differ(substream):
    key = rng.stream_key(0, "test/sub")
    s0, s1 = rng.new_state(key, 3, substream), rng.new_state(key, 3, substream + 1)
    assert not np.array_equal(s0, s1)
