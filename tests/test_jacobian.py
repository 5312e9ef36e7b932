"""`resdiff jacobian` (Section 4): the kernels against a NumPy reference, the Monte Carlo
statistics of the SDE (27) against the limits derived in docs/jacobian.md, and the
finite ResNet and the feedforward network against them.

Tolerances: |z| < 4.5 with the standard errors of the draws (tests/conftest.py); each
check has a negative control that it rejects.
"""

import math

import numpy as np
import pytest
from scipy import stats

from resdiff import limits, rng
from resdiff.activations import activation, apply_numpy, derivative_numpy
from resdiff.experiments.jacobian import jacobian
from resdiff.sampling.jacobian import NETWORK, RESNET, SDE, jacobian_draws, stepper
from resdiff.rng import layer_noise
from resdiff.sampling import driver
from tests.conftest import Z_CRIT

TANH, GELU = activation("tanh"), activation("gelu")


def draws(act, width, depth, n, mode, d2=None, z=1.0, sw2=1.0, sb2=1.0, seed=0):
    return jacobian_draws(
        rng.stream_key(seed, "test/jacobian"),
        0,
        n,
        np.full(width, z),
        z,
        depth,
        sw2,
        sb2,
        act.code,
        act.d1_at_0,
        act.d2_at_0 if d2 is None else d2,
        mode,
    )


def reference(act, width, depth, mode, draw, z=1.0, sw2=1.3, sb2=0.4, seed=0):
    """The statistics of one draw by NumPy (LAPACK's SVD, explicit matrices)."""
    key = rng.stream_key(seed, "test/jacobian")
    dt = 1.0 / depth
    x, J, G = np.full(width, z), np.eye(width), np.eye(width)
    one, a = np.ones(width), sw2 / width
    for layer in range(depth):
        eW, eb = np.empty((width, width)), np.empty(width)
        layer_noise(key, draw, layer, eW, eb)
        dW = math.sqrt(a * dt) * eW
        h = dW @ x + math.sqrt(sb2 * dt) * eb
        c, k = act.d1_at_0, act.d2_at_0
        if mode == RESNET:
            J_next = (np.eye(width) + np.diag(derivative_numpy(act.code, h)) @ dW) @ J
        else:
            J_next = J + c * dW @ J + k * a * dt * np.outer(one, x @ J)
        G = G @ (
            np.eye(width) - c * dW - k * a * dt * np.outer(one, x) + c * c * a * dt * np.eye(width)
        )
        q = x @ x / width
        x = x + (
            apply_numpy(act.code, h) if mode == RESNET else c * h + 0.5 * k * dt * (sb2 + sw2 * q)
        )
        J = J_next
    s = np.linalg.svd(J, compute_uv=False)
    return np.array(
        [
            np.log(abs(np.linalg.det(J))),
            (s**2).mean(),
            (s**4).mean(),
            s.max(),
            s.min(),
            np.linalg.norm(J @ G - np.eye(width)) / math.sqrt(width),
        ]
    )


@pytest.mark.parametrize("mode", [RESNET, SDE])
@pytest.mark.parametrize("name", ["swish", "sin"])
def test_kernel_matches_numpy(name, mode):
    act = activation(name)
    got = jacobian_draws(
        rng.stream_key(0, "test/jacobian"),
        0,
        2,
        np.full(7, 1.0),
        1.0,
        5,
        1.3,
        0.4,
        act.code,
        act.d1_at_0,
        act.d2_at_0,
        mode,
    )
    np.testing.assert_allclose(got[1], reference(act, 7, 5, mode, 1), rtol=1e-12, atol=1e-13)


def test_feedforward_kernel_matches_numpy():
    key = rng.stream_key(0, "test/jacobian")
    width, depth, z, sw2, sb2 = 6, 4, 0.7, 1.76, 0.05
    got = jacobian_draws(
        key, 0, 1, np.zeros(width), z, depth, sw2, sb2, TANH.code, 1.0, 0.0, NETWORK
    )[0]
    w0, b = np.empty((width, 1)), np.empty(width)
    layer_noise(key, 0, 0, w0, b)
    h = math.sqrt(sw2) * w0[:, 0] * z + math.sqrt(sb2) * b
    J = np.eye(width)
    for layer in range(1, depth):
        eW = np.empty((width, width))
        layer_noise(key, 0, layer, eW, b)
        W = math.sqrt(sw2 / width) * eW
        J = W @ np.diag(derivative_numpy(TANH.code, h)) @ J
        h = W @ np.tanh(h) + math.sqrt(sb2) * b
    s = np.linalg.svd(J, compute_uv=False)
    want = [np.log(abs(np.linalg.det(J))), (s**2).mean(), (s**4).mean(), s.max(), s.min()]
    np.testing.assert_allclose(got[:5], want, rtol=1e-12)
    assert np.isnan(got[5])


def test_same_bytes_for_any_thread_count_and_layer_split():
    import numba

    act = GELU
    kernel = stepper(
        rng.stream_key(2, "t"),
        np.full(9, 0.5),
        0.5,
        12,
        1.0,
        1.0,
        act.code,
        act.d1_at_0,
        act.d2_at_0,
        SDE,
    )
    whole = kernel(0, 4, 0, 12, {})
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        split = driver.run_chunked(
            stepper(
                rng.stream_key(2, "t"),
                np.full(9, 0.5),
                0.5,
                12,
                1.0,
                1.0,
                act.code,
                act.d1_at_0,
                act.d2_at_0,
                SDE,
            ),
            4,
            "t",
            3,
            12,
            5,
        )
    finally:
        numba.set_num_threads(before)
    assert whole.tobytes() == split.tobytes()


KAPPA = 1.0  # phi'(0)^2 sigma_w^2 T for tanh, sigma_w^2 = 1


@pytest.fixture(scope="module")
def sde_tanh():
    return draws(TANH, 8, 200, 2000, SDE)


def _z(sample, target):
    return (sample.mean() - target) / (sample.std(ddof=1) / math.sqrt(len(sample)))


def test_sde_logdet_is_gaussian_with_mean_minus_kappa_half_and_variance_kappa(sde_tanh):
    lim = limits.jacobian_limits(1.0, 1.0, 8, 1.0, 1.0, 1.0, 0.0)
    logdet = sde_tanh[:, 0]
    assert (lim.logdet_mean, lim.logdet_var) == (-0.5 * KAPPA, KAPPA)
    assert abs(_z(logdet, lim.logdet_mean)) < Z_CRIT
    # SE of a Gaussian sample variance: var sqrt(2 / (n - 1))
    assert abs(logdet.var(ddof=1) - KAPPA) < Z_CRIT * KAPPA * math.sqrt(2 / (len(logdet) - 1))
    assert stats.kstest(logdet, "norm", args=(-0.5 * KAPPA, math.sqrt(KAPPA))).pvalue > 1e-4
    # negative control: without the Ito correction -kappa/2 the mean is rejected
    assert abs(_z(logdet, 0.0)) > 2 * Z_CRIT


def test_sde_moment1_is_the_exact_euler_mean(sde_tanh):
    """E tr(g g^T)/D = (1 + kappa/L)^L exactly for the Euler scheme (-> e^kappa)."""
    m1 = sde_tanh[:, 1]
    assert abs(_z(m1, (1 + KAPPA / 200) ** 200)) < Z_CRIT
    lim = limits.jacobian_limits(1.0, 1.0, 8, 1.0, 1.0, 1.0, 0.0)
    assert lim.moment1_mean == pytest.approx(math.e)
    # its variance from the moment ODE
    assert abs(m1.var(ddof=1) - lim.moment1_var) < Z_CRIT * m1.var(ddof=1) * math.sqrt(
        (stats.kurtosis(m1) + 2) / len(m1)
    )


def test_sde_moment2_follows_the_finite_width_moment_ode(sde_tanh):
    """E tr((g g^T)^2)/D at D = 8 from the moment ODE; the free multiplicative Brownian
    motion's e^{2 kappa}(1 + 2 kappa) (D -> infinity) is rejected at this width."""
    lim = limits.jacobian_limits(1.0, 1.0, 8, 1.0, 1.0, 1.0, 0.0)
    m2 = sde_tanh[:, 2]
    assert abs(_z(m2, lim.moment2_mean)) < Z_CRIT
    assert abs(_z(m2, lim.moment2_mean_infinite_width)) > Z_CRIT


def test_moment2_formula_at_width_one_and_by_integration():
    """D = 1: g = exp(c W - kappa t / 2) and E g^4 = e^{6 kappa}; any D: the closed form
    equals an RK4 solve of the 2 x 2 moment ODE (docs/jacobian.md)."""
    assert limits.jacobian_limits(0.0, 0.0, 1, 0.7, 1.0, 1.0, 0.0).moment2_mean == pytest.approx(
        math.exp(6 * 0.7)
    )
    for width in (2, 5, 40):
        k, D = 0.8, width
        M = k * np.array([[2 * (D + 1) / D, 2 / D], [4 / D, 2.0]])
        y, h = np.array([D, D * D], float), 1e-3
        for _ in range(1000):
            k1 = M @ y
            k2 = M @ (y + h / 2 * k1)
            k3 = M @ (y + h / 2 * k2)
            k4 = M @ (y + h * k3)
            y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        lim = limits.jacobian_limits(0.0, 0.0, D, 0.8, 1.0, 1.0, 0.0)
        assert y[0] / D == pytest.approx(lim.moment2_mean, rel=1e-10)
        assert y[1] / D**2 - lim.moment1_mean**2 == pytest.approx(lim.moment1_var, rel=1e-8)


def test_phi2_drift_enters_through_m_t():
    """gelu (phi''(0) = 0.80): E log det g_T = -kappa/2 + phi''(0) sigma_w^2 int m_t dt,
    m_t of Proposition 5.1; the same check rejects the limit without that term, and the
    SDE run without its drift (a wrong eq. 27)."""
    lim = limits.jacobian_limits(1.0, 1.0, 10, 1.0, 1.0, GELU.d1_at_0, GELU.d2_at_0)
    logdet = draws(GELU, 10, 200, 1000, SDE)[:, 0]
    assert abs(_z(logdet, lim.logdet_mean)) < Z_CRIT
    assert abs(_z(logdet, -0.5 * GELU.d1_at_0**2)) > 2 * Z_CRIT
    wrong = draws(GELU, 10, 200, 1000, SDE, d2=0.0)[:, 0]
    assert abs(_z(wrong, lim.logdet_mean)) > 2 * Z_CRIT


def test_resnet_tends_to_the_sde_limit_and_inverse_error_vanishes():
    """The finite ResNet at L = 400 has the SDE's log det law (tanh); ||J G - I|| falls
    like L^-1/2 (Corollary 4.1 on the Euler path): at least 1.6x from L = 100 to 400."""
    lim = limits.jacobian_limits(1.0, 1.0, 8, 1.0, 1.0, 1.0, 0.0)
    long = draws(TANH, 8, 400, 1000, RESNET)
    assert abs(_z(long[:, 0], lim.logdet_mean)) < Z_CRIT
    short = draws(TANH, 8, 100, 200, RESNET)
    err_long, err_short = long[:, 5], short[:, 5]
    se = math.hypot(
        err_long.std() / math.sqrt(len(err_long)), err_short.std() / math.sqrt(len(err_short)) / 1.6
    )
    assert err_short.mean() / 1.6 - err_long.mean() > Z_CRIT * se


def test_feedforward_log_det_spreads_with_depth_resnet_does_not():
    """Section 4's contrast: at the edge of chaos the feedforward network's log det
    variance grows with L (here 4x from L = 8 to 32), the ResNet's stays near kappa."""
    ff = [draws(TANH, 8, L, 300, NETWORK, sw2=1.76095, sb2=0.05)[:, 0].var() for L in (8, 32)]
    rn = [draws(TANH, 8, L, 300, RESNET)[:, 0].var() for L in (8, 32)]
    assert ff[1] > 2 * ff[0] and ff[0] > 20 * max(rn)
    assert max(rn) < 1.5 * KAPPA


def test_experiment_rows():
    res = jacobian(
        model="resnet",
        activation="tanh",
        depth=10,
        width=6,
        draws=5,
        z=1.0,
        sigma_w2=None,
        sigma_b2=None,
        methods=None,
        seed=0,
    )
    df = res.frame
    assert list(df.columns) == ["method", "depth", "width", "draw", "statistic", "value"]
    assert set(df["method"]) == {"resnet", "sde", "limit"}
    assert len(df[df["method"] == "resnet"]) == 5 * 6
    ff = jacobian(
        model="feedforward",
        activation="tanh",
        depth=5,
        width=6,
        draws=3,
        z=1.0,
        sigma_w2=None,
        sigma_b2=None,
        methods=None,
        seed=0,
    )
    assert set(ff.frame["method"]) == {"network"}
    assert ff.meta["sigma_w2"] == pytest.approx(1.76095, abs=1e-5)


@pytest.mark.parametrize(
    "args",
    [
        ["--activation", "relu"],
        ["-D", "200000", "--draws", "2"],
        ["--model", "feedforward", "--method", "sde"],
        ["--method", "network"],
    ],
)
def test_bad_input_is_one_line_exit_2_no_file(cli, tmp_path, args):
    out = tmp_path / "j.csv"
    res = cli("jacobian", *args, "--out", out)
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1
    assert not out.exists()
