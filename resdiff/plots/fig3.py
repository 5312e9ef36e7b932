"""Figure 3: the finite NTK components K_W (left) and K_b (right) against L = D (log
axis): empirical mean (solid), +/- 2 empirical sd (shaded), analytic limits (dashed)."""

import numpy as np

from .style import BLUE, GREY, caption, new_figure

LABELS = {"W": r"$\mathcal{K}_W^{(1,2)}$", "b": r"$\mathcal{K}_b^{(1,2)}$"}
LIMIT_LABELS = {"W": r"$\mathcal{K}_W^{(1,2),\infty}$", "b": r"$\mathcal{K}_b^{(1,2),\infty}$"}


def plot(frames, sidecars, preset):
    df = frames["ntk"]
    side = sidecars["ntk"]
    params, meta = side["params"], side.get("meta", {})
    emp = df[(df["kind"] == "empirical") & np.isfinite(df["value"])]
    stats = emp.groupby(["component", "size"])["value"].agg(["mean", "std", "count"]).reset_index()
    lim = df[df["kind"] == "limit"].set_index("component")["value"]
    sizes = sorted(int(s) for s in stats["size"].unique())
    fig, axes = new_figure(2, width=6.75, height=2.5)
    for ax, comp in zip(axes[0], ("W", "b")):
        s = stats[stats["component"] == comp].sort_values("size")
        x = s["size"].to_numpy(dtype=float)
        mean, sd = s["mean"].to_numpy(), s["std"].to_numpy()
        ax.fill_between(
            x,
            mean - 2 * sd,
            mean + 2 * sd,
            color=BLUE,
            alpha=0.25,
            linewidth=0,
            label=r"$\pm 2$ sd",
        )
        ax.plot(
            x,
            mean,
            color=BLUE,
            linewidth=1.4,
            marker="o",
            markersize=3,
            label=f"{LABELS[comp]}, mean",
        )
        if comp in lim.index:
            ax.axhline(
                lim[comp],
                color=GREY,
                linestyle="--",
                linewidth=1.2,
                label=f"{LIMIT_LABELS[comp]} = {lim[comp]:.4f}",
            )
        ax.set_xscale("log")
        ax.set_xticks(sizes)
        ax.set_xticklabels([str(v) for v in sizes])
        ax.minorticks_off()
        ax.set_xlabel("L = D")
        ax.set_ylabel(LABELS[comp])
        ax.legend(frameon=False, loc="lower right")
    bad = {k: v for k, v in meta.get("divergent", {}).items() if v}
    note = (
        (
            "; divergent draws excluded ("
            + ", ".join(f"L = D = {k}: {v}" for k, v in bad.items())
            + ")"
        )
        if bad
        else ""
    )
    if lim.empty:
        note += "; no analytic limit (phi''(0) != 0)"
    z = params["z"]
    caption(
        fig,
        f"resdiff fig 3 ({preset} preset): resnet {params['activation']}, NTK between "
        f"z = {z[0]:g} and z = {z[1]:g}, y = x_(T,1), {params['draws']} draws per size, "
        f"sigma_w^2 = {params['sigma_w2']:g}, sigma_b^2 = {params['sigma_b2']:g}, "
        f"seed {params['seed']}" + note,
    )
    return fig
