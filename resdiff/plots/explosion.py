"""Beyond the paper: the explosion time of Proposition 5.1 (ii). Left: the first time
q_t = |x_t|^2 / D exceeds Q for the SDE's Euler scheme at several widths D (fixed L),
against the deterministic t* of the ODEs. Right: the finite ResNet's at several depths L
(fixed D), with the SDE's at the same L dashed."""

import math

import numpy as np

from .style import BLUE, GREEN, GREY, ORANGE, PURPLE, VERMILLION, caption, new_figure

SHADES = (BLUE, ORANGE, GREEN, VERMILLION, PURPLE)


def _t_star(sidecar):
    for member in sidecar.get("members", {"": sidecar}).values():
        t = member.get("meta", {}).get("t_star")
        if t is not None:
            return float(t)
    return math.nan


def plot(frames, sidecars, preset):
    widths_df, depths_df = frames["widths"], frames["depths"]
    t_star = _t_star(sidecars["widths"])
    fig, axes = new_figure(2, width=6.75, height=2.5)
    ax_w, ax_l = axes[0]
    sde = widths_df[(widths_df["method"] == "sde")]
    finite = sde["explosion_time"].dropna()
    res = depths_df[depths_df["method"] == "resnet"]["explosion_time"].dropna()
    lo = min(finite.min(), res.min(), t_star)
    hi = max(finite.max(), res.max(), t_star)
    bins = np.linspace(lo, hi, 60)
    notes = []
    for colour, (width, sub) in zip(SHADES, sde.groupby("width")):
        t = sub["explosion_time"].dropna()
        ax_w.hist(
            t,
            bins=bins,
            density=True,
            histtype="step",
            color=colour,
            linewidth=1.0,
            label=f"D = {width}: sd {t.std():.3g}",
        )
        if len(t) < len(sub):
            notes.append(f"sde D = {width}: {len(sub) - len(t)} draws without passage")
    ax_w.axvline(t_star, color=GREY, linestyle="--", linewidth=1.1, label=f"t* = {t_star:.4f}")
    depth = int(sde["depth"].iloc[0])
    ax_w.set_title(f"SDE (Euler, L = {depth})")
    ax_w.set_xlabel("explosion time")
    ax_w.set_ylabel("density")
    ax_w.legend(frameon=False, loc="upper right")
    for colour, (depth, sub) in zip(SHADES, depths_df.groupby("depth")):
        for method, style in (("resnet", "-"), ("sde", "--")):
            t = sub.loc[sub["method"] == method, "explosion_time"].dropna()
            ax_l.hist(
                t,
                bins=bins,
                density=True,
                histtype="step",
                color=colour,
                linestyle=style,
                linewidth=1.0 if method == "resnet" else 0.7,
                label=f"L = {depth}: mean {t.mean():.3f}" if method == "resnet" else None,
            )
            missing = int((sub["method"] == method).sum() - len(t))
            if missing:
                notes.append(f"{method} L = {depth}: {missing} draws without passage")
    ax_l.axvline(t_star, color=GREY, linestyle="--", linewidth=1.1, label="t*")
    width = int(depths_df["width"].iloc[0])
    ax_l.set_title(f"ResNet (solid) and SDE (dashed), D = {width}")
    ax_l.set_xlabel("explosion time")
    ax_l.set_ylim(0, 1.5 * ax_l.get_ylim()[1])  # room for the legend above the histograms
    ax_l.legend(frameon=False, loc="upper right", fontsize=6, ncol=2)
    params = sidecars["widths"]["params"]
    caption(
        fig,
        f"resdiff fig explosion ({preset} preset): {params['activation']}, x_0 = "
        f"{params['z']:g} 1_D, sigma_w^2 = {params['sigma_w2']:g}, sigma_b^2 = "
        f"{params['sigma_b2']:g}, first t with |x_t|^2/D > Q = "
        f"{params['threshold']:g} on [0, {params['horizon']:g}], dt = T/L; "
        f"{params['draws']} draws per setting; t* from the ODEs of Proposition 5.1; "
        f"seed {params['seed']}" + ("; " + "; ".join(notes) if notes else ""),
    )
    return fig
