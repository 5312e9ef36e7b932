"""Code digests: a dataset's cache key changes with the code that computes it, and
only with that code. Edits are made to copies of the package in a temporary folder
(each state its own copy: digests are computed once per folder and process)."""

import shutil

import pytest

from resdiff import sources

KDE = "resdiff.experiments.kde:kde"
TRAIN = "resdiff.experiments.mnist_train:mnist_train"


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "original" / "resdiff"
    shutil.copytree(sources.ROOT, root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _copy(tree, name):
    root = tree.parents[1] / name / "resdiff"
    shutil.copytree(tree, root)
    return root


def _edit(path, old, new):
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_copy_has_the_same_digests(tree):
    for target in (KDE, TRAIN):
        assert sources.code_digest(target, root=tree) == sources.code_digest(target)
    assert sources.computing_digest(tree) == sources.computing_digest()


def test_closure_follows_imports_and_leaves_out_io_and_cli():
    modules = sources.closure("resdiff.experiments.kde")
    for needed in (
        "resdiff.sampling.resnet",
        "resdiff.rng",
        "resdiff.activations",
        "resdiff.sampling.linalg",
        "resdiff.experiments",
        "resdiff",
    ):
        assert needed in modules
    for left_out in (
        "resdiff.files",
        "resdiff.progress",
        "resdiff.pipeline",
        "resdiff.cli",
        "resdiff.cli.kde",
        "resdiff.plots.fig2",
        "resdiff.mnist.train",
        "resdiff.experiments.samples",
    ):
        assert left_out not in modules
    # function-level imports count (mnist_train imports torch code inside functions)
    assert "resdiff.mnist.train" in sources.closure("resdiff.experiments.mnist_train")


def test_help_text_plot_and_comment_edits_keep_the_cache(tree):
    before = {t: sources.code_digest(t, root=tree) for t in (KDE, TRAIN)}
    numba_before = sources.computing_digest(tree)
    tree = _copy(tree, "edited")
    _edit(tree / "cli" / "kde.py", 'help="', 'help="Edited help. ')
    _edit(tree / "cli" / "fig.py", "paper: the paper's scale", "paper: the scale of the paper")
    _edit(tree / "plots" / "fig2.py", "def plot(", "def plot(  # edited comment\n        ")
    _edit(tree / "progress.py", "def info(message):", "def info(message):\n    pass")
    _edit(
        tree / "sampling" / "resnet.py",
        '"""',
        '"""Edited docstring. ',
    )
    _edit(tree / "rng.py", "\n", "\n# an added comment\n")
    assert {t: sources.code_digest(t, root=tree) for t in (KDE, TRAIN)} == before
    assert sources.computing_digest(tree) == numba_before


def test_kernel_edit_invalidates_exactly_the_datasets_that_use_it(tree):
    kde, train = (sources.code_digest(t, root=tree) for t in (KDE, TRAIN))
    numba_before = sources.computing_digest(tree)
    # a numerical kernel of the ResNet sampler: kde uses it, training does not
    one = _copy(tree, "resnet-edited")
    _edit(one / "sampling" / "resnet.py", "@njit(", "EDITED = 1\n\n\n@njit(")
    assert sources.code_digest(KDE, root=one) != kde
    assert sources.code_digest(TRAIN, root=one) == train
    assert sources.computing_digest(one) != numba_before
    # the RNG is shared: both change
    two = _copy(tree, "rng-edited")
    _edit(two / "rng.py", "@njit(", "EDITED = 2\n\n\n@njit(")
    assert sources.code_digest(KDE, root=two) != kde
    assert sources.code_digest(TRAIN, root=two) != train


@pytest.mark.parametrize("numba_first", [False, True])
def test_numba_is_configured_by_the_first_kernel_import_only(numba_first, tmp_path):
    """`import resdiff` (and the CLI) has no side effects; importing a kernel module sets
    Numba's cache directory to one keyed on the computing sources, even when numba
    was imported before."""
    import os
    import subprocess
    import sys
    from tests.conftest import ROOT

    code = "\n".join(
        [
            "import os",
            "import numba" if numba_first else "",
            "import resdiff, resdiff.cli, resdiff.pipeline",
            "assert 'NUMBA_CACHE_DIR' not in os.environ, 'set on import resdiff'",
            "import resdiff.rng",
            "import numba",
            "print(os.environ['NUMBA_CACHE_DIR'])",
            "print(numba.core.config.CACHE_DIR)",
        ]
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["RESDIFF_NUMBA_CACHE"] = str(tmp_path)
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    expected = str(tmp_path / sources.computing_digest())
    assert res.stdout.split() == [expected, expected]
