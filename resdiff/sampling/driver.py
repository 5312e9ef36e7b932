"""Run a draw kernel in chunks: progress, prompt interruption, bounded memory.

Numba kernels do not see signals, so the work is cut into chunks of draws and, for deep
networks, of layers; Python regains control between chunks, and ``Ctrl-C`` or
``SIGTERM`` stops a run within one chunk (:mod:`resdiff.interrupt`). Chunking never
changes the numbers: draw ``i`` always uses stream ``i``, and a kernel run layer by
layer carries its whole state (network states and generator states) between chunks.
"""

import math
import os
import time

import numpy as np

from .. import interrupt
from ..jit import njit
from ..errors import UserError
from ..progress import progress

MEMORY_FRACTION = 0.8  # refuse work whose estimate exceeds this share of available RAM
MIN_CHUNK_WORK = 5e7  # multiply-adds per chunk at least (~25 ms on one core): small
# networks do not pay a parallel-region start-up (and an OpenMP stall) per few draws
MAX_CHUNK_WORK = 1e9  # and at most (~0.5 s on one core): the longest wait for Ctrl-C
CHUNK_BYTES = 64 * 2**20  # per-chunk arrays (states, conditional covariances) at most
CHUNK_SECONDS = 0.2  # layer chunks adapt to take about this long each


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
        raise UserError(
            f"{what} needs about {n_bytes / 2**30:.1f} GiB of memory, more than "
            f"the {limit / 2**30:.1f} GiB available; reduce the sizes or draws"
        )


def plan_chunks(n_draws, depth, layer_work, draw_bytes=0, threads=None):
    """``(draws, layers)`` per chunk, the one place chunk sizes are decided.

    ``layer_work``: multiply-adds per layer and draw; ``draw_bytes``: memory one draw of
    a chunk holds. Draws: about 100 chunks (progress), a multiple of the thread count,
    at least MIN_CHUNK_WORK and at most MAX_CHUNK_WORK multiply-adds, at most
    CHUNK_BYTES. Layers: all of them, or as many as keep a chunk within MAX_CHUNK_WORK.
    """
    if threads is None:
        import numba

        threads = numba.get_num_threads()
    depth = max(1, int(depth))
    per_draw = max(1.0, float(layer_work) * depth)
    hundredth = max(1, math.ceil(n_draws / 100 / threads)) * threads
    least = math.ceil(MIN_CHUNK_WORK / per_draw / threads) * threads
    most = max(1, int(MAX_CHUNK_WORK / per_draw / threads)) * threads
    draws = min(n_draws, max(min(hundredth, most), least))
    if draw_bytes:
        draws = max(1, min(draws, CHUNK_BYTES // int(draw_bytes)))
    layers = max(1, min(depth, int(MAX_CHUNK_WORK / max(1.0, layer_work * draws))))
    return draws, layers


def run_chunked(kernel, n_draws, label, chunk, depth=None, layers=None):
    """Stack the outputs of ``kernel`` over draws ``[0, n_draws)`` along the first axis.

    Without ``depth``: ``kernel(start, count)`` returns the outputs of draws
    ``start .. start + count - 1``. With ``depth``: ``kernel(start, count, lo, hi,
    state)`` advances those draws through layers ``lo .. hi - 1``, keeping what it needs
    in the dict ``state`` (empty at ``lo = 0``), and returns the outputs at ``hi = depth``.

    ``layers`` (default: all) is where the layer chunks start: they then shrink or grow
    so that each call takes about CHUNK_SECONDS, whatever the cost model missed and
    however busy the machine is (the numbers do not depend on the chunks).
    """
    parts = []
    layers = depth if layers is None else max(1, math.ceil(layers / 8))
    total = n_draws * (depth or 1)
    with progress(total, label) as bar:
        for start in range(0, n_draws, chunk):
            count = min(chunk, n_draws - start)
            if depth is None:
                with interrupt.shielded():
                    parts.append(kernel(start, count))
                bar.update(count)
                continue
            state = {}
            lo = 0
            while lo < depth:
                hi = min(depth, lo + layers)
                t0 = time.perf_counter()
                with interrupt.shielded():
                    out = kernel(start, count, lo, hi, state)
                took = time.perf_counter() - t0
                # at most 4x per call and never beyond the depth (a chunk of draws that
                # runs fast would otherwise grow it without bound, past a float's range)
                layers = max(
                    1,
                    min(
                        4 * layers, depth, int(min(depth, layers * CHUNK_SECONDS / max(took, 1e-6)))
                    ),
                )
                bar.update(count * (hi - lo))
                lo = hi
            parts.append(out)
    return np.concatenate(parts, axis=0)


# A draw diverges when its output is not finite or exceeds this bound. The Gram sampler
# squares the state, so it overflows once |x| passes ~1e154, while explicit weights only
# overflow past ~1e308: one bound below both makes the count independent of the sampler.
DIVERGENCE_BOUND = 1e150


@njit(inline="always")
def within_bound(v, bound):
    """The divergence rule for one output: False when ``v`` is not finite or beyond
    ``bound`` in absolute value (a NaN fails the comparison)."""
    return abs(v) <= bound


@njit(cache=True)
def _divergent_rows(checked, bound, bad):
    for i in range(checked.shape[0]):
        ok = True
        for v in checked[i].flat:
            ok &= within_bound(v, bound)
        bad[i] = not ok


def mark_divergent(values, checked=None):
    """Set to NaN, in place, the draws (rows) of ``values`` with an output in ``checked``
    (default: all of ``values``) that fails :func:`within_bound` for DIVERGENCE_BOUND;
    return their boolean mask."""
    checked = np.ascontiguousarray(values if checked is None else checked, dtype=float)
    bad = np.empty(checked.shape[0], np.bool_)
    _divergent_rows(checked.reshape(checked.shape[0], -1), DIVERGENCE_BOUND, bad)
    values[bad] = np.nan
    return bad
