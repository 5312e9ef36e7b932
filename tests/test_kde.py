"""`resdiff kde` (Figure 2): the experiment and its CLI."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from resdiff.errors import AllDiverged
from resdiff.experiments.kde import kde
from tests.conftest import Z_CRIT, max_abs_z

E = math.e
PARAMS = dict(
    depth=30,
    width=30,
    draws=3000,
    z=[0.0, 1.0],
    sigma_w2=1.0,
    sigma_b2=1.0,
    activation="tanh",
    methods=["resnet", "sde", "analytic"],
    seed=3,
)


def wide(frame, method):
    sub = frame[frame["method"] == method]
    return sub.pivot(index="draw", columns="z", values="value").to_numpy()


@pytest.fixture(scope="module")
def result():
    return kde(**PARAMS)


def test_tidy_columns_and_sizes(result):
    df = result.frame
    assert list(df.columns) == ["method", "draw", "z", "value"]
    assert len(df) == 3 * PARAMS["draws"] * 2
    assert set(df["method"]) == {"resnet", "sde", "analytic"}
    assert result.meta["divergent"] == {"resnet": 0, "sde": 0, "analytic": 0}


def test_analytic_draws_follow_eq_34(result):
    y = wide(result.frame, "analytic")
    cov = [[E - 1, E - 1], [E - 1, 2 * (E - 1)]]
    assert max_abs_z(y, [0.0, 1.0], cov) < Z_CRIT
    np.testing.assert_allclose(result.meta["analytic"]["cov"], cov)


def test_sde_draws_follow_exact_euler_moments(result):
    y = wide(result.frame, "sde")
    g = (1 + 1 / 30) ** 30 - 1
    assert max_abs_z(y, [0.0, 1.0], [[g, g], [g, 2 * g]]) < Z_CRIT


def test_same_seed_same_numbers_other_seed_differs(result):
    again = kde(**{**PARAMS, "draws": 50})
    assert np.array_equal(wide(again.frame, "resnet"), wide(result.frame, "resnet")[:50])
    other = kde(**{**PARAMS, "draws": 50, "seed": 4})
    assert not np.array_equal(wide(other.frame, "resnet"), wide(again.frame, "resnet"))


def test_swish_explosion_is_reported():
    res = kde(**{**PARAMS, "draws": 200, "activation": "swish", "sigma_w2": 40.0, "sigma_b2": 40.0})
    assert res.meta["divergent"]["sde"] > 0
    assert res.meta["analytic"]["explosion_time"] < 1.0
    assert any("diverged" in w for w in res.warnings)
    assert any("explode" in w for w in res.warnings)


def test_all_diverged_is_an_error():
    with pytest.raises(AllDiverged):
        kde(
            **{
                **PARAMS,
                "draws": 50,
                "activation": "swish",
                "sigma_w2": 400.0,
                "sigma_b2": 400.0,
                "methods": ["sde", "analytic"],
            }
        )


def test_cli_writes_csv_and_sidecar(cli, tmp_path):
    out = tmp_path / "k.csv"
    res = cli("kde", "--depth", 10, "--width", 10, "--draws", 20, "--seed", 3, "--out", out)
    assert res.returncode == 0, res.stderr
    df = pd.read_csv(out)
    assert list(df.columns) == ["method", "draw", "z", "value"]
    side = json.loads(out.with_name("k.csv.json").read_text())
    assert side["params"]["depth"] == 10 and side["seed"] == 3
    for key in ("version", "git_commit", "threads", "wall_time_s", "peak_memory_mib"):
        assert key in side


def test_mark_divergent_flags_non_finite_and_huge_outputs():
    """One bound for every subcommand (kde, samples, correlation, ntk-convergence), so the
    count does not depend on where the sampler happens to overflow."""
    from resdiff.sampling import driver

    v = np.array([[1.0, 2.0], [np.nan, 0.0], [1e151, 0.0], [-np.inf, 1.0], [1e149, -1e149]])
    assert driver.mark_divergent(v).tolist() == [False, True, True, True, False]
    assert np.isnan(v[1:4]).all() and v[0].tolist() == [1.0, 2.0]  # rows NaN, in place
