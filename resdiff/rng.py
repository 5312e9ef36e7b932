"""Counter-based Gaussian streams for the Monte Carlo kernels.

Every random quantity of the Monte Carlo experiments is a pure function of
``(seed, purpose, stream, substream, position)``: the 64-bit key of ``(seed, purpose)``
(:func:`stream_key`, through ``numpy.random.SeedSequence``), the stream (a draw), the
substream (a layer, or 0) and the position in the stream. Draws are therefore identical
whatever the thread count, the chunking of the work or the order in which threads run
them, and a kernel can start a stream anywhere without generating what comes before.

The generator is Philox4x32-10 (Salmon, Moraes, Dror & Shaw 2011, "Parallel random
numbers: as easy as 1, 2, 3"; checked against Random123's known answers): one 128-bit
block ``(x0, x1, x2, x3)`` per four normals, from the counter ``(block low, block high,
stream, substream)`` under the key. Each pair of 32-bit words is a Box-Muller pair,
computed in float32 (:func:`normal_pair`): the radius ``sqrt(-2 log u)`` from ``x0``
(``u`` on an exact grid of ``(0, 1]`` down to ``2^-32``, so ``|x| <= 6.66``: the normal
mass beyond is 2.7e-11), the angle from the top 24 bits of ``x1`` (the top two pick the
quadrant exactly). ``log``, ``sin`` and ``cos`` are the fixed float32 forms of
:mod:`resdiff.fixedmath`, within 1.3 ulp of float32; a normal is within 4.5e-7 (relative
to its radius) of the float64 Box-Muller of the same ``u`` and angle (tests/test_rng.py),
far below any Monte Carlo resolution here, and it is stored as a float64. No libm, no
branch: the passes of :func:`fill_normal_using` run in SIMD lanes (the Box-Muller pass
16 to an AVX-512 register), and their bits are the same on every x86-64 CPU with FMA.
`make bench` measures its rate against the earlier generators (BENCHMARKS.md).

A generator state (:func:`new_state`) is four words ``(key, stream, substream, next
block)``; :func:`fill_normal` (or :func:`fill_normal_using`, with a work space the
caller keeps, :func:`workspace`) takes blocks from ``next block`` on and advances it.

The PyTorch training runs keep the earlier generator, :mod:`resdiff.rng_xoshiro`.
"""

import zlib

import numpy as np

from .fixedmath import (
    F32,
    F32_ONE,
    bit_field_f32,
    cos_kernel_f32,
    fma_f32,
    log_f32,
    sin_kernel_f32,
    sqrt_f32,
)
from .jit import njit

STATE_WORDS = 4  # key, stream, substream, next block
# blocks (four normals) per pass of fill_normal: its work space, 32 bytes a block
# (16 KiB), stays in the L1 cache between the passes
CHUNK_BLOCKS = 512
_U64 = np.uint64
_MASK32 = _U64(0xFFFFFFFF)
_PHILOX_M0 = _U64(0xD2511F53)
_PHILOX_M1 = _U64(0xCD9E8D57)
_PHILOX_W0 = _U64(0x9E3779B9)
_PHILOX_W1 = _U64(0xBB67AE85)
_TWO_M24 = F32(2.0**-24)
_TWO_M32 = F32(2.0**-32)
_TWO_M22 = F32(2.0**-22)
_ANGLE_OFFSET = F32(2.0**-23 - 0.5)  # (j + 1/2) 2^-22 - 1/2 = j 2^-22 + this, exactly
_HALF_PI = F32(1.5707963267948966)
_MINUS_TWO = F32(-2.0)
_ZERO, _TWO, _THREE = F32(0.0), F32(2.0), F32(3.0)


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
def _philox_block(key, stream, substream, block):
    """The four 32-bit words of block ``block`` of stream ``(key, stream, substream)``."""
    return philox4x32(
        block & _MASK32,
        block >> _U64(32),
        stream & _MASK32,
        substream & _MASK32,
        key & _MASK32,
        key >> _U64(32),
    )


@njit(inline="always")
def radius(word):
    """The Box-Muller radius ``sqrt(-2 log u)`` of a 32-bit ``word``, in float32: ``u``
    is the upper end of the word's cell of a grid of ``(0, 1]``, of width ``2^-24``
    (its top 24 bits) except for the first cell, split in 256 of width ``2^-32`` (its
    low 8 bits), so ``u`` is exact, uniform on the grid, and ``u >= 2^-32``
    (``r <= 6.66``: the normal mass beyond is 2.7e-11)."""
    top = bit_field_f32(word, 8, 24)
    low = bit_field_f32(word, 0, 8)
    u = (top + F32_ONE) * _TWO_M24 if top > _ZERO else (low + F32_ONE) * _TWO_M32
    return sqrt_f32(_MINUS_TWO * log_f32(u))


@njit(inline="always")
def direction(word):
    """``(cos, sin)`` of the Box-Muller angle of a 32-bit ``word``, in float32: its top
    2 bits pick the quadrant exactly, the next 22 the angle within it, at the midpoints
    of 2^22 cells (so the angles are symmetric: every normal's sign is a fair coin)."""
    quadrant = bit_field_f32(word, 30, 2)
    t = fma_f32(bit_field_f32(word, 8, 22), _TWO_M22, _ANGLE_OFFSET) * _HALF_PI
    c = cos_kernel_f32(t)
    s = sin_kernel_f32(t)
    # rotate (cos t, sin t) by the quadrant: (c, s), (-s, c), (-c, -s), (s, -c)
    odd = quadrant == F32_ONE or quadrant == _THREE
    a = s if odd else c
    b = c if odd else s
    a = -a if (quadrant == F32_ONE or quadrant == _TWO) else a  # quadrants 1, 2
    b = -b if quadrant >= _TWO else b  # quadrants 2, 3
    return a, b


@njit(inline="always")
def normal_pair(radius_word, angle_word):
    """The two standard normals (float32) of one Box-Muller pair."""
    r = radius(radius_word)
    a, b = direction(angle_word)
    return r * a, r * b


@njit(inline="always")
def normal_block(key, stream, substream, block):
    """The four standard normals of block ``block`` of stream ``(key, stream,
    substream)``: one Philox4x32-10 output ``(x0, x1, x2, x3)``, two Box-Muller pairs
    (radius ``x0``, angle ``x1``; radius ``x2``, angle ``x3``). The reference form of
    what :func:`fill_normal` computes in passes."""
    x0, x1, x2, x3 = _philox_block(key, stream, substream, block)
    a, b = normal_pair(x0, x1)
    c, d = normal_pair(x2, x3)
    return float(a), float(b), float(c), float(d)


@njit(cache=True)
def new_state(key, stream, substream):
    """The state of stream ``(key, stream, substream)`` at its start (block 0)."""
    s = np.empty(STATE_WORDS, np.uint64)
    s[0] = key
    s[1] = stream
    s[2] = substream
    s[3] = 0
    return s


@njit(cache=True)
def workspace(n):
    """The work space of :func:`fill_normal_using` for fills of up to ``n`` normals."""
    return np.empty(8 * max(1, min(CHUNK_BLOCKS, (n + 3) // 4)), np.uint32)


@njit(error_model="numpy")
def _philox_words(key, stream, substream, first_block, radii, angles):
    """Pass 1: blocks ``first_block ...``: block ``j``'s radius words ``x0, x2`` in
    ``radii[2j], radii[2j + 1]``, its angle words ``x1, x3`` in ``angles``."""
    for j in range(radii.size // 2):
        x0, x1, x2, x3 = _philox_block(key, stream, substream, first_block + _U64(j))
        radii[2 * j] = x0
        angles[2 * j] = x1
        radii[2 * j + 1] = x2
        angles[2 * j + 1] = x3


@njit(error_model="numpy")
def _box_muller_pairs(radii, angles, first, second):
    """Pass 2: pair ``i`` (``radii[i]``, ``angles[i]``) in float32."""
    for i in range(first.size):
        first[i], second[i] = normal_pair(radii[i], angles[i])


@njit(error_model="numpy")
def _store_pairs(first, second, dest):
    """Pass 3: ``dest`` (float64) takes the pairs in order, a last odd one cut short."""
    count = dest.size
    for i in range(count // 2):
        dest[2 * i] = first[i]
        dest[2 * i + 1] = second[i]
    if count % 2:
        dest[count - 1] = first[count // 2]


@njit(cache=True, error_model="numpy")
def fill_normal_using(s, out, work):
    """Fill the flat view of ``out`` with the standard normals of state ``s``: block
    ``s[3] + j`` gives elements ``4j .. 4j + 3`` (:func:`normal_block`); ``s[3]``
    advances by the blocks used (the unused normals of a last partial block are
    skipped). ``work`` (:func:`workspace`) holds a chunk's words and float32 normals
    between three passes, each a branch-free loop in SIMD lanes: Philox, Box-Muller in
    float32 (16 lanes to an AVX-512 register), and the float64 stores. (Each pass is
    handed slices of exactly its length: with offsets into whole arrays LLVM kept some
    of these loops scalar.)"""
    flat = out.reshape(-1)
    n = flat.size
    key, stream, substream, start = s[0], s[1], s[2], s[3]
    cap = work.size // 8
    blocks = (n + 3) // 4
    done = 0
    while done < blocks:
        m = min(cap, blocks - done)
        radii = work[: 2 * m]
        angles = work[2 * cap : 2 * cap + 2 * m]
        first = work[4 * cap : 4 * cap + 2 * m].view(np.float32)
        second = work[6 * cap : 6 * cap + 2 * m].view(np.float32)
        _philox_words(key, stream, substream, start + _U64(done), radii, angles)
        _box_muller_pairs(radii, angles, first, second)
        base = 4 * done
        _store_pairs(first, second, flat[base : min(base + 4 * m, n)])
        done += m
    s[3] = start + _U64(blocks)


@njit(cache=True, error_model="numpy")
def fill_normal(s, out):
    """:func:`fill_normal_using` with a work space of its own."""
    fill_normal_using(s, out, workspace(out.size))


@njit(cache=True)
def layer_noise(key, draw, layer, eps_W, eps_b):
    """The standard-normal parameters ``(eps_W, eps_b)`` of layer ``layer`` of one draw
    (eq. 17), from the stream ``(key, draw, layer + 1)``: each layer has its own stream,
    so a backward pass can regenerate any layer and a run can stop after any layer."""
    s = new_state(key, draw, layer + 1)
    work = workspace(max(eps_W.size, eps_b.size))
    fill_normal_using(s, eps_W, work)
    fill_normal_using(s, eps_b, work)


def normals(seed, purpose, stream, size):
    """Standard normals of stream ``(seed, purpose, stream)`` (substream 0)."""
    s = new_state(stream_key(seed, purpose), stream, 0)
    out = np.empty(size)
    fill_normal(s, out)
    return out
