"""Options shared by the subcommands, built from the experiments' constraint tables.

Each option's type comes from the table of the experiment it feeds
(:mod:`resdiff.constraints`), so a rule is written once; :class:`Command` is the one
place where a parameter name in an error becomes an option name. Any violation is a
one-line usage error naming the option (exit code 2).
"""

import ast
import functools
import math
import time

import click

from .. import constraints as cons
from .. import progress as _progress
from .. import sources


class FiniteFloat(click.FloatRange):
    """A float within the range that is also finite: click's ranges let NaN through
    (every comparison with NaN is false) and inf is no input any formula here accepts."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.min is None and self.max is None:
            self.name = "float"

    def convert(self, value, param, ctx):
        out = super().convert(value, param, ctx)
        if not math.isfinite(out):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return out

    def _describe_range(self):
        if self.min is None and self.max is None:
            return "finite"  # click would print "x<=None"
        return super()._describe_range()


class Count(click.IntRange):
    """An integer range whose upper end is int64's, shown as ``2^63`` (not 19 digits)."""

    def _describe_range(self):
        if self.max != cons.INT64_MAX:
            return super()._describe_range()
        return "x<2^63" if self.min is None else f"{self.min}<=x<2^63"


class ChoiceOf(click.Choice):
    """A choice among a table's values, which need not be strings (``input_dim``: 1, 2)."""

    def __init__(self, values):
        self.values = {str(v): v for v in values}
        super().__init__(list(self.values))

    def convert(self, value, param, ctx):
        return self.values[super().convert(str(value), param, ctx)]


class CommaList(click.ParamType):
    """Comma-separated items, each converted by ``item`` (a click type)."""

    def __init__(self, item):
        self.item = item
        self.name = f"{item.name.split()[0].upper()},..."  # INTEGER,... not INTEGER RANGE,...

    def convert(self, value, param, ctx):
        if isinstance(value, (list, tuple)):
            return [self.item.convert(v, param, ctx) for v in value]
        return [
            self.item.convert(v.strip(), param, ctx) for v in str(value).split(",") if v.strip()
        ]


def click_type(constraint):
    """The click type of a constraint of :mod:`resdiff.constraints`."""
    if isinstance(constraint, cons.Optional):
        return click_type(constraint.inner)
    if isinstance(constraint, cons.Integer):
        return Count(constraint.lo, constraint.hi)
    if isinstance(constraint, cons.Real):
        return FiniteFloat(constraint.lo, constraint.hi, min_open=constraint.lo_open)
    if isinstance(constraint, cons.OneOf):
        return ChoiceOf(constraint.values)
    if isinstance(constraint, cons.ListOf):
        return CommaList(click_type(constraint.item))
    raise TypeError(f"no click type for {constraint!r}")


@functools.lru_cache(maxsize=None)
def experiment_defaults(target):
    """``{parameter: default}`` of the experiment ``target`` (``"module:function"``),
    read from its signature in the source, without importing it: the command line takes
    its defaults from there (one source), and ``resdiff --help`` stays fast (no numba,
    pandas or torch). Every default is a literal or a constant of
    :mod:`resdiff.constraints` (``MNIST_SIGMA_W2``)."""
    module, function = target.split(":")
    path = sources.module_file(module)
    tree = ast.parse(path.read_bytes(), filename=str(path))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == function:
            args = node.args
            pairs = list(zip(args.args[len(args.args) - len(args.defaults) :], args.defaults))
            pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
            return {a.arg: _default_value(d) for a, d in pairs}
    raise LookupError(f"{target}: no such function")


def _default_value(node):
    if isinstance(node, ast.Name):
        if not node.id.isupper() or not hasattr(cons, node.id):
            raise TypeError(f"default {node.id}: not a constant of resdiff.constraints")
        return getattr(cons, node.id)
    return ast.literal_eval(node)


def option(table, name, *decls, multiple=False, **kwargs):
    """``click.option(*decls)`` for parameter ``name`` of ``table``, typed by it.

    The default is that of the experiment's signature (:func:`experiment_defaults`)
    unless ``default`` is given, as for an option whose None means "not given".
    ``multiple``: a repeatable option, one list item per use (e.g. ``--z 0 --z 1``)."""
    constraint = table.params[name]
    if multiple:
        constraint = constraint.item
    if "default" not in kwargs and table.experiment is not None:
        default = experiment_defaults(table.experiment)[name]
        if isinstance(default, (list, tuple)) and not multiple:  # a comma-separated list
            default = ",".join(map(str, default))
        kwargs["default"] = default
    return click.option(*decls, name, type=click_type(constraint), multiple=multiple, **kwargs)


class Command(click.Command):
    """A subcommand whose :class:`~resdiff.constraints.ParameterError` becomes a usage
    error naming the option of the parameter."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except cons.ParameterError as exc:
            raise self.usage_error(ctx, exc) from None

    def usage_error(self, ctx, exc):
        by_name = {p.name: p for p in self.params if isinstance(p, click.Option)}

        def flag(parameter):
            opt = by_name.get(parameter)
            if opt is None:
                return parameter
            return next((o for o in opt.opts if o.startswith("--")), opt.opts[0])

        if exc.parameter in by_name:
            return click.BadParameter(exc.body(flag), ctx=ctx, param=by_name[exc.parameter])
        return click.UsageError(exc.render(flag), ctx=ctx)


def command(*args, **kwargs):
    """``click.command`` with :class:`Command`."""
    return click.command(*args, cls=Command, **kwargs)


def common(default_out):
    """``--seed``, ``--out`` and ``--quiet``, which every subcommand has."""

    def decorate(f):
        f = click.option(
            "--quiet", "-q", is_flag=True, help="No progress bars or informational lines on stderr."
        )(f)
        f = click.option(
            "--out",
            "-o",
            type=click.Path(dir_okay=False),
            default=default_out,
            show_default=True,
            help="Tidy CSV to write; its JSON sidecar goes to OUT.json.",
        )(f)
        f = click.option(
            "--seed",
            type=click_type(cons.SEED),
            default=0,
            show_default=True,
            help="Seed: the same seed gives the same numbers for any thread count.",
        )(f)
        return f

    return decorate


def data_dir_option(f):
    """``--data-dir``: where MNIST is, for every command that reads it."""
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False),
        default=None,
        help="Directory with the four MNIST gzip IDX files  [default: "
        "$RESDIFF_DATA_DIR, else $XDG_CACHE_HOME/resdiff/mnist, "
        "~/.cache/resdiff/mnist without it]",
    )(f)


def sigma_options(table):
    def decorate(f):
        f = option(
            table,
            "sigma_b2",
            "--sigma-b2",
            show_default=True,
            help="Bias variance sigma_b^2 (eq. 16).",
        )(f)
        f = option(
            table,
            "sigma_w2",
            "--sigma-w2",
            show_default=True,
            help="Weight variance sigma_w^2 (eq. 16).",
        )(f)
        return f

    return decorate


def allow_long_option(f):
    """``--allow-long``: start a job estimated beyond resdiff.estimate.LIMIT_HOURS."""
    from ..estimate import LIMIT_HOURS

    return click.option(
        "--allow-long",
        is_flag=True,
        help=f"Start even when the job is estimated to take more than "
        f"{LIMIT_HOURS:g} h (without it: refused, exit code 2).",
    )(f)


def run_and_write(command, experiment, params, out, quiet, allow_long=None, where=None):
    """Validate ``out``, run ``experiment(**params, **where)``, write CSV + sidecar
    atomically; the sidecar records ``params`` only: ``where`` holds what says where
    things are or how the run proceeds (``data_dir``, ``checkpoint``, ``resume``), which
    changes no number. With ``allow_long`` given (True or False), the job's time is
    estimated first (:mod:`resdiff.estimate`): said, or refused beyond the limit unless
    True.

    Returns the :class:`~resdiff.experiments.Result`.
    """
    from .. import files, numerics, sources

    _progress.set_quiet(quiet)
    table = getattr(experiment, "constraints", None)
    if table is not None:  # what cannot run at all (memory) before what takes long
        import inspect

        bound = inspect.signature(experiment).bind(**params, **(where or {}))
        bound.apply_defaults()
        table.check(bound.arguments)
    if allow_long is not None:
        from .. import estimate

        estimate.check(
            command, estimate.experiment_work(experiment, params), allow_long, info=_progress.info
        )
    files.check_writable(out)
    started = time.time()
    result = experiment(**params, **(where or {}))
    for line in result.warnings:
        _progress.warn(line)
    files.write_result(
        out,
        result.frame,
        params,
        result.meta,
        command=command,
        started=started,
        code=sources.code_digest(experiment),
        numerics=numerics.versions(experiment, params),
    )
    rows = len(result.frame)
    _progress.info(
        f"resdiff {command}: wrote {out} ({rows} row{'s' if rows != 1 else ''}) in "
        f"{time.time() - started:.1f} s"
    )
    return result
