"""Numba for resdiff's kernels, configured once, before the first kernel is compiled.

Every module that defines a kernel imports ``njit`` and ``prange`` from here, so the
configuration happens when a kernel is first needed, not on ``import resdiff``:

* Numba's compiled-code cache lives in ``~/.cache/resdiff/numba/<digest>`` (or under
  ``$RESDIFF_NUMBA_CACHE``), keyed on the computing sources
  (:func:`resdiff.sources.computing_digest`). Numba re-validates a cached kernel against
  its own file only, not the functions it inlines (the RNG, the activations): after an
  edit to ``rng.py`` a cache keyed otherwise would silently keep the old generator.
  A ``NUMBA_CACHE_DIR`` the user has set is left alone (and so is the staleness it
  risks after an edit of resdiff's sources).
* Kernels that evaluate activations or normals are compiled with
  ``error_model="numpy"``: Python's model puts a zero-division branch before every
  ``/``, which keeps those loops out of SIMD lanes (no result changes: IEEE division).
* Parallel regions here are few and long (one per chunk of draws): threads that sleep
  instead of spinning between them cost nothing and stop stalls on shared cores.
"""

import os
import sys

from .files import user_cache_dir
from .sources import computing_digest


def numba_cache_dir():
    base = os.environ.get("RESDIFF_NUMBA_CACHE") or user_cache_dir("numba")
    return os.path.join(base, computing_digest())


# resdiff's own choice is marked, so that a child process (a worker, a test's
# subprocess) that inherits it chooses again rather than taking it for the user's
_CHOSEN = "RESDIFF_CHOSE_NUMBA_CACHE_DIR"
_user_dir = os.environ.get("NUMBA_CACHE_DIR")
if not _user_dir or _user_dir == os.environ.get(_CHOSEN):
    os.environ["NUMBA_CACHE_DIR"] = os.environ[_CHOSEN] = numba_cache_dir()
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
if "numba.core.config" in sys.modules:  # numba was imported first: re-read the settings
    sys.modules["numba.core.config"].reload_config()

from numba import njit, prange  # noqa: E402  (after the settings above)

__all__ = ["njit", "prange", "numba_cache_dir"]
