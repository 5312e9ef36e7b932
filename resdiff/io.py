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

from . import __version__, source_digest
from .errors import UserError


def sidecar_path(path):
    path = Path(path)
    return path.with_name(path.name + ".json")


def git_commit():
    """``(commit, dirty)`` of the source tree resdiff runs from: the HEAD commit and
    whether tracked files differ from it; ``(None, None)`` outside a git checkout."""
    here = str(Path(__file__).resolve().parent)
    try:
        out = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=5)
        commit = out.stdout.strip()
        if out.returncode != 0 or len(commit) != 40:
            return None, None
        status = subprocess.run(["git", "-C", here, "status", "--porcelain",
                                 "--untracked-files=no", "--", "."],
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit, (bool(status.stdout.strip()) if status.returncode == 0 else None)


def thread_count():
    try:
        import numba
        return numba.get_num_threads()
    except ImportError:  # pragma: no cover
        return os.cpu_count()


def peak_memory_mib():
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def check_writable(path, what="--out"):
    """Fail early, before any computation, if ``path`` cannot be written.

    Creates nothing: a missing directory is made when the result is written, so a run
    that fails before then leaves no trace. The nearest existing ancestor must be a
    directory in which a file can actually be created (a probe file, removed at once:
    permission bits alone say nothing for root or for read-only file systems).
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{what} {path} is a directory, expected a file path")
    ancestor = path.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UserError(f"cannot write {what} {path}: {ancestor} is not a directory")
    try:
        fd, probe = tempfile.mkstemp(prefix=".resdiff-probe-", dir=ancestor)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(f"cannot write {what} {path}: {ancestor}: {exc.strerror}") from None


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def _atomic(path, mode="w"):
    """Write to a temporary file beside ``path`` and rename it into place; the file gets
    the usual permissions (0666 less the umask), not mkstemp's 0600."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):  # e.g. the disk filled up
            raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise


def write_result(path, frame, params, meta=None, command=None, started=None):
    """Write ``frame`` as CSV at ``path`` and the sidecar beside it; return the sidecar."""
    path = Path(path)
    check_writable(path)
    commit, dirty = git_commit()
    sidecar = {
        "command": command,
        "params": params,
        "seed": params.get("seed"),
        "version": __version__,
        "source_digest": computation_digest(),
        "git_commit": commit,
        "git_dirty": dirty,
        "threads": thread_count(),
        "machine": __import__("resdiff.machine").machine.describe(),
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


def computation_digest():
    """Hash of the sources that compute results (all but the plotting code): a cached
    CSV made by other code is not reused, whatever the version number says."""
    return source_digest(skip=("plots",))


def cached(path, params):
    """True when ``path`` exists and its sidecar records the same params (seed included),
    version and computing sources (:func:`computation_digest`)."""
    if not Path(path).is_file():
        return False
    side = read_sidecar(path)
    return (side is not None and side.get("version") == __version__
            and side.get("source_digest") == computation_digest()
            and side.get("params") == normalise(params))
