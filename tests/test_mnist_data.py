"""resdiff.mnist.data: IDX decoding, MD5 checks, locating the files, subsets."""

import gzip
import hashlib
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from resdiff.errors import UserError
from resdiff.mnist import data


def write_idx(path, array, type_code=0x08, magic=None, gz=True):
    array = np.asarray(array)
    header = magic if magic is not None else bytes([0, 0, type_code, array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    Path(path).write_bytes(gzip.compress(payload) if gz else payload)
    return path


@pytest.fixture
def images():
    return np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)


def test_read_idx_roundtrip(tmp_path, images):
    out = data.read_idx(write_idx(tmp_path / "x.gz", images))
    assert out.dtype == np.uint8 and out.shape == (3, 4, 5)
    np.testing.assert_array_equal(out, images)
    assert not out.flags.writeable
    labels = data.read_idx(write_idx(tmp_path / "y.gz", np.array([3, 1, 4], np.uint8)), (3,))
    np.testing.assert_array_equal(labels, [3, 1, 4])


def test_read_idx_other_types(tmp_path):
    arr = np.array([[1.5, -2.0], [0.0, 7.25]], dtype=np.float32)
    out = data.read_idx(write_idx(tmp_path / "f.gz", arr, type_code=0x0D))
    np.testing.assert_array_equal(out, arr)


def test_read_idx_wrong_magic(tmp_path, images):
    bad = write_idx(tmp_path / "bad.gz", images, magic=bytes([1, 0, 8, 3]))
    with pytest.raises(UserError, match="bad.gz: bad IDX magic number 01000803"):
        data.read_idx(bad)
    unknown_type = write_idx(tmp_path / "t.gz", images, magic=bytes([0, 0, 0x42, 3]))
    with pytest.raises(UserError, match="magic"):
        data.read_idx(unknown_type)


def test_read_idx_truncated_data(tmp_path, images):
    path = write_idx(tmp_path / "short.gz", images)
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-7]))
    with pytest.raises(UserError, match="short.gz is corrupted or truncated"):
        data.read_idx(path)


def test_read_idx_truncated_gzip(tmp_path, images):
    path = write_idx(tmp_path / "cut.gz", images)
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(UserError, match="cut.gz is corrupted or truncated"):
        data.read_idx(path)


def test_read_idx_not_gzip(tmp_path, images):
    path = write_idx(tmp_path / "plain.gz", images, gz=False)
    with pytest.raises(UserError, match="plain.gz is corrupted"):
        data.read_idx(path)


def test_read_idx_wrong_shape(tmp_path, images):
    path = write_idx(tmp_path / "s.gz", images)
    with pytest.raises(UserError, match=r"shape \(3, 4, 5\), expected \(3, 28, 28\)"):
        data.read_idx(path, (3, 28, 28))
    # a standard name implies the standard shape
    std = write_idx(tmp_path / data.TRAIN_LABELS, np.zeros(5, np.uint8))
    with pytest.raises(UserError, match=r"expected \(60000,\)"):
        data.read_idx(std)


def _fake_dir(tmp_path):
    """Four tiny files under the standard names (wrong sums, of course)."""
    for name in data.FILES:
        write_idx(tmp_path / name, np.zeros(2, np.uint8))
    return tmp_path


def test_md5_mismatch_names_the_file(tmp_path):
    _fake_dir(tmp_path)
    with pytest.raises(UserError, match=f"{data.TRAIN_IMAGES} is corrupted or truncated: MD5"):
        data.locate(tmp_path, download=False)


def test_verify_md5_accepts_matching_sum(tmp_path):
    path = tmp_path / data.TEST_LABELS
    path.write_bytes(b"hello")
    data.verify_md5(path, hashlib.md5(b"hello").hexdigest())
    with pytest.raises(UserError, match="MD5"):
        data.verify_md5(path)


def test_md5_table_matches_shared_md5sums():
    sums = Path(__file__).resolve().parents[1].parent / "shared" / "mnist" / "MD5SUMS"
    if not sums.is_file():
        pytest.skip(f"{sums} not present")
    table = dict(reversed(line.split()) for line in sums.read_text().splitlines() if line)
    assert table == data.MD5
    assert set(data.FILES) == set(data.MD5)


def test_locate_missing_explains(tmp_path, monkeypatch):
    monkeypatch.delenv("RESDIFF_NO_DOWNLOAD", raising=False)
    monkeypatch.setattr(data, "_download", lambda names, d: "no network (test)")
    target = tmp_path / "nowhere"
    with pytest.raises(UserError) as err:
        data.locate(target)
    msg = str(err.value)
    assert str(target) in msg and "--data-dir" in msg and "RESDIFF_DATA_DIR" in msg
    assert "no network (test)" in msg and "\n" not in msg
    assert not target.exists()


def test_locate_no_download(tmp_path, monkeypatch):
    def boom(names, d):
        raise AssertionError("must not download")

    monkeypatch.setattr(data, "_download", boom)
    monkeypatch.setenv("RESDIFF_NO_DOWNLOAD", "1")
    with pytest.raises(UserError, match="not downloaded"):
        data.locate(tmp_path)


def test_locate_order(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_download", lambda names, d: "offline")
    monkeypatch.setenv("RESDIFF_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    with pytest.raises(UserError, match="explicit.*from --data-dir"):
        data.locate(tmp_path / "explicit")
    with pytest.raises(UserError, match=r"env \(from \$RESDIFF_DATA_DIR\)"):
        data.locate()
    monkeypatch.delenv("RESDIFF_DATA_DIR")
    assert data.cache_dir() == tmp_path / "xdg" / "resdiff" / "mnist"
    with pytest.raises(UserError, match="from the per-user cache"):
        data.locate()


def test_download_checks_md5_and_writes_nothing_on_failure(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_fetch", lambda url, name: b"not mnist")
    target = tmp_path / "dl"
    assert "MD5" in data._download([data.TEST_LABELS], target)
    assert not target.exists()


def test_download_writes_verified_file(tmp_path, monkeypatch):
    payload = b"pretend labels"
    monkeypatch.setitem(data.MD5, data.TEST_LABELS, hashlib.md5(payload).hexdigest())
    monkeypatch.setattr(data, "_fetch", lambda url, name: payload)
    target = tmp_path / "dl"
    assert data._download([data.TEST_LABELS], target) is None
    assert (target / data.TEST_LABELS).read_bytes() == payload
    assert sorted(os.listdir(target)) == [data.TEST_LABELS]


def test_training_subset():
    idx = data.training_subset(20000, 0)
    assert idx.shape == (20000,) and np.all(np.diff(idx) > 0)
    assert idx[0] >= 0 and idx[-1] < 60000
    np.testing.assert_array_equal(idx, data.training_subset(20000, 0))
    assert not np.array_equal(idx, data.training_subset(20000, 1))
    np.testing.assert_array_equal(data.training_subset(60000, 3), np.arange(60000))
    assert data.training_subset(1, 5).shape == (1,)
    for bad in (0, 60001, -3, 2.5, True):
        with pytest.raises(ValueError, match="^n_train: "):
            data.training_subset(bad, 0)
    with pytest.raises(ValueError, match="^seed: "):
        data.training_subset(10, -1)


def test_features_and_one_hot():
    imgs = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    feats = data.as_features(imgs)
    assert feats.dtype == np.float64 and feats.shape == (1, 4)
    np.testing.assert_allclose(feats, [[0.0, 1.0, 0.2, 0.4]])
    oh = data.one_hot(np.array([3, 0, 9], np.uint8))
    assert oh.shape == (3, 10) and oh.dtype == np.float64
    np.testing.assert_array_equal(oh.argmax(1), [3, 0, 9])
    np.testing.assert_array_equal(oh.sum(1), 1.0)


@pytest.mark.mnist
def test_real_files(mnist_dir):
    m = data.load_mnist(mnist_dir)
    assert m.train_images.shape == (60000, 28, 28) and m.train_images.dtype == np.uint8
    assert m.train_labels.shape == (60000,) and m.test_images.shape == (10000, 28, 28)
    assert m.test_labels.shape == (10000,)
    np.testing.assert_array_equal(m.train_labels[:8], [5, 0, 4, 1, 9, 2, 1, 3])
    np.testing.assert_array_equal(
        np.bincount(m.test_labels), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    )
    assert data.load_mnist(mnist_dir) is m  # cached in-process
