"""Small dense linear algebra for the kernels (no LAPACK, so no SciPy at run time)."""
import math

import numpy as np
from numba import njit


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
    dmax = 0.0
    for i in range(n):
        if d[i] > dmax:
            dmax = d[i]
    if not dmax > 0.0:  # also catches NaN
        return 0
    floor = rel_tol * dmax
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
