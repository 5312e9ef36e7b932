"""Beyond the paper: the Jacobian of Section 4. Left: log|det J| at the largest L = D,
ResNet and SDE histograms against the Gaussian limit N(-kappa/2, kappa). Centre: mean
moment1 and moment2 (+/- 2 standard errors) against L = D, with their limits (finite-D
moment ODE, and the free multiplicative Brownian motion as D -> infinity). Right:
Var log|det J| against depth at a fixed width: the feedforward network at its edge of
chaos against the ResNet."""

import math

import matplotlib.ticker
import numpy as np

from .style import GREY, METHOD_COLOURS, VERMILLION, caption, new_figure

COLOURS = {**METHOD_COLOURS, "network": VERMILLION}


def _limit(df, size, statistic):
    row = df[(df["method"] == "limit") & (df["depth"] == size) & (df["statistic"] == statistic)]
    return float(row["value"].iloc[0]) if len(row) else math.nan


def plot(frames, sidecars, preset):
    sizes_df = frames["sizes"]
    fig, axes = new_figure(3, width=6.75, height=2.4)
    ax_det, ax_mom, ax_var = axes[0]
    sizes = sorted(int(s) for s in sizes_df["depth"].unique())
    big = sizes[-1]
    draws = sizes_df[(sizes_df["method"] != "limit") & np.isfinite(sizes_df["value"])]

    # left: log det densities at the largest size
    at_big = draws[(draws["depth"] == big) & (draws["statistic"] == "logdet")]
    values = [at_big.loc[at_big["method"] == m, "value"].to_numpy() for m in ("resnet", "sde")]
    bins = np.linspace(min(v.min() for v in values), max(v.max() for v in values), 30)
    for m, v in zip(("resnet", "sde"), values):
        ax_det.hist(
            v,
            bins=bins,
            density=True,
            histtype="step",
            color=COLOURS[m],
            linewidth=1.0,
            label=f"{m} ({len(v)})",
        )
    mean, var = _limit(sizes_df, big, "logdet_mean"), _limit(sizes_df, big, "logdet_var")
    grid = np.linspace(bins[0], bins[-1], 200)
    ax_det.plot(
        grid,
        np.exp(-((grid - mean) ** 2) / (2 * var)) / math.sqrt(2 * math.pi * var),
        color=GREY,
        linestyle="--",
        linewidth=1.2,
        label=f"N({mean:.3g}, {var:.3g})",
    )
    ax_det.set_xlabel(f"log|det J|, L = D = {big}")
    ax_det.set_ylabel("density")
    ax_det.legend(frameon=False, loc="upper left")

    # centre: moments against L = D
    from matplotlib.lines import Line2D

    x = np.array(sizes, dtype=float)
    for statistic, marker in (("moment1", "o"), ("moment2", "s")):
        for m in ("resnet", "sde"):
            sub = draws[(draws["method"] == m) & (draws["statistic"] == statistic)]
            g = sub.groupby("depth")["value"].agg(["mean", "std", "count"]).reindex(sizes)
            se = g["std"] / np.sqrt(g["count"])
            ax_mom.errorbar(
                x,
                g["mean"],
                yerr=2 * se,
                color=COLOURS[m],
                marker=marker,
                markersize=3,
                linewidth=0.9,
                capsize=2,
            )
        finite = [_limit(sizes_df, s, f"{statistic}_mean") for s in sizes]
        ax_mom.plot(
            x, finite, color=GREY, linestyle=":", marker=marker, markersize=2.5, linewidth=0.9
        )
        ax_mom.annotate(
            statistic,
            (x[0], finite[0]),
            textcoords="offset points",
            xytext=(2, 4),
            fontsize=6,
            color=GREY,
        )
    inf = _limit(sizes_df, big, "moment2_mean_infinite_width")
    if math.isfinite(inf):
        ax_mom.axhline(inf, color=GREY, linestyle="--", linewidth=1.0)
    ax_mom.legend(
        handles=[
            Line2D([], [], color=COLOURS["resnet"], label="resnet"),
            Line2D([], [], color=COLOURS["sde"], label="sde"),
            Line2D([], [], color=GREY, linestyle=":", label="limit at D"),
            Line2D([], [], color=GREY, linestyle="--", label=r"moment2, D $\to\infty$"),
        ],
        frameon=False,
        fontsize=6,
        loc="center right",
    )
    ax_mom.set_xscale("log")
    ax_mom.set_yscale("log")
    ax_mom.set_xticks(sizes)
    ax_mom.set_xticklabels([str(s) for s in sizes])
    ax_mom.minorticks_off()
    ax_mom.set_xlabel("L = D")
    ax_mom.set_ylabel("mean (+/- 2 se)")

    # right: Var log det against depth, feedforward vs ResNet at a fixed width
    width, depths = None, []
    for group, method in (("depth-feedforward", "network"), ("depth-resnet", "resnet")):
        df = frames[group]
        sub = df[(df["statistic"] == "logdet") & np.isfinite(df["value"])]
        g = sub.groupby("depth")["value"].agg(["var", "count"]).sort_index()
        se = g["var"] * np.sqrt(2.0 / (g["count"] - 1))
        ax_var.errorbar(
            g.index.to_numpy(float),
            g["var"],
            yerr=2 * se,
            color=COLOURS[method],
            marker="o",
            markersize=3,
            linewidth=1.0,
            capsize=2,
            label="feedforward (edge of chaos)" if method == "network" else "resnet",
        )
        width = int(df["width"].iloc[0])
        depths = sorted(set(depths) | {int(d) for d in g.index})
    kappa = _limit(sizes_df, big, "logdet_var")
    ax_var.axhline(kappa, color=GREY, linestyle="--", linewidth=1.0, label=r"$\kappa$ (SDE, any D)")
    ax_var.set_xscale("log")
    ax_var.set_yscale("log")
    ax_var.set_xticks(depths)
    ax_var.set_xticklabels([str(d) for d in depths])
    ax_var.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax_var.set_xlabel(f"depth L (D = {width})")
    ax_var.set_ylabel("Var log|det J|")
    ax_var.legend(frameon=False, loc="center right", fontsize=6)

    params = sidecars["sizes"]["params"]
    ff = sidecars["depth-feedforward"]
    ff_members = ff.get("members", {"": ff})
    ff_meta = next(iter(ff_members.values())).get("meta", {})
    bad = {}
    for side in [sidecars["sizes"], sidecars["depth-feedforward"], sidecars["depth-resnet"]]:
        for member in side.get("members", {"": side}).values():
            for m, n in member.get("meta", {}).get("divergent", {}).items():
                bad[m] = bad.get(m, 0) + n
    bad_text = ", ".join(f"{m}: {n}" for m, n in bad.items() if n)
    caption(
        fig,
        f"resdiff fig jacobian ({preset} preset): {params['activation']} ResNet "
        f"(eq. 26) and Euler scheme of eq. 27 on the same weights, x_0 = "
        f"{params['z']:g} 1_D, sigma_w^2 = sigma_b^2 = 1, draws per size as in "
        f"the legend; feedforward at its edge of chaos (sigma_w^2 = "
        f"{ff_meta.get('sigma_w2', float('nan')):.4g}, sigma_b^2 = "
        f"{ff_meta.get('sigma_b2', float('nan')):g}); limits: docs/jacobian.md; "
        f"seed {params['seed']}" + (f"; divergent draws excluded ({bad_text})" if bad_text else ""),
    )
    return fig
