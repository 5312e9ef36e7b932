"""Options shared by the subcommands, and the validation CLI.md requires.

Sizes are positive integers, variances non-negative, ``--draws`` at least 2; any
violation is a one-line usage error naming the option (exit code 2).
"""
import math
import time

import click

from .. import progress as _progress


class FiniteFloat(click.FloatRange):
    """A float within the range that is also finite: click's ranges let NaN through
    (every comparison with NaN is false) and inf is no input any formula here accepts."""

    def convert(self, value, param, ctx):
        out = super().convert(value, param, ctx)
        if not math.isfinite(out):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return out


POSITIVE = click.IntRange(min=1)
DRAWS = click.IntRange(min=2)
SEED = click.IntRange(min=0)
FINITE = FiniteFloat()
VARIANCE = FiniteFloat(min=0.0)
ACTIVATION = click.Choice(["tanh", "swish", "relu"])


class IntList(click.ParamType):
    """Comma-separated positive integers, e.g. ``10,20,50``."""
    name = "INT,INT,..."

    def convert(self, value, param, ctx):
        if isinstance(value, (list, tuple)):
            return list(value)
        items = [v.strip() for v in str(value).split(",")]
        try:
            out = [int(v) for v in items]
        except ValueError:
            self.fail(f"{value!r} is not a comma-separated list of integers", param, ctx)
        if not out or min(out) < 1:
            self.fail(f"{value!r}: every size must be a positive integer", param, ctx)
        return out


class FloatList(click.ParamType):
    name = "X,X,..."

    def convert(self, value, param, ctx):
        if isinstance(value, (list, tuple)):
            return [float(v) for v in value]
        try:
            out = [float(v) for v in str(value).split(",")]
        except ValueError:
            self.fail(f"{value!r} is not a comma-separated list of numbers", param, ctx)
        if not all(map(math.isfinite, out)):
            self.fail(f"{value!r}: every number must be finite", param, ctx)
        return out


def common(default_out):
    """``--seed``, ``--out`` and ``--quiet``, which every subcommand has."""
    def decorate(f):
        f = click.option("--quiet", "-q", is_flag=True,
                         help="No progress bars or informational lines on stderr.")(f)
        f = click.option("--out", "-o", type=click.Path(dir_okay=False), default=default_out,
                         show_default=True,
                         help="Tidy CSV to write; its JSON sidecar goes to OUT.json.")(f)
        f = click.option("--seed", type=SEED, default=0, show_default=True,
                         help="Seed: the same seed gives the same numbers for any thread "
                              "count.")(f)
        return f
    return decorate


def sigma_options(default_w2=1.0, default_b2=1.0):
    def decorate(f):
        f = click.option("--sigma-b2", type=VARIANCE, default=default_b2, show_default=True,
                         help="Bias variance sigma_b^2 (eq. 16).")(f)
        f = click.option("--sigma-w2", type=VARIANCE, default=default_w2, show_default=True,
                         help="Weight variance sigma_w^2 (eq. 16).")(f)
        return f
    return decorate


def run_and_write(command, experiment, params, out, quiet):
    """Validate ``out``, run ``experiment(**params)``, write CSV + sidecar atomically.

    Returns the :class:`~resdiff.experiments.Result`.
    """
    from .. import io, sources
    _progress.set_quiet(quiet)
    io.check_writable(out)
    started = time.time()
    result = experiment(**params)
    for line in result.warnings:
        _progress.warn(line)
    io.write_result(out, result.frame, params, result.meta, command=command, started=started,
                    code=sources.code_digest(experiment))
    _progress.info(f"resdiff {command}: wrote {out} ({len(result.frame)} rows) in "
                   f"{time.time() - started:.1f} s")
    return result
