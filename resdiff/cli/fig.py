import click

from . import options


class FigureArg(click.ParamType):
    name = "N|all"

    def convert(self, value, param, ctx):
        if str(value).lower() == "all":
            return "all"
        try:
            n = int(value)
        except ValueError:
            self.fail(f"{value!r} is not a figure number (1-8) or 'all'", param, ctx)
        if not 1 <= n <= 8:
            self.fail(f"{n} is not a figure of the paper (1-8)", param, ctx)
        return n


@click.command(short_help="Compute (or reuse) the data of a figure and draw it.")
@click.argument("number", type=FigureArg())
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
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or informational lines.")
def fig(number, preset, out_dir, data_dir, force, show_params, seed, quiet):
    """Compute (or reuse) the data of figure NUMBER (1-8, or all) and draw it as
    OUT_DIR/figN.pdf and OUT_DIR/figN.png."""
    from .. import pipeline, progress
    from ..errors import UserError
    from ..figures import FIGURES
    progress.set_quiet(quiet)
    numbers = sorted(FIGURES) if number == "all" else [number]
    if number == "all":
        missing = [n for n in range(1, 9) if n not in FIGURES]
        if missing:
            progress.warn(f"figures {', '.join(map(str, missing))} are not implemented yet; "
                          "skipping them")
    failed = []
    for n in numbers:
        if show_params:
            click.echo(pipeline.show_params(n, preset, out_dir, seed))
            continue
        try:
            pipeline.make_figure(n, preset, out_dir, force=force, data_dir=data_dir,
                                 seed=seed)
        except UserError as exc:
            if number != "all":
                raise
            progress.warn(f"fig {n}: {exc}")  # `all`: draw the others, fail at the end
            failed.append(n)
    if failed:
        raise UserError(f"figure(s) {', '.join(map(str, failed))} could not be made "
                        "(see the warnings above); the others were written")
