import click

from ..mnist.choices import PRECISIONS
from . import options


class FigureArg(click.ParamType):
    """``all``, one figure number, or a comma-separated list (``1,4,5``): a list of ints."""
    name = "N[,N...]|all"

    def convert(self, value, param, ctx):
        if isinstance(value, list):
            return value
        if str(value).strip().lower() == "all":
            return list(range(1, 9))
        numbers = []
        for item in str(value).split(","):
            try:
                n = int(item)
            except ValueError:
                self.fail(f"{item.strip()!r} is not a figure number (1-8) or 'all'", param, ctx)
            if not 1 <= n <= 8:
                self.fail(f"{n} is not a figure of the paper (1-8)", param, ctx)
            if n not in numbers:
                numbers.append(n)
        return numbers


@click.command(short_help="Compute (or reuse) the data of a figure and draw it.")
@click.argument("numbers", metavar="NUMBERS", type=FigureArg())
@click.option("--preset", type=click.Choice(["paper", "quick", "smoke"]), default="quick",
              show_default=True,
              help="paper: the paper's scale; quick: all eight in about 15 min on 2 cores; "
                   "smoke: all eight in about 3 min (CI).")
@click.option("--out-dir", type=click.Path(file_okay=False), default="figures",
              show_default=True, help="Where figN.pdf/png go; CSVs go to OUT_DIR/data/PRESET.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="MNIST directory (else $RESDIFF_DATA_DIR, else the user cache).")
@click.option("--force", is_flag=True, help="Recompute even when a valid cached CSV exists.")
@click.option("--show-params", is_flag=True,
              help="Print the parameters and recorded provenance of the figure; compute nothing.")
@click.option("--seed", type=options.SEED, default=0, show_default=True,
              help="Seed of every dataset of the figure (0 reproduces the committed "
                   "figures); other seeds keep their own CSVs beside seed 0's.")
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True,
              help="Figures 6-7 only: the training precision (see mnist-train "
                   "--precision); other precisions than fp32 keep their own CSVs.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or informational lines.")
def fig(numbers, preset, out_dir, data_dir, force, show_params, seed, precision, quiet):
    """Compute (or reuse) the data of figure NUMBERS (1-8, a comma-separated list such as
    1,4,5, or all) and draw each as OUT_DIR/figN.pdf and OUT_DIR/figN.png.

    Figures run in one process share the simulations they have in common (Fig. 5 reuses
    those of Figs. 1 and 4). With several figures a failing one is reported and the
    others are still drawn; the command then exits with code 2.
    """
    from .. import pipeline, progress
    from ..errors import UserError
    progress.set_quiet(quiet)
    failed = []
    for n in numbers:
        if show_params:
            click.echo(pipeline.show_params(n, preset, out_dir, seed, precision))
            continue
        try:
            pipeline.make_figure(n, preset, out_dir, force=force, data_dir=data_dir,
                                 seed=seed, precision=precision)
        except UserError as exc:
            if len(numbers) == 1:
                raise
            progress.warn(f"fig {n}: {exc}")  # several: draw the others, fail at the end
            failed.append(n)
    if failed:
        raise UserError(f"figure(s) {', '.join(map(str, failed))} could not be made "
                        "(see the warnings above); the others were written")
