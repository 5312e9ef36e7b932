"""MNIST: locating, checking and decoding the four standard gzip IDX files.

Where the files are looked for, in order: ``data_dir`` (``--data-dir``), else the
environment variable ``RESDIFF_DATA_DIR``, else a per-user cache directory
(``$XDG_CACHE_HOME/resdiff/mnist``, by default ``~/.cache/resdiff/mnist``). Only the first
of these that applies is used. Missing files are downloaded into it from the canonical
mirrors (MD5-checked in memory, written only when complete; never when the environment
variable ``RESDIFF_NO_DOWNLOAD`` is set); when that fails the error says where the tool
looked and how to provide the files.

Every file is checked against its MD5 sum (:data:`MD5`) and decoded with its IDX magic
number, dimensions and length validated; any failure is a :class:`UserError` naming the
file. Decoded arrays are cached in-process and read-only.
"""

import functools
import gzip
import hashlib
import os
import struct
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import files
from ..constraints import ParameterError
from ..errors import UserError
from ..progress import info, progress

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

# the canonical distribution
MD5 = {
    TRAIN_IMAGES: "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    TRAIN_LABELS: "d53e105ee54ea40749a09fcbcd1e9432",
    TEST_IMAGES: "9fb629c4189551a2d022fa330f9573f3",
    TEST_LABELS: "ec29112dd5afa0611ce80d1b7f02629c",
}

SHAPES = {
    TRAIN_IMAGES: (60000, 28, 28),
    TRAIN_LABELS: (60000,),
    TEST_IMAGES: (10000, 28, 28),
    TEST_LABELS: (10000,),
}

N_TRAIN = 60000
N_TEST = 10000
N_PIXELS = 28 * 28
N_CLASSES = 10

# tried in order; the first is the mirror torchvision uses, the second the original site
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
ENV_VAR = "RESDIFF_DATA_DIR"
NO_DOWNLOAD_VAR = "RESDIFF_NO_DOWNLOAD"  # set (non-empty, not 0) to never download
DOWNLOAD_TIMEOUT_S = 15

# IDX: two zero bytes, a type code, the number of dimensions; then big-endian uint32 sizes
_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

# tag mixed into the training-subset seed, so it never collides with another stream
_SUBSET_TAG = zlib.crc32(b"mnist/training_subset")
_SHUFFLE_TAG = zlib.crc32(b"mnist-train/shuffle")  # the tag predates this module


@dataclass(frozen=True)
class Mnist:
    """The decoded data set (read-only arrays)."""

    train_images: np.ndarray  # uint8 (60000, 28, 28)
    train_labels: np.ndarray  # uint8 (60000,)
    test_images: np.ndarray  # uint8 (10000, 28, 28)
    test_labels: np.ndarray  # uint8 (10000,)
    directory: Path = None


# --- locating -------------------------------------------------------------------------
def cache_dir():
    """The per-user cache directory for MNIST."""
    return files.user_cache_dir("mnist")


def _candidate(data_dir):
    """``(directory, how it was chosen)``."""
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser(), "--data-dir"
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser(), f"${ENV_VAR}"
    return cache_dir(), "the per-user cache"


def _missing(directory):
    return [name for name in FILES if not (directory / name).is_file()]


def locate(data_dir=None, download=True):
    """The directory holding the four MNIST files, each checked against its MD5 sum.

    ``data_dir`` (``--data-dir``), else ``$RESDIFF_DATA_DIR``, else :func:`cache_dir`.
    Missing files are downloaded there when ``download`` is true; if they still are
    missing, a :class:`UserError` says where the tool looked and how to provide them.
    """
    directory, how = _candidate(data_dir)
    missing = _missing(directory)
    reason = ""
    if missing and download:
        if os.environ.get(NO_DOWNLOAD_VAR, "0") in ("", "0"):
            failure = _download(missing, directory)
            reason = f"; download failed ({failure})" if failure else ""
            missing = _missing(directory)
        else:
            reason = f"; not downloaded (${NO_DOWNLOAD_VAR} is set)"
    if missing:
        what = "the four MNIST files" if len(missing) == len(FILES) else ", ".join(missing)
        raise UserError(
            f"MNIST data not found: looked in {directory} (from {how}) for {what}"
            f"{reason}. Put the four standard files ({', '.join(FILES)}) in a directory "
            f"and pass --data-dir DIR or set {ENV_VAR}=DIR (or place them in {cache_dir()})"
        )
    for name in FILES:
        verify_md5(directory / name)
    return directory


def file_md5(path):
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@functools.lru_cache(maxsize=32)
def _md5_cached(path, size, mtime_ns):
    return file_md5(path)


def verify_md5(path, expected=None):
    """Raise :class:`UserError` unless ``path`` has the MD5 sum of its standard name."""
    path = Path(path)
    expected = expected or MD5.get(path.name)
    if expected is None:
        raise UserError(f"{path}: not one of the MNIST files ({', '.join(FILES)})")
    try:
        st = path.stat()
        got = _md5_cached(str(path.resolve()), st.st_size, st.st_mtime_ns)
    except OSError as exc:
        raise UserError(f"cannot read MNIST file {path}: {exc.strerror}") from None
    if got != expected:
        raise UserError(
            f"MNIST file {path} is corrupted or truncated: MD5 {got}, expected "
            f"{expected}; delete it and provide the standard file"
        )


def _download(names, directory):
    """Fetch ``names`` into ``directory``; returns None on success, else the reason.

    Each file is read into memory and MD5-checked before anything is written, so a
    failed or partial download leaves nothing behind (not even the directory).
    """
    last = None
    for name in names:
        for mirror in MIRRORS:
            url = mirror + name
            try:
                payload = _fetch(url, name)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                last = f"{url}: {getattr(exc, 'reason', None) or exc}"
                continue
            got = hashlib.md5(payload).hexdigest()
            if got != MD5[name]:
                last = f"{url}: MD5 {got}, expected {MD5[name]}"
                continue
            try:
                with files.atomic_write(directory / name, "wb") as fh:
                    fh.write(payload)
            except UserError as exc:
                return str(exc)
            break
        else:
            return last
    return None


def _fetch(url, name):
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
        info(f"resdiff: downloading {url}")  # only once connected: a failure stays one line
        total = int(response.headers.get("Content-Length") or 0)
        chunks = []
        with progress(total, f"download {name}") as bar:
            while True:
                chunk = response.read(1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
                bar.update(len(chunk))
    payload = b"".join(chunks)
    if total and len(payload) != total:
        raise ValueError(f"truncated: {len(payload)} of {total} bytes")
    return payload


# --- decoding -------------------------------------------------------------------------
def read_idx(path, shape=None):
    """Decode a gzip-compressed IDX file into a read-only array.

    Validates the magic number (two zero bytes, a known type code, the number of
    dimensions), that the data length matches the dimensions, and ``shape`` when given
    (default: the standard shape when ``path`` has a standard MNIST name).
    """
    path = Path(path)
    if shape is None:
        shape = SHAPES.get(path.name)
    try:
        with gzip.open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise UserError(f"MNIST file {path} does not exist") from None
    except (OSError, EOFError, zlib.error) as exc:
        # BadGzipFile is an OSError; a truncated stream raises EOFError
        raise UserError(f"MNIST file {path} is corrupted or truncated (gzip: {exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise UserError(f"MNIST file {path}: bad IDX magic number {raw[:4].hex() or '(empty)'}")
    dtype, ndim = _IDX_TYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise UserError(f"MNIST file {path}: bad IDX header (magic {raw[:4].hex()})")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise UserError(
            f"MNIST file {path} is corrupted or truncated: header says "
            f"{dims} ({expected} bytes of data), found {len(raw) - header}"
        )
    if shape is not None and tuple(dims) != tuple(shape):
        raise UserError(f"MNIST file {path}: shape {tuple(dims)}, expected {tuple(shape)}")
    out = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    if dtype.byteorder == ">":
        out = out.astype(dtype.newbyteorder("="))
    out.flags.writeable = False
    return out


@functools.lru_cache(maxsize=4)
def _load(directory):
    d = Path(directory)
    arrays = [read_idx(d / name, SHAPES[name]) for name in FILES]
    for name, arr in zip(FILES, arrays):
        if arr.dtype != np.uint8:
            raise UserError(f"MNIST file {d / name}: element type {arr.dtype}, expected uint8")
    for name in (TRAIN_LABELS, TEST_LABELS):
        arr = arrays[FILES.index(name)]
        if arr.size and int(arr.max()) >= N_CLASSES:
            raise UserError(f"MNIST file {d / name}: label {int(arr.max())} out of range 0-9")
    return Mnist(*arrays, directory=d)


def load_mnist(data_dir=None, download=True):
    """The four arrays (cached in-process: repeated calls are free)."""
    directory = locate(data_dir, download=download)
    return _load(str(directory.resolve()))


# --- preprocessing --------------------------------------------------------------------
def training_subset(n_train, seed):
    """Sorted indices of ``n_train`` distinct training images, a function of ``seed``."""
    if (
        isinstance(n_train, bool)
        or not isinstance(n_train, (int, np.integer))
        or not 1 <= n_train <= N_TRAIN
    ):
        raise ParameterError("n_train", f"must be an integer from 1 to {N_TRAIN}, got {n_train!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError("seed", f"must be a non-negative integer, got {seed!r}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), _SUBSET_TAG]))
    return np.sort(rng.choice(N_TRAIN, size=int(n_train), replace=False))


def epoch_permutation(seed, epoch, n, draw=0):
    """The order of the ``n`` training images in epoch ``epoch`` of mini-batch training:
    a function of ``(seed, epoch)`` only, so a resumed run repeats it. ``draw`` > 0
    gives further independent orders (the limit's draws); draw 0 is the networks'."""
    entropy = [int(seed), _SHUFFLE_TAG, int(epoch)] + ([int(draw)] if draw else [])
    return np.random.default_rng(np.random.SeedSequence(entropy)).permutation(n)


def as_features(images):
    """Pixels / 255, flattened: float64 (N, 784)."""
    images = np.asarray(images)
    out = images.reshape(images.shape[0], -1).astype(np.float64)  # always a fresh copy
    out /= 255.0
    return out


def one_hot(labels, classes=N_CLASSES):
    """float64 (N, classes) with a single 1 per row."""
    labels = np.asarray(labels).astype(np.intp)
    out = np.zeros((labels.shape[0], classes))
    out[np.arange(labels.shape[0]), labels] = 1.0
    return out
