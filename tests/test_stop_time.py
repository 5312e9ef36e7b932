"""Time to stop on Ctrl-C / SIGTERM, measured from the signal, for every subcommand that
runs compiled kernels, with a cold kernel cache (a fresh Numba cache: the signal lands
while kernels compile) and a warm one (it lands in the kernels, the rank pilot
included). A signal is sent at a fixed time after the start, wherever the run then is.
"""

import os
import pty
import select
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, default_sigint, run_cli

STOP_SECONDS = 2.0  # "about a second", with room for a machine shared by other jobs

# runs far longer than the test, with their output under the test's folder
LONG = {
    "samples-feedforward": [
        "samples",
        "--model",
        "feedforward",
        "--activation",
        "tanh",
        "--depth",
        "500",
        "--width",
        "500",
        "--draws",
        "64",
    ],
    "samples-resnet": [
        "samples",
        "--model",
        "resnet",
        "--depth",
        "500",
        "--width",
        "500",
        "--draws",
        "100000",
    ],
    "kde": ["kde", "--depth", "500", "--width", "500", "--draws", "200000"],
    "correlation": ["correlation", "--model", "feedforward", "--activation", "tanh"],
    "ntk-convergence": ["ntk-convergence", "--sizes", "500", "--draws", "1000"],
    "fig": ["fig", "1", "--preset", "quick"],
}
# a tiny run of the same kernels, to warm the cache
WARM = {
    "samples-feedforward": [
        "samples",
        "--model",
        "feedforward",
        "--activation",
        "tanh",
        "--depth",
        "3",
        "--width",
        "3",
        "--inputs",
        "20",
        "--draws",
        "4",
    ],
    "ntk-convergence": ["ntk-convergence", "--sizes", "3", "--draws", "4"],
}


def _out(name, folder):
    return ["--out-dir", str(folder)] if name == "fig" else ["--out", str(folder / "x.csv")]


def stop_seconds(args, sig, delay, env, folder):
    """Start ``resdiff ARGS`` (stderr on a terminal, so progress bars show), send ``sig``
    ``delay`` seconds later and return ``(exit code, stderr, seconds from the signal to
    the exit)``."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "resdiff", *args],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
        env={**os.environ, **env},
        preexec_fn=default_sigint,
    )
    os.close(slave)
    err, sent, start = b"", None, time.time()
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 0.01)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # the child closed the terminal: it has exited
                    chunk = b""
                err += chunk
                if not chunk:
                    proc.wait(timeout=60)
                    break
            if sent is None and time.time() - start >= delay:
                assert proc.poll() is None, f"finished before the signal: {err!r}"
                proc.send_signal(sig)
                sent = time.time()
            if sent is not None and proc.poll() is not None:
                break
            assert time.time() - start < delay + 60, "did not stop within a minute"
        stopped = time.time()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        os.close(master)
    return proc.returncode, err.decode(errors="replace"), stopped - sent


def _check(name, sig, code, err, seconds, folder):
    assert code == (130 if sig == signal.SIGINT else 143), err
    assert "Traceback" not in err and "SystemError" not in err and "Exception" not in err, err
    message = err.split("resdiff: error: ")[1:]
    assert len(message) == 1 and message[0].strip().count("\n") == 0, err
    assert message[0].startswith("interrupted" if sig == signal.SIGINT else "terminated"), err
    print(f"{name} {sig.name}: stopped {seconds:.2f} s after the signal")
    assert seconds < STOP_SECONDS, f"{name}: took {seconds:.2f} s to stop"
    left = [
        p
        for p in folder.rglob("*")
        if p.is_file() and p.suffix in (".csv", ".json", ".png", ".pdf")
    ]
    assert left == [], left  # no CSV, sidecar or figure of the unfinished step


def _cold_env(tmp_path):
    cache = tmp_path / "cache"
    return {
        "RESDIFF_NUMBA_CACHE": str(cache / "numba"),
        "XDG_CACHE_HOME": str(cache),
        "NUMBA_CACHE_DIR": str(cache / "numba-direct"),
    }


# cold: 3 s after the start every subcommand is compiling its kernels (tens of seconds
# in all); SIGTERM on two of them (the same path, interrupt.py)
COLD = [(name, signal.SIGINT) for name in LONG] + [
    (name, signal.SIGTERM) for name in ("samples-feedforward", "ntk-convergence")
]


@pytest.mark.parametrize("name,sig", COLD, ids=[f"{n}-{s.name}" for n, s in COLD])
def test_stops_promptly_with_a_cold_kernel_cache(name, sig, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    code, err, seconds = stop_seconds(
        LONG[name] + _out(name, out), sig, 3.0, _cold_env(tmp_path), out
    )
    _check(name, sig, code, err, seconds, out)


@pytest.mark.parametrize(
    "name,delay",
    [("samples-feedforward", 2.5), ("samples-feedforward", 4.0), ("ntk-convergence", 4.0)],
)
def test_stops_promptly_with_a_warm_kernel_cache(name, delay, tmp_path):
    """At L = D = 500 the feedforward run starts with a one-draw rank pilot (seconds of
    work); the NTK's draws take seconds each: both are cut into chunks of layers."""
    res = run_cli(*WARM[name], "--out", tmp_path / "warm.csv", "--quiet")
    assert res.returncode == 0, res.stderr
    out = tmp_path / "out"
    out.mkdir()
    code, err, seconds = stop_seconds(LONG[name] + _out(name, out), signal.SIGINT, delay, {}, out)
    _check(name, signal.SIGINT, code, err, seconds, out)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(LONG))
def test_stops_promptly_at_any_time_from_a_cold_start(name, tmp_path):
    """One cold cache, signals at times spread over the compilation and the first
    chunks: each run compiles (and caches) a little more than the previous one."""
    env = _cold_env(tmp_path)
    for delay in (1.5, 4, 7, 10, 14, 19, 25, 32, 40):
        out = tmp_path / f"out-{delay}"
        out.mkdir()
        sig = signal.SIGINT if delay % 2 else signal.SIGTERM
        code, err, seconds = stop_seconds(LONG[name] + _out(name, out), sig, delay, env, out)
        _check(f"{name} at {delay} s", sig, code, err, seconds, out)
