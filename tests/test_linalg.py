"""The fixed-order sums of resdiff.sampling.linalg, bit for bit against the order they
promise (written out in plain Python), whatever their SIMD form."""

import numpy as np
import pytest
from numba import njit

from resdiff.sampling import linalg


def dot_in_order(x, y, n):
    """dot's order: four running sums over i mod 4, (s0 + s1) + (s2 + s3), then the tail."""
    s, m = [0.0] * 4, n - n % 4
    for i in range(0, m, 4):
        for lane in range(4):
            s[lane] += float(x[i + lane]) * float(y[i + lane])
    acc = (s[0] + s[1]) + (s[2] + s[3])
    for i in range(m, n):
        acc += float(x[i]) * float(y[i])
    return acc


@njit
def _gram(X):
    S = np.empty((X.shape[0], X.shape[0]))
    linalg.gram_dots(X, X.shape[1], S)
    return S


@njit
def _dots4(x, Y, n):
    return linalg.dots4(x, Y[0], Y[1], Y[2], Y[3], n)


@njit
def _combine(F, k, Z, n):
    H = np.empty((n, Z.shape[1]))
    linalg.combine(F, k, Z, H)
    return H


def _vectors(rng, rows, n):
    return rng.standard_normal((rows, n)) * 10.0 ** rng.uniform(-6, 6, (rows, 1))


@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 8, 127, 500, 503])
def test_dot_dots4_and_the_gram_have_dots_order(n):
    rng = np.random.default_rng(n)
    X = _vectors(rng, 6, n)
    assert linalg.dot(X[0], X[1], n) == dot_in_order(X[0], X[1], n)
    assert _dots4(X[0], X[1:5], n) == tuple(dot_in_order(X[0], X[j], n) for j in range(1, 5))
    for rows in (6, 2, 1):  # the general path, the one-pass path of N = 2, one row
        S = _gram(np.ascontiguousarray(X[:rows]))
        for a in range(rows):
            for b in range(rows):
                assert S[a, b] == dot_in_order(X[a], X[b], n)
    S = _gram(X[:2, ::-1])  # strided rows (negative stride)
    assert S[1, 0] == S[0, 1] == dot_in_order(X[0, ::-1], X[1, ::-1], n)


def test_a_strided_view_has_the_same_bits():
    rng = np.random.default_rng(1)
    X = _vectors(rng, 2, 2 * 203)
    x, y = X[0, ::2], X[1, ::2]  # not contiguous: the lanes are read one by one
    assert linalg.dot(x, y, 203) == dot_in_order(x, y, 203)


@pytest.mark.parametrize("n, k", [(1, 1), (3, 2), (4, 4), (5, 7), (9, 9), (24, 13)])
def test_combine_sums_in_order_of_j(n, k):
    """H[a, d] = sum over j of F[a, j] Z[j, d], added in increasing j from 0."""
    rng = np.random.default_rng(10 * n + k)
    F, Z = _vectors(rng, n, k + 2), _vectors(rng, k + 3, 37)
    H = _combine(F, k, Z, n)
    for a in range(n):
        for d in range(37):
            acc = 0.0
            for j in range(k):
                acc += float(F[a, j]) * float(Z[j, d])
            assert H[a, d] == acc
