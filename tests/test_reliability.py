"""Determinism across runs and thread counts, and clean interruption (issue 9)."""
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import HAVE_MNIST, HAVE_TORCH, ROOT, default_sigint, run_cli

# the smallest run of every subcommand that writes a CSV
COMMANDS = {
    "kde": ["kde", "--depth", "6", "--width", "5", "--draws", "40"],
    "samples-resnet": ["samples", "--model", "resnet", "--activation", "swish", "--depth",
                       "6", "--width", "5", "--inputs", "9", "--draws", "40"],
    "samples-feedforward": ["samples", "--model", "feedforward", "--activation", "tanh",
                            "--depth", "4", "--width", "6", "--inputs", "9", "--draws", "40"],
    "samples-2d": ["samples", "--model", "resnet", "--input-dim", "2", "--depth", "4",
                   "--width", "4", "--inputs", "4", "--draws", "10"],
    "correlation": ["correlation", "--model", "resnet", "--depth", "6", "--width", "5",
                    "--grid", "4", "--draws", "40"],
    "ntk-convergence": ["ntk-convergence", "--sizes", "4,6", "--draws", "6"],
    "eoc": ["eoc", "--activation", "tanh"],
    "mnist-kernel": ["mnist-kernel", "--n-train", "500"],
    "mnist-train": ["mnist-train", "--arch", "fc", "--size", "3", "--optimizer", "sgd",
                    "--epochs", "1", "--n-train", "400"],
}


def _needs(name):
    if name.startswith("mnist") and not HAVE_MNIST:
        pytest.skip("MNIST files not found (set RESDIFF_DATA_DIR; `make test` does)")
    if name == "mnist-train" and not HAVE_TORCH:
        pytest.skip("PyTorch not installed (the `train` extra)")


def _run(name, tmp_path, tag, seed, threads):
    out = tmp_path / f"{name}-{tag}.csv"
    env = {"NUMBA_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
    res = run_cli(*COMMANDS[name], "--seed", seed, "--out", out, "--quiet", env=env)
    assert res.returncode == 0, res.stderr
    return out.read_bytes()


@pytest.mark.parametrize("name", list(COMMANDS))
def test_same_seed_same_bytes_for_any_thread_count(name, tmp_path):
    _needs(name)
    one = _run(name, tmp_path, "a", 11, 1)
    assert one == _run(name, tmp_path, "b", 11, 2)
    assert one == _run(name, tmp_path, "c", 11, 2)
    if name != "eoc":  # eoc is deterministic in its inputs: no seed to vary
        assert one != _run(name, tmp_path, "d", 12, 2)


LONG = {
    "kde": ["kde", "--depth", "500", "--width", "500", "--draws", "200000"],
    "samples": ["samples", "--model", "resnet", "--depth", "500", "--width", "500",
                "--draws", "100000"],
}


def _threads(pid):
    with open(f"/proc/{pid}/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("Threads:"))


def _wait_until_drawing(proc, timeout=120):
    """Until the run is past start-up: Numba starts its worker threads when the first
    parallel kernel (a chunk of draws) runs, after the compiled code is loaded."""
    deadline = time.time() + timeout
    while proc.poll() is None and _threads(proc.pid) < 2:
        assert time.time() < deadline, "no parallel kernel started"
        time.sleep(0.05)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")
@pytest.mark.parametrize("name", list(LONG))
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_leaves_no_output(name, sig, tmp_path):
    out = tmp_path / "long.csv"
    proc = subprocess.Popen([sys.executable, "-m", "resdiff", *LONG[name], "--out", str(out)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)
    try:
        _wait_until_drawing(proc)
        assert proc.poll() is None, proc.communicate()
        t0 = time.time()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:  # never leave a paper-scale run behind, whatever failed
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert time.time() - t0 < 30, "did not stop promptly"
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # no CSV, no sidecar, no temporary file
