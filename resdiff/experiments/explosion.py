"""`resdiff explosion`: when ``q_t = |x_t|^2 / D`` first exceeds a threshold Q, for the
ResNet (eq. 26), the Euler scheme of its SDE (eq. 29), and the deterministic time ``t*``
of the ODEs of Proposition 5.1 (``limit``), which the doubly infinite limit explodes at
when ``phi''(0) != 0`` (Remark 3.3)."""

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .. import limits, rng
from ..activations import activation as get_activation
from ..constraints import EXPLOSION, checked
from ..sampling.explosion import RESNET, SDE, passage_times
from ..sampling import driver
from . import Result

COLUMNS = ["method", "depth", "width", "draw", "explosion_time"]


def limit_time(z, sigma_w2, sigma_b2, act, threshold):
    """``t*`` for ``x_0 = z 1_D`` (``m_0 = z``, ``q_0 = z^2``)."""
    return limits.threshold_time(z, z * z, sigma_w2, sigma_b2, act.d1_at_0, act.d2_at_0, threshold)


@checked(EXPLOSION)
def explosion(
    *,
    activation: str = "swish",
    z: float = 1.0,
    sigma_w2: float = 1.0,
    sigma_b2: float = 1.0,
    horizon: float = 10.0,
    threshold: float = 100.0,
    depth: int = 1000,
    width: int = 500,
    draws: int = 1000,
    methods: Sequence[str] = ("resnet", "sde", "limit"),
    seed: int = 0,
) -> Result:
    """Per draw, the first time t at which ``q_t = |x_t|^2 / D`` exceeds ``threshold``,
    for the ResNet (eq. 26) and the Euler scheme of its SDE (eq. 29), and the
    deterministic time ``t*`` of the ODEs of Proposition 5.1 (``limit``), at which the
    doubly infinite limit explodes when ``phi''(0) != 0`` (Remark 3.3).

    Parameters
    ----------
    activation : str
        The activation phi (:data:`resdiff.constraints.ACTIVATIONS`), any but relu (no
        phi''(0)).
    z : float
        The input ``x_0 = z 1_D``.
    sigma_w2, sigma_b2 : float
        Weight and bias variances (eq. 16).
    horizon : float
        T: ``dt = T / L``; a draw that does not pass by T has an empty (NaN) time.
    threshold : float
        Q, above ``q_0 = z^2``.
    depth, width : int
        Layers L over ``[0, T]`` and width D.
    draws : int
        Draws per method.
    methods : sequence of str
        Subset of ``resnet``, ``sde`` and ``limit``.
    seed : int
        Seed of the weights.

    Returns
    -------
    Result
        ``.frame``: ``method, depth, width, draw, explosion_time`` (limit: one row, no
        draw); ``.meta``: ``t_star`` and the number of draws that passed, per method.

    Raises
    ------
    ParameterError
        A parameter out of range (a ``ValueError`` naming the parameter).

    Examples
    --------
    >>> import resdiff
    >>> r = resdiff.explosion(depth=40, width=20, draws=10, horizon=4.0)
    >>> print(f"t* = {r.meta['t_star']:.4f}")
    t* = 2.3747
    >>> len(r.frame)  # 10 draws of resnet and of sde, one limit row
    21
    """
    act = get_activation(activation)
    z = float(z)
    t_star = limit_time(z, sigma_w2, sigma_b2, act, threshold)
    meta = {"t_star": t_star if math.isfinite(t_star) else None, "exploded": {}}
    frames, warnings = [], []
    for method in methods:
        if method == "limit":
            value = t_star if t_star <= horizon else math.nan
            frames.append(
                pd.DataFrame(
                    {
                        "method": ["limit"],
                        "depth": [depth],
                        "width": [width],
                        "draw": pd.array([pd.NA], "Int64"),
                        "explosion_time": [value],
                    }
                )
            )
            if not math.isfinite(value):
                warnings.append(
                    f"limit: q_t of Proposition 5.1 stays below {threshold:g} up to T = {horizon:g}"
                )
            continue
        mode = RESNET if method == "resnet" else SDE
        key = rng.stream_key(seed, f"explosion/{method}")

        def kernel(start, count, key=key, mode=mode):
            return passage_times(
                key,
                start,
                count,
                z,
                width,
                depth,
                horizon,
                threshold,
                sigma_w2,
                sigma_b2,
                act.code,
                act.d1_at_0,
                act.d2_at_0,
                mode,
            )

        chunk, _ = driver.plan_chunks(draws, depth, 4 * width, 16 * width)
        out = driver.run_chunked(kernel, draws, f"explosion {method:6s}", chunk)
        meta["exploded"][method] = int(np.isfinite(out).sum())
        frames.append(
            pd.DataFrame(
                {
                    "method": method,
                    "depth": depth,
                    "width": width,
                    "draw": pd.array(np.arange(draws), "Int64"),
                    "explosion_time": out,
                }
            )
        )
    return Result(pd.concat(frames, ignore_index=True)[COLUMNS], meta, warnings)
