"""Run a draw kernel in chunks: progress, prompt interruption, bounded memory.

Numba kernels do not see signals, so the work is cut into chunks of draws and Python
regains control between them; ``Ctrl-C`` or ``SIGTERM`` stops a run within one chunk.
Chunking never changes the numbers (draw ``i`` always uses stream ``i``).
"""
import math
import os

import numpy as np

from ..errors import UserError
from ..progress import progress

MEMORY_FRACTION = 0.8  # refuse work whose estimate exceeds this share of available RAM


def available_memory_bytes():
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover - non-Linux
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_memory(n_bytes, what):
    """Refuse, with the estimate, work that would not fit in memory."""
    limit = MEMORY_FRACTION * available_memory_bytes()
    if n_bytes > limit:
        raise UserError(f"{what} needs about {n_bytes / 2**30:.1f} GiB of memory, more than "
                        f"the {limit / 2**30:.1f} GiB available; reduce the sizes or draws")


def default_chunk(n_draws, threads=None):
    """About 100 chunks, each a multiple of the thread count."""
    if threads is None:
        import numba
        threads = numba.get_num_threads()
    per = max(1, math.ceil(n_draws / 100 / threads)) * threads
    return min(n_draws, per)


def run_chunked(kernel, n_draws, label, chunk=None):
    """Stack ``kernel(start, count)`` over ``[0, n_draws)`` along the first axis."""
    chunk = chunk or default_chunk(n_draws)
    parts = []
    with progress(n_draws, label) as bar:
        for start in range(0, n_draws, chunk):
            count = min(chunk, n_draws - start)
            parts.append(kernel(start, count))
            bar.update(count)
    return np.concatenate(parts, axis=0)


# A draw diverges when its output is not finite or exceeds this bound. The Gram sampler
# squares the state, so it overflows once |x| passes ~1e154, while explicit weights only
# overflow past ~1e308: one bound below both makes the count independent of the sampler.
DIVERGENCE_BOUND = 1e150


def mark_divergent(values, checked=None):
    """Set to NaN, in place, the draws (rows) of ``values`` with an output in ``checked``
    (default: all of ``values``) that is not finite or beyond DIVERGENCE_BOUND in
    absolute value; return their boolean mask."""
    checked = values if checked is None else np.asarray(checked)
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(checked.reshape(checked.shape[0], -1)) <= DIVERGENCE_BOUND).all(axis=1)
    values[bad] = np.nan
    return bad
