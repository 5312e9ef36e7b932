"""``resdiff plot``: a user's own runs drawn as the paper's figure of their kind, with the
panel code of ``resdiff fig N``.

Each run is ``(label, frame, sidecar)``, its sidecar naming the subcommand that wrote it
(``command``: ``samples``, ``kde``, ... or ``fig N --preset P``). All runs of one call are
of one kind:

* ``kde``: Figure 2 (one run); ``ntk-convergence``: Figure 3 (one run);
* ``samples`` with 1-D inputs: one panel per run, as Figures 1 and 4; with 2-D inputs:
  one surface panel per run, as Figure 8;
* ``correlation``: one heatmap per run on a common colour scale, as Figure 5;
* ``mnist-train`` (fc) and ``mnist-kernel``: Figure 6; ``mnist-train`` (conv): Figure 7.
"""

import numpy as np

from ..errors import UserError
from . import fig2, fig3, fig5, fig6, fig7, fig8
from .fig1 import draw_samples, model_label, wrapped
from .style import CAPTION_SIZE, caption, new_figure, wrap_to_width

# the experiments of each figure of the registry, for CSVs that `resdiff fig` wrote
FIGURE_KINDS = {
    1: "samples",
    2: "kde",
    3: "ntk-convergence",
    4: "samples",
    5: "correlation",
    6: "mnist",
    7: "mnist",
    8: "samples",
}
_MARK = "own-run"  # the preset the figure code is handed, replaced in its caption


def kind_of(sidecar):
    """The subcommand that wrote a CSV, from its sidecar; mnist-train and mnist-kernel
    are one kind ("mnist"), drawn together."""
    words = str(sidecar.get("command") or "").split()
    if not words:
        raise UserError("its sidecar names no command: not written by resdiff")
    if words[0] == "fig" and len(words) > 1 and words[1].isdigit():
        return FIGURE_KINDS.get(int(words[1]), "?")
    return "mnist" if words[0] in ("mnist-train", "mnist-kernel") else words[0]


def _retitle(fig, labels):
    """The figure code's caption (its ``supxlabel``), with ``resdiff fig N (PRESET
    preset)`` replaced by the files it was drawn from."""
    label = fig._supxlabel
    text = label.get_text()
    start, end = text.find("resdiff fig "), text.find(f"({_MARK} preset)")
    if start >= 0 and end >= 0:
        label.set_text(
            wrap_to_width(
                fig,
                text[:start]
                + "resdiff plot "
                + ", ".join(labels)
                + text[end + len(f"({_MARK} preset)") :],
                CAPTION_SIZE,
            )
        )
    return fig


def _one(runs, what):
    if len(runs) != 1:
        raise UserError(f"{what} draws one CSV at a time, got {len(runs)}")
    return runs[0]


def _samples_1d(runs):
    fig, axes = new_figure(len(runs), width=max(3.4, 2.25 * len(runs)), height=2.6)
    notes = []
    for ax, (label, frame, side) in zip(axes[0], runs):
        p, meta = side["params"], side.get("meta", {})
        draw_samples(ax, frame)
        size = (
            f"L = {p['depth']}, D = {p['width']}"
            if p["model"] == "resnet"
            else f"{p['depth']} layers x {p['width']} units"
        )
        ax.set_title(f"{model_label(p)}: {size}")
        notes.append(
            f"{label}: sigma_w^2 = {meta.get('sigma_w2', p['sigma_w2']):.4g}, "
            f"sigma_b^2 = {meta.get('sigma_b2', p['sigma_b2']):.4g}, {p['draws']} "
            f"draws, seed {p['seed']}"
            + (f", {meta['divergent']} divergent excluded" if meta.get("divergent") else "")
        )
    axes[0][0].set_ylabel("output")
    caption(
        fig, wrapped("resdiff plot: blue: draws, orange: 5/50/95% quantiles; " + "; ".join(notes))
    )
    return fig


def _samples_2d(runs):
    fig, axes = new_figure(
        len(runs), width=max(3.4, 3.4 * len(runs)), height=3.3, subplot_kw={"projection": "3d"}
    )
    notes = []
    for ax, (label, frame, side) in zip(axes[0], runs):
        p = side["params"]
        for i, (z1, z2, v) in enumerate(fig8._surfaces(frame)):
            Z1, Z2 = np.meshgrid(z1, z2, indexing="ij")
            ax.plot_surface(
                Z1,
                Z2,
                np.ma.masked_invalid(v),
                color=fig8.DRAW_COLOURS[i % len(fig8.DRAW_COLOURS)],
                shade=True,
                edgecolor=(1, 1, 1, 0.3),
                linewidth=0.1,
                alpha=0.8,
                rcount=25,
                ccount=25,
            )
        ax.set_title(f"{model_label(p)}: L = {p['depth']}, D = {p['width']}")
        ax.set_xlabel(r"$z_1$")
        ax.set_ylabel(r"$z_2$")
        ax.view_init(elev=25, azim=-60)
        notes.append(f"{label}: {p['inputs']} x {p['inputs']} grid, seed {p['seed']}")
    caption(fig, wrapped("resdiff plot: " + "; ".join(notes)))
    return fig


def _correlation(runs):
    mats = [fig5._matrix(frame) for _, frame, _ in runs]
    finite = np.concatenate([m[2][np.isfinite(m[2])] for m in mats])
    vmin = float(np.floor(finite.min() * 10) / 10) if finite.size else -1.0
    from matplotlib import colors

    norm = colors.Normalize(vmin=max(-1.0, vmin), vmax=1.0)
    fig, axes = new_figure(len(runs), width=max(3.4, 3.0 * len(runs)), height=2.9)
    image, notes = None, []
    for ax, (label, _, side), (z1, z2, rho) in zip(axes[0], runs, mats):
        p = side["params"]
        image = ax.pcolormesh(
            z1,
            z2,
            np.ma.masked_invalid(rho),
            norm=norm,
            cmap="viridis",
            shading="nearest",
            rasterized=True,
        )
        fig5._write_minimum(ax, rho)
        ax.set_aspect("equal")
        ax.set_title(f"{model_label(p)}: L = {p['depth']}, D = {p['width']}")
        ax.set_xlabel(r"$z^{(1)}$")
        ax.set_ylabel(r"$z^{(2)}$")
        notes.append(f"{label}: {p['draws']} draws, seed {p['seed']}")
    fig.colorbar(image, ax=axes, shrink=0.8, label=r"$\rho[y(z^{(1)}), y(z^{(2)})]$")
    caption(fig, wrapped("resdiff plot: " + "; ".join(notes), 120))
    return fig


def _mnist(runs):
    """Training runs grouped into their optimizer's curve; kernel regression and the
    limit trained, as Figure 6's theory lines."""
    import pandas as pd

    frames, sidecars = {}, {}
    archs = set()
    for label, frame, side in runs:
        p = side["params"]
        if "arch" in p:
            archs.add(p["arch"])
            name = p["optimizer"]
        elif "dynamics" in p:
            name = f"limit-{p['dynamics']}"
        else:
            name = "kernel"
        if name in frames and name.startswith(("kernel", "limit")):
            raise UserError(f"{label}: a second {name} run; give one")
        frames[name] = (
            pd.concat([frames[name], frame], ignore_index=True) if name in frames else frame
        )
        sidecars.setdefault(name, side)
    if len(archs) > 1:
        raise UserError("fc and conv training runs cannot be drawn in one figure")
    if archs == {"conv"}:
        if set(frames) - {"sgd", "adam"}:
            raise UserError("Figure 7 draws conv runs of sgd and adam only")
        return fig7.plot(frames, sidecars, _MARK)
    if not set(frames) & set(fig6.NAMES):
        raise UserError("Figure 6 needs at least one mnist-train run")
    return fig6.plot(frames, sidecars, _MARK)


def plot(runs):
    """The figure of ``runs`` (``[(label, frame, sidecar), ...]``, one kind)."""
    kinds = {label: kind_of(side) for label, _, side in runs}
    if len(set(kinds.values())) != 1:
        raise UserError(
            "the CSVs were written by different subcommands ("
            + ", ".join(f"{k}: {v}" for k, v in kinds.items())
            + "); draw each kind on its own"
        )
    kind = next(iter(kinds.values()))
    labels = [label for label, _, _ in runs]
    if kind == "kde":
        label, frame, side = _one(runs, "kde (Figure 2)")
        if frame["z"].nunique() != 2:
            raise UserError(f"{label}: Figure 2 draws kde runs at exactly two inputs z")
        return _retitle(fig2.plot({"kde": frame}, {"kde": side}, _MARK), labels)
    if kind == "ntk-convergence":
        label, frame, side = _one(runs, "ntk-convergence (Figure 3)")
        return _retitle(fig3.plot({"ntk": frame}, {"ntk": side}, _MARK), labels)
    if kind == "samples":
        dims = {side["params"].get("input_dim", 1) for _, _, side in runs}
        if len(dims) != 1:
            raise UserError("samples runs with 1-D and 2-D inputs cannot share a figure")
        return _samples_2d(runs) if dims == {2} else _samples_1d(runs)
    if kind == "correlation":
        return _correlation(runs)
    if kind == "mnist":
        return _retitle(_mnist(runs), labels)
    raise UserError(f"resdiff plot does not draw {kind} results")
