import click
from click.core import ParameterSource

from .. import constraints as cons
from . import options

# the options that only say how or from what datasets are computed
COMPUTING_OPTIONS = (
    "data_dir",
    "allow_long",
    "executor_kind",
    "jobs",
    "slurm_partition",
    "slurm_gpus",
    "slurm_cpus",
    "slurm_time",
    "slurm_sbatch",
)


class FigureArg(click.ParamType):
    """``all``, one figure (a number 1-8 or a name beyond the paper: jacobian,
    explosion), or a comma-separated list (``1,4,jacobian``): a list of registry keys."""

    name = "N[,N...]|all"

    def convert(self, value, param, ctx):
        from ..figures import FIGURES, parse_key

        if isinstance(value, list):
            return value
        if str(value).strip().lower() == "all":
            return list(FIGURES)
        keys = []
        names = ", ".join(k for k in FIGURES if isinstance(k, str))
        for item in str(value).split(","):
            try:
                key = parse_key(item)
            except KeyError:
                self.fail(
                    f"{item.strip()!r} is not a figure: 1-8 (the paper's), {names}, or 'all'",
                    param,
                    ctx,
                )
            if key not in keys:
                keys.append(key)
        return keys


@options.command("fig", short_help="Compute (or reuse) the data of a figure and draw it.")
@click.argument("numbers", metavar="NUMBERS", type=FigureArg())
@click.option(
    "--preset",
    type=click.Choice(["paper", "quick", "smoke"]),
    default="quick",
    show_default=True,
    help="paper: the paper's scale (Figs. 6-7 take days of CPU or a GPU); quick: "
    "fewer draws or inputs (smaller networks for Figs. 2, 6, 7), all eight in a "
    "few minutes on 2 cores; smoke: small sizes, about a minute, for CI "
    "(measured times: BENCHMARKS.md).",
)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False),
    default="figures",
    show_default=True,
    help="figN.pdf/png go to OUT_DIR/PRESET/, their CSVs to OUT_DIR/data/PRESET/.",
)
@options.data_dir_option
@click.option("--force", is_flag=True, help="Recompute even when a valid cached CSV exists.")
@click.option(
    "--show-params",
    is_flag=True,
    help="Print the parameters and recorded provenance of the figure; compute nothing.",
)
@click.option(
    "--seed",
    type=options.click_type(cons.SEED),
    default=0,
    show_default=True,
    help="Seed of every dataset of the figure (0 reproduces the committed "
    "figures); other seeds keep their own CSVs beside seed 0's.",
)
@options.option(
    cons.MNIST_TRAIN,
    "precision",
    "--precision",
    default="fp32",
    show_default=True,
    help="Figures 6-7 only: the training precision (mnist-train --precision); "
    "other precisions than fp32 keep their own CSVs and figure files.",
)
@click.option(
    "--max-size",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Figures 6-7 only: train and draw only the networks with D = L <= N, "
    "a partial figure (figN-maxM.pdf/png, M the largest size drawn; its "
    "caption names the sizes left out). The CSVs are those of the whole "
    "figure, so a later run without --max-size reuses them. [default: every "
    "size of the preset]",
)
@click.option(
    "--partial",
    is_flag=True,
    help="Figures 6-7 only: compute nothing; draw from the datasets already "
    "computed (valid CSVs), for a look at a preset still training. The "
    "figure is figN-partial.pdf/png and its caption names the runs left "
    "out (the whole figN when none is missing).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or informational lines.")
@options.allow_long_option
@click.option(
    "--executor",
    "executor_kind",
    type=click.Choice(["local", "slurm"]),
    default="local",
    show_default=True,
    help="Where the datasets are computed: local (this machine) or slurm (a job "
    "array; needs sbatch, the 'slurm' extra and a shared file system).",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="local: worker processes that take the datasets (each training run "
    "of Figs. 6-7 is one) one at a time, the cores shared out and one GPU "
    "each [default 1: all in this process]; slurm: at most N jobs at once "
    "[default: no limit].",
)
@click.option("--slurm-partition", default=None, help="Slurm partition [default: the cluster's].")
@click.option(
    "--slurm-gpus",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="GPUs per Slurm job.",
)
@click.option(
    "--slurm-cpus",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="CPUs per Slurm job (its threads).",
)
@click.option(
    "--slurm-time",
    type=click.IntRange(min=1),
    default=240,
    show_default=True,
    help="Time limit per Slurm job in minutes; a job that reaches it is requeued "
    "(up to 3 times) and a training run continues from its checkpoint.",
)
@click.option(
    "--slurm-sbatch",
    multiple=True,
    metavar="--FLAG[=VALUE]",
    help="An extra sbatch option, e.g. --slurm-sbatch=--account=abc (repeatable).",
)
def fig(
    numbers,
    preset,
    out_dir,
    data_dir,
    force,
    show_params,
    seed,
    precision,
    max_size,
    partial,
    quiet,
    allow_long,
    executor_kind,
    jobs,
    slurm_partition,
    slurm_gpus,
    slurm_cpus,
    slurm_time,
    slurm_sbatch,
):
    """Compute (or reuse) the data of figure NUMBERS (1-8, jacobian, explosion, a
    comma-separated list such as 1,4,jacobian, or all) and draw each as
    OUT_DIR/PRESET/figN.pdf and .png (NAME.pdf and .png for jacobian and explosion).

    By default the datasets are computed one after another in this process (training
    runs smallest network first), and figures run together share the simulations they
    have in common (Fig. 5 reuses those of Figs. 1 and 4). With --jobs N or --executor
    slurm the datasets are shared out among workers (Slurm jobs), with the same bytes;
    the workers share nothing but the CSVs. With several figures a failing one is
    reported and the others are still drawn; the command then exits with code 2.
    """
    from .. import executor, pipeline, progress
    from ..errors import UserError

    if show_params or partial:
        ignored = COMPUTING_OPTIONS + (("force",) if show_params else ())
        _reject_given(
            click.get_current_context(), ignored, "--show-params" if show_params else "--partial"
        )
    progress.set_quiet(quiet)
    if executor_kind == "local":  # their defaults are Slurm's: given here, they would do nothing
        given = [
            f"--{n.replace('_', '-')}"
            for n in ("slurm_cpus", "slurm_time")
            if click.get_current_context().get_parameter_source(n) is ParameterSource.COMMANDLINE
        ]
        if given:
            raise click.UsageError(
                f"{', '.join(given)}: only with --executor slurm (with local it would do nothing)"
            )
    pool = executor.from_options(
        executor_kind, jobs, slurm_partition, slurm_gpus, slurm_cpus, slurm_time, slurm_sbatch
    )
    request = pipeline.Request(preset, out_dir, seed, precision, max_size, force, data_dir)
    if show_params:
        for n in numbers:
            click.echo(pipeline.show_params(n, request))
        return
    if partial:
        pipeline.draw_partial(numbers, request)
        return
    pipeline.check_outputs(numbers, request)  # before anything is computed
    from .. import estimate

    if executor_kind == "local":  # Slurm's nodes (and GPUs) are not this machine
        estimate.check(
            f"fig {','.join(map(str, numbers))} --preset {preset}",
            pipeline.estimate(numbers, request),
            allow_long,
            "--max-size N for Figs. 6-7, or a smaller --preset",
            progress.info,
        )
    if pool is not None:
        failed = pipeline.make_figures(numbers, request, pool)
        if failed:
            raise UserError(
                f"figure(s) {', '.join(map(str, failed))} could not be made "
                "(see the warnings above); the others were written"
            )
        return
    failed, store = [], pipeline.DrawStore()  # draws shared by the figures of this run
    for n in numbers:
        try:
            pipeline.make_figure(n, request, draw_store=store)
        except UserError as exc:
            if len(numbers) == 1:
                raise
            progress.warn(f"fig {n}: {exc}")  # several: draw the others, fail at the end
            failed.append(n)
    if failed:
        raise UserError(
            f"figure(s) {', '.join(map(str, failed))} could not be made "
            "(see the warnings above); the others were written"
        )


def _reject_given(ctx, names, mode):
    """A usage error naming the options of ``names`` given on the command line: ``mode``
    computes nothing, so they would be silently ignored."""
    given = [
        p.opts[0]
        for p in ctx.command.params
        if p.name in names and ctx.get_parameter_source(p.name) is ParameterSource.COMMANDLINE
    ]
    if given:
        raise click.UsageError(f"{', '.join(given)}: not with {mode}, which computes nothing")
