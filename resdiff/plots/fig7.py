"""Figure 7: final MNIST test accuracy of the completed conv ResNet against D = L (log
axis), SGD (blue) and Adam (orange), batch 200."""

from .fig6 import NAMES, draw_curves, final_accuracy, partial_text, scale_text
from .style import BLUE, ORANGE, caption, new_figure


def plot(frames, sidecars, preset, left_out=(), missing=()):
    fig, axes = new_figure(1, width=3.4, height=2.6)
    ax = axes[0][0]
    ymin = draw_curves(ax, frames, sidecars, ("sgd", "adam"), (BLUE, ORANGE))
    ax.set_ylim(max(0.0, ymin - 0.05), 1.0)
    ax.legend(frameon=False, loc="best")
    params = sidecars["sgd" if "sgd" in sidecars else "adam"]["params"]
    diverged = [
        f"{NAMES[o]} D=L={s}"
        for o in ("sgd", "adam")
        if o in frames
        for s, d in zip(*final_accuracy(frames[o])[::2])
        if d
    ]
    note = f"; diverged (x): {', '.join(diverged)}" if diverged else ""
    caption(
        fig,
        f"resdiff fig 7 ({preset} preset): completed conv ResNet, tanh,\n"
        f"sigma_w^2 = {params['sigma_w2']:g}, sigma_b^2 = {params['sigma_b2']:g}, "
        f"NTK parametrisation, mean squared error{partial_text(left_out, missing)}\n"
        f"{scale_text(params)}" + (f"\n{note[2:]}" if note else ""),
    )
    return fig
