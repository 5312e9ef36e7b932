"""`resdiff explosion` (Proposition 5.1 (ii), Remark 3.3): first passage of
q_t = |x_t|^2 / D above Q, for the ResNet, its SDE and the ODEs' t*.

Swish, z = 1, sigma_w^2 = sigma_b^2 = 1, Q = 100, T = 4: t* = 2.3747 (the ODEs blow up
at 2.7727). Tolerances from the Monte Carlo standard errors, |z| < 4.5.
"""

import math

import numpy as np
import pandas as pd
import pytest

from resdiff import limits, rng
from resdiff.activations import activation
from resdiff.experiments.explosion import explosion
from resdiff.sampling.explosion import RESNET, SDE, passage_times
from tests.conftest import Z_CRIT

SWISH = activation("swish")
Q, T, L = 100.0, 4.0, 1000


def times(width, mode=SDE, depth=L, draws=1000, d2=SWISH.d2_at_0, seed=0):
    return passage_times(
        rng.stream_key(seed, "test/explosion"),
        0,
        draws,
        1.0,
        width,
        depth,
        T,
        Q,
        1.0,
        1.0,
        SWISH.code,
        SWISH.d1_at_0,
        d2,
        mode,
    )


def test_threshold_time_matches_the_closed_form_when_phi2_is_zero():
    """phi''(0) = 0: q_t = q_0 + (q_0 + sb2/sw2)(e^{c^2 sw2 t} - 1) (Proposition 5.1)."""
    d1, sw2, sb2, q0 = 2 / math.sqrt(math.pi), 1.5, 0.5, 0.25
    exact = math.log((Q + sb2 / sw2) / (q0 + sb2 / sw2)) / (d1**2 * sw2)
    got = limits.threshold_time(0.5, q0, sw2, sb2, d1, 0.0, Q)
    assert got == pytest.approx(exact, rel=1e-10)


def test_threshold_time_tends_to_the_blow_up_time():
    start = limits.initial_moments(np.ones((1, 4)))
    blow_up = limits.explosion_time(start, 1.0, 1.0, SWISH.d1_at_0, SWISH.d2_at_0)
    near = limits.threshold_time(1.0, 1.0, 1.0, 1.0, SWISH.d1_at_0, SWISH.d2_at_0, 1e10)
    assert near < blow_up
    assert near == pytest.approx(blow_up, abs=2e-3)


def test_euler_limit_tends_to_t_star():
    t_star = limits.threshold_time(1.0, 1.0, 1.0, 1.0, SWISH.d1_at_0, SWISH.d2_at_0, Q)
    gaps = [
        limits.euler_threshold_time(1.0, 1.0, 1.0, 1.0, SWISH.d1_at_0, SWISH.d2_at_0, Q, depth, T)
        - t_star
        for depth in (1000, 4000, 16000)
    ]
    assert gaps[0] > gaps[1] > gaps[2] > 0
    assert gaps[2] < 4 * T / 16000  # O(dt)


@pytest.fixture(scope="module")
def sde_times():
    return {width: times(width) for width in (100, 1600)}


def test_sde_times_concentrate_at_the_deterministic_time(sde_times):
    """At D = 1600 the mean passage time is the D -> infinity limit of the same Euler
    scheme (t* at dt = T/L), within its standard error."""
    target = limits.euler_threshold_time(1.0, 1.0, 1.0, 1.0, SWISH.d1_at_0, SWISH.d2_at_0, Q, L, T)
    t = sde_times[1600]
    assert np.isfinite(t).all()
    assert abs(t.mean() - target) < Z_CRIT * t.std(ddof=1) / math.sqrt(len(t))


def test_sde_spread_shrinks_like_inverse_sqrt_width(sde_times):
    """sd(D = 100) / sd(D = 1600) = 4 = sqrt(16): log of the ratio within Z_CRIT standard
    errors (SE(log sd) = 1 / sqrt(2 (n - 1)) per sample). D^0 or D^-1 would give a ratio of
    1 or 16, both rejected by the same check."""
    a, b = sde_times[100], sde_times[1600]
    se = math.sqrt(1 / (2 * (len(a) - 1)) + 1 / (2 * (len(b) - 1)))
    log_ratio = math.log(a.std(ddof=1) / b.std(ddof=1))
    assert abs(log_ratio - math.log(4.0)) < Z_CRIT * se
    for wrong in (1.0, 16.0):
        assert abs(log_ratio - math.log(wrong)) > Z_CRIT * se


def test_a_wrong_drift_does_not_explode_at_t_star():
    """Negative control: the SDE without its phi''(0) drift (eq. 29) is far from t*."""
    target = limits.euler_threshold_time(1.0, 1.0, 1.0, 1.0, SWISH.d1_at_0, SWISH.d2_at_0, Q, L, T)
    t = times(400, d2=0.0, draws=200)
    finite = t[np.isfinite(t)]
    assert len(finite) < len(t) or abs(finite.mean() - target) > 10 * finite.std()


def test_resnet_times_approach_t_star_as_depth_grows():
    """Measured (docs/explosion.md): the ResNet's mean passage time at D = 400 is late by
    0.134, 0.041, 0.012 at L = 250, 1000, 4000 (about L^-0.9); here: the gap to the SDE's
    Euler limit at the same dt shrinks by more than 2x from L = 250 to 1000 (a z-test on
    gap(250) / 2 - gap(1000))."""
    gaps = []
    for depth in (250, 1000):
        t = times(400, mode=RESNET, depth=depth, draws=1000)
        target = limits.euler_threshold_time(
            1.0, 1.0, 1.0, 1.0, SWISH.d1_at_0, SWISH.d2_at_0, Q, depth, T
        )
        se = t.std(ddof=1) / math.sqrt(len(t))
        gaps.append((t.mean() - target, se))
    (g0, s0), (g1, s1) = gaps
    assert g0 > Z_CRIT * s0  # the finite ResNet is measurably late at L = 250
    assert g0 / 2 - g1 > Z_CRIT * math.hypot(s0 / 2, s1)


def test_same_numbers_for_any_thread_count():
    import numba

    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = times(50, draws=8)
        numba.set_num_threads(before)
        many = times(50, draws=8)
    finally:
        numba.set_num_threads(before)
    assert one.tobytes() == many.tobytes()


def test_experiment_rows_and_limit():
    res = explosion(
        activation="swish",
        z=1.0,
        sigma_w2=1.0,
        sigma_b2=1.0,
        horizon=T,
        threshold=Q,
        depth=200,
        width=50,
        draws=20,
        methods=["resnet", "sde", "limit"],
        seed=1,
    )
    df = res.frame
    assert list(df.columns) == ["method", "depth", "width", "draw", "explosion_time"]
    assert (df["method"] == "limit").sum() == 1
    lim = df.loc[df["method"] == "limit", "explosion_time"].iloc[0]
    assert lim == pytest.approx(2.3747378, abs=1e-6)
    assert pd.isna(df.loc[df["method"] == "limit", "draw"]).all()


@pytest.mark.parametrize(
    "args",
    [["--threshold", "0"], ["--horizon", "-1"], ["--activation", "relu"], ["--threshold", "0.5"]],
)
def test_bad_input_is_one_line_exit_2_no_file(cli, tmp_path, args):
    out = tmp_path / "e.csv"
    res = cli("explosion", *args, "--out", out)
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1
    assert not out.exists()
