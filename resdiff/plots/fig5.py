"""Figure 5: output correlation heatmaps rho[y(z1), y(z2)]: resnet tanh (top left),
resnet swish (top right), feedforward tanh (bottom left), feedforward ReLU (bottom
right), on one colour scale.

On that scale a panel whose correlations all lie close to 1 (the feedforward networks)
reads as one flat colour, which is the paper's message; so that its range is still
stated, every panel has its minimum written in a corner.
"""

import numpy as np
from matplotlib import colors

from .fig1 import model_label, wrapped
from .style import caption, new_figure

LAYOUT = (("resnet-tanh", "resnet-swish"), ("feedforward-tanh", "feedforward-relu"))


def _matrix(frame):
    z1 = np.sort(frame["z1"].unique())
    z2 = np.sort(frame["z2"].unique())
    wide = frame.pivot(index="z2", columns="z1", values="rho").reindex(index=z2, columns=z1)
    return z1, z2, wide.to_numpy()


def _write_minimum(ax, rho):
    """The panel's smallest correlation, in its lower left corner."""
    finite = rho[np.isfinite(rho)]
    if finite.size:
        ax.text(
            0.03,
            0.03,
            rf"min $\rho$ = {finite.min():.3f}",
            transform=ax.transAxes,
            fontsize=7,
            va="bottom",
            ha="left",
            bbox=dict(boxstyle="round,pad=0.25", fc="white", ec="none", alpha=0.85),
        )


def plot(frames, sidecars, preset):
    mats = {name: _matrix(frames[name]) for row in LAYOUT for name in row}
    finite = np.concatenate([m[2][np.isfinite(m[2])] for m in mats.values()])
    vmin = float(np.floor(finite.min() * 10) / 10) if finite.size else -1.0
    norm = colors.Normalize(vmin=max(-1.0, vmin), vmax=1.0)
    fig, axes = new_figure(2, nrows=2, width=6.0, height=5.1)
    image = None
    notes = []
    for r, row in enumerate(LAYOUT):
        for c, name in enumerate(row):
            ax = axes[r][c]
            z1, z2, rho = mats[name]
            side = sidecars[name]
            params, meta = side["params"], side.get("meta", {})
            image = ax.pcolormesh(
                z1,
                z2,
                np.ma.masked_invalid(rho),
                norm=norm,
                cmap="viridis",
                shading="nearest",
                rasterized=True,
            )
            _write_minimum(ax, rho)
            ax.set_aspect("equal")
            size = (
                f"L = {params['depth']}, D = {params['width']}"
                if params["model"] == "resnet"
                else f"{params['depth']} x {params['width']}"
            )
            ax.set_title(f"{model_label(params)} ({size})")
            ax.set_xlabel(r"$z^{(1)}$")
            ax.set_ylabel(r"$z^{(2)}$")
            extra = f", {meta['divergent']} divergent excluded" if meta.get("divergent") else ""
            short = "F" if params["model"] == "resnet" else "E"
            notes.append(
                f"{short}_{params['activation']}: {params['draws']}"
                + (" cond." if meta.get("estimator") == "conditional" else "")
                + extra
            )
    fig.colorbar(image, ax=axes, shrink=0.8, label=r"$\rho[y(z^{(1)}), y(z^{(2)})]$")
    p = sidecars[LAYOUT[0][0]]["params"]
    caption(
        fig,
        wrapped(
            f"resdiff fig 5 ({preset} preset): {p['grid']} x {p['grid']} grid; "
            "draws " + ", ".join(notes) + f"; seed {p['seed']}",
            120,
        ),
    )
    return fig
