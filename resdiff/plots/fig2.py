"""Figure 2: 2-D KDE of (y(z1), y(z2)) per method (left); 1-D KDE + histogram of
y(z1) (centre) and y(z2) (right)."""

import seaborn as sns

from .style import METHOD_COLOURS, caption, new_figure


def plot(frames, sidecars, preset):
    df = frames["kde"]
    params = sidecars["kde"]["params"]
    divergent = sidecars["kde"]["meta"].get("divergent", {})
    wide = df.pivot_table(
        index=["method", "draw"], columns="z", values="value", dropna=False
    ).reset_index()
    zs = sorted(df["z"].unique())
    z1, z2 = zs[0], zs[1]
    wide = wide.dropna()  # divergent draws: counted in the sidecar and the caption
    methods = [m for m in params["methods"] if m in set(wide["method"])]
    palette = {m: METHOD_COLOURS[m] for m in methods}
    fig, axes = new_figure(3, width=6.75, height=2.3)
    ax2d, ax1, ax2 = axes[0]
    sns.kdeplot(
        data=wide,
        x=z1,
        y=z2,
        hue="method",
        hue_order=methods,
        palette=palette,
        levels=6,
        gridsize=80,
        ax=ax2d,
        linewidths=0.8,
        legend=False,
    )
    ax2d.set_xlabel(f"y(z = {z1:g})")
    ax2d.set_ylabel(f"y(z = {z2:g})")
    for ax, z in ((ax1, z1), (ax2, z2)):
        sns.histplot(
            data=wide,
            x=z,
            hue="method",
            hue_order=methods,
            palette=palette,
            stat="density",
            common_norm=False,
            element="step",
            fill=False,
            bins=50,
            alpha=0.6,
            linewidth=0.6,
            ax=ax,
            legend=False,
        )
        for m in methods:
            sns.kdeplot(
                wide.loc[wide["method"] == m, z], color=palette[m], ax=ax, linewidth=1.2, label=m
            )
        ax.set_xlabel(f"y(z = {z:g})")
        ax.set_ylabel("density")
    ax2.legend(frameon=False)
    bad = ", ".join(f"{m}: {n}" for m, n in divergent.items() if n)
    caption(
        fig,
        f"resdiff fig 2 ({preset} preset): {params['activation']}, "
        f"L = {params['depth']}, D = {params['width']}, {params['draws']} draws per "
        f"method, sigma_w^2 = {params['sigma_w2']:g}, sigma_b^2 = "
        f"{params['sigma_b2']:g}, seed {params['seed']}"
        + (f"; divergent draws excluded ({bad})" if bad else ""),
    )
    return fig
