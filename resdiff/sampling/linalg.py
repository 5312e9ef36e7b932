"""Small dense linear algebra for the kernels (no LAPACK, so no SciPy at run time).

Every sum here runs in one order fixed by the code: no fast-math reassociation or
contraction, no BLAS. Each result is therefore the same, bit for bit, whatever the SIMD
width, the FMA support or the BLAS build of the CPU, and so is every decision made from
it (pivots, factor ranks, the sampler, the Chebyshev node count).
"""

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ..jit import njit, prange


_LANES4 = ir.VectorType(ir.DoubleType(), 4)


def _lane_sums(k, paired=False):
    """The typing of an intrinsic ``(x, y_1 .. y_k, m) -> (r_1 .. r_k)`` (with
    ``paired``: ``(x_1, y_1 .. x_k, y_k, m)``, ``x_j`` in place of ``x``): ``r_j`` is
    ``(s0 + s1) + (s2 + s3)`` with ``s_l = sum x[i] y_j[i]`` over ``i = l (mod 4)``,
    ``i < m`` (a multiple of 4), each sum in increasing ``i`` as ``s_l += x[i] * y_j[i]``
    (a product, then a sum: two roundings, no FMA). These are :func:`dot`'s four running
    sums with their bits, held in the four lanes of one SIMD register: Numba reads a 1-D
    array through its run-time stride, so LLVM cannot prove ``x[i] .. x[i + 3]``
    adjacent and leaves the scalar form unvectorised (3x slower)."""

    def typer(typingctx, x, *rest):
        arrays, m = (x, *rest[:-1]), rest[-1]
        ok = all(
            isinstance(a, types.Array) and a.ndim == 1 and a.dtype == types.float64 for a in arrays
        )
        if not ok or len(arrays) != (2 * k if paired else k + 1):
            return None
        if not isinstance(m, types.Integer):
            return None

        def codegen(context, builder, signature, args):
            intp = context.get_value_type(types.intp)
            views = [context.make_array(t)(context, builder, v) for t, v in zip(arrays, args)]

            def lanes(view, ty, i):  # x[i .. i + 3] as one vector
                if ty.layout == "C":
                    at = builder.bitcast(builder.gep(view.data, [i]), _LANES4.as_pointer())
                    return builder.load(at, align=8)
                stride = builder.extract_value(view.strides, 0)  # in bytes
                base = builder.ptrtoint(view.data, intp)
                vec = ir.Constant(_LANES4, ir.Undefined)
                for lane in range(4):
                    index = builder.add(i, ir.Constant(intp, lane))
                    at = builder.add(base, builder.mul(index, stride))
                    value = builder.load(builder.inttoptr(at, ir.DoubleType().as_pointer()))
                    vec = builder.insert_element(vec, value, ir.Constant(ir.IntType(32), lane))
                return vec

            stop = context.cast(builder, args[-1], signature.args[-1], types.intp)
            sums = [
                cgutils.alloca_once_value(builder, ir.Constant(_LANES4, [0.0] * 4))
                for _ in range(k)
            ]
            zero, four = ir.Constant(intp, 0), ir.Constant(intp, 4)
            with cgutils.for_range_slice(builder, zero, stop, four, intp) as (i, _):
                xv = None if paired else lanes(views[0], arrays[0], i)
                for j in range(k):
                    if paired:
                        xv = lanes(views[2 * j], arrays[2 * j], i)
                    y = 2 * j + 1 if paired else j + 1
                    product = builder.fmul(xv, lanes(views[y], arrays[y], i))
                    builder.store(builder.fadd(builder.load(sums[j]), product), sums[j])
            results = []
            for j in range(k):
                v = builder.load(sums[j])
                s0, s1, s2, s3 = (
                    builder.extract_element(v, ir.Constant(ir.IntType(32), lane))
                    for lane in range(4)
                )
                results.append(builder.fadd(builder.fadd(s0, s1), builder.fadd(s2, s3)))
            return context.make_tuple(builder, signature.return_type, results)

        return types.UniTuple(types.float64, k)(*arrays, m), codegen

    return typer


@intrinsic
def _lane_sums1(typingctx, x, y, m):
    return _lane_sums(1)(typingctx, x, y, m)


@intrinsic
def _lane_sums2(typingctx, x, y, z, m):
    return _lane_sums(2)(typingctx, x, y, z, m)


@intrinsic
def _lane_sums4(typingctx, x, y, z, u, v, m):
    return _lane_sums(4)(typingctx, x, y, z, u, v, m)


@intrinsic
def _pair_sums3(typingctx, x1, y1, x2, y2, x3, y3, m):
    return _lane_sums(3, paired=True)(typingctx, x1, y1, x2, y2, x3, y3, m)


@njit(cache=True)
def dot(x, y, n):
    """``sum_i x[i] y[i]`` over ``i < n`` in a fixed order: four running sums over
    ``i = 0, 1, 2, 3 (mod 4)``, added as ``(s0 + s1) + (s2 + s3)``, then the tail.
    The four sums are the lanes of one SIMD register (:func:`_lane_sums`)."""
    m = n - n % 4
    (acc,) = _lane_sums1(x, y, m)
    for i in range(m, n):
        acc += x[i] * y[i]
    return acc


@njit(inline="always")
def _dots2(x, y, z, n):
    """``(dot(x, y, n), dot(x, z, n))`` in :func:`dot`'s order (the same bits), the two
    sets of sums interleaved, so the loop is not bound by one add's latency."""
    m = n - n % 4
    s, t = _lane_sums2(x, y, z, m)
    for i in range(m, n):
        s += x[i] * y[i]
        t += x[i] * z[i]
    return s, t


@njit(inline="always")
def dots4(x, y, z, u, v, n):
    """``dot(x, .)`` of four vectors ``y, z, u, v`` in :func:`dot`'s order (the same bits),
    their sums interleaved."""
    m = n - n % 4
    s, t, p, q = _lane_sums4(x, y, z, u, v, m)
    for i in range(m, n):
        s += x[i] * y[i]
        t += x[i] * z[i]
        p += x[i] * u[i]
        q += x[i] * v[i]
    return s, t, p, q


@njit(inline="always")
def gram_dots(X, width, S):
    """``S[a, b] = S[b, a] = dot(X[a], X[b], width)`` for all rows of X, each entry with
    :func:`dot`'s bits; four (then two) entries of a row at a time, whose independent
    sums keep the FP units busy (1.6x over one :func:`dot` per entry at N = 20,
    D = 500)."""
    n = X.shape[0]
    if n == 2:  # Fig. 2: the three entries in one pass, three sums interleaved
        x0, x1 = X[0], X[1]
        m = width - width % 4
        s00, s10, s11 = _pair_sums3(x0, x0, x1, x0, x1, x1, m)
        for i in range(m, width):
            s00 += x0[i] * x0[i]
            s10 += x1[i] * x0[i]
            s11 += x1[i] * x1[i]
        S[0, 0], S[1, 1] = s00, s11
        S[1, 0] = S[0, 1] = s10
        return
    for a in range(n):
        xa = X[a]
        b = 0
        while b + 3 <= a:
            s, t, p, q = dots4(xa, X[b], X[b + 1], X[b + 2], X[b + 3], width)
            S[a, b] = S[b, a] = s
            S[a, b + 1] = S[b + 1, a] = t
            S[a, b + 2] = S[b + 2, a] = p
            S[a, b + 3] = S[b + 3, a] = q
            b += 4
        while b + 1 <= a:
            s, t = _dots2(xa, X[b], X[b + 1], width)
            S[a, b] = S[b, a] = s
            S[a, b + 1] = S[b + 1, a] = t
            b += 2
        if b == a:
            S[a, a] = dot(xa, xa, width)


@njit(inline="always")
def combine(F, k, Z, H):
    """``H = F[:, :k] @ Z[:k]`` (N x D), each entry summed over ``j`` in order as
    ``h += F[a, j] Z[j, d]`` from 0; four rows of ``H`` and four ``j`` at a time, so each
    entry of ``H`` is read and written once per four products and each row of ``Z`` is
    read once per four inputs (the bits do not depend on the blocking)."""
    n, width = H.shape
    kq = k - k % 4
    for a in range(0, n, 4):
        rows = min(4, n - a)
        for r in range(rows):
            H[a + r, :] = 0.0
        if rows < 4:
            for r in range(rows):
                h = H[a + r]
                for j in range(k):
                    f = F[a + r, j]
                    z = Z[j]
                    for d in range(width):
                        h[d] += f * z[d]
            continue
        h0, h1, h2, h3 = H[a], H[a + 1], H[a + 2], H[a + 3]
        for j in range(0, kq, 4):
            za, zb, zc, zd = Z[j], Z[j + 1], Z[j + 2], Z[j + 3]
            f0a, f0b, f0c, f0d = F[a, j], F[a, j + 1], F[a, j + 2], F[a, j + 3]
            f1a, f1b, f1c, f1d = F[a + 1, j], F[a + 1, j + 1], F[a + 1, j + 2], F[a + 1, j + 3]
            f2a, f2b, f2c, f2d = F[a + 2, j], F[a + 2, j + 1], F[a + 2, j + 2], F[a + 2, j + 3]
            f3a, f3b, f3c, f3d = F[a + 3, j], F[a + 3, j + 1], F[a + 3, j + 2], F[a + 3, j + 3]
            for d in range(width):
                va, vb, vc, vd = za[d], zb[d], zc[d], zd[d]
                h0[d] = (((h0[d] + f0a * va) + f0b * vb) + f0c * vc) + f0d * vd
                h1[d] = (((h1[d] + f1a * va) + f1b * vb) + f1c * vc) + f1d * vd
                h2[d] = (((h2[d] + f2a * va) + f2b * vb) + f2c * vc) + f2d * vd
                h3[d] = (((h3[d] + f3a * va) + f3b * vb) + f3c * vc) + f3d * vd
        for j in range(kq, k):
            z = Z[j]
            f0, f1, f2, f3 = F[a, j], F[a + 1, j], F[a + 2, j], F[a + 3, j]
            for d in range(width):
                zj = z[d]
                h0[d] += f0 * zj
                h1[d] += f1 * zj
                h2[d] += f2 * zj
                h3[d] += f3 * zj


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
    return pivoted_cholesky_using(S, F, rel_tol, np.empty(n), np.empty(n, np.bool_))


@njit(inline="always")
def pivoted_cholesky_using(S, F, rel_tol, d, used):
    """:func:`pivoted_cholesky` with the caller's work arrays ``d`` (N floats) and
    ``used`` (N booleans): a layer's factor without a heap allocation."""
    n = S.shape[0]
    F[:, :] = 0.0
    for i in range(n):
        d[i] = S[i, i]
        used[i] = False
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
