"""`resdiff explosion`: when ``q_t = |x_t|^2 / D`` first exceeds a threshold Q, for the
ResNet (eq. 26), the Euler scheme of its SDE (eq. 29), and the deterministic time ``t*``
of the ODEs of Proposition 5.1 (``limit``), which the doubly infinite limit explodes at
when ``phi''(0) != 0`` (Remark 3.3)."""
import math

import numpy as np
import pandas as pd

from .. import limits, rng
from ..activations import activation as get_activation
from ..constraints import EXPLOSION, checked
from ..explosion import RESNET, SDE, passage_times
from ..sampling import driver
from . import Result

COLUMNS = ["method", "depth", "width", "draw", "explosion_time"]


def limit_time(z, sigma_w2, sigma_b2, act, threshold):
    """``t*`` for ``x_0 = z 1_D`` (``m_0 = z``, ``q_0 = z^2``)."""
    return limits.threshold_time(z, z * z, sigma_w2, sigma_b2, act.d1_at_0, act.d2_at_0,
                                 threshold)


@checked(EXPLOSION)
def explosion(*, activation, z, sigma_w2, sigma_b2, horizon, threshold, depth, width, draws,
              methods, seed):
    act = get_activation(activation)
    z = float(z)
    t_star = limit_time(z, sigma_w2, sigma_b2, act, threshold)
    meta = {"t_star": t_star if math.isfinite(t_star) else None, "exploded": {}}
    frames, warnings = [], []
    for method in methods:
        if method == "limit":
            value = t_star if t_star <= horizon else math.nan
            frames.append(pd.DataFrame({"method": ["limit"], "depth": [depth],
                                        "width": [width], "draw": pd.array([pd.NA], "Int64"),
                                        "explosion_time": [value]}))
            if not math.isfinite(value):
                warnings.append(f"limit: q_t of Proposition 5.1 stays below {threshold:g} "
                                f"up to T = {horizon:g}")
            continue
        mode = RESNET if method == "resnet" else SDE
        key = rng.stream_key(seed, f"explosion/{method}")

        def kernel(start, count, key=key, mode=mode):
            return passage_times(key, start, count, z, width, depth, horizon, threshold,
                                 sigma_w2, sigma_b2, act.code, act.d1_at_0, act.d2_at_0,
                                 mode)

        chunk, _ = driver.plan_chunks(draws, depth, 4 * width, 16 * width)
        out = driver.run_chunked(kernel, draws, f"explosion {method:6s}", chunk)
        meta["exploded"][method] = int(np.isfinite(out).sum())
        frames.append(pd.DataFrame({"method": method, "depth": depth, "width": width,
                                    "draw": pd.array(np.arange(draws), "Int64"),
                                    "explosion_time": out}))
    return Result(pd.concat(frames, ignore_index=True)[COLUMNS], meta, warnings)
