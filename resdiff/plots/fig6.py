"""Figure 6: final MNIST test accuracy of the completed FC ResNet against D = L (log
axis); left GD (blue) and SGD (orange), right full-batch Adam (blue) and mini-batch Adam
(orange); dashed grey: kernel regression with the limiting kernel (eq. 37)."""
import numpy as np

from .style import BLUE, GREY, ORANGE, caption, new_figure

NAMES = {"gd": "GD", "sgd": "SGD", "adam-full": "Adam (full batch)", "adam": "Adam (batch 200)"}


def final_accuracy(frame):
    """``(sizes, final test accuracy, diverged)`` per size, the last epoch of each run."""
    last = frame.sort_values("epoch").groupby("size").tail(1).sort_values("size")
    diverged = last["diverged"].astype(str).str.lower().isin(["true", "1"]).to_numpy()
    return (last["size"].to_numpy(dtype=int), last["test_accuracy"].to_numpy(dtype=float),
            diverged)


def draw_curves(ax, frames, sidecars, optimizers, colours):
    """One line per optimizer; a diverged run is an ``x`` on the bottom axis."""
    sizes_all, ymin = set(), 1.0
    for opt, colour in zip(optimizers, colours):
        if opt not in frames:
            continue
        sizes, acc, diverged = final_accuracy(frames[opt])
        sizes_all.update(sizes.tolist())
        lr = sidecars[opt]["params"]["lr"]
        ok = ~diverged & np.isfinite(acc)
        # the line breaks at a diverged size (NaN) instead of bridging it
        ax.plot(sizes, np.where(ok, acc, np.nan), color=colour, marker="o", markersize=3,
                linewidth=1.4, label=f"{NAMES[opt]}, lr {lr:g}")
        if ok.any():
            ymin = min(ymin, float(np.min(acc[ok])))
        if (~ok).any():  # x at the bottom edge of the axes (axes coordinates in y)
            ax.plot(sizes[~ok], np.full((~ok).sum(), 0.03), linestyle="none", marker="x",
                    color=colour, markersize=6, transform=ax.get_xaxis_transform(),
                    label=f"{NAMES[opt]}: diverged")
    sizes = sorted(sizes_all)
    ax.set_xscale("log")
    ax.set_xticks(sizes)
    ax.set_xticklabels([str(s) for s in sizes])
    ax.minorticks_off()
    ax.set_xlabel("D = L")
    ax.set_ylabel("final test accuracy")
    return ymin


def scale_text(params):
    n_test = params.get("n_test") or 10000
    return (f"{params['n_train']} training images, {params['epochs']} epochs, "
            f"test on {n_test} images, batch {params['batch_size']}, seed {params['seed']}, "
            f"precision {params.get('precision', 'fp32')}")


def plot(frames, sidecars, preset):
    fig, axes = new_figure(2, width=6.75, height=2.5, sharey=True)
    kernel = frames.get("kernel")
    kacc = float(kernel["accuracy"].iloc[0]) if kernel is not None else None
    ymin = 1.0
    for ax, pair in zip(axes[0], (("gd", "sgd"), ("adam-full", "adam"))):
        ymin = min(ymin, draw_curves(ax, frames, sidecars, pair, (BLUE, ORANGE)))
        if kacc is not None:
            ax.axhline(kacc, color=GREY, linestyle="--", linewidth=1.2,
                       label=f"kernel regression (eq. 37), {kacc:.2%}")
            ymin = min(ymin, kacc)
        ax.legend(frameon=False, loc="best")
    axes[0][0].set_ylim(max(0.0, ymin - 0.05), 1.0)
    axes[0][1].tick_params(labelleft=True)
    first = next(o for o in ("gd", "sgd", "adam-full", "adam") if o in sidecars)
    params = sidecars[first]["params"]
    diverged = [f"{NAMES[o]} D=L={s}" for o in ("gd", "sgd", "adam-full", "adam")
                if o in frames for s, d in zip(*final_accuracy(frames[o])[::2]) if d]
    note = f"; diverged (x): {', '.join(diverged)}" if diverged else ""
    knote = ""
    if kacc is not None:
        kp = sidecars["kernel"]["params"]
        noise = kp.get("noise") or 1 / kp["n_train"]
        knote = (f"; kernel regression: {kp['n_train']} images, noise variance {noise:.2g}, "
                 "full test set")
    caption(fig, f"resdiff fig 6 ({preset} preset): completed FC ResNet, tanh, sigma_w^2 = "
                 f"{params['sigma_w2']:g}, sigma_b^2 = {params['sigma_b2']:g}, NTK "
                 f"parametrisation, all layers trained, mean squared error on one-hot targets"
                 f"\n{scale_text(params)}{knote}{note}")
    return fig
