"""``resdiff verify``: recompute a slice of every committed dataset and compare."""

import sys
import time

import click

from . import options


@options.command(short_help="Check that this installation reproduces the committed results.")
@click.option(
    "--preset",
    type=click.Choice(["paper", "quick", "smoke"]),
    default="paper",
    show_default=True,
    help="The preset whose datasets (OUT_DIR/data/PRESET/) are checked.",
)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False),
    default="figures",
    show_default=True,
    help="Where the figures and their data live.",
)
@options.data_dir_option
@click.option(
    "--only",
    type=options.CommaList(click.STRING),
    default=None,
    metavar="LABEL,...",
    help="Check only these datasets: figN (every dataset of figure N) or "
    "figN-NAME (one CSV, e.g. fig2-kde).  [default: all]",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Training runs recomputed at once, each in a process of its own on one "
    "thread, beside the other datasets.",
)
@click.option("--quiet", "-q", is_flag=True, help="Print only the summary line.")
def verify(preset, out_dir, data_dir, only, jobs, quiet):
    """Recompute a cheap slice of every committed dataset of PRESET and compare it with
    the committed CSV: the kept draws 0-4 of each Monte Carlo dataset (each draw is a
    pure function of seed, purpose, draw and layer), the kernel regression and the
    limit's dynamics in full, and the first epoch of each training run up to D = L =
    100. Each dataset is reported as reproduced (same bytes), reproduced within
    rounding (PyTorch and LAPACK round differently across CPUs: the largest relative
    difference), differs, or not checked (and why). Nothing is written.

    Exit code 0 when every dataset checked reproduced, 1 when one differs, 2 on bad
    input. About 3-5 minutes for the paper preset on 2 cores.
    """
    from .. import progress, verify as check
    from ..figures import stem
    from ..errors import UserError

    progress.set_quiet(quiet)
    datasets = check.committed_datasets(preset, out_dir, only)
    if only:
        known = {stem(n) for n, *_ in datasets} | {f"{stem(n)}-{m}" for n, m, *_ in datasets}
        unknown = [o for o in only if o not in known]
        if unknown:
            raise UserError(
                f"--only: no committed dataset {', '.join(unknown)} in {out_dir}/data/{preset}"
            )
    if not datasets:
        raise UserError(f"no committed dataset of the {preset} preset in {out_dir}/data/{preset}")
    started, outcomes = time.time(), []
    width = max(len(f"{stem(n)}-{m}") for n, m, *_ in datasets)

    def starting(label):
        i, elapsed = len(outcomes) + 1, time.time() - started
        eta = f", ETA {elapsed / (i - 1) * (len(datasets) - i + 1):.0f} s" if i > 1 else ""
        progress.info(f"[{i}/{len(datasets)}{eta}] {label} ...")

    for outcome in check.verify_all(datasets, preset, data_dir, jobs, starting):
        outcomes.append(outcome)
        if not quiet:
            click.echo(
                f"{outcome.label:<{width}}  {outcome.status:<26}  {outcome.detail}"
                + (f" ({outcome.seconds:.1f} s)" if outcome.seconds else "")
            )
    counts = {
        s: sum(o.status == s for o in outcomes)
        for s in (check.REPRODUCED, check.ROUNDING, check.DIFFERS, check.NOT_CHECKED)
    }
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    click.echo(
        f"resdiff verify: {len(outcomes)} datasets of the {preset} preset: {summary} "
        f"({time.time() - started:.0f} s)"
    )
    if not check.passed(outcomes):
        sys.exit(1)
