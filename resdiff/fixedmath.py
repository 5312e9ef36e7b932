"""Elementary functions as fixed polynomials and rationals, for the Monte Carlo kernels.

libm's ``exp``, ``log``, ``sin`` and ``cos`` differ in their last bits between C
libraries and builds (glibc's FMA and non-FMA paths among them), and they are calls that
keep a loop from running in SIMD lanes. The forms here are plain IEEE arithmetic in a
fixed order (with explicit fused multiply-adds, :func:`fma`, which every x86-64 CPU with
FMA rounds identically), without branches (selects only), so Numba vectorises them (in
a kernel compiled with ``error_model="numpy"``: Python's model adds a zero-division
branch to every ``/``) and their bits are the same on every x86-64 CPU: no fast-math,
no implicit contraction, no libm. Their coefficients are fdlibm's (Sun Microsystems,
1993: ``e_log.c``, ``k_sin.c``, ``k_cos.c``; exp is a Taylor polynomial after fdlibm's
reduction), evaluated by Horner's rule with FMA; their error against
libm is a few ulp at most on the ranges used (tests/test_fixedmath.py measures it).
"""

import math

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from .jit import njit


@intrinsic
def float_bits(typingctx, x):
    """The IEEE 754 bits of a float64 as an int64 (a register move)."""
    if not isinstance(x, types.Float) or x.bitwidth != 64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.int64))

    return types.int64(types.float64), codegen


@intrinsic
def bits_float(typingctx, n):
    """The float64 whose IEEE 754 bits are the int64 ``n``."""
    if not isinstance(n, types.Integer) or n.bitwidth != 64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return types.float64(n), codegen


@intrinsic
def sqrt(typingctx, x):
    """IEEE square root (correctly rounded, so the same everywhere) as LLVM's
    ``llvm.sqrt``: unlike ``math.sqrt``, which Numba lowers to a libm call, it runs in
    SIMD lanes."""
    if not isinstance(x, types.Float) or x.bitwidth != 64:
        return None

    def codegen(context, builder, signature, args):
        fn = builder.module.declare_intrinsic("llvm.sqrt", [ir.DoubleType()])
        return builder.call(fn, args)

    return types.float64(types.float64), codegen


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


# --- log (fdlibm e_log.c) --------------------------------------------------------------
LN2_HI = 6.93147180369123816490e-01
LN2_LO = 1.90821492927058770002e-10
_LG1 = 6.666666666666735130e-01
_LG2 = 3.999999999940941908e-01
_LG3 = 2.857142874366239149e-01
_LG4 = 2.222219843214978396e-01
_LG5 = 1.818357216161805012e-01
_LG6 = 1.531383769920937332e-01
_LG7 = 1.479819860511658591e-01
_MANTISSA = 0x000FFFFFFFFFFFFF


@njit(inline="always")
def log_normal(x):
    """``log(x)`` for a positive normal float64 ``x`` (no check: zero, subnormals,
    infinities and NaN are the caller's to exclude). ``x = 2^k m`` with ``m`` in
    ``[sqrt(2)/2, sqrt(2))``, ``f = m - 1``, ``s = f / (2 + f)``, and
    ``log(1 + f) = 2s + s R(s^2)`` with fdlibm's degree-14 minimax ``R``."""
    bits = float_bits(x)
    k = (bits >> 52) - 1023
    hm = bits & _MANTISSA
    # m = 1.hm, or m / 2 (and k + 1) when 1.hm >= sqrt(2) (0x6a09e... is sqrt(2) - 1)
    i = (hm + 0x00095F6400000000) & 0x0010000000000000
    m = bits_float(hm | (i ^ 0x3FF0000000000000))
    k = k + (i >> 52)
    f = m - 1.0
    s = f / (2.0 + f)
    dk = float(k)
    z = s * s
    r = z * fma(z, fma(z, fma(z, fma(z, fma(z, fma(z, _LG7, _LG6), _LG5), _LG4), _LG3), _LG2), _LG1)
    hfsq = 0.5 * f * f
    return dk * LN2_HI - ((hfsq - fma(s, hfsq + r, dk * LN2_LO)) - f)


# --- sin, cos on [-pi/4, pi/4] (fdlibm k_sin.c, k_cos.c) -------------------------------
_S1 = -1.66666666666666324348e-01
_S2 = 8.33333333332248946124e-03
_S3 = -1.98412698298579493134e-04
_S4 = 2.75573137070700676789e-06
_S5 = -2.50507602534068634195e-08
_S6 = 1.58969099521155010221e-10
_C1 = 4.16666666666666019037e-02
_C2 = -1.38888888888741095749e-03
_C3 = 2.48015872894767294178e-05
_C4 = -2.75573143513906633035e-07
_C5 = 2.08757232129817482790e-09
_C6 = -1.13596475577881948265e-11


@njit(inline="always")
def sin_kernel(x):
    """``sin(x)`` for ``|x| <= pi/4``: ``x + x^3 S(x^2)``, fdlibm's degree-13 minimax."""
    z = x * x
    p = fma(z, fma(z, fma(z, fma(z, fma(z, _S6, _S5), _S4), _S3), _S2), _S1)
    return fma(z * x, p, x)


@njit(inline="always")
def cos_kernel(x):
    """``cos(x)`` for ``|x| <= pi/4``: ``1 - x^2/2 + x^4 C(x^2)``, fdlibm's degree-14
    minimax, with ``1 - x^2/2`` summed in two parts for the last bit."""
    z = x * x
    r = z * fma(z, fma(z, fma(z, fma(z, fma(z, _C6, _C5), _C4), _C3), _C2), _C1)
    hz = 0.5 * z
    w = 1.0 - hz
    return w + fma(z, r, (1.0 - w) - hz)


# --- exp ------------------------------------------------------------------------------
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
