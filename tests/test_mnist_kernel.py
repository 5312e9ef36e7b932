"""resdiff.mnist.kernel and `resdiff mnist-kernel`: eq. 35-37 coefficients, the
feature-space (Woodbury) solve against the N x N kernel solve, the Fig. 6 accuracy."""

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from resdiff.errors import UserError
from resdiff.mnist import data
from resdiff.mnist import kernel as kr

E = math.e


def test_coefficients_match_paper():
    # sigma_w2 = 1 => C = 1, E = e; sigma_Z^2 = 1/784, sigma_Y^2 = 1 (docs/figures.md)
    slope, offset = kr.coefficients("ntk", 1.0, 0.01)  # eq. 37
    assert slope == pytest.approx(3 * E / 784, rel=1e-14)
    assert offset == pytest.approx(0.01 * (2 * E - 1), rel=1e-14)
    slope, offset = kr.coefficients("nngp", 1.0, 0.01)  # eq. 35-36
    assert slope == pytest.approx(E / 784, rel=1e-14)
    assert offset == pytest.approx(0.01 * (E - 1), rel=1e-14)
    # general C: sigma_w2 = 2, phi'(0) = 1, T = 0.5 => C = 1 again; sigma_Y^2 scales both
    s, o = kr.coefficients("ntk", 2.0, 0.3, sigma_z2=0.1, sigma_y2=2.0, T=0.5)
    assert (s, o) == pytest.approx((2 * 0.1 * 3 * E, 2 * 0.15 * (2 * E - 1)), rel=1e-14)


@pytest.mark.parametrize("kind", ["ntk", "nngp"])
def test_coefficients_continuous_at_zero_weight_variance(kind):
    at0 = kr.coefficients(kind, 0.0, 0.5)
    near0 = kr.coefficients(kind, 1e-7, 0.5)
    assert np.all(np.isfinite(at0))
    assert at0 == pytest.approx(near0, rel=1e-6)


def test_unknown_kernel():
    with pytest.raises(UserError, match="unknown kernel"):
        kr.coefficients("rbf", 1.0, 0.01)


def _synthetic(n, n_test, dim=784, seed=0):
    rng = np.random.default_rng(seed)
    # sparse non-negative "images" with some always-zero pixels, like MNIST
    z = rng.random((n + n_test, dim)) * (rng.random((n + n_test, dim)) < 0.2)
    z[:, :50] = 0.0
    labels = rng.integers(0, 10, n + n_test)
    return z[:n], data.one_hot(labels[:n]), z[n:]


@pytest.mark.parametrize("kind", ["ntk", "nngp"])
@pytest.mark.parametrize("n", [50, 300])
def test_woodbury_equals_direct_solve_synthetic(kind, n):
    z, y, zt = _synthetic(n, 40)
    slope, offset = kr.coefficients(kind, 1.0, 0.01)
    noise = 1.0 / n
    fast = kr.posterior_mean(z, y, zt, slope, offset, noise)
    slow = kr.direct_posterior_mean(z, y, zt, slope, offset, noise)
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-8)


def test_direct_solve_matches_scipy():
    """The oracle itself against scipy's positive-definite solver."""
    scipy_linalg = pytest.importorskip("scipy.linalg")
    z, y, zt = _synthetic(120, 30, seed=1)
    slope, offset, noise = 0.01, 0.04, 1e-3
    k = kr.kernel_matrix(z, z, slope, offset) + noise * np.eye(len(z))
    ref = kr.kernel_matrix(zt, z, slope, offset) @ scipy_linalg.solve(k, y, assume_a="pos")
    np.testing.assert_allclose(
        kr.direct_posterior_mean(z, y, zt, slope, offset, noise), ref, rtol=0, atol=1e-10
    )


def test_kernel_is_feature_gram():
    z, _, zt = _synthetic(7, 5, dim=6)
    slope, offset = 0.3, 0.2
    phi = np.hstack([math.sqrt(slope) * z, np.full((7, 1), math.sqrt(offset))])
    phit = np.hstack([math.sqrt(slope) * zt, np.full((5, 1), math.sqrt(offset))])
    np.testing.assert_allclose(kr.kernel_matrix(zt, z, slope, offset), phit @ phi.T)


def test_degenerate_coefficients():
    z, y, zt = _synthetic(60, 10, dim=20)
    for slope, offset in [(0.0, 0.5), (0.5, 0.0)]:
        np.testing.assert_allclose(
            kr.posterior_mean(z, y, zt, slope, offset, 0.01),
            kr.direct_posterior_mean(z, y, zt, slope, offset, 0.01),
            atol=1e-10,
        )


def test_bad_noise():
    z, y, zt = _synthetic(10, 2, dim=5)
    for noise in (0.0, -1.0, float("nan")):
        with pytest.raises(UserError, match="noise"):
            kr.posterior_mean(z, y, zt, 0.1, 0.1, noise)


def test_accuracy():
    scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert kr.accuracy(scores, [1, 0, 0]) == pytest.approx(2 / 3)


@pytest.mark.mnist
def test_woodbury_equals_direct_solve_real(mnist_dir):
    m = data.load_mnist(mnist_dir)
    idx = data.training_subset(400, 7)
    z = data.as_features(m.train_images[idx])
    y = data.one_hot(m.train_labels[idx])
    zt = data.as_features(m.test_images[:200])
    slope, offset = kr.coefficients("ntk", 1.0, 0.01)
    fast = kr.posterior_mean(z, y, zt, slope, offset, 1 / 400)
    slow = kr.direct_posterior_mean(z, y, zt, slope, offset, 1 / 400)
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-8)


@pytest.mark.mnist
def test_paper_accuracy(mnist_dir):
    """Section 6.3: 20,000 random training images, kernel eq. 37, noise 1/20,000 ->
    85.36% in the paper; independent measurements on random subsets give 85.3-85.7%."""
    from resdiff.experiments.mnist_kernel import mnist_kernel

    result = mnist_kernel(
        n_train=20000,
        noise=None,
        sigma_w2=1.0,
        sigma_b2=0.01,
        kernel="ntk",
        seed=0,
        data_dir=mnist_dir,
    )
    row = result.frame.iloc[0]
    assert list(result.frame.columns[:3]) == ["n_train", "seed", "accuracy"]
    assert row["noise"] == pytest.approx(1 / 20000)
    assert 0.850 <= row["accuracy"] <= 0.860, row["accuracy"]


def _cli(*args, env=None):
    full_env = {**os.environ, "RESDIFF_NO_DOWNLOAD": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "resdiff", "mnist-kernel", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
    )


def test_cli_missing_data_is_one_line(tmp_path):
    out = tmp_path / "k.csv"
    missing = tmp_path / "nonexistent"
    proc = _cli("--data-dir", str(missing), "--out", str(out))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("resdiff: error: MNIST data not found")
    assert str(missing) in proc.stderr and "--data-dir" in proc.stderr
    assert not out.exists() and not Path(str(out) + ".json").exists()
    assert not missing.exists()
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "args, option",
    [
        (["--noise", "0"], "--noise"),
        (["--n-train", "0"], "--n-train"),
        (["--n-train", "60001"], "--n-train"),
        (["--kernel", "rbf"], "--kernel"),
        (["--sigma-w2", "-1"], "--sigma-w2"),
    ],
)
def test_cli_usage_errors(tmp_path, args, option):
    out = tmp_path / "k.csv"
    proc = _cli(*args, "--out", str(out))
    assert proc.returncode == 2 and option in proc.stderr
    assert proc.stderr.count("\n") == 1 and not out.exists()


@pytest.mark.mnist
def test_cli_writes_csv(mnist_dir, tmp_path):
    out = tmp_path / "k.csv"
    proc = _cli(
        "--n-train",
        "1000",
        "--seed",
        "3",
        "--kernel",
        "nngp",
        "--data-dir",
        str(mnist_dir),
        "--out",
        str(out),
        "--quiet",
    )
    assert proc.returncode == 0, proc.stderr
    frame = pd.read_csv(out)
    assert len(frame) == 1
    row = frame.iloc[0]
    assert (row["n_train"], row["seed"], row["kernel"]) == (1000, 3, "nngp")
    assert row["noise"] == pytest.approx(1e-3)
    assert 0.5 < row["accuracy"] < 1.0
    assert Path(str(out) + ".json").is_file()
