"""Figure 2: draws of ``y = x_{T,1}`` at a few inputs from three methods.

(a) ``resnet``: the ResNet recursion (eq. 26), exact Gram sampler;
(b) ``sde``: the Euler discretisation (eq. 6) of the limiting SDE (eq. 29), same D and
    L steps; (c) ``analytic``: the Gaussian transition density (eq. 34).
"""

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .. import limits, rng
from ..constraints import KDE, checked
from ..errors import AllDiverged
from ..activations import activation as get_activation
from ..sampling import driver
from ..sampling.linalg import matmul_nt, pivoted_cholesky
from ..sampling.cost import layer_cost
from ..sampling.resnet import RESNET, SDE, resnet_inputs, stepper
from . import Result


def analytic_draws(x0, draws, sigma_w2, sigma_b2, act, seed, purpose):
    """Draws of coordinate 1 from eq. (34); ``(values (draws, N), mean, cov, explosion)``."""
    start = limits.initial_moments(x0)
    end = limits.moment_paths(start, sigma_w2, sigma_b2, act.d1_at_0, act.d2_at_0)
    mean, cov = limits.transition_gaussian(x0[:, 0], start, end)
    n = x0.shape[0]
    if end.exploded_at is not None:
        return np.full((draws, n), np.nan), mean, cov, end.exploded_at
    factor = np.empty((n, n))
    k = pivoted_cholesky(np.ascontiguousarray(cov), factor, 1e-13)
    eps = rng.normals(seed, purpose, 0, draws * k).reshape(draws, k)
    return mean + matmul_nt(eps, factor[:, :k]), mean, cov, None


@checked(KDE)
def kde(
    *,
    depth: int = 500,
    width: int = 500,
    draws: int = 10000,
    z: Sequence[float] = (0.0, 1.0),
    sigma_w2: float = 1.0,
    sigma_b2: float = 1.0,
    activation: str = "tanh",
    methods: Sequence[str] = ("resnet", "sde", "analytic"),
    seed: int = 0,
) -> Result:
    """Draws of the output ``y = x_{T,1}`` of the ``resnet`` model at inputs ``z`` from
    the ResNet, the Euler scheme of its limiting SDE and the limit's Gaussian
    transition density (Figure 2).

    The defaults are the paper's Figure 2: L = D = 500, 10,000 draws per method, tanh,
    ``sigma_w^2 = sigma_b^2 = 1``, z = 0 and 1.

    Parameters
    ----------
    depth : int
        Residual layers L (time step 1 / L).
    width : int
        Width D; the input is ``x_0 = z 1_D``.
    draws : int
        Independent draws per method (at least 2).
    z : sequence of float
        The inputs; every draw is one network evaluated at all of them.
    sigma_w2, sigma_b2 : float
        Weight and bias variances ``sigma_w^2``, ``sigma_b^2`` (eq. 16).
    activation : {"tanh", "swish", "relu"}
        The activation phi.
    methods : sequence of {"resnet", "sde", "analytic"}
        ``resnet``: the ResNet recursion (eq. 26); ``sde``: the Euler scheme of the
        limiting SDE (eq. 29) with the same L and D; ``analytic``: the transition
        density of the limit (eq. 34).
    seed : int
        Seed: the same seed gives the same numbers for any thread count.

    Returns
    -------
    Result
        ``.frame``: one row per (method, draw, input) with columns ``method, draw, z,
        value``; a divergent draw (swish) is NaN. ``.meta``: divergent-draw counts per
        method and, for ``analytic``, the limit's mean, covariance and explosion time.
        ``.warnings``: lines about divergent draws or an explosion before T = 1.

    Raises
    ------
    ParameterError
        A parameter out of range (a ``ValueError`` naming the parameter).
    AllDiverged
        Every draw of every method diverged.

    Examples
    --------
    >>> import resdiff
    >>> r = resdiff.kde(depth=10, width=10, draws=50)
    >>> sorted(r.frame["method"].unique())
    ['analytic', 'resnet', 'sde']
    >>> len(r.frame)  # 3 methods x 50 draws x 2 inputs
    300
    """
    act = get_activation(activation)
    z = np.asarray(z, dtype=float)
    n_in = len(z)
    x0 = resnet_inputs(z, width)
    values, meta, warnings = {}, {"divergent": {}}, []
    for method in methods:
        if method == "analytic":
            out, mean, cov, t_exp = analytic_draws(
                x0, draws, sigma_w2, sigma_b2, act, seed, "kde/analytic"
            )
            meta["analytic"] = {"mean": mean.tolist(), "cov": cov.tolist(), "explosion_time": t_exp}
            if t_exp is not None:
                warnings.append(
                    f"analytic: the ODEs of Proposition 5.1 explode at "
                    f"t = {t_exp:.4g} < T = 1; no analytic draws"
                )
        else:
            mode = RESNET if method == "resnet" else SDE
            key = rng.stream_key(seed, f"kde/{method}")

            kernel = stepper(
                "gram", key, x0, depth, sigma_w2, sigma_b2, act.code, act.d1_at_0, act.d2_at_0, mode
            )
            chunk, layers = driver.plan_chunks(
                draws, depth, layer_cost("resnet", "gram", n_in, width), 8 * n_in * width
            )
            out = driver.run_chunked(kernel, draws, f"kde {method:8s}", chunk, depth, layers)
        bad = int(driver.mark_divergent(out).sum())
        meta["divergent"][method] = bad
        if bad and method != "analytic":
            warnings.append(
                f"{method}: {bad} of {draws} draws diverged (non-finite or "
                f"beyond {driver.DIVERGENCE_BOUND:g}); they are NaN in the CSV "
                "and left out of every statistic"
            )
        values[method] = out
    if all(meta["divergent"][m] == draws for m in methods):
        raise AllDiverged(
            f"every draw of every method diverged ({activation}, "
            f"sigma_w2={sigma_w2}, sigma_b2={sigma_b2})"
        )
    frames = []
    for method, out in values.items():
        n_draws, n_in = out.shape
        frames.append(
            pd.DataFrame(
                {
                    "method": method,
                    "draw": np.repeat(np.arange(n_draws), n_in),
                    "z": np.tile(z, n_draws),
                    "value": out.reshape(-1),
                }
            )
        )
    return Result(pd.concat(frames, ignore_index=True), meta, warnings)
