"""Results on disk: a tidy CSV plus a JSON sidecar ``PATH.json``, written atomically.

A result is published by renaming finished temporary files into place (CSV first, then
the sidecar), so an interrupted run never leaves a CSV whose sidecar claims it complete.
The sidecar is the provenance record and the cache key (:func:`cached`).
"""
import contextlib
import json
import os
import platform
import resource
import subprocess
import tempfile
import time
from pathlib import Path

from . import __version__
from .errors import UserError


def sidecar_path(path):
    path = Path(path)
    return path.with_name(path.name + ".json")


def git_commit():
    """The commit of the source tree resdiff runs from, or None outside a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and len(commit) == 40 else None


def thread_count():
    try:
        import numba
        return numba.get_num_threads()
    except ImportError:  # pragma: no cover
        return os.cpu_count()


def peak_memory_mib():
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def check_writable(path):
    """Fail early, before any computation, if ``path`` cannot be written."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the directory of --out {path}: {exc.strerror}")
    if path.is_dir():
        raise UserError(f"--out {path} is a directory, expected a file path")
    if not os.access(parent, os.W_OK):
        raise UserError(f"cannot write --out {path}: directory {parent} is not writable")


@contextlib.contextmanager
def _atomic(path, mode="w"):
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_result(path, frame, params, meta=None, command=None, started=None):
    """Write ``frame`` as CSV at ``path`` and the sidecar beside it; return the sidecar."""
    path = Path(path)
    check_writable(path)
    sidecar = {
        "command": command,
        "params": params,
        "seed": params.get("seed"),
        "version": __version__,
        "git_commit": git_commit(),
        "threads": thread_count(),
        "python": platform.python_version(),
        "wall_time_s": None if started is None else round(time.time() - started, 3),
        "peak_memory_mib": round(peak_memory_mib(), 1),
        "rows": int(len(frame)),
        "meta": meta or {},
    }
    side = sidecar_path(path)
    with contextlib.suppress(FileNotFoundError):
        side.unlink()  # a stale sidecar must never vouch for the new CSV
    with _atomic(path) as fh:
        frame.to_csv(fh, index=False, float_format="%.17g")
    with _atomic(side) as fh:
        json.dump(sidecar, fh, indent=2, sort_keys=True, default=_json_default)
        fh.write("\n")
    return sidecar


def _json_default(obj):
    import numpy as np
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def read_sidecar(path):
    side = sidecar_path(path)
    try:
        with open(side) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def normalise(params):
    """``params`` as they read back from JSON (tuples become lists, numpy scalars floats)."""
    return json.loads(json.dumps(params, sort_keys=True, default=_json_default))


def cached(path, params):
    """True when ``path`` exists and its sidecar records the same params and version."""
    if not Path(path).is_file():
        return False
    side = read_sidecar(path)
    return (side is not None and side.get("version") == __version__
            and side.get("params") == normalise(params))
