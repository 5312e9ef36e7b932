"""The Python API: ``import resdiff`` is fast and leaves the user's settings alone, each
function returns the documented :class:`~resdiff.experiments.Result`, the command line's
defaults are the functions' own, and the docstring examples run."""

import doctest
import importlib
import inspect
import subprocess
import sys

import click
import pytest

import resdiff
from resdiff import constraints as cons
from resdiff.cli import COMMANDS, LazyGroup, cli
from resdiff.cli import options
from tests.conftest import ROOT

# the functions of the API and the subcommand each stands for
SUBCOMMANDS = {
    "kde": "kde",
    "samples": "samples",
    "correlation": "correlation",
    "ntk_convergence": "ntk-convergence",
    "eoc": "eoc",
    "mnist_kernel": "mnist-kernel",
    "mnist_train": "mnist-train",
    "jacobian": "jacobian",
    "explosion": "explosion",
}
EXPERIMENTS = [*SUBCOMMANDS, "mnist_kernel_dynamics"]


def _python(code, env=None):
    import os

    full = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "NUMBA_CACHE_DIR")}
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_import_is_fast_and_loads_nothing_heavy():
    code = "\n".join(
        [
            "import os, sys, time",
            "t = time.perf_counter()",
            "import resdiff",
            "dt = time.perf_counter() - t",
            "heavy = [m for m in ('numba', 'pandas', 'matplotlib', 'torch', 'numpy') "
            "if m in sys.modules]",
            "assert not heavy, heavy",
            "assert 'NUMBA_CACHE_DIR' not in os.environ",
            "assert callable(resdiff.kde) and resdiff.kde.__module__ == 'resdiff.experiments.kde'",
            "print(dt)",
        ]
    )
    res = _python(code)
    assert res.returncode == 0, res.stderr
    assert float(res.stdout) < 0.5


def test_user_settings_are_left_alone(tmp_path):
    """A library user's matplotlib backend and Numba cache stay theirs; the command line
    alone picks Agg."""
    code = "\n".join(
        [
            "import os, matplotlib",
            "matplotlib.use('pdf')",
            "import resdiff.plots.style, resdiff.rng, numba",
            "assert matplotlib.get_backend() == 'pdf', matplotlib.get_backend()",
            "print(os.environ['NUMBA_CACHE_DIR'], numba.core.config.CACHE_DIR)",
        ]
    )
    res = _python(code, {"NUMBA_CACHE_DIR": str(tmp_path)})
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == [str(tmp_path)] * 2


def test_the_api_names_every_subcommand_and_eoc_stays_the_function():
    assert set(SUBCOMMANDS.values()) <= set(COMMANDS)
    for name in EXPERIMENTS + ["figure_data", "Result", "ParameterError"]:
        assert name in dir(resdiff) and getattr(resdiff, name) is not None
    importlib.import_module("resdiff.edge_of_chaos")  # a submodule must not replace it
    assert inspect.isfunction(resdiff.eoc)
    with pytest.raises(AttributeError):
        resdiff.no_such_function  # noqa: B018 (the look-up itself must fail)


def test_kde_returns_the_documented_result():
    r = resdiff.kde(depth=10, width=10, draws=50)
    assert isinstance(r, resdiff.Result)
    assert list(r.frame.columns) == ["method", "draw", "z", "value"]
    assert sorted(r.frame["method"].unique()) == ["analytic", "resnet", "sde"]
    assert len(r.frame) == 3 * 50 * 2
    assert r.meta["divergent"] == {"resnet": 0, "sde": 0, "analytic": 0}
    # the limit's mean at z = 1 is 1 (eq. 34): the analytic draws scatter around it
    analytic = r.frame.query("method == 'analytic' and z == 1")["value"]
    assert abs(analytic.mean() - 1.0) < 4 * analytic.std() / 50**0.5


def test_a_bad_parameter_is_a_value_error_naming_it():
    with pytest.raises(ValueError) as exc:
        resdiff.samples(draws=1)
    assert isinstance(exc.value, resdiff.ParameterError)
    assert exc.value.parameter == "draws" and str(exc.value).startswith("draws: ")
    with pytest.raises(resdiff.ParameterError, match="^activation: "):
        resdiff.eoc(activation="no-such-activation")


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_signature_defaults_are_read_without_importing(name):
    """What the command line reads from the source is the signature Python sees."""
    fn = getattr(resdiff, name)
    table = fn.constraints
    assert table.experiment == f"{fn.__module__}:{fn.__name__}"
    seen = {
        p.name: p.default
        for p in inspect.signature(fn).parameters.values()
        if p.default is not inspect.Parameter.empty
    }
    assert options.experiment_defaults(table.experiment) == seen
    # every numbered parameter has a default, so a call with none reproduces the paper
    assert set(table.params) <= set(seen)


def _command(name):
    return LazyGroup.get_command(cli, None, name)


@pytest.mark.parametrize("name", list(SUBCOMMANDS))
def test_the_command_line_defaults_are_the_signatures(name):
    fn = getattr(resdiff, name)
    defaults = options.experiment_defaults(fn.constraints.experiment)
    command = _command(SUBCOMMANDS[name])
    checked = 0
    for param in command.params:
        if not isinstance(param, click.Option) or param.name not in defaults:
            continue
        if not isinstance(param.default, (bool, int, float, str, tuple, list)):
            # None: the default of the signature is None too, or the option is "not
            # given" and resolved from the same signature (mnist-kernel --dynamics)
            continue
        value = param.type_cast_value(click.Context(command), param.default)
        expected = defaults[param.name]
        if isinstance(expected, tuple):
            expected, value = list(expected), list(value)
        assert value == expected, param.name
        checked += 1
    assert checked >= 1


def test_mnist_kernel_dynamics_options_name_its_defaults():
    from resdiff.cli import mnist

    dyn = options.experiment_defaults(cons.MNIST_KERNEL_DYNAMICS.experiment)
    assert (
        mnist.DYNAMICS == dyn
        and mnist.SGD_BATCH == resdiff.mnist_train.__wrapped__.__kwdefaults__["batch_size"]
    )
    helps = {p.name: p.help for p in _command("mnist-kernel").params}
    assert f"[default: {dyn['epochs']}]" in helps["epochs"]


@pytest.mark.parametrize("name", EXPERIMENTS + ["figure_data"])
def test_numpydoc_sections(name):
    doc = inspect.getdoc(getattr(resdiff, name))
    for section in ("Parameters", "Returns", "Raises", "Examples"):
        assert f"\n{section}\n{'-' * len(section)}\n" in doc, section
    documented = set()
    for line in doc.split("Returns\n")[0].splitlines():
        if " : " in line and not line.startswith(" "):
            documented.update(n.strip() for n in line.split(" : ")[0].split(","))
    params = set(inspect.signature(getattr(resdiff, name)).parameters)
    assert params <= documented, params - documented


@pytest.mark.parametrize(
    "name", ["kde", "samples", "correlation", "ntk_convergence", "eoc", "jacobian", "explosion"]
)
def test_docstring_examples_run(name):
    fn = getattr(resdiff, name)
    finder, runner = (
        doctest.DocTestFinder(),
        doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE),
    )
    for test in finder.find(fn, name, globs={}):
        runner.run(test)
    assert runner.tries >= 2 and runner.failures == 0
