"""Files on disk: results (a tidy CSV plus a JSON sidecar ``PATH.json``), the one
atomic writer, the one lock, and the per-user cache directory.

* :func:`atomic_write`: every file resdiff writes (CSVs, sidecars, figures, training
  checkpoints, downloads) is written to a uniquely named temporary file in the target
  directory and renamed into place, so a reader sees the old file or the new one,
  never a part, and concurrent writers never share a temporary file.
* :func:`exclusive`: a lock per output (dataset, figure, checkpoint), so a second run
  that wants the same output waits for the first and then reuses its result.
* A result is published CSV first, then its sidecar; the sidecar records the CSV's
  SHA-256 and row count, the parameters, the seed and the numerical versions of the
  code that computed it (:mod:`resdiff.numerics`): the cache key (:func:`check_cached`).
  It also records, as provenance only, the resdiff version, the commit and the digest of
  the code (:mod:`resdiff.sources`), the machine, the threads and the wall time.
"""

import contextlib
import errno
import fcntl
import functools
import hashlib
import io as _io
import json
import os
import platform
import resource
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import __version__, machine
from .errors import UserError
from .progress import warn


def user_cache_dir(*parts):
    """``$XDG_CACHE_HOME/resdiff/PARTS`` (by default ``~/.cache/resdiff/PARTS``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base, "resdiff", *parts)


def sidecar_path(path):
    path = Path(path)
    return path.with_name(path.name + ".json")


def git_commit():
    """``(commit, dirty)`` of the source tree resdiff runs from: the HEAD commit and
    whether tracked files differ from it; ``(None, None)`` outside a git checkout."""
    here = str(Path(__file__).resolve().parent)
    try:
        out = subprocess.run(
            ["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        commit = out.stdout.strip()
        if out.returncode != 0 or len(commit) != 40:
            return None, None
        status = subprocess.run(
            ["git", "-C", here, "status", "--porcelain", "--untracked-files=no", "--", "."],
            capture_output=True,
            text=True,
            timeout=10,
        )
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
        reason = exc.strerror
        if exc.errno == errno.ENOENT:  # the folder exists: its file system takes no files
            reason = "its file system takes no new files"
        kind = _file_system(ancestor)
        raise UserError(
            f"cannot write {what} {path}: cannot create a file in {ancestor} "
            f"({reason}{f'; a {kind} file system' if kind else ''})"
        ) from None


def _file_system(path):
    """The type of the file system ``path`` is on (``proc``, ``ext4``, ...), from
    /proc/self/mounts; None where that cannot be read."""
    try:
        with open("/proc/self/mounts") as fh:
            mounts = [line.split()[1:3] for line in fh if len(line.split()) > 2]
    except OSError:
        return None
    target, best = os.path.realpath(path), None
    for point, kind in mounts:
        point = point.replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best[0])):
            best = (point, kind)
    return best[1] if best else None


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path, mode="w"):
    """``with atomic_write(path, "wb") as fh: ...``: write to a uniquely named temporary
    file beside ``path``, renamed into place when the block ends without an exception
    (removed otherwise). The file gets the usual permissions (0666 less the umask), not
    mkstemp's 0600. ``fh`` is a real file, so ``savefig(fh)`` and ``torch.save(x, fh)``
    work. A failing write (disk full, no permission) is a :class:`UserError`."""
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


def write_result(
    path, frame, params, meta=None, command=None, started=None, code=None, numerics=None
):
    """Write ``frame`` as CSV at ``path`` and the sidecar beside it; return the sidecar.

    ``numerics`` (``{family: version}``, :func:`resdiff.numerics.versions`) is part of the
    cache key; ``code`` (:func:`resdiff.sources.code_digest`) is recorded as provenance.
    """
    path = Path(path)
    check_writable(path)
    commit, dirty = git_commit()
    data = frame.to_csv(index=False, float_format="%.17g").encode()
    sidecar = {
        "command": command,
        "params": params,
        "seed": params.get("seed"),
        "version": __version__,
        "numerics": numerics,
        "source_digest": code,
        "git_commit": commit,
        "git_dirty": dirty,
        # the experiment's own count when it records one (training: PyTorch's), else Numba's
        "threads": (meta or {}).get("threads", thread_count()),
        "machine": machine.describe(),
        "python": platform.python_version(),
        "wall_time_s": None if started is None else round(time.time() - started, 3),
        "peak_memory_mib": round(peak_memory_mib(), 1),
        "rows": int(len(frame)),
        "csv_sha256": hashlib.sha256(data).hexdigest(),
        "meta": meta or {},
    }
    if not sidecar["machine"]["libm_reference"]:
        _warn_once(machine.LIBM_WARNING)
    side = sidecar_path(path)
    with contextlib.suppress(FileNotFoundError):
        side.unlink()  # a stale sidecar must never vouch for the new CSV
    with atomic_write(path, "wb") as fh:
        fh.write(data)
    with atomic_write(side) as fh:
        json.dump(sidecar, fh, indent=2, sort_keys=True, default=_json_default)
        fh.write("\n")
    return sidecar


@functools.lru_cache(maxsize=None)
def _warn_once(message):
    warn(message)


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
    """The sidecar of the result at ``path`` as a dict; None if missing or unreadable."""
    side = sidecar_path(path)
    try:
        with open(side, "rb") as fh:
            record = json.loads(fh.read().decode())
    except (OSError, ValueError):  # UnicodeDecodeError is a ValueError
        return None
    return record if isinstance(record, dict) else None


def normalise(params):
    """``params`` as they read back from JSON (tuples become lists, numpy scalars floats)."""
    return json.loads(json.dumps(params, sort_keys=True, default=_json_default))


@dataclass(frozen=True)
class CacheCheck:
    """Whether a cached result can be reused and, if not, why (``damaged``: the files
    contradict their own record, which deserves a warning rather than a note)."""

    reusable: bool
    reason: str = ""
    damaged: bool = False
    sidecar: dict = None


def check_cached(path, params, numerics):
    """Can the CSV at ``path`` be reused for ``params`` computed by code of numerical
    versions ``numerics`` (``{family: version}``)?

    Yes when its sidecar records the same parameters (seed included) and numerical
    versions, and the CSV on disk has the SHA-256 the sidecar recorded (so a truncated,
    emptied or overwritten CSV is never trusted). The resdiff version, the commit and
    the code digest are provenance, not part of the key: a refactor keeps every cache.
    """
    path = Path(path)
    side_file = sidecar_path(path)
    if not path.exists() and not side_file.exists():
        return CacheCheck(False, "not computed yet")
    side = read_sidecar(path)
    if side is None:
        why = "has no sidecar" if not side_file.exists() else "has an unreadable sidecar"
        return CacheCheck(False, f"{path} {why}", damaged=True)
    if side.get("params") != normalise(params):
        return CacheCheck(False, "computed with other parameters")
    recorded = side.get("numerics")
    if recorded != normalise(numerics):
        return CacheCheck(
            False,
            f"computed by code of other numerical versions ({_version_change(recorded, numerics)})",
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        return CacheCheck(False, f"cannot read {path}: {exc.strerror}", damaged=True)
    if hashlib.sha256(data).hexdigest() != side.get("csv_sha256"):
        return CacheCheck(
            False, f"{path} does not match its sidecar (SHA-256 differs)", damaged=True
        )
    return CacheCheck(True, sidecar=side)


def _version_change(recorded, current):
    """``"resnet 1 -> 2, rng 1 -> 2"``: the families whose versions differ."""
    if not isinstance(recorded, dict):
        return "none recorded"
    names = sorted(set(recorded) | set(current))
    return ", ".join(
        f"{n} {recorded.get(n, '-')} -> {current.get(n, '-')}"
        for n in names
        if recorded.get(n) != current.get(n)
    )


def read_result(path, sidecar):
    """The CSV at ``path`` as a DataFrame, checked against ``sidecar``: its SHA-256 and
    row count must be the recorded ones, else :class:`UserError` (e.g. another run
    rewrote it in between)."""
    import pandas as pd

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    if hashlib.sha256(data).hexdigest() != sidecar.get("csv_sha256"):
        raise UserError(f"{path} changed after it was checked (another run rewrote it?); run again")
    frame = pd.read_csv(_io.BytesIO(data))
    if len(frame) != sidecar.get("rows"):
        raise UserError(f"{path} has {len(frame)} rows, its sidecar records {sidecar.get('rows')}")
    return frame


@contextlib.contextmanager
def exclusive(path, on_wait=None):
    """Hold the lock of output ``path`` for the block: one process at a time computes
    or writes it. ``on_wait()`` is called once if another process holds it (then this
    one blocks until it is released; Ctrl-C still interrupts).

    The lock is ``fcntl.flock`` on ``.NAME.lock`` beside ``path``, removed on release.
    A waiter that wakes up on a lock file removed meanwhile starts over, so two
    processes never believe they hold the same lock. The lock is per open file, so a
    nested ``exclusive(path)`` in one process blocks: do not nest the same path.
    """
    path = Path(path)
    lock = path.with_name(f".{path.name}.lock")
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror}") from None
    waited = False
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise UserError(f"cannot lock {path}: {lock}: {exc.strerror}") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                if not waited and on_wait is not None:
                    on_wait()
                waited = True
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:  # still the file at that name? (the holder removes it on release)
                same = os.fstat(fd).st_ino == os.stat(lock).st_ino
            except FileNotFoundError:
                same = False
        except BaseException:
            os.close(fd)
            raise
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)  # releases the lock
