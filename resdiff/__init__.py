"""resdiff: regenerate the figures of "Doubly infinite residual networks: a diffusion
process approach" (Peluchetti & Favaro)."""
import functools
import hashlib
import os
from pathlib import Path

__version__ = "0.1.0"


@functools.lru_cache(maxsize=None)
def source_digest(skip=()):
    """A hash of resdiff's own ``.py`` sources, less the top-level folders in ``skip``
    (a tuple); read once per process."""
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] in skip:
            continue
        digest.update(str(rel).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _numba_cache_dir():
    """A Numba cache directory keyed on a hash of resdiff's own sources.

    Numba's ``cache=True`` re-validates a cached function against its own file only, not
    against the modules it inlines (the RNG, the activations): after an edit to
    ``rng.py`` a stale cache would silently keep the old generator. Keying the cache on
    every source file makes any edit recompile everything once.
    """
    base = os.environ.get("RESDIFF_NUMBA_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "resdiff", "numba")
    return os.path.join(base, source_digest())


os.environ["NUMBA_CACHE_DIR"] = _numba_cache_dir()
# Parallel regions here are few and long (one per chunk of draws): threads that sleep
# instead of spinning between them cost nothing and stop stalls on shared cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
if "numba.core.config" in __import__("sys").modules:  # numba imported before resdiff
    __import__("numba").core.config.reload_config()
