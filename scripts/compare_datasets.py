"""Two versions of the same datasets, compared within Monte Carlo error.

    python scripts/compare_datasets.py OLD_DIR NEW_DIR [NAME ...]

For datasets recomputed under a new numerical version with new random numbers (two
independent samples of the same law), each CSV's draws are grouped by every column
that is not a draw index or a value (``z``, ``method``, ``size``...), and each group's
mean is compared by a two-sample z-score, ``(mean_new - mean_old) / sqrt(var_old/n_old
+ var_new/n_new)``. Under the same law the scores are about standard normal (correlated
across the points of one draw), so the fraction beyond 1.96 is about 5% and the largest
of G groups is about ``sqrt(2 log G)``. NaNs (no explosion by the horizon, a diverged
draw) are counted, not dropped silently: their fractions are compared the same way.
The quantile rows of Figs. 1, 4 and 8 (from all the draws, not the few drawn paths) are
compared by a normal approximation of a quantile's standard error
(:func:`quantile_z_scores`). CSVs without draws (Fig. 5's correlations) are reported by
their largest difference.
"""

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

DRAW_COLUMNS = ("draw", "id")
VALUE_COLUMNS = ("value", "explosion_time", "train_loss", "test_accuracy", "rho")


def _draw_rows(frame):
    if "kind" in frame and (frame["kind"] == "draw").any():
        return frame[frame["kind"] == "draw"].drop(columns="kind")
    return frame


def z_scores(old, new):
    """``(value column, z-scores, NaN-fraction z-scores)`` of the groups of two frames."""
    old, new = _draw_rows(old), _draw_rows(new)
    draw = next((c for c in DRAW_COLUMNS if c in old), None)
    values = [c for c in VALUE_COLUMNS if c in old]
    if draw is None or not values:
        return None
    keys = [c for c in old.columns if c not in values and c != draw]
    out = []
    for value in values:
        stats = []
        for frame in (old, new):
            v = frame[value].astype(float)
            g = v.groupby([frame[k] for k in keys]) if keys else v.groupby(lambda _: 0)
            stats.append(
                pd.DataFrame(
                    {
                        "mean": g.mean(),
                        "var": g.var(),
                        "n": g.count(),
                        "nan": g.apply(lambda s: s.isna().mean()),
                        "rows": g.size(),
                    }
                )
            )
        a, b = stats[0].align(stats[1], join="inner")
        se = np.sqrt(a["var"] / a["n"] + b["var"] / b["n"])
        z = ((b["mean"] - a["mean"]) / se).replace([np.inf, -np.inf], np.nan).dropna()
        p = (a["nan"] * a["rows"] + b["nan"] * b["rows"]) / (a["rows"] + b["rows"])
        se_nan = np.sqrt(p * (1 - p) * (1 / a["rows"] + 1 / b["rows"]))
        z_nan = ((b["nan"] - a["nan"]) / se_nan).replace([np.inf, -np.inf], np.nan).dropna()
        out.append((value, z.to_numpy(), z_nan.to_numpy()))
    return out


def quantile_z_scores(old, new, draws):
    """z-scores of the quantile rows (``kind == "quantile"``, ``id`` the level) of two
    frames of ``draws`` draws each: the difference over ``sqrt(2)`` times the standard
    error of an empirical ``p``-quantile of a normal law whose spread is read off the
    5% and 95% quantiles at the same point, ``sqrt(p (1 - p) / n) sigma / phi(z_p)``.
    (The conditional estimator's error is smaller, so these scores are conservative.)"""
    from scipy import stats

    if "kind" not in old or not (old["kind"] == "quantile").any():
        return None
    keys = [c for c in old.columns if c not in ("kind", "id", "value")]
    a, b = (f[f["kind"] == "quantile"].set_index(keys + ["id"])["value"] for f in (old, new))
    a, b = a.align(b, join="inner")
    levels = a.index.get_level_values("id").to_numpy(float)
    spread = {}
    for frame in (a, b):
        wide = frame.unstack("id")
        spread[len(spread)] = (wide[0.95] - wide[0.05]) / (2 * stats.norm.ppf(0.95))
    sigma = ((spread[0] + spread[1]) / 2).reindex(a.index.droplevel("id")).to_numpy()
    zp = stats.norm.ppf(levels)
    se = np.sqrt(levels * (1 - levels) / draws) * sigma / stats.norm.pdf(zp)
    z = (b.to_numpy() - a.to_numpy()) / (np.sqrt(2) * se)
    return z[np.isfinite(z)]


def _draws(directory, name):
    import json

    side = json.loads((directory / f"{name}.csv.json").read_text())
    return int(side["params"]["draws"])


def report(old_dir, new_dir, names=None):
    """Markdown lines: one row per dataset and value column."""
    old_dir, new_dir = Path(old_dir), Path(new_dir)
    names = names or sorted(p.name[:-4] for p in new_dir.glob("*.csv"))
    lines = [
        "| dataset | value | groups | largest abs(z) | sqrt(2 log G) | abs(z) > 1.96 | "
        "NaN groups, largest abs(z) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in names:
        old, new = (pd.read_csv(d / f"{name}.csv") for d in (old_dir, new_dir))
        scores = z_scores(old, new)
        quantiles = quantile_z_scores(old, new, _draws(new_dir, name))
        if quantiles is not None and quantiles.size:
            scores = [("quantiles", quantiles, np.array([]))] + (scores or [])
        if scores is None:
            value = next(c for c in VALUE_COLUMNS if c in old)
            diff = np.nanmax(np.abs(new[value].to_numpy() - old[value].to_numpy()))
            lines.append(f"| {name} | {value} | no draws | largest difference {diff:.3g} | | | |")
            continue
        for value, z, z_nan in scores:
            if not z.size:
                continue
            nan_text = f"{z_nan.size}, {np.abs(z_nan).max():.2f}" if z_nan.size else "none"
            lines.append(
                f"| {name} | {value} | {z.size} | {np.abs(z).max():.2f} | "
                f"{math.sqrt(2 * math.log(max(z.size, 2))):.2f} | "
                f"{(np.abs(z) > 1.96).mean():.1%} | {nan_text} |"
            )
    return lines


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__.strip().splitlines()[2].strip())
    print("\n".join(report(sys.argv[1], sys.argv[2], sys.argv[3:])))
