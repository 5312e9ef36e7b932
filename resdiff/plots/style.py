"""The one look of every resdiff figure (paper-like sizes, colour-blind-safe colours).

The backend is left as the user has it (a notebook shows the figures inline); the
command line selects Agg before matplotlib is imported (:func:`resdiff.cli.main`).
"""

import matplotlib.pyplot as plt

# Okabe-Ito; the paper draws function samples in blue and quantiles in orange.
BLUE = "#0072B2"
ORANGE = "#E69F00"
GREEN = "#009E73"
GREY = "#777777"
VERMILLION = "#D55E00"
PURPLE = "#CC79A7"
METHOD_COLOURS = {"resnet": BLUE, "sde": ORANGE, "analytic": GREEN}
DPI = 200

RC = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": 100,
    "savefig.dpi": DPI,
    "pdf.fonttype": 42,
}


def new_figure(ncols, nrows=1, width=6.75, height=None, **kwargs):
    """A figure of paper text width (inches) with a grid of axes."""
    plt.rcParams.update(RC)
    height = height or width / ncols * 0.85 * nrows
    return plt.subplots(
        nrows, ncols, figsize=(width, height), squeeze=False, constrained_layout=True, **kwargs
    )


CAPTION_SIZE = 5.5  # points


def caption(fig, text):
    """Small provenance lines at the bottom of the figure, each wrapped at spaces to
    the figure's width."""
    fig.supxlabel(
        wrap_to_width(fig, text, CAPTION_SIZE), fontsize=CAPTION_SIZE, color=GREY, ha="center"
    )


def wrap_to_width(fig, text, fontsize, fill=0.99):
    """``text`` with each line broken at spaces where it would be wider than ``fill``
    of ``fig``'s width, as measured by its renderer."""
    from matplotlib.font_manager import FontProperties

    renderer, font = fig.canvas.get_renderer(), FontProperties(size=fontsize)
    room = fill * fig.bbox.width

    def fits(line):
        return renderer.get_text_width_height_descent(line, font, ismath=False)[0] <= room

    lines = []
    for line in text.split("\n"):
        current = ""
        for word in line.split(" "):
            longer = f"{current} {word}" if current else word
            if current and not fits(longer):
                lines.append(current)
                longer = word
            current = longer
        lines.append(current)
    return "\n".join(lines)
