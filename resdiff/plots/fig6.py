"""Figure 6: final MNIST test accuracy of the completed FC ResNet against D = L (log
axis); left GD (blue) and SGD (orange), right full-batch Adam (blue) and mini-batch Adam
(orange). Networks: solid lines with dots. Theory: dashed grey, kernel regression with
the limiting kernel (eq. 37, both panels); dotted with a band (left only), the D = L ->
infinity limit trained with the networks' GD / SGD (mean and range over its draws of the
initial function and batch order). NTK theory does not cover Adam."""

import numpy as np

from .style import BLUE, GREY, ORANGE, caption, new_figure

NAMES = {"gd": "GD", "sgd": "SGD", "adam-full": "Adam (full batch)", "adam": "Adam (batch 200)"}


def final_accuracy(frame):
    """``(sizes, final test accuracy, diverged)`` per size, the last epoch of each run."""
    last = frame.sort_values("epoch").groupby("size").tail(1).sort_values("size")
    diverged = last["diverged"].astype(str).str.lower().isin(["true", "1"]).to_numpy()
    return (last["size"].to_numpy(dtype=int), last["test_accuracy"].to_numpy(dtype=float), diverged)


def draw_curves(ax, frames, sidecars, optimizers, colours, what=""):
    """One line per optimizer (labelled ``NAME{what}, lr ...``); a diverged run is an
    ``x`` on the bottom axis."""
    sizes_all, ymin = set(), 1.0
    for opt, colour in zip(optimizers, colours):
        if opt not in frames:
            continue
        sizes, acc, diverged = final_accuracy(frames[opt])
        sizes_all.update(sizes.tolist())
        lr = sidecars[opt]["params"]["lr"]
        ok = ~diverged & np.isfinite(acc)
        # the line breaks at a diverged size (NaN) instead of bridging it
        ax.plot(
            sizes,
            np.where(ok, acc, np.nan),
            color=colour,
            marker="o",
            markersize=3,
            linewidth=1.4,
            label=f"{NAMES[opt]}{what}, lr {lr:g}",
        )
        if ok.any():
            ymin = min(ymin, float(np.min(acc[ok])))
        if (~ok).any():  # x at the bottom edge of the axes (axes coordinates in y)
            ax.plot(
                sizes[~ok],
                np.full((~ok).sum(), 0.03),
                linestyle="none",
                marker="x",
                color=colour,
                markersize=6,
                transform=ax.get_xaxis_transform(),
                label=f"{NAMES[opt]}: diverged",
            )
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
    return (
        f"{params['n_train']} training images, {params['epochs']} epochs, "
        f"test on {n_test} images, batch {params['batch_size']}, seed {params['seed']}, "
        f"precision {params.get('precision', 'fp32')}"
    )


LIMITS = {"gd": "limit-gd", "sgd": "limit-sgd"}  # optimizer -> its theory dataset


def limit_final(frame):
    """``(mean, low, high, diverged, draws)`` of the limit's final test accuracy."""
    last = frame[frame["epoch"] == frame["epoch"].max()]
    diverged = last["diverged"].astype(str).str.lower().isin(["true", "1"]).any()
    acc = last["test_accuracy"].to_numpy(dtype=float)
    return float(acc.mean()), float(acc.min()), float(acc.max()), bool(diverged), len(acc)


def draw_limits(ax, frames, optimizers, colours):
    """The limit trained like the networks: a dotted line at the mean over draws and a
    band over their range, across the whole axis (the limit has no D = L)."""
    ymin, notes = 1.0, []
    for opt, colour in zip(optimizers, colours):
        frame = frames.get(LIMITS[opt])
        if frame is None:
            continue
        mean, low, high, diverged, draws = limit_final(frame)
        if diverged or not np.isfinite(mean):
            notes.append(f"{NAMES[opt]} limit diverged at lr {frame['lr'].iloc[0]:g}")
            continue
        ax.axhspan(low, high, color=colour, alpha=0.2, linewidth=0)
        ax.axhline(
            mean,
            color=colour,
            linestyle=":",
            linewidth=1.6,
            label=f"{NAMES[opt]}, limit D = L -> inf (theory), {mean:.1%}",
        )
        ymin = min(ymin, low)
    return ymin, notes


def dataset_label(name):
    """``adam-full-500`` -> ``Adam (full batch) D=L=500``; other datasets by name."""
    opt, _, size = name.rpartition("-")
    return f"{NAMES[opt]} D=L={size}" if opt in NAMES and size.isdigit() else name


def partial_text(left_out=(), missing=()):
    """The caption lines of a partial figure: the preset's sizes D = L it leaves out
    (``--max-size``) and the datasets not computed yet (``--partial``)."""
    text = ""
    if left_out:
        text += (
            f"\npartial figure: the preset's D = L = {', '.join(map(str, left_out))} "
            "are left out (resdiff fig --max-size)"
        )
    if missing:
        text += (
            "\npartial figure: not computed yet, left out: "
            f"{', '.join(map(dataset_label, missing))} (resdiff fig --partial)"
        )
    return text


def plot(frames, sidecars, preset, left_out=(), missing=()):
    fig, axes = new_figure(2, width=6.75, height=3.0, sharey=True)
    kernel = frames.get("kernel")
    kacc = float(kernel["accuracy"].iloc[0]) if kernel is not None else None
    ymin, limit_notes = 1.0, []
    for ax, pair in zip(axes[0], (("gd", "sgd"), ("adam-full", "adam"))):
        ymin = min(ymin, draw_curves(ax, frames, sidecars, pair, (BLUE, ORANGE), what=" network"))
        if pair == ("gd", "sgd"):
            low, limit_notes = draw_limits(ax, frames, pair, (BLUE, ORANGE))
            ymin = min(ymin, low)
        if kacc is not None:
            ax.axhline(
                kacc,
                color=GREY,
                linestyle="--",
                linewidth=1.2,
                label=f"kernel regression, eq. 37 (theory, t -> inf), {kacc:.2%}",
            )
            ymin = min(ymin, kacc)
        ax.legend(frameon=False, loc="best", fontsize=5.5)
    axes[0][0].set_title("GD and SGD: networks and the NTK limit")
    axes[0][1].set_title("Adam: networks (NTK theory does not cover Adam)")
    # one x axis for both panels, so a size one optimizer lacks shows as a gap
    sizes = sorted({int(s) for o in NAMES if o in frames for s in frames[o]["size"]})
    for ax in axes[0]:
        ax.set_xticks(sizes)
        ax.set_xticklabels([str(s) for s in sizes])
        ax.set_xlim(sizes[0] / 1.25, sizes[-1] * 1.25)
    axes[0][0].set_ylim(max(0.0, ymin - 0.15), 1.0)
    axes[0][1].tick_params(labelleft=True)
    first = next(
        o for o in ("gd", "sgd", "adam-full", "adam", "limit-sgd", "limit-gd") if o in sidecars
    )
    params = {"batch_size": 200, "n_test": None, **sidecars[first]["params"]}
    diverged = [
        f"{NAMES[o]} D=L={s}"
        for o in ("gd", "sgd", "adam-full", "adam")
        if o in frames
        for s, d in zip(*final_accuracy(frames[o])[::2])
        if d
    ]
    note = f"; diverged (x): {', '.join(diverged)}" if diverged else ""
    knote = ""
    if kacc is not None:
        kp = sidecars["kernel"]["params"]
        noise = kp.get("noise") or 1 / kp["n_train"]
        knote = (
            f"; kernel regression: {kp['n_train']} images, noise variance {noise:.2g}, "
            "full test set"
        )
    lnote = ""
    limits = [LIMITS[o] for o in ("gd", "sgd") if LIMITS[o] in frames]
    if limits:
        draws = limit_final(frames[limits[0]])[4]
        lnote = (
            f"\nlimit trained (left, dotted; band: range over {draws} GP prior draws "
            "and batch orders): linear model, NTK eq. 37, the networks' loss, rate, "
            "epochs, images, batches; full test set" + "".join(f"; {n}" for n in limit_notes)
        )
    caption(
        fig,
        f"resdiff fig 6 ({preset} preset): completed FC ResNet, tanh, sigma_w^2 = "
        f"{params['sigma_w2']:g}, sigma_b^2 = {params['sigma_b2']:g}, NTK "
        f"parametrisation, all layers trained, mean squared error on one-hot targets"
        f"{partial_text(left_out, missing)}\n{scale_text(params)}{knote}{note}{lnote}"
        "\nNTK theory does not cover Adam: the right panel shows kernel regression "
        "only",
    )
    return fig
