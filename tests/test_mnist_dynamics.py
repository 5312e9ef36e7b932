"""resdiff.mnist.dynamics and `resdiff mnist-kernel --dynamics gd|sgd`: the doubly
infinite limit trained like the networks (GD/SGD on its linear model with the NTK of
eq. 37, from a GP prior draw)."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from resdiff.mnist import data
from resdiff.mnist import dynamics as dyn
from resdiff.mnist import kernel as kr
from tests.conftest import HAVE_MNIST, HAVE_TORCH, run_cli
from tests.test_mnist_kernel import _synthetic

SLOPE, OFFSET = kr.coefficients("ntk", 1.0, 0.01)
needs_mnist = pytest.mark.skipif(not HAVE_MNIST, reason="MNIST not found (RESDIFF_DATA_DIR)")


def _problem(n, dim, seed=0, n_test=30):
    z, y, zt = _synthetic(n, n_test, dim=dim, seed=seed)
    scale = dyn.feature_scale(dim, SLOPE, OFFSET)
    gram = kr.affine_gram(z)
    xty = np.vstack([z.T @ y, y.sum(axis=0)])
    return z, y, zt, scale, gram, xty


def _lr_max(z, y):
    """2 / the largest eigenvalue of the Hessian of (1 / (n K)) ||Phi w - Y||^2, from
    the N x N kernel (independent of the code under test)."""
    n, classes = y.shape
    lam = np.linalg.eigvalsh(kr.kernel_matrix(z, z, SLOPE, OFFSET))[-1]
    return 2.0 / (2.0 * lam / (n * classes))


def test_gd_from_zero_matches_closed_form():
    """Discrete GD on the loss (1 / (n K)) ||Phi w - Y||^2 from w = 0 with rate lr is
    w_t = V diag((1 - (1 - eta lam)^t) / lam) V^T Phi^T Y, eta = 2 lr / (n K)."""
    n, dim, epochs = 200, 784, 60
    z, y, _, scale, gram, xty = _problem(n, dim)
    classes = y.shape[1]
    lr = 0.9 * _lr_max(z, y)  # near the edge: any error in the rate shows
    thetas, sq_err = dyn.gd(
        gram, xty, (y * y).sum(0), np.zeros((dim + 1, classes)), scale, lr, n, classes, epochs
    )
    phi = np.hstack([math.sqrt(SLOPE) * z, np.full((n, 1), math.sqrt(OFFSET))])
    lam, vec = np.linalg.eigh(phi.T @ phi)
    eta = 2.0 * lr / (n * classes)
    proj = vec.T @ (phi.T @ y)
    root = np.sqrt(scale)[:, None]
    for t in (1, 2, 7, epochs):
        x = eta * lam  # 1 - (1 - x)^t without cancellation at small x
        with np.errstate(divide="ignore", invalid="ignore"):
            done = np.where(x < 1, -np.expm1(t * np.log1p(-np.minimum(x, 0.5))), 1 - (1 - x) ** t)
            gain = np.where(lam > 1e-12 * lam[-1], done / lam, t * eta)
        theta = root * (vec @ (gain[:, None] * proj))
        np.testing.assert_allclose(thetas[t - 1], theta, rtol=0, atol=1e-10)
        # the loss before step t, from the residuals of the iterate before it
        prev = thetas[t - 2] if t > 1 else np.zeros_like(theta)
        resid = z @ prev[:dim] + prev[dim] - y
        np.testing.assert_allclose(sq_err[t - 1].sum(), (resid**2).sum(), rtol=1e-10)


def test_gd_with_small_rate_reaches_kernel_regression_as_noise_vanishes():
    """GD from a zero function converges to the minimum-norm interpolant in the NTK's
    features, the noise -> 0 limit of kernel regression (`--dynamics none`)."""
    n, dim = 40, 300  # kernel condition number ~60: 4,000 steps suffice
    z, y, zt, scale, gram, xty = _problem(n, dim, seed=2)
    classes = y.shape[1]
    lr = 0.25 * _lr_max(z, y)
    thetas, _ = dyn.gd(
        gram, xty, (y * y).sum(0), np.zeros((dim + 1, classes)), scale, lr, n, classes, 4000
    )
    theta = thetas[-1]
    gd_pred = zt @ theta[:dim] + theta[dim]
    gaps = [
        np.max(np.abs(gd_pred - kr.posterior_mean(z, y, zt, SLOPE, OFFSET, noise)))
        for noise in (1e-2, 1e-4, 1e-6, 1e-8)
    ]
    assert all(a > b for a, b in zip(gaps, gaps[1:])), gaps
    assert gaps[-1] < 1e-6, gaps
    assert gaps[0] > 1e-4, gaps  # the noise matters at 1e-2: the comparison has teeth


def _sgd_oracle(z, y, theta0, lr, batch, epochs, seed, draw):
    """Plain numpy SGD on (1 / (b K)) ||X theta - Y||^2 with NTK-preconditioned steps."""
    n, classes = y.shape
    theta = theta0.copy()
    scale = dyn.feature_scale(z.shape[1], SLOPE, OFFSET)[:, None]
    x = np.hstack([z, np.ones((n, 1))])
    losses = []
    for epoch in range(1, epochs + 1):
        order = data.epoch_permutation(seed, epoch, n, draw)
        total = 0.0
        for start in range(0, n, batch):
            idx = order[start : start + batch]
            r = x[idx] @ theta - y[idx]
            total += (r**2).mean() * len(idx)
            theta = theta - lr * scale * (x[idx].T @ (2.0 * r / r.size))
        losses.append(total / n)
    return theta, np.array(losses)


@pytest.mark.parametrize("draw", [0, 3])
def test_sgd_matches_a_dense_transcription(draw):
    n, dim, batch, epochs = 53, 784, 10, 4  # last batch of each epoch: 3 images
    z, y, *_ = _problem(n, dim, seed=4)
    theta0 = dyn.prior_theta(5, draw, dim, y.shape[1], *kr.coefficients("nngp", 1.0, 0.01))
    lr = 0.5 * _lr_max(z, y)
    thetas, losses = dyn.sgd(
        dyn.sparse_rows(z),
        y,
        theta0,
        dyn.feature_scale(dim, SLOPE, OFFSET),
        lr,
        batch,
        epochs,
        seed=7,
        draw=draw,
    )
    theta, ref_losses = _sgd_oracle(z, y, theta0, lr, batch, epochs, 7, draw)
    np.testing.assert_allclose(thetas[-1], theta, rtol=0, atol=1e-12)
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-12)


def test_draw_zero_visits_the_networks_batches_and_other_draws_differ():
    first = data.epoch_permutation(3, 5, 100)
    np.testing.assert_array_equal(first, data.epoch_permutation(3, 5, 100, draw=0))
    assert not np.array_equal(first, data.epoch_permutation(3, 5, 100, draw=1))


def test_prior_draw_has_the_gp_kernel_of_eq_35_36():
    """Across draws, f(z) = z beta + alpha has covariance nngp_slope <z, z'> + offset."""
    dim, draws = 6, 4000
    prior = kr.coefficients("nngp", 1.0, 0.01)
    z = np.array([[0.2, 0.5, 0, 0, 1, 0.3], [1, 0, 0.4, 0.1, 0, 0]])
    f = np.array(
        [
            z @ t[:dim, 0] + t[dim, 0]
            for t in (dyn.prior_theta(1, d, dim, 10, *prior) for d in range(draws))
        ]
    )
    from tests.conftest import Z_CRIT, max_abs_z

    assert max_abs_z(f, np.zeros(2), kr.kernel_matrix(z, z, *prior)) < Z_CRIT


@pytest.mark.skipif(not HAVE_TORCH, reason="PyTorch not installed (the `train` extra)")
@pytest.mark.torch
@pytest.mark.parametrize("optimizer", ["gd", "sgd"])
def test_limit_steps_are_the_networks_training_code_on_the_linear_model(optimizer):
    """resdiff.mnist.train.fit (the networks' loss, rate, batches, train_loss) applied to
    the linear model f = Phi w, whose NTK is slope <z, z'> + offset, gives the limit's
    iterates: the rate convention of the theory is the networks'."""
    import torch
    from resdiff.mnist import train

    n, dim, epochs, batch = 230, 784, 3, 50
    z, y, zt, scale, gram, xty = _problem(n, dim, seed=6)
    classes = y.shape[1]
    theta0 = dyn.prior_theta(2, 0, dim, classes, *kr.coefficients("nngp", 1.0, 0.01))
    lr = 0.8 * _lr_max(z, y)
    root = np.sqrt(scale)

    class Linear(torch.nn.Module):
        width, depth = 1, 1

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.tensor(theta0 / root[:, None]))
            self.root = torch.tensor(root)

        def forward(self, x):
            w = self.w * self.root[:, None]
            return x @ w[:-1] + w[-1]

        def n_parameters(self):
            return self.w.numel()

    model = Linear().double()
    tensors = train.TrainData(
        *(torch.tensor(a) for a in (z, y, zt)), torch.zeros(len(zt), dtype=torch.int64)
    )
    rows, _ = train.fit(
        model,
        tensors,
        optimizer=optimizer,
        lr=lr,
        batch_size=batch,
        epochs=epochs,
        seed=9,
        device=torch.device("cpu"),
        config={},
    )
    theta_net = model.w.detach().numpy() * root[:, None]
    if optimizer == "gd":
        thetas, sq_err = dyn.gd(gram, xty, (y * y).sum(0), theta0, scale, lr, n, classes, epochs)
        losses = sq_err.sum(axis=1) / (n * classes)
    else:
        thetas, losses = dyn.sgd(
            dyn.sparse_rows(z), y, theta0, scale, lr, batch, epochs, seed=9, draw=0
        )
    np.testing.assert_allclose(theta_net, thetas[-1], rtol=0, atol=1e-10)
    # the networks accumulate the epoch loss in float32
    np.testing.assert_allclose([r["train_loss"] for r in rows], losses, rtol=1e-6)


def test_rate_above_the_bound_diverges_and_below_it_does_not():
    n, dim = 150, 200
    z, y, _, scale, gram, xty = _problem(n, dim, seed=8)
    classes = y.shape[1]
    bound, sharpness = dyn.stability_bound(gram, scale, n, classes)
    assert bound == pytest.approx(_lr_max(z, y), rel=1e-10)
    start = np.zeros((dim + 1, classes))
    above, _ = dyn.gd(gram, xty, (y * y).sum(0), start, scale, 1.02 * bound, n, classes, 1000)
    below, _ = dyn.gd(gram, xty, (y * y).sum(0), start, scale, 0.98 * bound, n, classes, 1000)
    assert np.abs(above[-1]).max() > 1e6 * np.abs(below[-1]).max()
    assert np.abs(below[-1]).max() < 10 * np.abs(below[len(below) // 2]).max()


# --- MNIST and the command line --------------------------------------------------------
def _experiment(**kw):
    from resdiff.experiments.mnist_kernel import mnist_kernel_dynamics

    params = dict(
        n_train=20000,
        dynamics="gd",
        init="random",
        epochs=120,
        lr=20.0,
        batch_size=None,
        draws=1,
        sigma_w2=1.0,
        sigma_b2=0.01,
        kernel="ntk",
        seed=0,
    )
    params.update(kw)
    return mnist_kernel_dynamics(**params)


@needs_mnist
@pytest.mark.mnist
def test_the_three_example_runs():
    """120 epochs at lr 20 on 20,000 images: GD from a GP prior draw ~0.76, GD from zero
    ~0.86, SGD (batch 200) ~0.85 (an independent computation of the same linear model;
    our networks at D = L = 100 measured GD 0.760, SGD 0.859)."""
    final = {}
    for name, kw in {
        "gd random": {},
        "gd zero": dict(init="zero"),
        "sgd random": dict(dynamics="sgd", batch_size=200),
    }.items():
        frame = _experiment(**kw).frame
        assert len(frame) == 120 and not frame["diverged"].any()
        final[name] = frame["test_accuracy"].iloc[-1]
    assert final["gd random"] == pytest.approx(0.76, abs=0.01), final
    assert final["gd zero"] == pytest.approx(0.86, abs=0.01), final
    assert final["sgd random"] == pytest.approx(0.85, abs=0.01), final


@needs_mnist
@pytest.mark.mnist
def test_rate_above_the_bound_is_flagged_with_a_warning_naming_it():
    base = _experiment(n_train=300, epochs=2, draws=2)
    bound = base.meta["stability_bound_lr"]
    assert not base.warnings and not base.frame["diverged"].any()
    result = _experiment(n_train=300, epochs=2, draws=2, lr=1.01 * bound)
    assert result.frame["diverged"].all()
    assert len(result.warnings) == 1 and f"{bound:.4g}" in result.warnings[0]
    sgd = _experiment(n_train=300, epochs=2, dynamics="sgd", batch_size=100, lr=1.01 * bound)
    assert sgd.frame["diverged"].all() and f"{bound:.4g}" in sgd.warnings[0]


@needs_mnist
@pytest.mark.mnist
def test_cli_writes_one_row_per_draw_and_epoch(tmp_path):
    out = tmp_path / "d.csv"
    res = run_cli(
        "mnist-kernel",
        "--dynamics",
        "sgd",
        "--n-train",
        "400",
        "--epochs",
        "3",
        "--draws",
        "2",
        "--batch-size",
        "64",
        "--out",
        out,
        "--quiet",
    )
    assert res.returncode == 0, res.stderr
    frame = pd.read_csv(out)
    assert list(frame.columns[:6]) == [
        "dynamics",
        "init",
        "draw",
        "epoch",
        "train_loss",
        "test_accuracy",
    ]
    assert {"slope", "offset", "prior_slope", "prior_offset", "diverged", "lr"} <= set(frame)
    assert sorted(zip(frame["draw"], frame["epoch"])) == [(d, e) for d in (0, 1) for e in (1, 2, 3)]
    assert (frame["lr"] == 20).all() and (frame["batch_size"] == 64).all()
    assert (
        frame.loc[frame["draw"] == 0, "test_accuracy"]
        .ne(frame.loc[frame["draw"] == 1, "test_accuracy"].to_numpy())
        .any()
    )
    side = Path(str(out) + ".json").read_text()
    assert '"stability_bound_lr"' in side and '"draws": 2' in side


@pytest.mark.parametrize(
    "args, option",
    [
        (["--dynamics", "adam"], "--dynamics"),
        (["--dynamics", "gd", "--epochs", "0"], "--epochs"),
        (["--dynamics", "gd", "--lr", "-1"], "--lr"),
        (["--dynamics", "sgd", "--batch-size", "0"], "--batch-size"),
        (["--dynamics", "sgd", "--draws", "0"], "--draws"),
        (["--dynamics", "gd", "--batch-size", "100"], "--batch-size"),
        (["--epochs", "5"], "--epochs"),
        (["--dynamics", "sgd", "--noise", "0.1"], "--noise"),
    ],
)
def test_cli_bad_input_is_one_line_and_no_file(tmp_path, args, option):
    out = tmp_path / "d.csv"
    res = run_cli("mnist-kernel", *args, "--n-train", "300", "--out", out)
    assert res.returncode == 2 and option in res.stderr, res.stderr
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert list(tmp_path.iterdir()) == []


def test_fig6_draws_the_limit_left_only_and_names_networks_and_theory():
    from resdiff.plots import fig6

    def network(opt):
        return pd.DataFrame(
            [
                dict(
                    arch="fc",
                    optimizer=opt,
                    size=s,
                    epoch=2,
                    train_loss=0.1,
                    test_accuracy=0.8,
                    diverged=False,
                    lr=20.0,
                )
                for s in (4, 8)
            ]
        )

    def limit(opt, diverged=False):
        return pd.DataFrame(
            [
                dict(
                    dynamics=opt,
                    init="random",
                    draw=d,
                    epoch=e,
                    train_loss=0.05,
                    test_accuracy=0.7 + 0.01 * d,
                    diverged=diverged,
                    lr=20.0,
                )
                for d in range(3)
                for e in (1, 2)
            ]
        )

    side = {
        "params": dict(
            lr=20.0,
            n_train=500,
            epochs=2,
            n_test=None,
            batch_size=200,
            seed=0,
            sigma_w2=1.0,
            sigma_b2=0.01,
        )
    }
    frames = {o: network(o) for o in ("gd", "sgd", "adam-full", "adam")}
    frames["kernel"] = pd.DataFrame([dict(n_train=500, seed=0, accuracy=0.83)])
    frames["limit-gd"], frames["limit-sgd"] = limit("gd"), limit("sgd", diverged=True)
    sides = {o: side for o in frames}
    fig = fig6.plot(frames, sides, "smoke")
    left, right = ([t.get_text() for t in ax.get_legend().get_texts()] for ax in fig.axes)
    assert "GD network, lr 20" in left and "GD network, lr 20" not in right
    assert any(t.startswith("GD, limit") and "(theory)" in t and "71.0%" in t for t in left)
    assert not any("SGD, limit" in t for t in left)  # diverged: not drawn as a number
    assert not any("limit" in t for t in right)
    assert all("theory" in t for t in left + right if "kernel regression" in t)
    text = " ".join(fig.get_supxlabel().split())  # the caption wraps to the width
    assert "NTK theory does not cover Adam" in text and "SGD limit diverged" in text
    assert "range over 3 GP prior draws" in text
    import matplotlib.pyplot as plt

    plt.close("all")
