"""The training runs' initialisation streams: xoshiro256** and a 32-bit ziggurat.

This is resdiff's first generator, kept unchanged in its numbers for the PyTorch
networks of Figs. 6 and 7 (:mod:`resdiff.mnist.models`), whose committed training runs
were initialised from it (numerical families ``train-fc`` and ``train-conv``). The
Monte Carlo experiments use the faster counter-based generator of :mod:`resdiff.rng`.

A stream is a pure function of ``(seed, purpose, stream, substream)``: its state is
derived from the user's seed (through ``numpy.random.SeedSequence``), a purpose tag
and the stream indices. The generator is xoshiro256** (Blackman & Vigna) seeded by
splitmix64; normals come from the 256-layer ziggurat in numpy's float form (two
normals per 64-bit word on the fast path, exact rejection in the wedges and the tail).
"""

import math
import zlib

import numpy as np

from .jit import njit

_U64 = np.uint64
_SPLITMIX_GAMMA = _U64(0x9E3779B97F4A7C15)
_SPLITMIX_M1 = _U64(0xBF58476D1CE4E5B9)
_SPLITMIX_M2 = _U64(0x94D049BB133111EB)


def stream_key(seed, purpose):
    """The 64-bit key of the streams for ``purpose`` (a short string) under ``seed``."""
    tag = zlib.crc32(purpose.encode())
    words = np.random.SeedSequence([int(seed), tag]).generate_state(1, np.uint64)
    return np.uint64(words[0])


# --- ziggurat tables (Marsaglia & Tsang 2000, 256 layers) ----------------------------
_ZIG_R = 3.6541528853610088
_ZIG_INV_R = 1.0 / _ZIG_R
_ZIG_V = 0.00492867323399


def _ziggurat_tables(bits):
    m1 = 2.0**bits
    ki = np.zeros(256, np.uint64)
    wi = np.zeros(256)
    fi = np.zeros(256)
    dn = tn = _ZIG_R
    q = _ZIG_V / math.exp(-0.5 * dn * dn)
    ki[0] = np.uint64(int((dn / q) * m1))
    ki[1] = 0
    wi[0] = q / m1
    wi[255] = dn / m1
    fi[0] = 1.0
    fi[255] = math.exp(-0.5 * dn * dn)
    for i in range(254, 0, -1):
        dn = math.sqrt(-2.0 * math.log(_ZIG_V / dn + math.exp(-0.5 * dn * dn)))
        ki[i + 1] = np.uint64(int((dn / tn) * m1))
        tn = dn
        fi[i] = math.exp(-0.5 * dn * dn)
        wi[i] = dn / m1
    return ki, wi, fi


# 32-bit variant (numpy's float ziggurat): 8 bits layer, 1 sign, 23 bits position
ZIG32_KI, ZIG32_WI, ZIG32_FI = _ziggurat_tables(23)


# --- generator ------------------------------------------------------------------------
@njit(inline="always")
def _rotl(x, k):
    return (x << _U64(k)) | (x >> _U64(64 - k))


@njit(inline="always")
def _splitmix64(x):
    x = x + _SPLITMIX_GAMMA
    z = x
    z = (z ^ (z >> _U64(30))) * _SPLITMIX_M1
    z = (z ^ (z >> _U64(27))) * _SPLITMIX_M2
    return x, z ^ (z >> _U64(31))


@njit(cache=True)
def new_state(key, stream, substream):
    """xoshiro256** state of stream ``(key, stream, substream)``, seeded by splitmix64."""
    s = np.empty(4, np.uint64)
    x = key ^ (_U64(stream) * _U64(0xD1B54A32D192ED03))
    x, _ = _splitmix64(x)
    x = x ^ (_U64(substream) * _U64(0x8CB92BA72F3D8DD7))
    for i in range(4):
        x, z = _splitmix64(x)
        s[i] = z
    return s


@njit(inline="always")
def next_u64(s):
    result = _rotl(s[1] * _U64(5), 7) * _U64(9)
    t = s[1] << _U64(17)
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = _rotl(s[3], 45)
    return result


@njit(inline="always")
def next_double(s):
    """Uniform on [0, 1) with 53 random bits."""
    return (next_u64(s) >> _U64(11)) * (1.0 / 9007199254740992.0)


@njit(inline="always")
def _ziggurat_tail(s, negative):
    """A normal beyond the base strip's edge r: Marsaglia's exponential rejection."""
    while True:
        xx = -_ZIG_INV_R * math.log1p(-next_double(s))
        yy = -math.log1p(-next_double(s))
        if yy + yy > xx * xx:
            return -(_ZIG_R + xx) if negative else _ZIG_R + xx


@njit(inline="always")
def _normal32(s, r):
    """A standard normal from the 32-bit word ``r`` (more words from ``s`` on rejection).

    The position within a ziggurat layer has 23 bits: values are exact draws from
    N(0, 1) rounded to 2^-23 of their layer's width (relative 1e-7), far below any
    Monte Carlo resolution here, at half the generator cost of the 52-bit path.
    """
    while True:
        idx = np.int64(r & _U64(0xFF))
        rabs = (r >> _U64(9)) & _U64(0x7FFFFF)
        x = np.int64(rabs) * ZIG32_WI[idx]
        if (r >> _U64(8)) & _U64(1):
            x = -x
        if rabs < ZIG32_KI[idx]:
            return x
        if idx == 0:
            return _ziggurat_tail(s, (rabs >> _U64(8)) & _U64(1))
        if (ZIG32_FI[idx - 1] - ZIG32_FI[idx]) * next_double(s) + ZIG32_FI[idx] < math.exp(
            -0.5 * x * x
        ):
            return x
        r = next_u64(s) & _U64(0xFFFFFFFF)


@njit(cache=True)
def fill_normal(s, out):
    """Fill the flat view of ``out`` with standard normals from state ``s``: two per
    64-bit word (:func:`_normal32`)."""
    flat = out.reshape(-1)
    n = flat.size
    for i in range(0, n - 1, 2):
        r = next_u64(s)
        flat[i] = _normal32(s, r & _U64(0xFFFFFFFF))
        flat[i + 1] = _normal32(s, r >> _U64(32))
    if n % 2:
        flat[n - 1] = _normal32(s, next_u64(s) & _U64(0xFFFFFFFF))


def normals(seed, purpose, stream, size):
    """Standard normals of stream ``(seed, purpose, stream)``."""
    s = new_state(stream_key(seed, purpose), stream, 0)
    out = np.empty(size)
    fill_normal(s, out)
    return out
