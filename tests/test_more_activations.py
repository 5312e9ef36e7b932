"""gelu, erf, sin and identity (beyond the paper) through the kernels: the Gram sampler against
explicit weights, and kde's three methods (ResNet, Euler scheme of the SDE, eq. 34)
against each other.

Tolerances as in tests/test_resnet_sampling.py: KS at alpha = 1e-4, |z| < 4.5 on
means and covariances with Gaussian standard errors (tests/conftest.py).
"""

import numpy as np
import pytest
from scipy import stats

from resdiff import rng
from resdiff.activations import activation
from resdiff.experiments.kde import analytic_draws, kde
from resdiff.sampling.resnet import RESNET, explicit_outputs, gram_outputs, resnet_inputs
from tests.conftest import Z_CRIT, max_abs_z

NEW = ["gelu", "erf", "sin", "identity"]
ALPHA = 1e-4


@pytest.mark.parametrize("name", NEW)
def test_gram_sampler_matches_explicit_weights(name):
    act = activation(name)
    z = np.array([0.0, 1.0, 2.0])
    depth, width, draws = 12, 6, 6000
    x0 = resnet_inputs(z, width)
    y_g = gram_outputs(
        rng.stream_key(0, "test/gram"),
        0,
        draws,
        x0,
        depth,
        1.0,
        1.0,
        act.code,
        act.d1_at_0,
        act.d2_at_0,
        RESNET,
        0,
    )
    y_e = explicit_outputs(
        rng.stream_key(0, "test/explicit"), 0, draws, x0, depth, 1.0, 1.0, act.code, 0
    )
    for col in range(3):
        assert stats.ks_2samp(y_g[:, col], y_e[:, col]).pvalue > ALPHA
    assert stats.ks_2samp(y_g[:, 2] - y_g[:, 1], y_e[:, 2] - y_e[:, 1]).pvalue > ALPHA


@pytest.mark.parametrize("gram_name,explicit_name", [("sin", "identity"), ("gelu", "swish")])
def test_gram_against_explicit_detects_another_activation(gram_name, explicit_name):
    """Power of the check above: sin's Gram draws against the identity's explicit ones
    (sin(h) = h - h^3/6 + ...), gelu's against swish's (x Phi(x) against x sigma(x))."""
    x0 = resnet_inputs(np.array([2.0]), 6)
    a, b = activation(gram_name), activation(explicit_name)
    y_g = gram_outputs(
        rng.stream_key(0, "test/gram"),
        0,
        6000,
        x0,
        12,
        1.0,
        1.0,
        a.code,
        a.d1_at_0,
        a.d2_at_0,
        RESNET,
        0,
    )
    y_e = explicit_outputs(rng.stream_key(0, "test/explicit"), 0, 6000, x0, 12, 1.0, 1.0, b.code, 0)
    assert stats.ks_2samp(y_g[:, 0], y_e[:, 0]).pvalue < ALPHA


KDE = dict(
    depth=500,
    width=20,
    draws=2000,
    z=[0.0, 1.0],
    sigma_w2=1.0,
    sigma_b2=1.0,
    methods=["resnet", "sde", "analytic"],
    seed=5,
)


def _wide(frame, method):
    sub = frame[frame["method"] == method]
    return sub.pivot(index="draw", columns="z", values="value").to_numpy()


def two_sample_z(a, b):
    """Largest |z| of the differences of the means and covariances of two independent
    samples (draws x N), with Gaussian standard errors from both."""
    na, nb = len(a), len(b)
    ca, cb = np.cov(a.T, ddof=1), np.cov(b.T, ddof=1)
    z_mean = (a.mean(0) - b.mean(0)) / np.sqrt(np.diag(ca) / na + np.diag(cb) / nb)
    se2 = lambda c, n: (np.outer(np.diag(c), np.diag(c)) + c**2) / n  # noqa: E731
    z_cov = (ca - cb) / np.sqrt(se2(ca, na) + se2(cb, nb))
    return float(np.max(np.abs(np.concatenate([z_mean, z_cov.ravel()]))))


@pytest.mark.parametrize("name", NEW)
def test_kde_methods_agree(name):
    """At D = 20, L = 500 the ResNet's and the SDE's draws of x_{T,1} agree (two-sample,
    4000 draws in all). With phi''(0) = 0 the mean and covariance of both are eq. (34)'s
    at every D, up to O(1/L) (about 3% of the variance at L = 500 for tanh, against a
    standard error of 3%); gelu's (phi''(0) != 0) differ from the D -> infinity limit
    by O(1/D), so only the analytic draws are checked against eq. (34) there."""
    res = kde(activation=name, **KDE)
    mean = np.array(res.meta["analytic"]["mean"])
    cov = np.array(res.meta["analytic"]["cov"])
    assert res.meta["divergent"] == {"resnet": 0, "sde": 0, "analytic": 0}
    resnet, sde = _wide(res.frame, "resnet"), _wide(res.frame, "sde")
    assert two_sample_z(resnet, sde) < Z_CRIT
    assert max_abs_z(_wide(res.frame, "analytic"), mean, cov) < Z_CRIT
    if activation(name).d2_at_0 == 0.0:
        assert max_abs_z(resnet, mean, cov) < Z_CRIT
        assert max_abs_z(sde, mean, cov) < Z_CRIT


def test_kde_agreement_rejects_a_wrong_limit():
    """Power of the checks above: the ResNet's erf draws against eq. (34) computed with
    tanh's phi'(0) = 1 instead of 2 / sqrt(pi), and against the SDE's draws of sin."""
    res = kde(activation="erf", **{**KDE, "methods": ["resnet"]})
    x0 = resnet_inputs(np.array(KDE["z"]), KDE["width"])
    _, mean, cov, _ = analytic_draws(x0, 2, 1.0, 1.0, activation("tanh"), 0, "test")
    assert max_abs_z(_wide(res.frame, "resnet"), mean, cov) > 2 * Z_CRIT
    other = kde(activation="sin", **{**KDE, "methods": ["sde"]})
    # the check above rejects at Z_CRIT; sin's and erf's laws are z = 7-10 apart at
    # 2000 + 2000 draws (7.4 under rng 3, 10.2 under rng 2), so no 2x margin here
    assert two_sample_z(_wide(res.frame, "resnet"), _wide(other.frame, "sde")) > Z_CRIT
