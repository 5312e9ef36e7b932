"""The machine a result was computed on, for the sidecar: the CPU model, the target the
Numba kernels were compiled for, and the C library (whose libm computes exp and tanh).

The kernels' arithmetic runs in a fixed order, so results do not depend on the SIMD
width; this record lets a reader check that claim, or trace a difference to libm.
"""
import os
import platform


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


def describe():
    """``{"cpu", "kernel_target", "kernel_features", "libc", "openblas_coretype"}``:
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
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
    }
