"""The machine a result was computed on, for the sidecar: the CPU model, the target the
Numba kernels were compiled for, and the C library (whose libm computes exp and tanh).

The kernels' arithmetic runs in a fixed order, so results do not depend on the SIMD
width; this record lets a reader check that claim, or trace a difference to libm.
"""

import functools
import hashlib
import math
import os
import platform
import struct

# SHA-256 of the bits of exp, expm1, tanh, log1p and cos at the points of
# :func:`libm_digest` under glibc 2.36 with its FMA variants: measured on the Zen 5 EPYC
# that recomputed the committed paper-preset CSVs (made on Zen 3) byte for byte, and the
# same with its AVX-512 masked. glibc's non-FMA variants (GLIBC_TUNABLES masking FMA, as
# on a CPU without it) give another digest; so may another glibc. Then the same seed can
# give other numbers (docs/reproducibility.md).
REFERENCE_LIBM = "666d41ce3258da12d9dfe6fcef7aed4db09a128d8ed1aba4b25877b8d8ab4c75"
LIBM_WARNING = (
    "this machine's libm (exp, tanh) differs in its last bits from the one the "
    "committed results were computed with (glibc 2.36 on a CPU with FMA), so "
    "the same seed can give other numbers here (docs/reproducibility.md)"
)


def cpu_model():
    """The ``model name`` of the first CPU in /proc/cpuinfo (else the platform's name)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:  # pragma: no cover - non-Linux
        pass
    return platform.processor() or platform.machine()


def libm_digest(points=20000):
    """SHA-256 of the bits of libm's exp, expm1, tanh, log1p and cos at ``points`` fixed
    arguments in [-20, 20] (10-30 ms); Numba's kernels call the same functions."""
    digest = hashlib.sha256()
    for i in range(points):
        x = -20.0 + 40.0 * ((i * 0.6180339887498949) % 1.0)
        for value in (math.exp(x), math.expm1(x), math.tanh(x), math.log1p(abs(x)), math.cos(x)):
            digest.update(struct.pack("<d", value))
    return digest.hexdigest()


@functools.lru_cache(maxsize=None)
def libm_is_reference():
    """Whether this process's libm computes as the one of the committed results."""
    return libm_digest() == REFERENCE_LIBM


def describe():
    """``{"cpu", "kernel_target", "kernel_features", "libc", "libm_reference",
    "openblas_coretype"}``:
    the Numba target CPU and features as used (``NUMBA_CPU_NAME`` and
    ``NUMBA_CPU_FEATURES`` when set, else the host's, as Numba itself chooses)."""
    import llvmlite.binding as llvm
    from numba.core import config

    name = config.CPU_NAME or llvm.get_host_cpu_name()
    features = config.CPU_FEATURES
    if features is None:
        features = llvm.get_host_cpu_features().flatten()
    enabled = sorted(f[1:] for f in features.split(",") if f.startswith("+"))
    return {
        "cpu": cpu_model(),
        "kernel_target": name,
        "kernel_features": " ".join(enabled) if features else "(the target's defaults)",
        "libc": " ".join(platform.libc_ver()),
        "libm_reference": libm_is_reference(),
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
    }
