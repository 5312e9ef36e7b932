"""Figure 3: the finite NTK of the ``resnet`` model against its doubly infinite limit.

For each size ``L = D`` the NTK (eq. 30) between two inputs, split into ``K_W`` and
``K_b`` (Section 5.3), is computed exactly for ``draws`` independent networks
(:mod:`resdiff.ntk`); ``kind = limit`` rows hold ``K_W^inf`` and ``K_b^inf`` when the
paper gives them (phi''(0) = 0).
"""

import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .. import limits, rng
from ..constraints import NTK, checked
from ..errors import AllDiverged
from ..activations import activation as get_activation
from ..ntk import K_B, K_W, memory_bytes, stepper
from ..sampling import driver
from ..sampling.cost import RNG_COST
from ..sampling.resnet import resnet_inputs
from . import Result

COMPONENTS = (("W", K_W), ("b", K_B))


def analytic_limits(z, sigma_w2, sigma_b2, act, T=1.0):
    """``{"W": K_W^inf, "b": K_b^inf}`` (Section 5.3), or None when phi''(0) != 0.

    ``lambda_0 = z z'`` for ``x_0 = z 1_D``; at ``sigma_w2 = 0`` the limits are the
    formulas' continuous extension (``K_W^inf = 0``, ``K_b^inf = sigma_b^2 phi'(0)^2 T``).
    """
    if act.d2_at_0 != 0.0:
        return None
    lam0 = float(z[0]) * float(z[1])
    k_w, k_b = limits.ntk_limits(lam0, sigma_w2, sigma_b2, act.d1_at_0, T)
    return {"W": k_w, "b": k_b}


@checked(NTK)
def ntk_convergence(
    *,
    sizes: Sequence[int] = (10, 20, 50, 100, 200, 500),
    draws: int = 100,
    z: Sequence[float] = (1.0, 2.0),
    sigma_w2: float = 1.0,
    sigma_b2: float = 1.0,
    activation: str = "tanh",
    seed: int = 0,
) -> Result:
    """The finite NTK of the ``resnet`` model between two inputs, split into ``K_W``
    (weights) and ``K_b`` (biases), per size L = D, and its doubly infinite limit
    (Figure 3, Section 5.3).

    The defaults are the paper's Figure 3: L = D in {10, 20, 50, 100, 200, 500}, 100
    draws each, tanh, ``sigma_w^2 = sigma_b^2 = 1``, z = 1 and 2, whose limits are
    ``K_W^inf = 2e + 1`` and ``K_b^inf = e - 1``.

    Parameters
    ----------
    sizes : sequence of int
        The sizes L = D (depth = width); duplicates are dropped and the rest sorted.
    draws : int
        Independent networks per size (at least 2).
    z : sequence of two floats
        The two inputs the NTK (eq. 30) is between.
    sigma_w2, sigma_b2 : float
        Weight and bias variances (eq. 16).
    activation : {"tanh", "swish"}
        swish has ``phi''(0) != 0``: the paper gives no limit, and no limit rows are
        written.
    seed : int
        Seed: the same seed gives the same numbers for any thread count.

    Returns
    -------
    Result
        ``.frame``: columns ``size, draw, component`` (``W`` or ``b``), ``value``,
        ``kind`` (``empirical``; the ``limit`` rows, with size and draw empty, hold
        ``K_W^inf`` and ``K_b^inf``). ``.meta``: per size the mean, standard deviation,
        seconds and divergent draws; the limits.

    Raises
    ------
    ParameterError
        A parameter out of range (a ``ValueError`` naming the parameter).
    AllDiverged
        Every draw of every size diverged.

    Examples
    --------
    >>> import resdiff
    >>> r = resdiff.ntk_convergence(sizes=[5, 10], draws=4)
    >>> r.frame.query("kind == 'limit'")["value"].round(4).tolist()  # 2e + 1, e - 1
    [6.4366, 1.7183]
    """
    act = get_activation(activation)
    z = [float(v) for v in z]
    sizes = sorted({int(s) for s in sizes})
    meta = {
        "divergent": {},
        "seconds": {},
        "mean": {},
        "sd": {},
        "limit": None,
        "lambda0": z[0] * z[1],
    }
    warnings = []
    frames = []
    for size in sizes:
        x0 = resnet_inputs(z, size)
        key = rng.stream_key(seed, f"ntk-convergence/{size}")

        kernel = stepper(key, x0, size, sigma_w2, sigma_b2, act.code)
        t0 = time.time()
        # 2 L steps (forward, backward), each two inputs against one layer's weights, drawn
        # anew; chunked over steps too, so that a signal stops a run within a chunk
        chunk, steps = driver.plan_chunks(
            draws, 2 * size, (2 + RNG_COST) * size * size, memory_bytes(size, size, 1, 0)
        )
        out = driver.run_chunked(kernel, draws, f"ntk L=D={size:<4d}", chunk, 2 * size, steps)
        meta["seconds"][str(size)] = round(time.time() - t0, 3)
        bad = driver.mark_divergent(out, out[:, :2])
        meta["divergent"][str(size)] = int(bad.sum())
        if bad.any():
            warnings.append(
                f"L = D = {size}: {int(bad.sum())} of {draws} draws diverged "
                f"(non-finite or beyond {driver.DIVERGENCE_BOUND:g}); they are "
                "NaN in the CSV and left out of every statistic"
            )
        for name, col in COMPONENTS:
            good = out[~bad, col]
            meta["mean"].setdefault(name, {})[str(size)] = float(good.mean()) if good.size else None
            meta["sd"].setdefault(name, {})[str(size)] = (
                float(good.std(ddof=1)) if good.size > 1 else None
            )
            frames.append(
                pd.DataFrame(
                    {
                        "size": size,
                        "draw": np.arange(draws),
                        "component": name,
                        "value": out[:, col],
                        "kind": "empirical",
                    }
                )
            )
    if all(meta["divergent"][str(s)] == draws for s in sizes):
        raise AllDiverged(
            f"every draw of every size diverged ({activation}, "
            f"sigma_w2={sigma_w2}, sigma_b2={sigma_b2})"
        )
    lim = analytic_limits(z, sigma_w2, sigma_b2, act)
    if lim is None:
        warnings.append(
            f"{activation} has phi''(0) = {act.d2_at_0:g} != 0: the paper gives "
            "no NTK limit for this case (Section 5.3 assumes phi''(0) = 0); no "
            "limit rows written"
        )
    else:
        meta["limit"] = lim
        frames.append(
            pd.DataFrame(
                {
                    "size": [pd.NA] * 2,
                    "draw": [pd.NA] * 2,
                    "component": ["W", "b"],
                    "value": [lim["W"], lim["b"]],
                    "kind": "limit",
                }
            )
        )
    frame = pd.concat(frames, ignore_index=True)
    frame["size"] = frame["size"].astype("Int64")
    frame["draw"] = frame["draw"].astype("Int64")
    return Result(frame, meta, warnings)
