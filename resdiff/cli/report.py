"""``resdiff report`` (one HTML page from the data already computed) and ``resdiff plot``
(your own CSVs drawn as the paper's figure of their kind)."""

import time
from pathlib import Path

import click

from . import options


@options.command("report", short_help="One HTML page: the figures, the paper's claims, provenance.")
@click.option(
    "--preset",
    type=click.Choice(["paper", "quick", "smoke"]),
    default="paper",
    show_default=True,
    help="The preset whose figures and data the page shows.",
)
@click.option(
    "--figures-dir",
    type=click.Path(file_okay=False),
    default="figures",
    show_default=True,
    help="Where `resdiff fig` wrote them: PRESET/figN.png and data/PRESET/.",
)
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False),
    default="report.html",
    show_default=True,
    help="The HTML file to write.",
)
@click.option("--quiet", "-q", is_flag=True, help="No informational line on stderr.")
def report(preset, figures_dir, out, quiet):
    """Write one self-contained HTML page (images embedded, nothing fetched) with, for
    each figure of PRESET: the picture and its title, what the paper claims and what
    resdiff measured (computed from the CSVs; paper preset), the provenance of each
    dataset from its sidecar (parameters, seed, numerical versions, commit, CPU, wall
    time) and the command that remakes it. Computes nothing.
    """
    from .. import files, progress
    from .. import report as page

    progress.set_quiet(quiet)
    files.check_writable(out)
    started = time.time()
    text = page.build(preset, figures_dir)
    with files.atomic_write(out, "w") as fh:
        fh.write(text)
    progress.info(
        f"resdiff report: wrote {out} ({len(text) / 2**20:.1f} MiB) in "
        f"{time.time() - started:.1f} s"
    )


@options.command("plot", short_help="Draw your own CSVs as the paper's figure of their kind.")
@click.argument("csvs", nargs=-1, required=True, metavar="CSV...", type=click.Path(dir_okay=False))
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False),
    default="plot.png",
    show_default=True,
    help="The figure to write: .png, .pdf or .svg.",
)
@click.option("--quiet", "-q", is_flag=True, help="No informational line on stderr.")
def plot(csvs, out, quiet):
    """Draw CSVs written by a subcommand (or by `resdiff fig`) with the plot code of the
    figure of their kind: kde as Figure 2, ntk-convergence as Figure 3, samples as
    Figures 1 and 4 (2-D inputs: Figure 8), correlation as Figure 5 (one panel per CSV),
    mnist-train and mnist-kernel as Figures 6 (fc) and 7 (conv). Each CSV needs its
    sidecar CSV.json.
    """
    from .. import files, progress
    from ..errors import UserError

    progress.set_quiet(quiet)
    ext = Path(out).suffix.lower().lstrip(".")
    if ext not in ("png", "pdf", "svg"):
        raise click.BadParameter(f"{out!r}: give a .png, .pdf or .svg file", param_hint="'--out'")
    files.check_writable(out, what="figure")
    runs = []
    for csv in csvs:
        sidecar = files.read_sidecar(csv)
        if sidecar is None:
            raise UserError(
                f"{csv}: no readable sidecar {files.sidecar_path(csv)}; "
                "resdiff plot draws CSVs that resdiff wrote"
            )
        runs.append((Path(csv).name, files.read_result(csv, sidecar), sidecar))
    from ..plots import runs as drawing

    fig = drawing.plot(runs)
    meta = {"CreationDate": None} if ext == "pdf" else None
    with files.atomic_write(out, "wb") as fh:
        fig.savefig(fh, format=ext, metadata=meta)
    progress.info(f"resdiff plot: wrote {out}")
