"""Counter-based Gaussian streams for the Monte Carlo kernels.

Every random quantity of the Monte Carlo experiments is a pure function of
``(seed, purpose, stream, substream, position)``: the 64-bit key of ``(seed, purpose)``
(:func:`stream_key`, through ``numpy.random.SeedSequence``), the stream (a draw), the
substream (a layer, or 0) and the position in the stream. Draws are therefore identical
whatever the thread count, the chunking of the work or the order in which threads run
them, and a kernel can start a stream anywhere without generating what comes before.

The generator is Philox4x32-10 (Salmon, Moraes, Dror & Shaw 2011, "Parallel random
numbers: as easy as 1, 2, 3"; checked against Random123's known answers): one 128-bit
block per four normals, from the counter ``(block low, block high, stream, substream)``
under the key. Each 64-bit half of a block gives a Box-Muller pair: the radius
``sqrt(-2 log u)`` from 40 bits (``u`` in ``(0, 1]``, so ``|x| <= 7.45``: the normal
mass beyond is 9e-14), the angle from 24 bits, whose top two pick the quadrant exactly
(a normal is thus an exact draw with its angle rounded to 2^-24 of a turn: relative
1e-7, as the 23-bit ziggurat of :mod:`resdiff.rng_xoshiro`, far below any Monte Carlo
resolution here). ``log``, ``sin`` and ``cos`` are the fixed forms of
:mod:`resdiff.fixedmath`: no libm, no branch, so the loop runs in SIMD lanes and its
bits are the same on every x86-64 CPU with FMA.

A generator state (:func:`new_state`) is four words ``(key, stream, substream, next
block)``; :func:`fill_normal` takes blocks from ``next block`` on and advances it.

The PyTorch training runs keep the earlier generator, :mod:`resdiff.rng_xoshiro`.
"""

import zlib

import numpy as np

from .fixedmath import cos_kernel, log_normal, sin_kernel, sqrt
from .jit import njit

STATE_WORDS = 4  # key, stream, substream, next block
_U64 = np.uint64
_MASK32 = _U64(0xFFFFFFFF)
_PHILOX_M0 = _U64(0xD2511F53)
_PHILOX_M1 = _U64(0xCD9E8D57)
_PHILOX_W0 = _U64(0x9E3779B9)
_PHILOX_W1 = _U64(0xBB67AE85)
_TWO_M40 = 2.0**-40
_TWO_M22 = 2.0**-22
_MASK22 = (1 << 22) - 1
_HALF_PI = 1.5707963267948966


def stream_key(seed, purpose):
    """The 64-bit key of the streams for ``purpose`` (a short string) under ``seed``."""
    tag = zlib.crc32(purpose.encode())
    words = np.random.SeedSequence([int(seed), tag]).generate_state(1, np.uint64)
    return np.uint64(words[0])


@njit(inline="always")
def philox4x32(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 of the counter ``(c0, c1, c2, c3)`` under the key ``(k0, k1)``
    (32-bit values held in uint64): the four 32-bit output words."""
    for _ in range(10):
        p0 = _PHILOX_M0 * c0
        p1 = _PHILOX_M1 * c2
        c0, c1, c2, c3 = (
            (p1 >> _U64(32)) ^ c1 ^ k0,
            p1 & _MASK32,
            (p0 >> _U64(32)) ^ c3 ^ k1,
            p0 & _MASK32,
        )
        k0 = (k0 + _PHILOX_W0) & _MASK32
        k1 = (k1 + _PHILOX_W1) & _MASK32
    return c0, c1, c2, c3


@njit(inline="always")
def _box_muller(w):
    """Two standard normals from the 64-bit word ``w``: the radius ``sqrt(-2 log u)``
    from its top 40 bits (``u`` in ``(0, 1]``), the angle from the low 24 (the top two
    of them pick the quadrant exactly)."""
    # u in [2^-40, 1], exact; -2 log u >= 0; sqrt is IEEE (correctly rounded)
    u = float(np.int64(w >> _U64(24)) + 1) * _TWO_M40
    r = sqrt(-2.0 * log_normal(u))
    # angle = quadrant * pi/2 + t, t uniform on [-pi/4, pi/4): uniform on the circle
    quadrant = np.int64(w >> _U64(22)) & 3
    t = (float(np.int64(w) & _MASK22) * _TWO_M22 - 0.5) * _HALF_PI
    c = cos_kernel(t)
    s = sin_kernel(t)
    # rotate (cos t, sin t) by the quadrant: (c, s), (-s, c), (-c, -s), (s, -c)
    swap = (quadrant & 1) == 1
    a = s if swap else c
    b = c if swap else s
    a = -a if ((quadrant + 1) & 2) != 0 else a  # quadrants 1, 2
    b = -b if (quadrant & 2) != 0 else b  # quadrants 2, 3
    return r * a, r * b


@njit(inline="always")
def normal_block(key, stream, substream, block):
    """The four standard normals of block ``block`` of stream ``(key, stream,
    substream)``: one Philox4x32-10 output, two Box-Muller pairs."""
    x0, x1, x2, x3 = philox4x32(
        block & _MASK32,
        block >> _U64(32),
        stream & _MASK32,
        substream & _MASK32,
        key & _MASK32,
        key >> _U64(32),
    )
    a, b = _box_muller((x0 << _U64(32)) | x1)
    c, d = _box_muller((x2 << _U64(32)) | x3)
    return a, b, c, d


@njit(cache=True)
def new_state(key, stream, substream):
    """The state of stream ``(key, stream, substream)`` at its start (pair 0)."""
    s = np.empty(STATE_WORDS, np.uint64)
    s[0] = key
    s[1] = stream
    s[2] = substream
    s[3] = 0
    return s


@njit(cache=True, error_model="numpy")
def fill_normal(s, out):
    """Fill the flat view of ``out`` with the standard normals of state ``s``: block
    ``s[3] + j`` gives elements ``4j .. 4j + 3``; ``s[3]`` advances by the blocks used
    (the unused normals of a last partial block are skipped). The main loop has no
    branch and no call, so it runs in SIMD lanes."""
    flat = out.reshape(-1)
    n = flat.size
    key, stream, substream, start = s[0], s[1], s[2], s[3]
    full = n // 4
    for j in range(full):
        a, b, c, d = normal_block(key, stream, substream, start + _U64(j))
        flat[4 * j] = a
        flat[4 * j + 1] = b
        flat[4 * j + 2] = c
        flat[4 * j + 3] = d
    rest = n - 4 * full
    if rest:
        a, b, c, d = normal_block(key, stream, substream, start + _U64(full))
        flat[4 * full] = a
        if rest > 1:
            flat[4 * full + 1] = b
        if rest > 2:
            flat[4 * full + 2] = c
    s[3] = start + _U64((n + 3) // 4)


@njit(cache=True)
def layer_noise(key, draw, layer, eps_W, eps_b):
    """The standard-normal parameters ``(eps_W, eps_b)`` of layer ``layer`` of one draw
    (eq. 17), from the stream ``(key, draw, layer + 1)``: each layer has its own stream,
    so a backward pass can regenerate any layer and a run can stop after any layer."""
    s = new_state(key, draw, layer + 1)
    fill_normal(s, eps_W)
    fill_normal(s, eps_b)


def normals(seed, purpose, stream, size):
    """Standard normals of stream ``(seed, purpose, stream)`` (substream 0)."""
    s = new_state(stream_key(seed, purpose), stream, 0)
    out = np.empty(size)
    fill_normal(s, out)
    return out
