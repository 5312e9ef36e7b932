"""Figure 8: 2-D function samples of the ResNet output x_{T,1} on a square of inputs,
tanh (left) and swish (right), a few draws drawn as surfaces, each draw in its own
colour (shaded by the light, so its shape shows) and named in a legend."""

import numpy as np
from matplotlib.patches import Patch

from .fig1 import model_label, wrapped
from .style import BLUE, GREEN, ORANGE, PURPLE, VERMILLION, caption, new_figure

DRAW_COLOURS = (BLUE, ORANGE, GREEN, VERMILLION, PURPLE)  # Okabe-Ito, one per draw


def _surfaces(frame):
    draws = frame[frame["kind"] == "draw"]
    out = []
    for _ident, d in draws.groupby("id", sort=True):
        z1 = np.sort(d["z"].unique())
        z2 = np.sort(d["z2"].unique())
        grid = d.pivot(index="z", columns="z2", values="value").reindex(index=z1, columns=z2)
        out.append((z1, z2, grid.to_numpy()))
    return out


def plot(frames, sidecars, preset):
    fig, axes = new_figure(2, width=6.75, height=3.3, subplot_kw={"projection": "3d"})
    for ax, name in zip(axes[0], ("tanh", "swish")):
        side = sidecars[name]
        params = side["params"]
        surfaces = _surfaces(frames[name])
        handles = []
        for i, (z1, z2, v) in enumerate(surfaces):
            Z1, Z2 = np.meshgrid(z1, z2, indexing="ij")
            colour = DRAW_COLOURS[i % len(DRAW_COLOURS)]
            ax.plot_surface(
                Z1,
                Z2,
                np.ma.masked_invalid(v),
                color=colour,
                shade=True,
                edgecolor=(1, 1, 1, 0.3),
                linewidth=0.1,
                alpha=0.8,
                rcount=25,
                ccount=25,
                antialiased=True,
            )
            handles.append(Patch(facecolor=colour, label=f"draw {i + 1}"))
        ax.legend(handles=handles, loc="upper left", fontsize=6, frameon=False)
        ax.set_title(f"{model_label(params)}: L = {params['depth']}, D = {params['width']}")
        ax.set_xlabel(r"$z_1$", labelpad=-6)
        ax.set_ylabel(r"$z_2$", labelpad=-6)
        ax.set_zlabel(r"$x_{T,1}$", labelpad=-6)
        ax.set_xticks([-2, 0, 2])
        ax.set_yticks([-2, 0, 2])
        ax.tick_params(pad=-3, labelsize=6)
        ax.set_box_aspect(None, zoom=0.85)
        ax.view_init(elev=25, azim=-60)
    p = sidecars["tanh"]["params"]
    bad = [
        f"{n}: {sidecars[n]['meta'].get('divergent')}"
        for n in ("tanh", "swish")
        if sidecars[n].get("meta", {}).get("divergent")
    ]
    caption(
        fig,
        wrapped(
            f"resdiff fig 8 ({preset} preset): resnet, sigma_w^2 = {p['sigma_w2']:g}, "
            f"sigma_b^2 = {p['sigma_b2']:g}, {p['inputs']} x {p['inputs']} grid on "
            f"[{p['z_min']:g}, {p['z_max']:g}]^2 (z1 on coordinates d <= D/2, z2 on the "
            f"rest), {p['keep_draws']} draws per panel, seed {p['seed']}"
            + (f"; divergent draws excluded ({', '.join(bad)})" if bad else "")
        ),
    )
    return fig
