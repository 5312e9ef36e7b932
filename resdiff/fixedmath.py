"""Elementary functions as fixed polynomials and rationals, for the Monte Carlo kernels.

libm's ``exp``, ``log``, ``sin`` and ``cos`` differ in their last bits between C
libraries and builds (glibc's FMA and non-FMA paths among them), and they are calls that
keep a loop from running in SIMD lanes. The forms here are plain IEEE arithmetic in a
fixed order (with explicit fused multiply-adds, :func:`fma`, which every x86-64 CPU with
FMA rounds identically), without branches (selects only), so Numba vectorises them (in
a kernel compiled with ``error_model="numpy"``: Python's model adds a zero-division
branch to every ``/``) and their bits are the same on every x86-64 CPU: no fast-math,
no implicit contraction, no libm. The generator's ``log``, ``sin`` and ``cos`` are
float32, with Cephes' coefficients; ``exp`` (the activations') is float64, a Taylor
polynomial after fdlibm's reduction (Sun Microsystems, 1993). Both are evaluated by
Horner's rule with FMA; their error against libm is a few ulp at most on the ranges
used (tests/test_fixedmath.py measures it).
"""

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from .jit import njit


@intrinsic
def bits_float(typingctx, n):
    """The float64 whose IEEE 754 bits are the int64 ``n``."""
    if not isinstance(n, types.Integer) or n.bitwidth != 64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return types.float64(n), codegen


@intrinsic
def fma(typingctx, a, b, c):
    """``a * b + c`` rounded once (IEEE fused multiply-add, ``llvm.fma``): one
    instruction on a CPU with FMA, and the same bits everywhere (without FMA, LLVM calls
    a correctly rounded software ``fma``)."""
    if not all(isinstance(v, types.Float) and v.bitwidth == 64 for v in (a, b, c)):
        return None

    def codegen(context, builder, signature, args):
        d = ir.DoubleType()
        fn = builder.module.declare_intrinsic("llvm.fma", [d], ir.FunctionType(d, [d, d, d]))
        return builder.call(fn, args)

    return types.float64(types.float64, types.float64, types.float64), codegen


# --- float32: the generator's Box-Muller (resdiff.rng) ---------------------------------
# Cephes (Moshier 1984-2000: logf.c, sinf.c, cosf.c) minimax coefficients for float32,
# evaluated by Horner's rule with FMA; a few ulp of float32 at most on the ranges the
# generator uses (tests/test_fixedmath.py measures it). Every constant is a float32, so
# Numba keeps the arithmetic in float32 and vectorises it 16 lanes to an AVX-512 register.
F32 = np.float32
F32_ONE = F32(1.0)
F32_HALF = F32(0.5)
_LOGF = tuple(
    F32(c)
    for c in (
        7.0376836292e-2,
        -1.1514610310e-1,
        1.1676998740e-1,
        -1.2420140846e-1,
        1.4249322787e-1,
        -1.6668057665e-1,
        2.0000714765e-1,
        -2.4999993993e-1,
        3.3333331174e-1,
    )
)
# ln 2 rounded to float32 (relative error 2.7e-9): k ln 2 is then within 2.7e-9 of
# itself for the |k| <= 32 of the generator, far below float32's 6e-8
_LN2F = F32(0.6931471805599453)
_SINF = (F32(-1.9515295891e-4), F32(8.3321608736e-3), F32(-1.6666654611e-1))
_COSF = (F32(2.443315711809948e-5), F32(-1.388731625493765e-3), F32(4.166664568298827e-2))


@intrinsic
def fma_f32(typingctx, a, b, c):
    """``a * b + c`` in float32, rounded once (``llvm.fma.f32``)."""
    if not all(isinstance(v, types.Float) and v.bitwidth == 32 for v in (a, b, c)):
        return None

    def codegen(context, builder, signature, args):
        f = ir.FloatType()
        fn = builder.module.declare_intrinsic("llvm.fma", [f], ir.FunctionType(f, [f, f, f]))
        return builder.call(fn, args)

    return types.float32(types.float32, types.float32, types.float32), codegen


@intrinsic
def sqrt_f32(typingctx, x):
    """IEEE float32 square root (``llvm.sqrt.f32``, correctly rounded)."""
    if not isinstance(x, types.Float) or x.bitwidth != 32:
        return None

    def codegen(context, builder, signature, args):
        fn = builder.module.declare_intrinsic("llvm.sqrt", [ir.FloatType()])
        return builder.call(fn, args)

    return types.float32(types.float32), codegen


@intrinsic
def bit_field_f32(typingctx, word, shift, width):
    """``float32((word >> shift) & (2^width - 1))`` for the low 32 bits of an unsigned
    ``word``, ``width <= 24`` (exact), in 32-bit integer arithmetic: Numba would widen
    it to 64 bits and halve the SIMD lanes."""
    if not all(isinstance(v, types.Integer) for v in (word, shift, width)):
        return None

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        w, sh, wd = (builder.trunc(a, i32) if a.type.width > 32 else a for a in args)
        mask = builder.sub(builder.shl(ir.Constant(i32, 1), wd), ir.Constant(i32, 1))
        field = builder.and_(builder.lshr(w, sh), mask)
        return builder.sitofp(field, ir.FloatType())

    return types.float32(word, shift, width), codegen


@intrinsic
def _log_reduce_f32(typingctx, x):
    """``(m, k)`` with ``x = 2^k m``, ``m`` in ``[sqrt(2)/2, sqrt(2))``, for a positive
    normal float32 ``x`` (``k`` as a float32), in 32-bit integer arithmetic."""
    if not isinstance(x, types.Float) or x.bitwidth != 32:
        return None
    sig = types.UniTuple(types.float32, 2)(types.float32)

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)

        def c(v):
            return ir.Constant(i32, v)

        bits = builder.bitcast(args[0], i32)
        hm = builder.and_(bits, c(0x7FFFFF))
        # i = 2^23 when the mantissa 1.hm >= sqrt(2) (0x3504F3; 0x4AFB0D = 2^23 - that)
        i = builder.and_(builder.add(hm, c(0x4AFB0D)), c(0x800000))
        m = builder.bitcast(builder.or_(hm, builder.xor(i, c(0x3F800000))), ir.FloatType())
        k = builder.add(builder.sub(builder.lshr(bits, c(23)), c(127)), builder.lshr(i, c(23)))
        kf = builder.sitofp(k, ir.FloatType())
        return context.make_tuple(builder, signature.return_type, [m, kf])

    return sig, codegen


@njit(inline="always")
def log_f32(x):
    """``log(x)`` in float32 for a positive normal float32 ``x`` (no check): ``x = 2^k m``,
    ``f = m - 1`` (exact), ``log(1 + f) = f - f^2/2 + f^3 P(f)`` (Cephes' degree-8 ``P``)."""
    m, k = _log_reduce_f32(x)
    f = m - F32_ONE
    z = f * f
    p = _LOGF[0]
    for c in _LOGF[1:]:
        p = fma_f32(p, f, c)
    return fma_f32(k, _LN2F, fma_f32(f * z, p, fma_f32(-F32_HALF, z, f)))


@njit(inline="always")
def sin_kernel_f32(x):
    """``sin(x)`` in float32 for ``|x| <= pi/4``: ``x + x^3 S(x^2)`` (Cephes)."""
    z = x * x
    p = fma_f32(fma_f32(_SINF[0], z, _SINF[1]), z, _SINF[2])
    return fma_f32(z * x, p, x)


@njit(inline="always")
def cos_kernel_f32(x):
    """``cos(x)`` in float32 for ``|x| <= pi/4``: ``1 - x^2/2 + x^4 C(x^2)`` (Cephes)."""
    z = x * x
    p = fma_f32(fma_f32(_COSF[0], z, _COSF[1]), z, _COSF[2])
    return fma_f32(z * z, p, fma_f32(-F32_HALF, z, F32_ONE))


# --- exp ------------------------------------------------------------------------------
LN2_HI = 6.93147180369123816490e-01  # ln 2 in two parts (fdlibm)
LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e00
# exp(r) = sum r^m / m! to m = 13 on |r| <= ln2 / 2: the first term left out is below
# 2^-57 relative; no division (it would bound a SIMD loop: one per element is enough)
_EXP_TAYLOR = tuple(1.0 / math.factorial(m) for m in range(13, 1, -1))
EXP_MIN = -746.0  # exp(x) rounds to 0 below -745.13; the computation below holds to -746


@njit(inline="always")
def exp_nonpositive(x):
    """``exp(x)`` for ``x <= 0``: NaN gives NaN and ``x < -746`` gives 0, as libm.
    ``x = k ln2 + r`` (Cody & Waite: ``k ln2`` in two parts, fdlibm's), ``|r| <= ln2/2``,
    ``exp(r)`` by its degree-13 Taylor polynomial (Horner with FMA), times ``2^k`` in
    two halves so that a subnormal result is rounded once, as libm's is."""
    ok = x >= EXP_MIN  # False for NaN
    t = x if ok else 0.0  # keep the integer conversion below defined
    kf = float(int(t * _INV_LN2 - 0.5))  # nearest integer (ties away from 0), as fdlibm
    r = (t - kf * LN2_HI) - kf * LN2_LO
    p = 0.0
    for c in _EXP_TAYLOR:
        p = fma(p, r, c)
    y = fma(fma(p, r, 1.0), r, 1.0)
    k = int(kf)
    k1 = k >> 1  # floor(k / 2): both halves are normal powers of 2 for k >= -1076
    k2 = k - k1
    y = y * bits_float((k1 + 1023) << 52)
    y = y * bits_float((k2 + 1023) << 52)
    if ok:
        return y
    return 0.0 if x < EXP_MIN else x  # NaN stays NaN


@njit(inline="always")
def sigmoid_parts(x):
    """``(e, n)`` with ``sigmoid(x) = n / (1 + e)``: ``e = exp(-|x|)``, ``n = 1`` for
    ``x >= 0`` and ``e`` below, so no ``exp`` overflows (branch-free)."""
    e = exp_nonpositive(-abs(x))
    n = 1.0 if x >= 0.0 else e
    return e, n
