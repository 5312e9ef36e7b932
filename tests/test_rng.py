"""The counter-based Gaussian streams (resdiff.rng) and the training runs' frozen
generator (resdiff.rng_xoshiro)."""

import hashlib

import numpy as np
import pytest
from scipy import stats

from resdiff import rng, rng_xoshiro
from resdiff.jit import njit

ALPHA = 1e-5  # false-failure rate of each KS test


@njit
def _philox(c, k):
    return rng.philox4x32(c[0], c[1], c[2], c[3], k[0], k[1])


# Random123's known answers for Philox4x32-10 (its tests/kat_vectors)
PHILOX_KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


@pytest.mark.parametrize("counter, key, expected", PHILOX_KAT)
def test_philox_known_answers(counter, key, expected):
    out = _philox(np.array(counter, np.uint64), np.array(key, np.uint64))
    assert tuple(int(v) for v in out) == expected


def test_normals_are_standard_normal_ks():
    x = rng.normals(0, "test/ks", 0, 200_000)
    assert stats.kstest(x, "norm").pvalue > ALPHA


def test_normal_tails_and_moments():
    x = rng.normals(1, "test/tail", 0, 2_000_000)
    n = x.size
    assert abs(x.mean()) < 4.5 / np.sqrt(n)
    assert abs(x.var() - 1) < 4.5 * np.sqrt(2 / n)
    assert abs(stats.kurtosis(x)) < 4.5 * np.sqrt(24 / n)
    for c in (1.0, 2.0, 3.0, 4.0, 4.5):
        p = 2 * stats.norm.sf(c)
        assert abs((np.abs(x) > c).mean() - p) < 4.5 * np.sqrt(p * (1 - p) / n)
    assert np.abs(x).max() <= np.sqrt(-2 * np.log(2.0**-32))  # u >= 2^-32


def test_pairs_are_independent():
    """Box-Muller's two normals of a pair (and the two pairs of a block) are
    uncorrelated, also in their squares (a wrong angle gives dependent squares)."""
    x = rng.normals(2, "test/pairs", 0, 1_000_000).reshape(-1, 4)
    n = x.shape[0]
    for i, j in ((0, 1), (2, 3), (0, 2), (1, 3)):
        for f in (lambda v: v, lambda v: v * v, np.abs):
            assert abs(np.corrcoef(f(x[:, i]), f(x[:, j]))[0, 1]) < 4.5 / np.sqrt(n)


def test_streams_are_distinct_and_reproducible():
    a = rng.normals(5, "test/s", 0, 10_000)
    assert np.array_equal(a, rng.normals(5, "test/s", 0, 10_000))
    others = [
        rng.normals(5, "test/s", 1, 10_000),
        rng.normals(6, "test/s", 0, 10_000),
        rng.normals(5, "test/other", 0, 10_000),
    ]
    key = rng.stream_key(5, "test/s")
    s = rng.new_state(key, 0, 1)  # the same stream, another substream
    others.append(np.empty(10_000))
    rng.fill_normal(s, others[-1])
    for b in others:
        assert not np.array_equal(a, b)
        # independent streams: sample correlation is O(1/sqrt(n))
        assert abs(np.corrcoef(a, b)[0, 1]) < 4.5 / np.sqrt(a.size)


def test_ks_detects_a_wrong_generator():
    """The KS check above has power: a 5% scale error is rejected."""
    x = 1.05 * rng.normals(0, "test/ks", 0, 200_000)
    assert stats.kstest(x, "norm").pvalue < ALPHA


def test_a_stream_is_a_function_of_the_block_position():
    """fill_normal takes blocks of four from the state's position on: filling 12 and
    then 8 gives the 20 normals of one fill; a partial block's rest is skipped."""
    key = rng.stream_key(3, "test/blocks")
    whole = np.empty(20)
    rng.fill_normal(rng.new_state(key, 4, 2), whole)
    s = rng.new_state(key, 4, 2)
    a, b = np.empty(12), np.empty(8)
    rng.fill_normal(s, a)
    rng.fill_normal(s, b)
    assert np.array_equal(np.concatenate([a, b]), whole)
    assert s[3] == 5
    s = rng.new_state(key, 4, 2)
    c, d = np.empty(3), np.empty(4)
    rng.fill_normal(s, c)
    rng.fill_normal(s, d)
    assert np.array_equal(c, whole[:3]) and np.array_equal(d, whole[4:8])


@pytest.mark.parametrize("substream", [0, 1, 7])
def test_substreams_differ(substream):
    key = rng.stream_key(0, "test/sub")
    a, b = np.empty(8), np.empty(8)
    rng.fill_normal(rng.new_state(key, 3, substream), a)
    rng.fill_normal(rng.new_state(key, 3, substream + 1), b)
    assert not np.array_equal(a, b)


@njit
def _blocks(key, stream, substream, first, count):
    """(count, 4): Philox words and :func:`rng.normal_block`'s normals of those blocks."""
    words = np.empty((count, 4), np.uint64)
    normals = np.empty((count, 4))
    for j in range(count):
        b = np.uint64(first + j)
        words[j] = rng._philox_block(key, stream, substream, b)
        normals[j] = rng.normal_block(key, stream, substream, b)
    return words, normals


def _box_muller_float64(radius_words, angle_words):
    """The float64 Box-Muller of the generator's grid: the exact normals its float32
    pass approximates."""
    top = radius_words >> 8
    u = np.where(top > 0, (top + 1.0) * 2.0**-24, ((radius_words & 0xFF) + 1.0) * 2.0**-32)
    r = np.sqrt(-2 * np.log(u))
    quadrant = angle_words >> 30
    t = (((angle_words >> 8) & 0x3FFFFF) + 0.5) * 2.0**-22 - 0.5
    theta = (quadrant + t) * (np.pi / 2)  # the quadrant, rotated by t in [-1/2, 1/2)
    return r * np.cos(theta), r * np.sin(theta)


def test_fill_normal_is_the_reference_block_by_block():
    """fill_normal's three passes give normal_block's numbers, for a fill of any length
    (several chunks of the work space, and a partial last block)."""
    key = rng.stream_key(4, "test/passes")
    count = 3 * rng.CHUNK_BLOCKS + 3
    _, normals = _blocks(key, np.uint64(2), np.uint64(5), 7, count)
    s = rng.new_state(key, 2, 5)
    s[3] = 7
    out = np.empty(4 * count - 1)
    rng.fill_normal(s, out)
    assert np.array_equal(out, normals.reshape(-1)[:-1])


def test_float32_box_muller_is_within_its_error_bound():
    """Each normal is within 4.5e-7 (relative to the pair's radius) of the float64
    Box-Muller of the same grid point: log within 1.3 float32 ulp (1.6e-7 relative),
    halved by the square root, plus its rounding (0.6e-7); cos and sin within 1.3 ulp
    (1.6e-7), the angle's float32 rounding (0.9e-7) and the product's (0.6e-7)."""
    key = rng.stream_key(9, "test/float64")
    words, normals = _blocks(key, np.uint64(0), np.uint64(0), 0, 250_000)
    for radius, angle, cols in ((0, 1, [0, 1]), (2, 3, [2, 3])):
        a, b = _box_muller_float64(words[:, radius], words[:, angle])
        r = np.hypot(a, b)
        err = np.maximum(np.abs(normals[:, cols[0]] - a), np.abs(normals[:, cols[1]] - b))
        assert (err <= 4.5e-7 * r).all(), (err / r).max()
    # the check has power: u at the lower end of its cell (an off-by-one of the grid)
    shifted = np.where(words[:, 0] >= 1 << 9, words[:, 0] - (1 << 8), words[:, 0])
    a, b = _box_muller_float64(shifted, words[:, 1])
    err = np.maximum(np.abs(normals[:, 0] - a), np.abs(normals[:, 1] - b))
    assert (err > 4.5e-7 * np.hypot(a, b)).mean() > 0.01


def test_training_generator_is_unchanged():
    """resdiff.rng_xoshiro gives the bytes resdiff.rng gave up to commit 8bf9145 (the
    committed Fig. 6 and 7 runs were initialised from them)."""
    digests = {
        (0, "fc/init", 3, 1001): "4a5342fd0c8881cd7f531dfda92beb8f",
        (7, "conv/init", 0, 4096): "c00e59dafd48406ccddff9c4bff9eb7c",
    }
    for args, digest in digests.items():
        x = rng_xoshiro.normals(*args)
        assert hashlib.sha256(x.tobytes()).hexdigest()[:32] == digest
