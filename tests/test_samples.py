"""`resdiff samples` / `resdiff correlation` (Figs. 1, 4, 5, 8): the doubly infinite
Gaussian limit, the Chebyshev interpolation error against direct evaluation with the same
explicit weights, an independent plain-numpy implementation, divergent draws, the 2-D
grid ordering and the CSV round trip, and the command-line contract.

Statistical tolerances: |z| < 4.5 per statistic (false-failure rate ~7e-6 each) plus, where
stated, a finite-size allowance measured once and written next to the test.
"""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from resdiff import rng
from resdiff.errors import AllDiverged
from resdiff.experiments import samples as exp
from resdiff.sampling import chebyshev, plan
from resdiff.sampling.draws import point_draws
from resdiff.sampling.store import DrawStore
from resdiff.sampling.resnet import explicit_outputs, resnet_inputs
from tests.conftest import Z_CRIT

E1 = math.e - 1.0
LEVELS = [0.05, 0.5, 0.95]


def run_samples(**kw):
    params = dict(
        model="resnet",
        activation="tanh",
        depth=20,
        width=20,
        inputs=5,
        z_min=-2.0,
        z_max=2.0,
        input_dim=1,
        draws=1000,
        keep_draws=5,
        quantiles=LEVELS,
        sigma_w2=None,
        sigma_b2=None,
        nodes=None,
        estimator="auto",
        seed=0,
    )
    params.update(kw)
    return exp.samples(**params)


def run_corr(**kw):
    params = dict(
        model="resnet",
        activation="tanh",
        depth=20,
        width=20,
        grid=4,
        z_min=-2.0,
        z_max=2.0,
        draws=1000,
        sigma_w2=None,
        sigma_b2=None,
        nodes=None,
        estimator="auto",
        seed=0,
    )
    params.update(kw)
    return exp.correlation(**params)


def quantile_table(frame):
    q = frame[frame["kind"] == "quantile"]
    return q.pivot(index="id", columns="z", values="value").sort_index()


def quantile_se(y, levels, n):
    """Standard error of empirical quantiles of ``n`` draws with the law of ``y``:
    sqrt(p (1 - p) / n) / f(q_p), the density from a Gaussian KDE of ``y``."""
    out = []
    for p in levels:
        q = np.quantile(y, p, axis=0)
        f = np.array([stats.gaussian_kde(y[:, j])(q[j])[0] for j in range(y.shape[1])])
        out.append(np.sqrt(p * (1 - p) / n) / f)
    return np.array(out)


# --- the doubly infinite limit (Section 5) ---------------------------------------------
def test_resnet_tanh_approaches_the_gaussian_limit():
    """Var -> (z^2 + 1)(e - 1), median z, as L = D grow (sigma_w^2 = sigma_b^2 = 1).

    Finite-size bias, measured once with 20,000 draws (gram sampler): Var/limit at
    z = +-2 is 0.54 (L = D = 25), 0.69 (50), 0.80 (100), 0.89 (200); in standard
    deviations the relative bias is about (3 + 1.75 z^2) / L. The test allows 1.5 times
    that plus 4.5 standard errors, and requires the bias to shrink from L = D = 25 to 100.
    """
    z = np.linspace(-2, 2, 5)
    lim_sd = np.sqrt((z**2 + 1) * E1)
    ratios = {}
    for size, draws in ((25, 3000), (100, 6000)):
        res = run_samples(
            depth=size, width=size, draws=draws, keep_draws=0, quantiles=[0.1587, 0.5, 0.8413]
        )
        q = quantile_table(res.frame).to_numpy()
        half = 0.5 * (q[2] - q[0])  # ~ one standard deviation
        ratios[size] = half / lim_sd
        # median -> z (the mean is exact: phi''(0) = 0); SE of a median ~ 1.25 sd/sqrt(n)
        assert np.all(np.abs(q[1] - z) < Z_CRIT * 1.2533 * half / math.sqrt(draws))
    allowance = 1.5 * (3 + 1.75 * z**2) / 100 + Z_CRIT * 1.1 / math.sqrt(6000)
    assert np.all(np.abs(ratios[100] - 1) < allowance), ratios[100]
    # the finite-size bias shrinks towards the limit at the large inputs
    assert np.all(np.abs(ratios[100][[0, -1]] - 1) < np.abs(ratios[25][[0, -1]] - 1) - 0.1)
    # a wrong limit (variance (z^2 + 1) e instead of (z^2 + 1)(e - 1)) is rejected
    assert np.any(np.abs(ratios[100] * math.sqrt(E1 / math.e) - 1) > allowance)


def test_resnet_tanh_correlation_approaches_the_gaussian_limit():
    """rho -> (z1 z2 + 1)/sqrt((z1^2 + 1)(z2^2 + 1)); measured bias <= 0.013 at L = D = 25
    and <= 0.01 at 100 (20,000 draws), so the allowance is 0.03."""
    res = run_corr(depth=100, width=100, grid=6, draws=3000)
    f = res.frame
    z1, z2, rho = f["z1"].to_numpy(), f["z2"].to_numpy(), f["rho"].to_numpy()
    lim = (z1 * z2 + 1) / np.sqrt((z1**2 + 1) * (z2**2 + 1))
    se = (1 - lim**2) / math.sqrt(3000) + 1e-12
    assert np.all(np.abs(rho - lim) <= 0.03 + Z_CRIT * se)
    assert np.min(rho) < -0.3  # far from the feedforward's "everything correlated"
    # a model that forgot the bias (rho = sign(z1 z2)) is rejected
    assert np.any(np.abs(np.sign(z1 * z2) - lim) > 0.03 + Z_CRIT * se)


# --- Chebyshev interpolation against direct evaluation ---------------------------------
def interpolation_errors(activation, depth, width, draws, seed=11, n_check=24):
    """Max |interpolant - direct| per draw, with the SAME explicit weights: nodes from the
    pilot, check points random in [-2, 2] plus grid points of the 400-point figure grid."""
    code = {"tanh": 0, "swish": 1}[activation]
    k, _ = plan.choose_nodes("resnet", activation, depth, width, 1.0, 1.0, -2.0, 2.0, 0)
    rs = np.random.default_rng(seed)
    check = np.concatenate(
        [
            rs.uniform(-2, 2, n_check // 2),
            np.linspace(-2, 2, 400)[rs.integers(0, 400, n_check // 2)],
        ]
    )
    pts = np.concatenate([chebyshev.nodes(k, -2, 2), check])
    key = rng.stream_key(seed, "test/interpolation")
    y = explicit_outputs(key, 0, draws, resnet_inputs(pts, width), depth, 1.0, 1.0, code, 0)
    P = chebyshev.interpolation_matrix(k, -2, 2, check)
    return k, np.abs(y[:, :k] @ P.T - y[:, k:]).max(axis=1), y


@pytest.mark.parametrize("activation", ["tanh", "swish"])
@pytest.mark.parametrize("depth,width,draws", [(500, 10, 40), (500, 100, 3)])
def test_interpolation_error_below_1e6(activation, depth, width, draws):
    k, err, y = interpolation_errors(activation, depth, width, draws)
    assert np.all(np.isfinite(err))
    assert err.max() < 1e-6, (k, err.max())
    # the bound is not vacuous: 6 nodes give errors far above it on the same draws
    check = np.linspace(-1.9, 1.9, 8)
    pts = np.concatenate([chebyshev.nodes(6, -2, 2), check])
    code = {"tanh": 0, "swish": 1}[activation]
    y6 = explicit_outputs(
        rng.stream_key(11, "test/interpolation"),
        0,
        draws,
        resnet_inputs(pts, width),
        depth,
        1.0,
        1.0,
        code,
        0,
    )
    P = chebyshev.interpolation_matrix(6, -2, 2, check)
    assert np.abs(y6[:, :6] @ P.T - y6[:, 6:]).max() > 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("activation", ["tanh", "swish"])
def test_interpolation_error_below_1e6_at_l_d_500(activation):
    k, err, _ = interpolation_errors(activation, 500, 500, 2, n_check=16)
    assert err.max() < 1e-6, (k, err.max())


@pytest.mark.parametrize("activation", ["tanh", "swish"])
def test_tensor_interpolation_error_2d(activation):
    """Fig. 8's 2-D inputs at L = D = 100: K x K tensor nodes (K from the pilot)."""
    code = {"tanh": 0, "swish": 1}[activation]
    k, _ = plan.choose_nodes("resnet", activation, 100, 100, 1.0, 1.0, -2.0, 2.0, 0)
    nodes = chebyshev.tensor_nodes(k, -2, 2)
    axis = np.linspace(-2, 2, 50)[[0, 7, 19, 30, 44, 49]]
    check = np.column_stack([np.repeat(axis, len(axis)), np.tile(axis, len(axis))])
    key = rng.stream_key(5, "test/interpolation-2d")
    y = explicit_outputs(
        key, 0, 1, resnet_inputs(np.vstack([nodes, check]), 100), 100, 1.0, 1.0, code, 0
    )
    P = chebyshev.tensor_interpolation_matrix(k, -2, 2, axis, axis)
    err = np.abs(y[:, : k * k] @ P.T - y[:, k * k :]).max()
    assert err < 1e-6, (k, err)


def test_chebyshev_helpers_are_exact_for_polynomials():
    x = np.linspace(-3, 1, 37)
    f = lambda t: 1 - 2 * t + 0.5 * t**3 - 0.1 * t**7  # noqa: E731
    for k in (8, 12):
        P = chebyshev.interpolation_matrix(k, -3, 1, x)
        np.testing.assert_allclose(P @ f(chebyshev.nodes(k, -3, 1)), f(x), atol=1e-11)
        c = chebyshev.coefficients_matrix(k) @ f(chebyshev.nodes(k, -3, 1))
        assert np.all(np.abs(c[8:]) < 1e-11)
        np.testing.assert_allclose(
            np.polynomial.chebyshev.chebval((x + 1) / 2, c), f(x), atol=1e-11
        )
    # the identity rows: a point on a node takes the node's value
    n = chebyshev.nodes(6, 0, 2)
    np.testing.assert_array_equal(chebyshev.interpolation_matrix(6, 0, 2, n), np.eye(6))


def test_correlation_is_that_of_the_interpolated_draws():
    """rho over the grid from P C P^T equals the correlation of the interpolated draws."""
    res = run_corr(depth=30, width=30, grid=60, draws=300)
    meta = res.meta
    assert meta["evaluation"] == "chebyshev"
    k = meta["nodes"]
    sim = point_draws("resnet", "tanh", 30, 30, 1.0, 1.0, chebyshev.nodes(k, -2, 2), 300, 0, "test")
    grid = np.linspace(-2, 2, 60)
    values = sim.y @ chebyshev.interpolation_matrix(k, -2, 2, grid).T
    np.testing.assert_allclose(
        res.frame["rho"].to_numpy().reshape(60, 60), np.corrcoef(values.T), atol=1e-10
    )


# --- against an independent plain-numpy implementation ---------------------------------
def numpy_resnet(act, L, D, n, z, seed, sw2=1.0, sb2=1.0):
    rs = np.random.default_rng(seed)
    phi = np.tanh if act == "tanh" else (lambda x: x / (1 + np.exp(-x)))
    X = np.broadcast_to(np.asarray(z, float)[None, :, None], (n, len(z), D)).copy()
    for _ in range(L):
        W = rs.standard_normal((n, D, D)) * math.sqrt(sw2 / (L * D))
        b = rs.standard_normal((n, 1, D)) * math.sqrt(sb2 / L)
        X += phi(np.einsum("bnc,brc->bnr", X, W) + b)
    return X[:, :, 0]


def numpy_feedforward(act, L, D, n, z, sw2, sb2, seed):
    rs = np.random.default_rng(seed)
    phi = np.tanh if act == "tanh" else (lambda x: np.maximum(x, 0.0))
    H = np.asarray(z, float)[None, :, None] * rs.standard_normal((n, 1, D)) * math.sqrt(
        sw2
    ) + rs.standard_normal((n, 1, D)) * math.sqrt(sb2)
    for _ in range(L - 1):
        W = rs.standard_normal((n, D, D)) * math.sqrt(sw2 / D)
        H = np.einsum("bnc,brc->bnr", phi(H), W) + rs.standard_normal((n, 1, D)) * math.sqrt(sb2)
    return H[:, :, 0]


@pytest.mark.parametrize(
    "model,act",
    [("resnet", "tanh"), ("resnet", "swish"), ("feedforward", "tanh"), ("feedforward", "relu")],
)
def test_quantiles_match_an_independent_numpy_implementation(model, act):
    z = np.linspace(-2, 2, 5)
    n = 6000  # with 3000 draws (rng 3) the 30% error below was caught at z = 4.48 for ReLU
    res = run_samples(model=model, activation=act, depth=12, width=12, draws=n)
    q = quantile_table(res.frame).to_numpy()
    meta = res.meta
    if model == "resnet":
        ref = numpy_resnet(act, 12, 12, n, z, seed=7)
    else:
        ref = numpy_feedforward(act, 12, 12, n, z, meta["sigma_w2"], meta["sigma_b2"], seed=7)
    qr = np.quantile(ref, LEVELS, axis=0)
    nonzero = np.abs(qr).max(axis=0) > 0  # ReLU without bias: y(0) = 0 exactly
    se = quantile_se(ref[:, nonzero], LEVELS, n)
    # ours: empirical (same SE) or conditional (smaller: taken as the same, conservatively)
    zscore = (q[:, nonzero] - qr[:, nonzero]) / (math.sqrt(2) * se)
    assert np.max(np.abs(zscore)) < Z_CRIT
    assert np.all(q[:, ~nonzero] == 0.0)
    # a 30% error in the spread would be caught
    wrong = (qr[:, nonzero] - qr[1, nonzero]) * 1.3 + qr[1, nonzero]
    assert np.max(np.abs((q[:, nonzero] - wrong) / (math.sqrt(2) * se))) > Z_CRIT


def test_conditional_and_empirical_estimators_agree():
    kw = dict(
        model="feedforward",
        activation="tanh",
        depth=15,
        width=15,
        inputs=5,
        draws=4000,
        keep_draws=0,
    )
    cond = run_samples(estimator="conditional", **kw)
    emp = run_samples(estimator="empirical", **kw)
    assert cond.meta["estimator"] == "conditional" and emp.meta["estimator"] == "empirical"
    # same draws: SEs of the difference bounded by the empirical one
    se = emp.meta["quantile_se_max"]
    diff = quantile_table(cond.frame).to_numpy() - quantile_table(emp.frame).to_numpy()
    assert np.max(np.abs(diff)) < Z_CRIT * se
    assert cond.meta["quantile_se_max"] < emp.meta["quantile_se_max"]


# --- divergent draws (swish) ------------------------------------------------------------
def test_divergent_draws_are_counted_and_excluded():
    res = run_samples(activation="swish", depth=100, width=2, draws=200, sigma_w2=1e7, sigma_b2=1.0)
    bad = res.meta["divergent"]
    assert 0 < bad < 200
    assert any(f"{bad} of 200 draws diverged" in w for w in res.warnings)
    assert np.all(np.isfinite(res.frame["value"]))
    assert res.meta["draws_used"] == 200 - bad
    corr = run_corr(activation="swish", depth=100, width=2, draws=200, sigma_w2=1e7, sigma_b2=1.0)
    assert corr.meta["divergent"] == bad and np.all(np.isfinite(corr.frame["rho"]))


def test_all_divergent_raises():
    with pytest.raises(AllDiverged, match="all 50 draws"):
        run_samples(activation="swish", depth=200, width=4, draws=50, sigma_w2=1e5, sigma_b2=1.0)


# --- output format ----------------------------------------------------------------------
def test_2d_grid_ordering_and_csv_round_trip(cli, tmp_path):
    out = tmp_path / "s2.csv"
    args = [
        "samples",
        "--model",
        "resnet",
        "--depth",
        "6",
        "--width",
        "4",
        "--input-dim",
        "2",
        "--inputs",
        "3",
        "--z-min",
        "-1",
        "--z-max",
        "1",
        "--draws",
        "20",
        "--keep-draws",
        "2",
        "--seed",
        "3",
        "--out",
        out,
    ]
    res = cli(*args)
    assert res.returncode == 0, res.stderr
    df = pd.read_csv(out)
    assert list(df.columns) == ["z", "z2", "kind", "id", "value"]
    d0 = df[(df["kind"] == "draw") & (df["id"] == df["id"].iloc[0])]
    np.testing.assert_array_equal(d0["z"], np.repeat([-1.0, 0.0, 1.0], 3))  # z slowest
    np.testing.assert_array_equal(d0["z2"], np.tile([-1.0, 0.0, 1.0], 3))
    # the round trip is exact (17 significant digits) against the in-process result
    again = exp.samples(
        model="resnet",
        activation="tanh",
        depth=6,
        width=4,
        inputs=3,
        z_min=-1.0,
        z_max=1.0,
        input_dim=2,
        draws=20,
        keep_draws=2,
        quantiles=LEVELS,
        sigma_w2=1.0,
        sigma_b2=1.0,
        nodes=None,
        estimator="auto",
        seed=3,
    )
    np.testing.assert_array_equal(df["value"].to_numpy(), again.frame["value"].to_numpy())
    # each value is the network at that (z1, z2): explicit weights, one input at a time
    assert again.meta["sampler"] == "explicit"
    key = rng.stream_key(3, "samples/resnet/explicit")
    draw = int(d0["id"].iloc[0])
    for _, row in d0.iterrows():
        x0 = resnet_inputs(np.array([[row["z"], row["z2"]]]), 4)
        y = explicit_outputs(key, draw, 1, x0, 6, 1.0, 1.0, 0, 0)[0, 0]
        assert y == pytest.approx(row["value"], rel=1e-12, abs=1e-13)
    side = pd.read_json(str(out) + ".json", typ="series")
    assert side["params"]["input_dim"] == 2 and side["meta"]["divergent"] == 0


def test_samples_and_correlation_csv_columns(cli, tmp_path):
    out = tmp_path / "c.csv"
    res = cli(
        "correlation", "--depth", "5", "--width", "5", "--grid", "3", "--draws", "50", "--out", out
    )
    assert res.returncode == 0, res.stderr
    df = pd.read_csv(out)
    assert list(df.columns) == ["z1", "z2", "rho"] and len(df) == 9
    np.testing.assert_allclose(df["rho"].to_numpy().reshape(3, 3).diagonal(), 1.0)
    out = tmp_path / "s.csv"
    res = cli(
        "samples",
        "--model",
        "feedforward",
        "--activation",
        "relu",
        "--depth",
        "5",
        "--width",
        "5",
        "--inputs",
        "7",
        "--draws",
        "40",
        "--out",
        out,
    )
    assert res.returncode == 0, res.stderr
    df = pd.read_csv(out)
    assert list(df.columns) == ["z", "kind", "id", "value"]
    assert set(df["kind"]) == {"draw", "quantile"}
    assert len(df) == 7 * (5 + 3)
    side = pd.read_json(str(out) + ".json", typ="series")
    assert side["params"]["sigma_w2"] == 2.0 and side["params"]["sigma_b2"] == 0.0
    assert side["meta"]["evaluation"] == "homogeneous"


@pytest.mark.parametrize(
    "args,option",
    [
        (["samples", "--z-min", "1", "--z-max", "1"], "--z-min"),
        (["correlation", "--grid", "1"], "--grid"),
        (["samples", "--inputs", "0"], "--inputs"),
        (["samples", "--draws", "1"], "--draws"),
        (["samples", "--nodes", "1"], "--nodes"),
        (["samples", "--quantiles", "0.5,1.5"], "--quantiles"),
        (["samples", "--width", "0"], "--width"),
        (["samples", "--sigma-w2", "-1"], "--sigma-w2"),
        (["samples", "--model", "feedforward", "--activation", "swish"], "edge of chaos"),
        (["samples", "--estimator", "conditional"], "--model feedforward"),
    ],
)
def test_usage_errors_are_one_line_exit_2_and_leave_no_file(cli, tmp_path, args, option):
    out = tmp_path / "x.csv"
    res = cli(*args, "--depth", "3", "--out", out)
    assert res.returncode == 2, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and option in lines[0], lines
    assert not out.exists() and not (tmp_path / "x.csv.json").exists()


# --- draws shared in one process (DrawStore) --------------------------------------------
@pytest.fixture
def simulations(monkeypatch):
    """The list of simulations run (model, number of points, draws)."""
    from resdiff.sampling import draws as draws_module

    calls, run = [], draws_module._run

    def counted(model, act, depth, width, sw2, sb2, points, draws, *args):
        calls.append((model, points.shape[0], draws))
        return run(model, act, depth, width, sw2, sb2, points, draws, *args)

    monkeypatch.setattr(draws_module, "_run", counted)
    return calls


def test_draw_store_hit_miss_and_copies(simulations):
    store = DrawStore()
    pts = np.linspace(-1, 1, 5)
    args = ("feedforward", "tanh", 4, 6, 1.5, 0.05, pts, 20)
    first = point_draws(*args, 0, "test", store=store)
    again = point_draws(*args, 0, "test", store=store)
    assert len(simulations) == 1 and len(store) == 1
    for name in ("y", "divergent", "var", "cov_sum", "rank"):
        a, b = getattr(first, name), getattr(again, name)
        np.testing.assert_array_equal(a, b)
        assert a is not b  # a copy: what the caller does cannot change the store
    again.y[:] = 0.0
    np.testing.assert_array_equal(point_draws(*args, 0, "test", store=store).y, first.y)
    # another seed, other points, another purpose: simulated again
    point_draws(*args, 1, "test", store=store)
    point_draws(*args[:6], pts[:4], 20, 0, "test", store=store)
    point_draws(*args, 0, "test", purpose="pilot", store=store)
    assert len(simulations) == 4 and len(store) == 4
    # without a store nothing is kept
    point_draws(*args, 0, "test")
    assert len(simulations) == 5


def test_draw_store_budget_drops_the_least_recently_used():
    from resdiff.sampling.draws import PointDraws

    one = PointDraws(np.zeros((10, 10)), np.zeros(10, bool), "gram")  # 810 bytes
    store = DrawStore(max_bytes=2000)
    store.put("a", one)
    store.put("b", one)
    assert store.get("a") is not None  # "b" is now the least recently used
    store.put("c", one)
    assert "b" not in store and "a" in store and "c" in store and store.nbytes <= 2000
    small = DrawStore(max_bytes=1000)
    small.put("a", one)
    small.put("b", one)
    assert "a" not in small and "b" in small
    tiny = DrawStore(max_bytes=100)
    tiny.put("a", one)
    assert "a" in tiny  # the newest is kept even over the budget


def test_samples_and_correlation_share_draws_through_the_store(simulations):
    """Fig. 5's feedforward ReLU panel reuses Fig. 1's draws (the same two points, draws
    and seed); the numbers are those of a run without a store."""
    common = dict(model="feedforward", activation="relu", depth=6, width=6, draws=50)
    store = DrawStore()
    s = run_samples(inputs=7, draw_store=store, **common)
    c = run_corr(grid=4, draw_store=store, **common)
    assert simulations == [("feedforward", 2, 50)]
    c_alone = run_corr(grid=4, **common)
    assert len(simulations) == 2
    pd.testing.assert_frame_equal(c.frame, c_alone.frame, check_exact=True)
    assert c.meta == c_alone.meta and s.meta["evaluation"] == "homogeneous"
    # Fig. 5's ResNets reuse Fig. 4's: the pilot that chose the nodes, then the draws
    simulations.clear()
    common = dict(model="resnet", activation="tanh", depth=8, width=8, draws=30)
    s = run_samples(inputs=60, draw_store=store, **common)
    c = run_corr(grid=60, draw_store=store, **common)
    assert s.meta["evaluation"] == c.meta["evaluation"] == "chebyshev"
    k = s.meta["nodes"]
    assert simulations == [("resnet", plan.PILOT_NODES, plan.PILOT_DRAWS), ("resnet", k, 30)]


# --- the same network on any grid; the automatic node count meets its target ----------
def _kept_draws(result):
    d = result.frame[result.frame["kind"] == "draw"]
    return d.pivot(index="id", columns="z", values="value")


@pytest.mark.parametrize("activation", ["tanh", "swish"])
def test_a_draw_is_the_same_network_on_any_grid(activation):
    """Same seed and draw ids, two --inputs grids (9 and 41 points on [-2, 2], both
    fewer than the pilot's nodes): the draws agree at the common inputs to rounding
    (1e-12), far inside the interpolation accuracy (the run's a posteriori estimate,
    <= 1e-6), because the Chebyshev nodes, the sampler and the streams depend on the
    range and K alone."""
    common = dict(activation=activation, depth=20, width=10, draws=40, keep_draws=5, quantiles=[])
    coarse, fine = run_samples(inputs=9, **common), run_samples(inputs=41, **common)
    assert coarse.meta["evaluation"] == fine.meta["evaluation"] == "chebyshev"
    assert coarse.meta["nodes"] == fine.meta["nodes"]
    assert coarse.meta["interp_error_estimate"] <= plan.INTERP_TOL
    a, b = _kept_draws(coarse), _kept_draws(fine)
    z = np.linspace(-2.0, 2.0, 9)
    b = b[[c for c in b.columns if np.isclose(z, c, atol=1e-12).any()]]
    assert b.shape == a.shape == (5, 9)
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=0, atol=1e-12)
    # a third grid, K given (--nodes): the same draws again
    other = run_samples(inputs=17, nodes=coarse.meta["nodes"], **common)
    c = _kept_draws(other)[a.columns]
    np.testing.assert_allclose(a.to_numpy(), c.to_numpy(), rtol=0, atol=1e-12)


def test_explicit_weights_give_the_same_network_at_any_points():
    """The feedforward network with explicit weights (direct evaluation) at two point
    sets: the same values at the common points, bit for bit."""
    key = rng.stream_key(3, "test/any-points")
    from resdiff.sampling import feedforward as ff

    z1, z2 = np.linspace(-1, 1, 5), np.linspace(-1, 1, 9)
    args = (6, 8, 1.5, 0.1, 0, np.zeros((0, 0)), 1e100)
    y1 = ff.explicit_paths(key, 0, 4, ff.as_inputs(z1), *args)[0]
    y2 = ff.explicit_paths(key, 0, 4, ff.as_inputs(z2), *args)[0]
    assert np.array_equal(y1, y2[:, ::2])


def test_automatic_nodes_are_raised_until_the_estimate_meets_the_target(monkeypatch):
    """A pilot that asks for too few nodes (6): the run sees its own estimate above
    1e-6 and simulates again with more nodes until it is met, and says which it tried."""
    monkeypatch.setattr(plan, "choose_nodes", lambda *a, **k: (6, {"stub": True}))
    res = run_samples(activation="swish", depth=20, width=10, inputs=60, draws=40, quantiles=[])
    tried = res.meta["nodes_tried"]
    assert tried[0] == 6 and len(tried) > 1 and tried == sorted(tried)
    assert res.meta["nodes"] == tried[-1] < plan.MAX_NODES
    assert res.meta["interp_error_estimate"] <= plan.INTERP_TOL
    assert not any("interpolation error" in w for w in res.warnings)
    # the estimate at the count before the last did not meet the target
    before = run_samples(
        activation="swish", depth=20, width=10, inputs=60, draws=40, quantiles=[], nodes=tried[-2]
    )
    assert before.meta["interp_error_estimate"] > plan.INTERP_TOL
