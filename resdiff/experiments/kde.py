"""Figure 2: draws of ``y = x_{T,1}`` at a few inputs from three methods.

(a) ``resnet``: the ResNet recursion (eq. 26), exact Gram sampler;
(b) ``sde``: the Euler discretisation (eq. 6) of the limiting SDE (eq. 29), same D and
    L steps; (c) ``analytic``: the Gaussian transition density (eq. 34).
"""
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
def kde(*, depth, width, draws, z, sigma_w2, sigma_b2, activation, methods, seed):
    act = get_activation(activation)
    z = np.asarray(z, dtype=float)
    n_in = len(z)
    x0 = resnet_inputs(z, width)
    values, meta, warnings = {}, {"divergent": {}}, []
    for method in methods:
        if method == "analytic":
            out, mean, cov, t_exp = analytic_draws(x0, draws, sigma_w2, sigma_b2, act, seed,
                                                   "kde/analytic")
            meta["analytic"] = {"mean": mean.tolist(), "cov": cov.tolist(),
                                "explosion_time": t_exp}
            if t_exp is not None:
                warnings.append(f"analytic: the ODEs of Proposition 5.1 explode at "
                                f"t = {t_exp:.4g} < T = 1; no analytic draws")
        else:
            mode = RESNET if method == "resnet" else SDE
            key = rng.stream_key(seed, f"kde/{method}")

            kernel = stepper("gram", key, x0, depth, sigma_w2, sigma_b2, act.code,
                             act.d1_at_0, act.d2_at_0, mode)
            chunk, layers = driver.plan_chunks(
                draws, depth, layer_cost("resnet", "gram", n_in, width), 8 * n_in * width)
            out = driver.run_chunked(kernel, draws, f"kde {method:8s}", chunk, depth, layers)
        bad = int(driver.mark_divergent(out).sum())
        meta["divergent"][method] = bad
        if bad and method != "analytic":
            warnings.append(f"{method}: {bad} of {draws} draws diverged (non-finite or "
                            f"beyond {driver.DIVERGENCE_BOUND:g}); they are NaN in the CSV "
                            "and left out of every statistic")
        values[method] = out
    if all(meta["divergent"][m] == draws for m in methods):
        raise AllDiverged(f"every draw of every method diverged ({activation}, "
                          f"sigma_w2={sigma_w2}, sigma_b2={sigma_b2})")
    frames = []
    for method, out in values.items():
        n_draws, n_in = out.shape
        frames.append(pd.DataFrame({
            "method": method,
            "draw": np.repeat(np.arange(n_draws), n_in),
            "z": np.tile(z, n_draws),
            "value": out.reshape(-1),
        }))
    return Result(pd.concat(frames, ignore_index=True), meta, warnings)
