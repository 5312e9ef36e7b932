"""Figure 4: function samples of the ResNet, tanh (top row) and swish (bottom row), one
panel per (L, D): a few draws (blue) and the per-input 5%, 50%, 95% quantiles (orange)."""

from .fig1 import draw_samples, model_label, samples_legend, wrapped
from .style import caption, new_figure

ACTIVATIONS = ("tanh", "swish")


def plot(frames, sidecars, preset):
    """Datasets ``tanh-1 .. tanh-3`` and ``swish-1 .. swish-3``, one column per (L, D)."""
    columns = sorted({name.split("-", 1)[1] for name in sidecars}, key=int)
    fig, axes = new_figure(len(columns), nrows=2, width=6.75, height=4.4)
    divergent = []
    for row, act in enumerate(ACTIVATIONS):
        for col, column in enumerate(columns):
            name = f"{act}-{column}"
            ax = axes[row][col]
            side = sidecars[name]
            params, meta = side["params"], side.get("meta", {})
            draw_samples(ax, frames[name])
            depth, width = params["depth"], params["width"]
            ax.set_title(f"{model_label(params)}: L = {depth}, D = {width}")
            if col == 0:
                ax.set_ylabel(r"$x_{T,1}$")
            if meta.get("divergent"):
                divergent.append(
                    f"{act} L = {depth}, D = {width}: {meta['divergent']} of {params['draws']}"
                )
    samples_legend(fig, frames[f"tanh-{columns[0]}"])
    p = sidecars[f"tanh-{columns[0]}"]["params"]
    caption(
        fig,
        wrapped(
            f"resdiff fig 4 ({preset} preset): resnet, sigma_w^2 = {p['sigma_w2']:g}, "
            f"sigma_b^2 = {p['sigma_b2']:g}, {p['inputs']} inputs, {p['draws']} draws per "
            "panel; blue: draws, orange: 5/50/95% quantiles; seed "
            + str(p["seed"])
            + (
                f"; divergent draws excluded ({', '.join(divergent)})"
                if divergent
                else "; no divergent draws"
            )
        ),
    )
    return fig
