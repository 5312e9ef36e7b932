"""resdiff.files on its own: the atomic writer, the lock, results and their cache check."""

import json
import os
import threading
import time

import pandas as pd
import pytest

from resdiff import files
from resdiff.errors import UserError

PARAMS = {"depth": 3, "z": [0.0, 1.0], "seed": 0}
CODE = "0123456789abcdef"
NUMERICS = {"rng": 1, "resnet": 3}


def _frame(n=50):
    return pd.DataFrame({"draw": range(n), "value": [i / 7 for i in range(n)]})


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# --- atomic_write ------------------------------------------------------------------------
def test_atomic_write_replaces_the_file_with_usual_permissions(tmp_path):
    target = tmp_path / "sub" / "a.txt"
    with files.atomic_write(target) as fh:
        fh.write("one")
        assert not target.exists()  # nothing visible before the block ends
    assert target.read_text() == "one"
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
    with files.atomic_write(target, "wb") as fh:
        fh.write(b"two")
    assert target.read_bytes() == b"two"
    assert _leftovers(target.parent) == []


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with files.atomic_write(target) as fh:
            fh.write("half")
            raise KeyboardInterrupt
    assert target.read_text() == "old" and _leftovers(tmp_path) == []


def test_concurrent_atomic_writers_use_their_own_temporary_files(tmp_path):
    target = tmp_path / "fig.png"
    with files.atomic_write(target, "wb") as first:
        with files.atomic_write(target, "wb") as second:
            assert first.name != second.name
            second.write(b"second")
        first.write(b"first")
    assert target.read_bytes() == b"first" and _leftovers(tmp_path) == []


def test_atomic_write_serves_savefig_and_torch_save(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1])
    with files.atomic_write(tmp_path / "f.png", "wb") as fh:
        fig.savefig(fh, format="png")
    plt.close(fig)
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    torch = pytest.importorskip("torch")
    with files.atomic_write(tmp_path / "c.pt", "wb") as fh:
        torch.save({"x": torch.arange(3)}, fh)
    assert torch.load(tmp_path / "c.pt")["x"].tolist() == [0, 1, 2]


def test_user_cache_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert files.user_cache_dir("numba") == tmp_path / "resdiff" / "numba"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert files.user_cache_dir() == files.Path.home() / ".cache" / "resdiff"


# --- exclusive ---------------------------------------------------------------------------
def test_exclusive_makes_a_second_holder_wait(tmp_path):
    target = tmp_path / "data.csv"
    order, waited = [], threading.Event()

    def second():
        with files.exclusive(target, on_wait=waited.set):
            order.append("second")

    with files.exclusive(target):
        thread = threading.Thread(target=second)
        thread.start()
        assert waited.wait(10), "the second holder did not notice the lock"
        time.sleep(0.2)
        order.append("first")  # still holding: the second must not have run
    thread.join(10)
    assert order == ["first", "second"]
    assert _leftovers(tmp_path) == []  # the lock file is removed


def test_exclusive_does_not_wait_when_free_and_releases_on_error(tmp_path):
    target = tmp_path / "x"
    with pytest.raises(RuntimeError):
        with files.exclusive(target, on_wait=lambda: pytest.fail("waited for nobody")):
            raise RuntimeError
    with files.exclusive(target, on_wait=lambda: pytest.fail("not released")):
        pass


# --- results and the cache check -----------------------------------------------------------
@pytest.fixture
def result(tmp_path):
    path = tmp_path / "data" / "r.csv"
    side = files.write_result(
        path, _frame(), PARAMS, {"note": 1}, command="test", code=CODE, numerics=NUMERICS
    )
    assert side["rows"] == 50 and len(side["csv_sha256"]) == 64
    return path


def test_written_result_is_reusable_and_reads_back(result):
    check = files.check_cached(result, PARAMS, NUMERICS)
    assert check.reusable and not check.damaged
    assert check.sidecar["source_digest"] == CODE
    frame = files.read_result(result, check.sidecar)
    pd.testing.assert_frame_equal(frame, _frame())


def test_sidecar_threads_are_the_experiments_own_when_it_records_them(tmp_path):
    """A training run records PyTorch's thread count in its meta; that is the one the
    sidecar gives, not Numba's (which it does not use)."""
    side = files.write_result(
        tmp_path / "t.csv", _frame(), PARAMS, {"threads": 7}, code=CODE, numerics=NUMERICS
    )
    assert side["threads"] == 7
    assert (
        files.write_result(tmp_path / "n.csv", _frame(), PARAMS, code=CODE)["threads"]
        == files.thread_count()
    )


@pytest.mark.parametrize(
    "damage", ["truncated", "random bytes", "empty", "edited value", "deleted"]
)
def test_a_damaged_csv_is_not_trusted(result, damage):
    data = result.read_bytes()
    if damage == "truncated":
        result.write_bytes(data[: len(data) // 2])
    elif damage == "random bytes":
        result.write_bytes(os.urandom(len(data)))
    elif damage == "empty":
        result.write_bytes(b"")
    elif damage == "edited value":
        result.write_bytes(data.replace(b"1,", b"2,", 1))
    else:
        result.unlink()
    check = files.check_cached(result, PARAMS, NUMERICS)
    assert not check.reusable and check.damaged and "r.csv" in check.reason


@pytest.mark.parametrize("damage", ["random bytes", "empty", "not a dict", "deleted"])
def test_a_damaged_sidecar_is_not_trusted(result, damage):
    side = files.sidecar_path(result)
    if damage == "deleted":
        side.unlink()
    else:
        side.write_bytes(
            {"random bytes": os.urandom(200), "empty": b"", "not a dict": b"[1, 2]"}[damage]
        )
    check = files.check_cached(result, PARAMS, NUMERICS)
    assert not check.reusable and check.damaged


def test_other_parameters_or_numerical_versions_are_stale_not_damaged(result):
    for params, versions in (
        ({**PARAMS, "seed": 1}, NUMERICS),
        ({**PARAMS, "depth": 4}, NUMERICS),
        (PARAMS, {**NUMERICS, "resnet": 4}),
        (PARAMS, {"rng": 1}),
        (PARAMS, {**NUMERICS, "plan": 1}),
    ):
        check = files.check_cached(result, params, versions)
        assert not check.reusable and not check.damaged
    check = files.check_cached(result, PARAMS, {**NUMERICS, "resnet": 4})
    assert check.reason.endswith("(resnet 3 -> 4)")
    assert (
        files.check_cached(result.with_name("none.csv"), PARAMS, NUMERICS).reason
        == "not computed yet"
    )


def test_the_code_digest_and_the_resdiff_version_are_provenance_not_key(result, monkeypatch):
    """A refactor (another code digest) or a new release keeps every cache."""
    side = files.sidecar_path(result)
    record = json.loads(side.read_text())
    record.update(source_digest="f" * 16, version="9.9", git_commit="0" * 40)
    side.write_text(json.dumps(record))
    monkeypatch.setattr(files, "__version__", "10.0")
    assert files.check_cached(result, PARAMS, NUMERICS).reusable


def test_read_result_refuses_a_csv_rewritten_after_the_check(result):
    side = files.check_cached(result, PARAMS, NUMERICS).sidecar
    files.write_result(result, _frame(49), PARAMS, code=CODE)
    with pytest.raises(UserError, match="changed"):
        files.read_result(result, side)


def test_csv_bytes_are_those_pandas_writes(result):
    """The recorded hash is of exactly the bytes written (no second formatting path)."""
    expected = _frame().to_csv(index=False, float_format="%.17g").encode()
    assert result.read_bytes() == expected
