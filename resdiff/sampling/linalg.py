"""Small dense linear algebra for the kernels (no LAPACK, so no SciPy at run time)."""
import math

import numpy as np

from ..jit import njit


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
