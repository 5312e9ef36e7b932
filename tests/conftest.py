import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _git_status():
    """``git status --porcelain`` lines of the checkout (None outside a git checkout)."""
    try:
        res = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return set(res.stdout.splitlines()) if res.returncode == 0 else None


def pytest_sessionstart(session):
    session.config._git_status_before = _git_status()


def pytest_sessionfinish(session, exitstatus):
    """The suite writes only to temporary folders: fail it if the working tree has
    changed (a test that wrote into figures/, say)."""
    before = getattr(session.config, "_git_status_before", None)
    after = _git_status()
    if before is None or after is None:
        return
    new = sorted(after - before)
    if new:
        print("\nthe test run changed the working tree:\n  " + "\n  ".join(new), file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def run_cli(*args, env=None, timeout=600, cwd=None):
    """Run ``python -m resdiff ARGS`` in a subprocess; returns CompletedProcess."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "resdiff", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=cwd or ROOT,
    )


def default_sigint():
    """``preexec_fn`` for a child that must see Ctrl-C: a shell without job control (CI,
    ``cmd &``) starts background commands with SIGINT ignored, Python keeps an inherited
    SIG_IGN, and the child would then never be interrupted. Reset it, as an interactive
    terminal would have it."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def max_abs_z(samples, mean, cov):
    """Largest |z-score| of the sample means, variances and covariances of ``samples``
    (draws x N) against ``mean`` and ``cov``, using Gaussian standard errors:
    SE(mean_i) = sqrt(C_ii / n), SE(C_ij) = sqrt((C_ii C_jj + C_ij^2) / n).
    """
    samples = np.asarray(samples)
    n = samples.shape[0]
    mean = np.asarray(mean, dtype=float)
    cov = np.asarray(cov, dtype=float)
    z = [(samples.mean(0) - mean) / np.sqrt(np.diag(cov) / n)]
    emp = np.cov(samples.T, ddof=1)
    se = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / n)
    z.append(((emp - cov) / se).ravel())
    return float(np.max(np.abs(np.concatenate([np.ravel(a) for a in z]))))


# |z| < Z_CRIT for every checked statistic: with k statistics of a correct implementation
# the false-failure rate is at most k * 2 * (1 - Phi(4.5)) ~ k * 7e-6.
Z_CRIT = 4.5


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(autouse=True)
def _informational_lines_on():
    """An in-process CLI call with ``--quiet`` (click's test runner) turns resdiff's
    informational lines off for the whole process; every test starts with them on."""
    from resdiff import progress

    progress.set_quiet(False)


HAVE_TORCH = importlib.util.find_spec("torch") is not None
DATA_DIR = os.environ.get("RESDIFF_DATA_DIR")
HAVE_MNIST = bool(DATA_DIR) and Path(DATA_DIR, "train-images-idx3-ubyte.gz").is_file()
needs_mnist = pytest.mark.skipif(
    not HAVE_MNIST,
    reason="MNIST not found: set RESDIFF_DATA_DIR to the directory of the "
    "four MNIST files (make test sets it when the Makefile finds "
    "the MNIST folder)",
)


@pytest.fixture
def mnist_dir():
    """The real MNIST files from $RESDIFF_DATA_DIR; skip (with the reason) when absent."""
    from resdiff.mnist import data

    path = os.environ.get("RESDIFF_DATA_DIR")
    if not path:
        pytest.skip(
            "MNIST tests need RESDIFF_DATA_DIR (make test sets it when the Makefile "
            "finds the MNIST folder)"
        )
    missing = [n for n in data.FILES if not (Path(path) / n).is_file()]
    if missing:
        pytest.skip(f"MNIST files missing from RESDIFF_DATA_DIR={path}: {', '.join(missing)}")
    return Path(path)
