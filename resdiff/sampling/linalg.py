"""Small dense linear algebra for the kernels (no LAPACK, so no SciPy at run time).

Every sum here runs in one order fixed by the code: no fast-math reassociation or
contraction, no BLAS. Each result is therefore the same, bit for bit, whatever the SIMD
width, the FMA support or the BLAS build of the CPU, and so is every decision made from
it (pivots, factor ranks, the sampler, the Chebyshev node count).
"""
import math

import numpy as np

from ..jit import njit, prange


@njit(cache=True)
def dot(x, y, n):
    """``sum_i x[i] y[i]`` over ``i < n`` in a fixed order: four running sums over
    ``i = 0, 1, 2, 3 (mod 4)``, added as ``(s0 + s1) + (s2 + s3)``, then the tail.
    The four independent sums keep the loop fast without reassociation."""
    s0 = s1 = s2 = s3 = 0.0
    m = n - n % 4
    for i in range(0, m, 4):
        s0 += x[i] * y[i]
        s1 += x[i + 1] * y[i + 1]
        s2 += x[i + 2] * y[i + 2]
        s3 += x[i + 3] * y[i + 3]
    acc = (s0 + s1) + (s2 + s3)
    for i in range(m, n):
        acc += x[i] * y[i]
    return acc


@njit(parallel=True, cache=True)
def _matmul_nt(A, B, out):
    for i in prange(A.shape[0]):
        for j in range(B.shape[0]):
            out[i, j] = dot(A[i], B[j], A.shape[1])


def matmul_nt(A, B):
    """``A @ B.T`` with every entry a :func:`dot` (the same bits on any CPU)."""
    A = np.ascontiguousarray(A, dtype=float)
    B = np.ascontiguousarray(B, dtype=float)
    out = np.empty((A.shape[0], B.shape[0]))
    if A.shape[1] != B.shape[1]:
        raise ValueError(f"matmul_nt: inner sizes {A.shape[1]} and {B.shape[1]} differ")
    if out.size:
        _matmul_nt(A, B, out)
    return out


def matmul(A, B):
    """``A @ B`` in the fixed order of :func:`matmul_nt`."""
    return matmul_nt(A, np.asarray(B).T)


@njit(cache=True)
def pivot_floor(d, rel_tol):
    """``rel_tol`` times the largest diagonal entry ``d[i]``, the smallest pivot taken;
    -1 when no entry is positive (NaN entries are never pivots)."""
    dmax = 0.0
    for i in range(d.shape[0]):
        if d[i] > dmax:
            dmax = d[i]
    return rel_tol * dmax if dmax > 0.0 else -1.0


@njit(cache=True)
def next_pivot(d, used, floor):
    """Index of the largest remaining pivot ``d[i]`` (``used[i]`` false) above ``floor``;
    -1 when there is none (the factor's rank is reached)."""
    p = -1
    best = floor
    for i in range(d.shape[0]):
        if not used[i] and d[i] > best:
            best = d[i]
            p = i
    return p


@njit(cache=True)
def pivoted_cholesky(S, F, rel_tol):
    """Factor the PSD matrix ``S`` (N x N) as ``F[:, :k] @ F[:, :k].T``; return ``k``.

    Diagonal pivoting stops when the largest remaining pivot is below ``rel_tol`` times
    the largest diagonal entry, so singular matrices (e.g. an input ``z = 0`` with no
    bias, or fewer coordinates than inputs) are factored exactly at their rank.
    ``S`` is left unchanged; ``F`` is overwritten (columns ``k:`` are zero).
    """
    n = S.shape[0]
    F[:, :] = 0.0
    d = np.empty(n)
    for i in range(n):
        d[i] = S[i, i]
    used = np.zeros(n, np.bool_)
    floor = pivot_floor(d, rel_tol)
    if floor < 0.0:
        return 0
    for j in range(n):
        p = next_pivot(d, used, floor)
        if p < 0:
            return j
        used[p] = True
        piv = math.sqrt(d[p])
        F[p, j] = piv
        for i in range(n):
            if used[i]:
                continue
            acc = S[i, p]
            for m in range(j):
                acc -= F[i, m] * F[p, m]
            F[i, j] = acc / piv
            d[i] -= F[i, j] * F[i, j]
    return n
