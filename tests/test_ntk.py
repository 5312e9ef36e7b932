"""The finite NTK (eq. 30) of the resnet model and its convergence to Section 5.3's limit.

* Exact identities: the adjoint NTK equals a finite-difference NTK and (when PyTorch is
  importable) an autograd NTK to 1e-6 relative error, K_W and K_b separately, for tanh
  and swish; an off-by-one adjoint (a_t instead of a_{t+dt}) is rejected by the same check.
* Monte Carlo: means against independent measurements, and the rate of convergence to
  the limit as a fitted slope of log(limit - mean) against log L. Tolerances come from the
  Monte Carlo standard errors with |z| < Z_CRIT = 4.5 (~7e-6 false-failure rate per
  statistic, tests/conftest.py); the seeds are fixed. A network with a wrong (1/D) weight
  scaling is rejected by the rate check.
"""

import json
import math

import numpy as np
import pandas as pd
import pytest

from resdiff import rng
from resdiff.experiments.ntk import analytic_limits, ntk_convergence
from resdiff.activations import activation, apply_numpy, derivative_numpy
from resdiff.ntk import K_B, K_W, Y1, Y2, ntk_draws, stepper
from resdiff.rng import layer_noise
from resdiff.sampling.resnet import explicit_outputs, resnet_inputs
from tests.conftest import Z_CRIT

TANH = activation("tanh")
SWISH = activation("swish")
E = math.e
LIMIT_W, LIMIT_B = 2 * E + 1, E - 1  # tanh, sigma_w^2 = sigma_b^2 = 1, z = 1, 2


# --- references on tiny networks --------------------------------------------------------
def draw_params(key, draw, depth, width):
    """The draw's (eps_W, eps_b), regenerated from its streams as the kernel does."""
    eps_W = np.empty((depth, width, width))
    eps_b = np.empty((depth, width))
    for layer in range(depth):
        layer_noise(key, draw, layer, eps_W[layer], eps_b[layer])
    return eps_W, eps_b


def forward(eps_W, eps_b, x0, sw2, sb2, code):
    """y = x_{T,1} of eq. (26), plain numpy."""
    depth, width = eps_b.shape
    dt = 1.0 / depth
    x = np.array(x0, dtype=float)
    for layer in range(depth):
        x = x + apply_numpy(
            code,
            math.sqrt(sw2 * dt / width) * eps_W[layer] @ x + math.sqrt(sb2 * dt) * eps_b[layer],
        )
    return x[0]


def fd_gradient(eps_W, eps_b, x0, sw2, sb2, code, h=1e-5):
    """Central finite differences of y with respect to every eps."""
    grads = []
    for params in (eps_W, eps_b):
        g = np.empty_like(params)
        for idx in np.ndindex(params.shape):
            plus, minus = params.copy(), params.copy()
            plus[idx] += h
            minus[idx] -= h
            pw, pb = (plus, eps_b) if params is eps_W else (eps_W, plus)
            mw, mb = (minus, eps_b) if params is eps_W else (eps_W, minus)
            g[idx] = (forward(pw, pb, x0, sw2, sb2, code) - forward(mw, mb, x0, sw2, sb2, code)) / (
                2 * h
            )
        grads.append(g)
    return grads


def ntk_from_gradients(g1, g2):
    return float((g1[0] * g2[0]).sum()), float((g1[1] * g2[1]).sum())


def numpy_adjoint_ntk(eps_W, eps_b, x0s, sw2, sb2, code, off_by_one=False):
    """The adjoint NTK written out in numpy; ``off_by_one`` uses a_t instead of a_{t+dt}
    in g_t (a plausible bug), to show the finite-difference check catches it."""
    depth, width = eps_b.shape
    dt = 1.0 / depth
    ws, bs = math.sqrt(sw2 * dt / width), math.sqrt(sb2 * dt)
    per_input = []
    for x0 in x0s:
        xs, dphis = [np.array(x0, float)], []
        for layer in range(depth):
            h = ws * eps_W[layer] @ xs[-1] + bs * eps_b[layer]
            xs.append(xs[-1] + apply_numpy(code, h))
            dphis.append(derivative_numpy(code, h))
        a = np.zeros(width)
        a[0] = 1.0
        gs = [None] * depth
        for layer in range(depth - 1, -1, -1):
            a_prev = a + ws * eps_W[layer].T @ (dphis[layer] * a)
            gs[layer] = dphis[layer] * (a_prev if off_by_one else a)
            a = a_prev
        per_input.append((xs, gs))
    (x1, g1), (x2, g2) = per_input
    k_w = sum(sw2 * dt / width * (g1[t] @ g2[t]) * (x1[t] @ x2[t]) for t in range(depth))
    k_b = sum(sb2 * dt * (g1[t] @ g2[t]) for t in range(depth))
    return k_w, k_b


def rel_err(a, b):
    return abs(a - b) / max(abs(b), 1e-300)


CASES = [
    (TANH, 5, 3, 1.3, 0.7),
    (SWISH, 5, 3, 1.3, 0.7),
    (TANH, 3, 4, 2.0, 0.0),
    (SWISH, 4, 2, 0.5, 2.0),
]


@pytest.mark.parametrize(
    "act,depth,width,sw2,sb2", CASES, ids=[f"{c[0].name}-L{c[1]}-D{c[2]}" for c in CASES]
)
def test_adjoint_ntk_equals_finite_differences(act, depth, width, sw2, sb2):
    key = rng.stream_key(11, "test/ntk-fd")
    x0 = resnet_inputs([1.0, 2.0], width)
    out = ntk_draws(key, 0, 3, x0, depth, sw2, sb2, act.code)
    for draw in range(3):
        eps_W, eps_b = draw_params(key, draw, depth, width)
        g1 = fd_gradient(eps_W, eps_b, x0[0], sw2, sb2, act.code)
        g2 = fd_gradient(eps_W, eps_b, x0[1], sw2, sb2, act.code)
        k_w, k_b = ntk_from_gradients(g1, g2)
        assert rel_err(out[draw, K_W], k_w) < 1e-6
        if sb2 > 0:
            assert rel_err(out[draw, K_B], k_b) < 1e-6
        else:
            assert out[draw, K_B] == 0.0 and abs(k_b) < 1e-12


@pytest.mark.parametrize("act", [TANH, SWISH], ids=["tanh", "swish"])
def test_off_by_one_adjoint_is_rejected_by_the_finite_difference_check(act):
    depth, width, sw2, sb2 = 5, 3, 1.3, 0.7
    key = rng.stream_key(11, "test/ntk-fd")
    x0 = resnet_inputs([1.0, 2.0], width)
    eps_W, eps_b = draw_params(key, 0, depth, width)
    k_fd = ntk_from_gradients(
        fd_gradient(eps_W, eps_b, x0[0], sw2, sb2, act.code),
        fd_gradient(eps_W, eps_b, x0[1], sw2, sb2, act.code),
    )
    right = numpy_adjoint_ntk(eps_W, eps_b, x0, sw2, sb2, act.code)
    wrong = numpy_adjoint_ntk(eps_W, eps_b, x0, sw2, sb2, act.code, off_by_one=True)
    assert max(rel_err(r, k) for r, k in zip(right, k_fd)) < 1e-6
    assert min(rel_err(w, k) for w, k in zip(wrong, k_fd)) > 1e-3


@pytest.mark.parametrize("act", [TANH, SWISH], ids=["tanh", "swish"])
def test_adjoint_ntk_equals_autograd(act):
    torch = pytest.importorskip("torch")
    depth, width, sw2, sb2 = 8, 6, 1.0, 1.0
    key = rng.stream_key(12, "test/ntk-autograd")
    x0 = resnet_inputs([1.0, 2.0], width)
    out = ntk_draws(key, 0, 2, x0, depth, sw2, sb2, act.code)
    f = torch.tanh if act is TANH else (lambda v: v * torch.sigmoid(v))
    dt = 1.0 / depth
    for draw in range(2):
        eps_W, eps_b = (
            torch.tensor(a, dtype=torch.float64, requires_grad=True)
            for a in draw_params(key, draw, depth, width)
        )
        grads = []
        for n in range(2):
            x = torch.tensor(x0[n], dtype=torch.float64)
            for layer in range(depth):
                x = x + f(
                    math.sqrt(sw2 * dt / width) * eps_W[layer] @ x
                    + math.sqrt(sb2 * dt) * eps_b[layer]
                )
            grads.append(torch.autograd.grad(x[0], (eps_W, eps_b)))
            assert abs(float(x[0].detach()) - out[draw, Y1 + n]) < 1e-12
        k_w = float((grads[0][0] * grads[1][0]).sum())
        k_b = float((grads[0][1] * grads[1][1]).sum())
        assert rel_err(out[draw, K_W], k_w) < 1e-6
        assert rel_err(out[draw, K_B], k_b) < 1e-6


def test_same_network_as_explicit_outputs_and_invariant_to_chunks_and_threads():
    import numba

    key = rng.stream_key(3, "test/ntk-chunks")
    depth, width = 12, 9
    x0 = resnet_inputs([1.0, 2.0], width)
    whole = ntk_draws(key, 0, 7, x0, depth, 1.0, 1.0, TANH.code)
    chunks = np.concatenate(
        [ntk_draws(key, s, c, x0, depth, 1.0, 1.0, TANH.code) for s, c in [(0, 3), (3, 1), (4, 3)]]
    )
    np.testing.assert_array_equal(whole, chunks)
    # cut into chunks of steps (forward and backward layers), the states carried over
    kernel, state, out = stepper(key, x0, depth, 1.0, 1.0, TANH.code), {}, None
    for lo, hi in [(0, 5), (5, 12), (12, 13), (13, 23), (23, 2 * depth)]:
        out = kernel(0, 7, lo, hi, state)
        assert (out is None) == (hi < 2 * depth)
    np.testing.assert_array_equal(whole, out)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        single = ntk_draws(key, 0, 7, x0, depth, 1.0, 1.0, TANH.code)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(whole, single)
    # both inputs see the weights explicit_outputs draws from the same streams
    y = explicit_outputs(key, 0, 7, x0, depth, 1.0, 1.0, TANH.code, 0)
    np.testing.assert_allclose(whole[:, [Y1, Y2]], y, rtol=0, atol=1e-13)


def test_zero_weight_variance_gives_zero_K_W_and_the_bias_only_limit():
    key = rng.stream_key(0, "test/ntk-sw0")
    x0 = resnet_inputs([1.0, 2.0], 7)
    out = ntk_draws(key, 0, 4, x0, 9, 0.0, 1.5, TANH.code)
    assert np.all(out[:, K_W] == 0.0)
    lim0 = analytic_limits([1.0, 2.0], 0.0, 1.5, TANH)
    lim_small = analytic_limits([1.0, 2.0], 1e-7, 1.5, TANH)
    assert lim0 == pytest.approx(lim_small, abs=1e-6)
    assert analytic_limits([1.0, 2.0], 1.0, 1.0, TANH) == pytest.approx(
        {"W": LIMIT_W, "b": LIMIT_B}, rel=1e-15
    )
    assert analytic_limits([1.0, 2.0], 1.0, 1.0, SWISH) is None


# --- Monte Carlo ------------------------------------------------------------------------
def mc_means(sizes, draws, seed, sw2_of_size=lambda size: 1.0):
    """Per size: (mean, standard error) of K_W and K_b, tanh, z = 1, 2, sigma_b^2 = 1."""
    res = {}
    for size in sizes:
        key = rng.stream_key(seed, f"test/ntk-mc/{size}")
        out = ntk_draws(
            key, 0, draws, resnet_inputs([1.0, 2.0], size), size, sw2_of_size(size), 1.0, TANH.code
        )
        assert np.isfinite(out).all()
        res[size] = {
            c: (out[:, col].mean(), out[:, col].std(ddof=1) / math.sqrt(draws))
            for c, col in (("W", K_W), ("b", K_B))
        }
    return res


# reference values measured outside the project: mean K_W, K_b at L = D
REFERENCE = {20: (3.08, 1.02), 50: (4.42, 1.32), 100: (5.24, 1.50)}


def test_means_match_independent_measurements():
    # The outside numbers carry their own Monte Carlo error (assumed no larger than ours,
    # so the difference has SE <= sqrt(2) SE) and are rounded to 0.01 (added).
    res = mc_means(sorted(REFERENCE), 200, seed=1)
    for size, refs in REFERENCE.items():
        for comp, ref in zip("Wb", refs):
            mean, se = res[size][comp]
            assert abs(mean - ref) < Z_CRIT * math.sqrt(2) * se + 0.005, (size, comp, mean)


def fitted_rate(res, limits, shift=0.0):
    """Weighted least-squares slope of log(limit - mean) on log(L + shift), its SE, and
    the gaps in units of their SE. Var(log(limit - mean)) ~ SE^2 / (limit - mean)^2
    (delta method)."""
    out = {}
    sizes = np.array(sorted(res), dtype=float)
    for comp in "Wb":
        gap = np.array([limits[comp] - res[int(s)][comp][0] for s in sizes])
        se = np.array([res[int(s)][comp][1] for s in sizes])
        if np.any(gap <= 0):
            out[comp] = (math.nan, math.nan, gap / se)
            continue
        w = (gap / se) ** 2
        X = np.vstack([np.ones_like(sizes), np.log(sizes + shift)]).T
        cov = np.linalg.inv(X.T @ (w[:, None] * X))
        beta = cov @ X.T @ (w * np.log(gap))
        out[comp] = (beta[1], math.sqrt(cov[1, 1]), gap / se)
    return out


# Rate bands. Pre-asymptotically the gap behaves as a / (L + L0): the outside
# measurements (gaps 3.36, 2.02, 1.20 for K_W at L = D = 20, 50, 100) fit 152 / (L + 25),
# and K_b's fit 28 / (L + 20). So
# * the plain slope of log gap on log L is shallower than -1 at moderate sizes (about
#   -0.55 over 16..128, -0.7 over 50..400; it tends to -1): band (-1.1, -0.45) resp.
#   (-1.1, -0.6), which excludes slopes near 0 (converging elsewhere, or not at all);
# * the slope on log(L + L0), with L0 = 25 fixed in advance from the outside numbers, is
#   about -1 at every size range: band (-1.2, -0.8), which also excludes a 1/sqrt(L) rate.
# Every band is widened by Z_CRIT standard errors of the fitted slope.
L0 = 25.0
FAST_SIZES, FAST_BAND = (16, 32, 64, 128), (-1.1, -0.45)
SLOW_SIZES, SLOW_BAND = (50, 100, 200, 400), (-1.1, -0.6)
SHIFTED_BAND = (-1.2, -0.8)
LIMITS = {"W": LIMIT_W, "b": LIMIT_B}


def rate_failures(res, band):
    """The reasons the means in ``res`` fail the rate check (empty list: pass)."""
    failures = []
    for shift, b in ((0.0, band), (L0, SHIFTED_BAND)):
        for comp, (slope, se, gap_z) in fitted_rate(res, LIMITS, shift).items():
            if not np.all(gap_z > Z_CRIT):
                failures.append(f"{comp}: mean not significantly below the limit")
            elif not (b[0] - Z_CRIT * se <= slope <= b[1] + Z_CRIT * se):
                failures.append(
                    f"{comp}: slope {slope:.3f} +- {se:.3f} on log(L + {shift:g}) outside {b}"
                )
            elif se > 0.1:
                failures.append(f"{comp}: slope too noisy (SE {se:.3f}) for the band")
    return failures


def test_mean_ntk_approaches_the_limit_at_rate_about_one_over_L():
    assert rate_failures(mc_means(FAST_SIZES, 150, seed=2), FAST_BAND) == []


def test_wrong_weight_scaling_fails_the_rate_check():
    # dW = sigma_w sqrt(dt) / D eps (1/D instead of 1/sqrt(D)): K_W -> 0, K_b -> 1, so the
    # gaps stop shrinking (slopes ~0) and both components fail, with either abscissa.
    res = mc_means(FAST_SIZES, 150, seed=2, sw2_of_size=lambda s: 1.0 / s)
    failures = rate_failures(res, FAST_BAND)
    assert len(failures) == 4, failures


@pytest.mark.slow
def test_mean_ntk_rate_at_larger_sizes():
    assert rate_failures(mc_means(SLOW_SIZES, 100, seed=4), SLOW_BAND) == []


# --- experiment, CLI, plot --------------------------------------------------------------
def test_experiment_frame_and_swish_warning():
    res = ntk_convergence(
        sizes=[6, 4], draws=5, z=[1.0, 2.0], sigma_w2=1.0, sigma_b2=1.0, activation="tanh", seed=0
    )
    df = res.frame
    assert list(df.columns) == ["size", "draw", "component", "value", "kind"]
    emp = df[df["kind"] == "empirical"]
    assert len(emp) == 2 * 2 * 5 and sorted(emp["size"].unique()) == [4, 6]
    lim = df[df["kind"] == "limit"].set_index("component")["value"]
    assert lim["W"] == pytest.approx(LIMIT_W) and lim["b"] == pytest.approx(LIMIT_B)
    assert not res.warnings
    sw = ntk_convergence(
        sizes=[4], draws=3, z=[1.0, 2.0], sigma_w2=1.0, sigma_b2=1.0, activation="swish", seed=0
    )
    assert (sw.frame["kind"] == "empirical").all()
    assert any("phi''(0)" in w for w in sw.warnings)


def test_cli_acceptance_run(cli, tmp_path):
    out = tmp_path / "n.csv"
    r = cli(
        "ntk-convergence",
        "--sizes",
        "20,50",
        "--draws",
        "100",
        "--z",
        "1",
        "--z",
        "2",
        "--seed",
        "5",
        "--out",
        out,
        "--quiet",
    )
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(out)
    side = json.loads(out.with_name("n.csv.json").read_text())
    assert side["params"]["sizes"] == [20, 50] and side["seed"] == 5
    emp = df[df["kind"] == "empirical"]
    stats = emp.groupby(["component", "size"])["value"].agg(["mean", "std", "count"])
    for size in (20, 50):
        for comp, ref in zip("Wb", REFERENCE[size]):
            m, s, n = stats.loc[(comp, size)]
            assert n == 100
            assert abs(m - ref) < Z_CRIT * math.sqrt(2) * s / math.sqrt(n) + 0.005
    lim = df[df["kind"] == "limit"]
    assert lim["size"].isna().all() and set(lim["component"]) == {"W", "b"}


@pytest.mark.parametrize(
    "args,hint",
    [
        (["--z", "1"], "--z"),
        (["--z", "1", "--z", "2", "--z", "3"], "--z"),
        (["--sizes", "10,0"], "--sizes"),
        (["--sizes", "ten"], "--sizes"),
        (["--draws", "1"], "--draws"),
        (["--sigma-w2", "-1"], "--sigma-w2"),
    ],
)
def test_cli_usage_errors(cli, tmp_path, args, hint):
    out = tmp_path / "bad.csv"
    r = cli("ntk-convergence", "--sizes", "4", "--draws", "3", *args, "--out", out)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and hint in r.stderr
    assert not out.exists()


def test_plot_draws_two_panels_with_and_without_limits():
    from resdiff.plots.fig3 import plot

    params = dict(sizes=[4, 6], draws=4, z=[1.0, 2.0], sigma_w2=1.0, sigma_b2=1.0, seed=0)
    for act in ("tanh", "swish"):
        res = ntk_convergence(**params, activation=act)
        frame = res.frame.astype({"size": float, "draw": float})  # as read back from CSV
        fig = plot(
            {"ntk": frame},
            {"ntk": {"params": dict(params, activation=act), "meta": res.meta}},
            "smoke",
        )
        axes = [ax for ax in fig.axes if ax.get_xscale() == "log"]
        assert len(axes) == 2
        dashed = [ln for ax in axes for ln in ax.get_lines() if ln.get_linestyle() == "--"]
        assert len(dashed) == (2 if act == "tanh" else 0)
