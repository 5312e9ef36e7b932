"""Bad input: exit code 2, one clear line naming the option or file, no traceback, no
output file left behind (docs/cli.md)."""

import gzip
import os
from pathlib import Path

import pytest

from tests.conftest import run_cli

SMALL_KDE = ["kde", "--depth", "4", "--width", "4", "--draws", "4"]

# (id, argv, a word the message must contain); "{out}" is a fresh path in tmp_path
CASES = [
    ("depth-zero", ["kde", "--depth", "0"], "--depth"),
    ("width-negative", ["kde", "--width", "-3"], "--width"),
    ("draws-one", ["kde", "--draws", "1"], "--draws"),
    ("sigma-w2-negative", ["kde", "--sigma-w2", "-1"], "--sigma-w2"),
    ("sigma-b2-negative", ["kde", "--sigma-b2", "-0.5"], "--sigma-b2"),
    ("activation-unknown", ["kde", "--activation", "sigmoid"], "--activation"),
    ("methods-unknown", ["kde", "--methods", "resnet,foo"], "--methods"),
    ("memory-too-large", ["kde", "--draws", "4000000000"], "GiB"),
    ("samples-model", ["samples", "--model", "cnn"], "--model"),
    ("samples-activation", ["samples", "--activation", "softplus"], "--activation"),
    ("samples-zrange", ["samples", "--z-min", "2", "--z-max", "1"], "--z-min"),
    ("samples-inputs-zero", ["samples", "--inputs", "0"], "--inputs"),
    ("samples-draws-one", ["samples", "--draws", "1"], "--draws"),
    ("samples-input-dim", ["samples", "--input-dim", "3"], "--input-dim"),
    ("samples-depth-zero", ["samples", "--depth", "0"], "--depth"),
    # --allow-long: a run that cannot fit in memory is refused even when its time is
    # allowed (without it, the time estimate refuses it first)
    (
        "samples-memory",
        [
            "samples",
            "--model",
            "resnet",
            "--width",
            "100000",
            "--depth",
            "2",
            "--inputs",
            "100000",
            "--draws",
            "100000",
            "--nodes",
            "0",
            "--allow-long",
            "--quiet",
        ],
        "GiB",
    ),
    ("correlation-grid-one", ["correlation", "--grid", "1"], "--grid"),
    ("correlation-zrange", ["correlation", "--z-min", "1", "--z-max", "1"], "--z-min"),
    ("ntk-sizes-malformed", ["ntk-convergence", "--sizes", "10,x"], "--sizes"),
    ("ntk-sizes-zero", ["ntk-convergence", "--sizes", "0,10"], "--sizes"),
    ("ntk-draws-one", ["ntk-convergence", "--draws", "1"], "--draws"),
    ("eoc-activation", ["eoc", "--activation", "softplus"], "--activation"),
    ("eoc-sigma-b2", ["eoc", "--sigma-b2", "-1"], "--sigma-b2"),
    (
        "kernel-missing-dir",
        ["mnist-kernel", "--data-dir", "/nonexistent/mnist"],
        "/nonexistent/mnist",
    ),
    ("kernel-n-train", ["mnist-kernel", "--n-train", "0"], "--n-train"),
    ("train-optimizer", ["mnist-train", "--optimizer", "rmsprop"], "--optimizer"),
    ("train-arch", ["mnist-train", "--arch", "rnn"], "--arch"),
    ("train-size", ["mnist-train", "--size", "0"], "--size"),
    ("train-precision", ["mnist-train", "--precision", "fp8"], "--precision"),
    (
        "train-missing-dir",
        ["mnist-train", "--data-dir", "/nonexistent/mnist", "--epochs", "1"],
        "/nonexistent/mnist",
    ),
    ("fig-unknown", ["fig", "9"], "9"),
    ("fig-list-unknown", ["fig", "2,9"], "9"),
    ("fig-list-junk", ["fig", "2,x"], "'x'"),
    ("fig-preset", ["fig", "2", "--preset", "nosuch"], "--preset"),
    ("fig-max-size-zero", ["fig", "6", "--max-size", "0"], "--max-size"),
    (
        "fig-max-size-below-every-size",
        ["fig", "6", "--preset", "smoke", "--max-size", "3"],
        "D = L <= 3",
    ),
    ("fig-partial-trains-nothing", ["fig", "1", "--partial"], "--partial"),
    (
        "fig-partial-nothing-computed",
        ["fig", "6", "--preset", "smoke", "--partial"],
        "nothing to draw",
    ),
    # options that only say how to compute would be silently ignored
    ("fig-partial-jobs", ["fig", "6", "--partial", "--jobs", "2"], "--jobs"),
    ("fig-partial-data-dir", ["fig", "6", "--partial", "--data-dir", "."], "--data-dir"),
    (
        "fig-show-params-executor",
        ["fig", "6", "--show-params", "--executor", "local"],
        "--executor",
    ),
    ("fig-show-params-force", ["fig", "1", "--show-params", "--force"], "--force"),
    ("out-under-a-file", SMALL_KDE + ["--out", "/etc/hostname/k.csv"], "/etc/hostname"),
    # /proc takes no new files, not even from root (the permission test below skips root)
    ("out-not-creatable", SMALL_KDE + ["--out", "/proc/k.csv"], "/proc/k.csv"),
    ("seed-negative", SMALL_KDE + ["--seed", "-1"], "--seed"),
    ("samples-seed-negative", ["samples", "--seed", "-3"], "--seed"),
    ("sigma-w2-nan", ["kde", "--sigma-w2", "nan"], "--sigma-w2"),
    ("sigma-b2-inf", ["kde", "--sigma-b2", "inf"], "--sigma-b2"),
    ("z-inf", ["kde", "--z", "inf"], "--z"),
    ("z-max-nan", ["samples", "--z-max", "nan"], "--z-max"),
    ("quantiles-nan", ["samples", "--quantiles", "0.5,nan"], "--quantiles"),
    ("ntk-z-nan", ["ntk-convergence", "--z", "1", "--z", "nan"], "--z"),
    ("train-lr-inf", ["mnist-train", "--lr", "inf"], "--lr"),
    ("unknown-subcommand", ["frobnicate"], "frobnicate"),
    # each of these named the wrong thing, was a traceback, or was accepted
    (
        "eoc-no-edge-names-sigma-b2",
        ["eoc", "--activation", "tanh", "--sigma-b2", "1e300"],
        "'--sigma-b2': no edge of chaos",
    ),
    (
        "samples-z-span-overflows",
        ["samples", "-L", "3", "-D", "3", "--draws", "4", "--z-min", "-1e308", "--z-max", "1e308"],
        "--z-min, --z-max",
    ),
    ("samples-quantiles-twice", ["samples", "--quantiles", "0.5,0.5"], "--quantiles"),
    ("kde-methods-twice", ["kde", "--methods", "resnet,resnet"], "--methods"),
    ("fig-out-dir-on-proc", ["fig", "2", "--out-dir", "/proc/foo"], "proc file system"),
    ("fig-slurm-cpus-local", ["fig", "2", "--slurm-cpus", "4"], "--slurm-cpus"),
    (
        "numba-threads-zero",
        ["kde", "-L", "3", "-D", "3", "--draws", "4", "env:NUMBA_NUM_THREADS=0"],
        "NUMBA_NUM_THREADS=0",
    ),
]


def assert_clean_failure(res, word):
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    err = res.stderr.strip()
    assert "Traceback" not in res.stderr
    assert len(err.splitlines()) == 1, err
    assert word in err, err


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2(case, tmp_path):
    _, argv, word = case
    out = tmp_path / "out.csv"
    argv = list(argv)
    if "--out" not in argv and argv[0] not in ("fig", "frobnicate"):
        argv += ["--out", str(out)]
    # no download: a missing directory must fail here, not fetch MNIST into it
    env = {"RESDIFF_DATA_DIR": str(tmp_path / "no-mnist"), "RESDIFF_NO_DOWNLOAD": "1"}
    env.update(a[4:].split("=", 1) for a in argv if a.startswith("env:"))
    argv = [a for a in argv if not a.startswith("env:")]
    res = run_cli(*argv, env=env, cwd=tmp_path)
    assert_clean_failure(res, word)
    assert not out.exists() and not Path(str(out) + ".json").exists()
    assert not list(tmp_path.glob("**/*.csv*")) and not list(tmp_path.glob("**/*.tmp"))


def test_failed_run_leaves_no_directory_behind(tmp_path):
    out = tmp_path / "new" / "dir" / "k.csv"
    res = run_cli("kde", "--draws", "4000000000", "--out", out)
    assert_clean_failure(res, "GiB")
    assert list(tmp_path.iterdir()) == []


def test_corrupted_mnist_names_the_file(tmp_path):
    data = tmp_path / "mnist"
    data.mkdir()
    for name in (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ):
        with gzip.open(data / name, "wb") as fh:
            fh.write(b"\x00\x00\x08\x03not mnist")
    out = tmp_path / "k.csv"
    res = run_cli("mnist-kernel", "--data-dir", data, "--out", out)
    assert_clean_failure(res, "idx")
    assert not out.exists()


def test_out_in_a_missing_directory_is_created(tmp_path):
    out = tmp_path / "new" / "dir" / "k.csv"
    res = run_cli(*SMALL_KDE, "--out", out)
    assert res.returncode == 0, res.stderr
    assert out.exists() and Path(str(out) + ".json").exists()
    umask = os.umask(0)
    os.umask(umask)
    for path in (out, Path(str(out) + ".json")):  # the usual permissions, not mkstemp's 0600
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only directories")
def test_unwritable_out(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    res = run_cli(*SMALL_KDE, "--out", ro / "k.csv")
    assert_clean_failure(res, "--out")
