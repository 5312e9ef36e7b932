"""`resdiff jacobian`: the input-output Jacobian of Section 4 (Theorem 4.1, Corollary 4.1).

Per draw, the statistics of ``J = J(x_T, x_0)`` (:data:`resdiff.sampling.jacobian.STATISTICS`)
for the finite ResNet (``resnet``, eq. 26), the Euler scheme of the matrix SDE
(``sde``, eq. 27), both driven by the same weights, and the theory's predictions
(``limit``, docs/jacobian.md); or, with ``model = feedforward``, for Fig. 1's network at
the edge of chaos (``network``).
"""

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .. import limits, rng
from ..activations import activation as get_activation
from ..constraints import JACOBIAN, checked
from ..errors import AllDiverged
from ..sampling.jacobian import NETWORK, RESNET, SDE, STATISTICS, memory_bytes, stepper
from ..sampling import driver
from . import Result
from .samples import resolve_sigmas

COLUMNS = ["method", "depth", "width", "draw", "statistic", "value"]
MODES = {"resnet": RESNET, "sde": SDE, "network": NETWORK}


def limit_rows(z, width, sigma_w2, sigma_b2, act):
    """``{statistic: value}`` of :func:`resdiff.limits.jacobian_limits` for
    ``x_0 = z 1_D`` (``m_0 = z``, ``q_0 = z^2``); NaN entries left out."""
    lim = limits.jacobian_limits(z, z * z, width, sigma_w2, sigma_b2, act.d1_at_0, act.d2_at_0)
    return {k: v for k, v in vars(lim).items() if not math.isnan(v)}


@checked(JACOBIAN)
def jacobian(
    *,
    model: str = "resnet",
    activation: str = "tanh",
    depth: int = 100,
    width: int = 100,
    draws: int = 100,
    z: float = 1.0,
    sigma_w2: float | None = None,
    sigma_b2: float | None = None,
    methods: Sequence[str] | None = None,
    seed: int = 0,
) -> Result:
    """Statistics of the input-output Jacobian ``J = J(x_T, x_0)`` per draw (Section 4):
    ``logdet = log|det J|``, ``moment1 = tr(J J^T)/D``, ``moment2 = tr((J J^T)^2)/D``,
    ``smax``, ``smin`` and ``inverse_error = ||J G - I||_F / sqrt(D)``, G the inverse
    integrated by eq. (28) on the same path (Corollary 4.1). Cost: ``2 L D^3``
    multiply-adds per draw and method.

    Parameters
    ----------
    model : {"resnet", "feedforward"}
        ``resnet``: the ResNet of eq. (26) and the Euler scheme of eq. (27);
        ``feedforward``: Fig. 1's network at the edge of chaos (method ``network``).
    activation : str
        The activation phi (:data:`resdiff.constraints.ACTIVATIONS`); relu only with
        ``methods=["resnet"]`` (no phi''(0)).
    depth, width : int
        Layers L (``dt = 1/L``) and width D.
    draws : int
        Independent networks per method.
    z : float
        The input ``x_0 = z 1_D`` (feedforward: the scalar input).
    sigma_w2, sigma_b2 : float or None
        Weight and bias variances. None: resnet 1 and 1; feedforward its edge of chaos.
    methods : list of str or None
        Subset of ``resnet`` (eq. 26), ``sde`` (eq. 27 on the same weights) and
        ``limit`` (docs/jacobian.md); None: all three (feedforward: ``network``).
    seed : int
        Seed of the weights (resnet and sde share them).

    Returns
    -------
    Result
        ``.frame``: ``method, depth, width, draw, statistic, value`` (limit rows: no
        draw); ``.meta``: ``divergent`` per method, the model and the variances used.

    Raises
    ------
    ParameterError
        A parameter out of range, or Jacobians too large for memory (a ``ValueError``
        naming the parameter).
    AllDiverged
        Every draw of a method diverged.

    Examples
    --------
    >>> import resdiff
    >>> r = resdiff.jacobian(depth=4, width=4, draws=3)
    >>> sorted(r.frame["method"].unique())
    ['limit', 'resnet', 'sde']
    >>> r.frame.query("method == 'limit' and statistic == 'logdet_mean'")["value"].item()
    -0.5
    """
    act = get_activation(activation)
    z = float(z)
    if methods is None:
        methods = ["network"] if model == "feedforward" else ["resnet", "sde", "limit"]
    meta = {"divergent": {}, "model": model}
    sigma_w2, sigma_b2 = resolve_sigmas(model, activation, sigma_w2, sigma_b2)
    meta.update(sigma_w2=sigma_w2, sigma_b2=sigma_b2)
    x0 = np.full(width, z)
    frames, warnings = [], []
    key = rng.stream_key(seed, f"jacobian/{model}")  # resnet and sde share the weights
    for method in methods:
        if method == "limit":
            rows = limit_rows(z, width, sigma_w2, sigma_b2, act)
            frames.append(
                pd.DataFrame(
                    {
                        "method": "limit",
                        "depth": depth,
                        "width": width,
                        "draw": pd.array([pd.NA] * len(rows), "Int64"),
                        "statistic": list(rows),
                        "value": list(rows.values()),
                    }
                )
            )
            continue
        kernel = stepper(
            key, x0, z, depth, sigma_w2, sigma_b2, act.code, act.d1_at_0, act.d2_at_0, MODES[method]
        )
        chunk, layers = driver.plan_chunks(
            draws, depth, 2 * width**3, memory_bytes(width, 1, 1) // 2
        )
        out = driver.run_chunked(kernel, draws, f"jacobian {method:7s}", chunk, depth, layers)
        bad = int(np.isnan(out[:, 0]).sum())
        meta["divergent"][method] = bad
        if bad:
            warnings.append(
                f"{method}: {bad} of {draws} draws diverged; their statistics are NaN in the CSV"
            )
        if bad == draws:
            raise AllDiverged(
                f"every {method} draw diverged ({activation}, sigma_w2="
                f"{sigma_w2}, sigma_b2={sigma_b2})"
            )
        n_stat = len(STATISTICS) if method != "network" else len(STATISTICS) - 1
        frames.append(
            pd.DataFrame(
                {
                    "method": method,
                    "depth": depth,
                    "width": width,
                    "draw": pd.array(np.repeat(np.arange(draws), n_stat), "Int64"),
                    "statistic": np.tile(STATISTICS[:n_stat], draws),
                    "value": out[:, :n_stat].reshape(-1),
                }
            )
        )
    frame = pd.concat(frames, ignore_index=True)[COLUMNS]
    return Result(frame, meta, warnings)
