"""Figure 1: function samples of the feedforward network at the edge of chaos, tanh
(left) and ReLU (right): a few draws (blue) and the per-input 5%, 50%, 95% quantiles
(orange). :func:`draw_samples` is shared with Figure 4."""

import textwrap

import numpy as np

from .style import BLUE, ORANGE, caption, new_figure

NAMES = {"tanh": "tanh", "swish": "swish", "relu": "ReLU"}


def wrapped(text, width=150):
    """A caption broken into lines that fit the figure width."""
    return "\n".join(textwrap.wrap(text, width))


def model_label(params):
    symbol = r"\mathcal{E}" if params["model"] == "feedforward" else r"\mathcal{F}"
    return rf"${symbol}_{{\mathrm{{{NAMES[params['activation']]}}}}}$"


def draw_samples(ax, frame):
    """Draws (blue, thin) and quantiles (orange) of one ``samples`` CSV on ``ax``."""
    draws = frame[frame["kind"] == "draw"]
    for _, d in draws.groupby("id", sort=True):
        d = d.sort_values("z")
        ok = np.isfinite(d["value"].to_numpy())
        ax.plot(
            d["z"].to_numpy()[ok], d["value"].to_numpy()[ok], color=BLUE, linewidth=0.7, alpha=0.9
        )
    quant = frame[frame["kind"] == "quantile"]
    for level, q in quant.groupby("id", sort=True):
        q = q.sort_values("z")
        ok = np.isfinite(q["value"].to_numpy())
        ax.plot(
            q["z"].to_numpy()[ok],
            q["value"].to_numpy()[ok],
            color=ORANGE,
            linewidth=1.3,
            linestyle="-" if abs(level - 0.5) < 1e-9 else "--",
        )
    ax.set_xlabel("z")
    ax.set_xlim(frame["z"].min(), frame["z"].max())


def samples_legend(fig, frame):
    """One legend above the panels: what blue and orange mean (the quantile levels of
    ``frame``, a ``samples`` CSV: median solid, the others dashed)."""
    from matplotlib.lines import Line2D

    levels = sorted(frame.loc[frame["kind"] == "quantile", "id"].unique())
    median = [q for q in levels if abs(q - 0.5) < 1e-9]
    others = [q for q in levels if abs(q - 0.5) >= 1e-9]

    def pct(qs):
        return "/".join(f"{100 * q:g}" for q in qs) + "%"

    handles = [Line2D([], [], color=BLUE, linewidth=0.7, label="draws")]
    if median:
        handles.append(Line2D([], [], color=ORANGE, linewidth=1.3, label="50% quantile (median)"))
    if others:
        handles.append(
            Line2D(
                [],
                [],
                color=ORANGE,
                linewidth=1.3,
                linestyle="--",
                label=f"{pct(others)} quantiles",
            )
        )
    fig.legend(handles=handles, loc="outside upper center", ncol=len(handles), frameon=False)


def _estimate_note(meta):
    return "conditional" if meta.get("estimator") == "conditional" else "empirical"


def plot(frames, sidecars, preset):
    fig, axes = new_figure(2, width=6.75, height=2.6)
    notes = []
    for ax, name in zip(axes[0], ("tanh", "relu")):
        side = sidecars[name]
        params, meta = side["params"], side.get("meta", {})
        draw_samples(ax, frames[name])
        ax.set_title(
            f"{model_label(params)}: {params['depth']} layers x "
            f"{params['width']} units, "
            rf"$\sigma_w^2$ = {meta.get('sigma_w2', params['sigma_w2']):.4g}, "
            rf"$\sigma_b^2$ = {meta.get('sigma_b2', params['sigma_b2']):.4g}"
        )
        ax.set_ylabel(r"$x_{\mathrm{last},1}$")
        notes.append(f"{NAMES[name]}: {params['draws']} draws, {_estimate_note(meta)} quantiles")
    samples_legend(fig, frames["tanh"])
    n_in = frames["tanh"]["z"].nunique()
    caption(
        fig,
        wrapped(
            f"resdiff fig 1 ({preset} preset): feedforward at the edge of "
            f"chaos, {n_in} inputs; blue: draws, orange: 5/50/95% quantiles; "
            + "; ".join(notes)
            + f"; seed {sidecars['tanh']['params']['seed']}"
        ),
    )
    return fig
