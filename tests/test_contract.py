"""The repository explains itself, and the command line keeps its contract: links resolve,
nothing points outside the clone, parameter errors name options, and no numeric option,
however extreme, ends in a traceback."""

import contextlib
import inspect
import io
import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resdiff import constraints as cons
from tests.conftest import HAVE_MNIST, HAVE_TORCH, needs_mnist, run_cli

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _tracked(*patterns):
    out = subprocess.run(
        ["git", "ls-files", *patterns], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return [ROOT / f for f in out if (ROOT / f).is_file()]


def _anchors(markdown):
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    heads = re.findall(r"^#+\s+(.*)$", markdown, flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in heads}


def test_every_relative_link_in_readme_and_docs_resolves():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        text = page.read_text()
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                broken.append(f"{page.name}: {target}")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest.read_text()):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, broken


def test_nothing_outside_the_makefile_and_ci_points_outside_the_clone():
    offenders = []
    for path in _tracked():
        rel = path.relative_to(ROOT).as_posix()
        if (
            rel == "Makefile"
            or rel.startswith((".ci/", "figures/"))
            or path.suffix in (".png", ".pdf", ".csv")
        ):
            continue
        text = path.read_text(errors="replace")
        for bad in ("../shared", "FIGURES.md", "CLI.md", "STYLE.md"):
            if bad in text and rel != "tests/test_contract.py":
                offenders.append(f"{rel}: {bad}")
    assert not offenders, offenders


def test_docstrings_and_comments_cite_no_issue_numbers():
    pattern = re.compile(r"\bissues?\s*#?\d+", re.I)
    offenders = [
        f"{p.relative_to(ROOT)}:{i}"
        for p in _tracked("*.py")
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not offenders, offenders


def test_numerical_modules_name_parameters_not_options():
    """Only resdiff/cli/ knows option names: elsewhere no error message starts with --."""
    raising = re.compile(r"(?:Error|raise \w+)\(\s*f?[\"']--")
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "resdiff").rglob("*.py")
        if "cli" not in p.parts and raising.search(p.read_text())
    ]
    assert not offenders, offenders


# --- the constraint tables --------------------------------------------------------------
def _experiments():
    from resdiff.experiments import (
        eoc,
        explosion,
        jacobian,
        kde,
        mnist_kernel,
        mnist_train,
        ntk,
        samples,
    )

    return [
        kde.kde,
        samples.samples,
        samples.correlation,
        ntk.ntk_convergence,
        mnist_kernel.mnist_kernel,
        mnist_kernel.mnist_kernel_dynamics,
        mnist_train.mnist_train,
        eoc.eoc,
        jacobian.jacobian,
        explosion.explosion,
    ]


# paths and flags, checked on use; the in-process draw store (no parameter: no number
# depends on it)
NOT_CONSTRAINED = {"data_dir", "checkpoint", "resume", "draw_store"}


@pytest.mark.parametrize("experiment", _experiments(), ids=lambda f: f.__name__)
def test_every_experiment_checks_every_parameter(experiment):
    names = set(inspect.signature(experiment).parameters) - NOT_CONSTRAINED
    assert names == set(experiment.constraints.params)


def test_an_experiment_called_directly_names_the_parameter():
    from resdiff.experiments.kde import kde

    with pytest.raises(ValueError, match=r"^width: 0 is not an integer from 1"):
        kde(
            depth=2,
            width=0,
            draws=2,
            z=[0.0],
            sigma_w2=1.0,
            sigma_b2=1.0,
            activation="tanh",
            methods=["resnet"],
            seed=0,
        )
    with pytest.raises(cons.ParameterError) as exc:
        kde(
            depth=2,
            width=2,
            draws=2,
            z=[0.0],
            sigma_w2=1.0,
            sigma_b2=1.0,
            activation="tanh",
            methods=["euler"],
            seed=0,
        )
    assert exc.value.parameter == "methods"


def test_rule_messages_name_other_parameters_in_the_callers_words():
    err = cons.ParameterError("z_min", "3 must be smaller than {z_max} (2)")
    assert str(err) == "z_min: 3 must be smaller than z_max (2)"
    assert err.body(lambda p: "--" + p.replace("_", "-")) == "3 must be smaller than --z-max (2)"


# --- the command line, in process ------------------------------------------------------
def _run(argv, tmp_path):
    from resdiff.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        with contextlib.chdir(tmp_path):
            with pytest.raises(SystemExit) as stop:
                main(argv)
    return stop.value.code, err.getvalue()


def _assert_refused(code, err):
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("resdiff: error: "), err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["kde", "--depth", "99999999999999999999999"],
        ["samples", "--inputs", "99999999999999999999"],
        ["samples", "--inputs", "2000000000"],
        ["correlation", "--grid", "100000"],
        ["mnist-train", "--size", "100000"],
        ["kde", "--depth", str(2**62), "--width", "1", "--draws", "2"],
    ],
    ids=lambda argv: " ".join(argv),
)
def test_absurd_sizes_are_refused_at_once(argv, tmp_path):
    code, err = _run(argv + ["--out", "x.csv"], tmp_path)
    _assert_refused(code, err)
    assert not list(tmp_path.iterdir())


def test_cli_words(tmp_path):
    from click.testing import CliRunner
    from resdiff.cli import cli

    for name in ("kde", "samples", "ntk-convergence"):
        assert "x<=None" not in CliRunner().invoke(cli, [name, "--help"]).output
    code, err = _run(["kdee"], tmp_path)
    _assert_refused(code, err)
    assert "Did you mean 'kde'?" in err
    code, err = _run(["eoc", "--activation", "swish"], tmp_path)
    _assert_refused(code, err)
    assert "--sigma-w2" not in err
    code, err = _run(["eoc", "--out", "e.csv"], tmp_path)
    assert code == 0 and "(1 row)" in err


# Extreme values of every numeric option; with the other options tiny, a run that is
# accepted finishes in well under a second once compiled.
INTS = st.sampled_from(
    ["-1", "0", "1", "2", "3", str(2**63 - 1), str(2**63), "99999999999999999999999"]
)
REALS = st.sampled_from(
    ["0", "-1e-300", "1e-320", "0.5", "1", "-2", "1e308", "-1e308", "inf", "nan"]
)
TINY = {
    "kde": ["--depth", "2", "--width", "2", "--draws", "2"],
    "samples": ["--depth", "2", "--width", "2", "--draws", "2", "--inputs", "3"],
    "correlation": ["--depth", "2", "--width", "2", "--draws", "2", "--grid", "3"],
    "ntk-convergence": ["--sizes", "2", "--draws", "2"],
    "eoc": [],
    "mnist-kernel": ["--n-train", "20"],
    "mnist-train": [
        "--size",
        "1",
        "--epochs",
        "1",
        "--n-train",
        "20",
        "--n-test",
        "20",
        "--device",
        "cpu",
    ],
}
NUMERIC = {
    "kde": {
        "--depth": INTS,
        "--width": INTS,
        "--draws": INTS,
        "--z": REALS,
        "--sigma-w2": REALS,
        "--sigma-b2": REALS,
        "--seed": INTS,
    },
    "samples": {
        "--depth": INTS,
        "--width": INTS,
        "--draws": INTS,
        "--inputs": INTS,
        "--z-min": REALS,
        "--z-max": REALS,
        "--sigma-w2": REALS,
        "--sigma-b2": REALS,
        "--nodes": INTS,
        "--keep-draws": INTS,
        "--quantiles": REALS,
        "--seed": INTS,
    },
    "correlation": {
        "--depth": INTS,
        "--width": INTS,
        "--draws": INTS,
        "--grid": INTS,
        "--z-min": REALS,
        "--z-max": REALS,
        "--sigma-w2": REALS,
        "--sigma-b2": REALS,
        "--nodes": INTS,
        "--seed": INTS,
    },
    "ntk-convergence": {
        "--sizes": INTS,
        "--draws": INTS,
        "--z": REALS,
        "--sigma-w2": REALS,
        "--sigma-b2": REALS,
        "--seed": INTS,
    },
    "eoc": {"--sigma-b2": REALS, "--seed": INTS},
    "mnist-kernel": {
        "--n-train": INTS,
        "--noise": REALS,
        "--sigma-w2": REALS,
        "--sigma-b2": REALS,
        "--seed": INTS,
    },
    "mnist-train": {
        "--size": INTS,
        "--epochs": INTS,
        "--batch-size": INTS,
        "--lr": REALS,
        "--n-train": INTS,
        "--n-test": INTS,
        "--sigma-w2": REALS,
        "--sigma-b2": REALS,
        "--seed": INTS,
    },
}
NEEDS = {
    "mnist-kernel": [needs_mnist],
    "mnist-train": [needs_mnist, pytest.mark.skipif(not HAVE_TORCH, reason="no torch")],
}


@st.composite
def _command(draw, name):
    argv = [name, *TINY[name]]
    options = NUMERIC[name]
    for opt in draw(
        st.lists(st.sampled_from(sorted(options)), min_size=1, max_size=3, unique=True)
    ):
        argv += [opt, draw(options[opt])]
        if opt == "--z" and name == "ntk-convergence":
            argv += [opt, "1"]
    model = draw(st.sampled_from(["resnet", "feedforward"]))
    if name in ("samples", "correlation"):
        argv += ["--model", model, "--activation", draw(st.sampled_from(["tanh", "swish", "relu"]))]
    return argv


@pytest.mark.parametrize("name", [pytest.param(n, marks=NEEDS.get(n, [])) for n in sorted(NUMERIC)])
@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_numeric_extremes_exit_0_or_2_with_one_line(name, data, tmp_path):
    argv = data.draw(_command(name)) + ["--out", "out.csv", "--quiet"]
    code, err = _run(argv, tmp_path)
    assert code in (0, 2), (argv, code, err)
    if code == 2:
        _assert_refused(code, err)
    else:
        assert "Traceback" not in err, (argv, err)


def test_what_make_all_figures_writes_outside_the_paper_preset_is_not_tracked():
    """``make all-figures`` (quick) and the smoke figures write only ignored paths: their
    training figures differ in the last bits between CPU vendors, so tracked copies
    would leave a dirty tree on another machine."""
    written = [
        "figures/quick/fig7.png",
        "figures/quick/fig6.pdf",
        "figures/smoke/fig2.png",
        "figures/data/quick/fig7-sgd-2.csv",
        "figures/data/quick/fig7-sgd-2.csv.json",
        "figures/data/quick/.fig7-sgd-2.csv.lock",
        "figures/data/paper/fig7-sgd-25.ckpt",
    ]
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *written], cwd=ROOT, capture_output=True, text=True
    ).stdout.split()
    assert ignored == written
    assert not _tracked("figures/quick", "figures/smoke", "figures/data/quick")


@pytest.mark.skipif(not (HAVE_MNIST and HAVE_TORCH), reason="trains on MNIST (PyTorch)")
def test_cli_sidecars_record_no_paths_or_flags(tmp_path):
    """``data_dir``, ``checkpoint`` and ``resume`` say where files are and how a run
    proceeds, not what it computes: as in the figures' sidecars, the subcommands'
    sidecars do not record them as parameters."""
    import json

    for argv in (
        [
            "mnist-train",
            "--arch",
            "fc",
            "--size",
            "2",
            "--optimizer",
            "sgd",
            "--epochs",
            "1",
            "--n-train",
            "200",
            "--n-test",
            "200",
        ],
        ["mnist-kernel", "--n-train", "200"],
    ):
        out = tmp_path / f"{argv[0]}.csv"
        res = run_cli(*argv, "--out", out, "--quiet")
        assert res.returncode == 0, res.stderr
        params = json.loads((tmp_path / f"{argv[0]}.csv.json").read_text())["params"]
        assert not NOT_CONSTRAINED & set(params), params
