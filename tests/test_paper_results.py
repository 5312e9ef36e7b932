"""The paper-scale results committed under figures/ are what the current code computes.

``figures/data/paper/`` holds the CSVs and sidecars that ``figures/paper/`` was drawn
from (Figs. 1-5 and 8, and the finished training runs of Fig. 6). Each CSV must match
its sidecar and still be a valid cache for the registry's paper parameters and the
current numerical versions (:mod:`resdiff.numerics`), so ``resdiff fig N --preset
paper`` redraws from it without computing; each committed figure, a partial one
(``figN-maxM``, drawn with ``--max-size``, or ``figN-partial``, drawn with
``--partial``) included, must record exactly these sidecars. A bumped version fails
here: recompute the datasets it names (``resdiff fig N --preset paper``) and commit the
new files (docs/numerics.md). A change of numbers without a bump is caught by the
golden tests (tests/test_golden.py); ``resdiff verify`` recomputes a slice of each.
"""

import json

import pytest

from resdiff import files, pipeline
from resdiff.figures import FIGURES
from tests.conftest import ROOT

DATA = ROOT / "figures" / "data" / "paper"
NAMED = [key for key in FIGURES if isinstance(key, str)]  # the figures beyond the paper
COMMITTED = (
    sorted(p for p in DATA.glob("*.csv") if p.stem.startswith(("fig", *NAMED)))
    if DATA.is_dir()
    else []
)


def _key_and_name(stem):
    """``fig2-kde`` -> (2, "kde"); ``jacobian-size-10`` -> ("jacobian", "size-10")."""
    head, name = stem.split("-", 1)
    return (int(head[3:]) if head.startswith("fig") else head), name


def _unit(csv):
    number, name = _key_and_name(csv.stem)
    return pipeline.Unit(number, name, pipeline.Request("paper", ROOT / "figures"))


@pytest.mark.skipif(not COMMITTED, reason="no paper-scale results committed")
@pytest.mark.parametrize("csv", COMMITTED, ids=lambda p: p.stem)
def test_committed_csv_is_a_valid_cache_for_the_current_code(csv):
    unit = _unit(csv)
    check = unit.check_cached()
    assert check.reusable, (
        f"{csv.name}: {check.reason}; recompute it with resdiff fig {unit.figure} --preset paper"
    )
    assert check.sidecar["git_dirty"] is False  # computed from committed code
    assert check.sidecar["rows"] == len(csv.read_text().splitlines()) - 1


FIGURE_DIR = ROOT / "figures" / "paper"
PNGS = sorted(FIGURE_DIR.glob("fig*.png")) + [
    FIGURE_DIR / f"{n}.png" for n in NAMED if (FIGURE_DIR / f"{n}.png").is_file()
]


def _selection(png):
    """``fig6-max100.png`` -> (6, 100, False), drawn with ``resdiff fig --max-size 100``;
    ``fig6-partial.png`` -> (6, None, True), drawn with ``--partial``; ``fig2.png`` ->
    (2, None, False); ``jacobian.png`` -> ("jacobian", None, False)."""
    if png.stem in NAMED:
        return png.stem, None, False
    number, *tags = png.stem[3:].split("-")
    max_size = next((int(t[3:]) for t in tags if t.startswith("max")), None)
    return int(number), max_size, "partial" in tags


@pytest.mark.parametrize("png", PNGS, ids=lambda p: p.stem)
def test_committed_figure_was_drawn_from_the_committed_csvs(png):
    """The PNG's provenance names the paper preset, the sizes and datasets a partial
    figure leaves out, and the digest of exactly the committed sidecars (what
    :func:`resdiff.pipeline.draw` records). A ``--partial`` figure is committed only
    while the datasets it lacks are: once they are, draw the whole figure instead."""
    number, max_size, partial = _selection(png)
    assert (
        pipeline.figure_paths(ROOT / "figures", "paper", number, None, max_size, partial)[1] == png
    )
    from PIL import Image

    with Image.open(png) as image:
        provenance = json.loads(image.info["Description"])
    left_out = provenance.get("missing", [])
    assert bool(left_out) == partial
    names = FIGURES[number].names("paper", max_size)
    paths = {n: pipeline.data_path(ROOT / "figures", "paper", number, n) for n in names}
    absent = [n for n, p in paths.items() if not p.is_file()]
    assert absent == left_out, (
        f"{png.name} lacks {left_out}, but the datasets not "
        f"committed are {absent}: redraw it (or, with none absent, "
        "replace it by the whole figure)"
    )
    sidecars = files.normalise(
        {n: files.read_sidecar(p) for n, p in paths.items() if n not in left_out}
    )
    assert provenance["preset"] == "paper"
    assert provenance.get("left_out_sizes", []) == FIGURES[number].left_out("paper", max_size)
    assert provenance["data_digest"] == pipeline.data_digest(sidecars)


@pytest.mark.parametrize("number", sorted({_key_and_name(p.stem)[0] for p in COMMITTED}, key=str))
def test_a_figure_whose_data_is_all_committed_is_committed(number):
    names = FIGURES[number].names("paper")
    if not all(pipeline.data_path(ROOT / "figures", "paper", number, n).is_file() for n in names):
        pytest.skip(f"fig {number}: not every dataset of the paper preset is committed yet")
    assert pipeline.figure_paths(ROOT / "figures", "paper", number)[1].is_file()


UNUSED = "\n\ndef _unused_helper_added_by_a_refactor():\n    return 42\n"


@pytest.mark.skipif(not (FIGURE_DIR / "fig6.png").is_file(), reason="fig 6 not committed")
def test_a_refactor_keeps_the_committed_training_runs(tmp_path):
    """Results survive refactoring: with an unused function added to the training code,
    a sampling kernel, the constraint tables and the generator, ``resdiff fig 6 --preset
    paper`` computes nothing and finds the figure up to date."""
    import shutil
    import subprocess
    import sys

    repo = tmp_path / "repo"
    shutil.copytree(
        ROOT / "resdiff", repo / "resdiff", ignore=shutil.ignore_patterns("__pycache__")
    )
    for module in ("mnist/train.py", "sampling/resnet.py", "constraints.py", "rng.py"):
        with open(repo / "resdiff" / module, "a") as fh:
            fh.write(UNUSED)
    (repo / "figures" / "paper").mkdir(parents=True)
    for path in FIGURE_DIR.glob("fig6.*"):
        shutil.copy(path, repo / "figures" / "paper" / path.name)
    shutil.copytree(
        DATA,
        repo / "figures" / "data" / "paper",
        ignore=lambda d, names: [n for n in names if not n.startswith("fig6-")],
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "PYTHONPATH"}
    res = subprocess.run(
        [sys.executable, "-m", "resdiff", "fig", "6", "--preset", "paper"],
        cwd=repo,
        env={**env, "PYTHONPATH": str(repo)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert "computing" not in res.stderr, res.stderr
    assert "up to date" in res.stderr, res.stderr
    assert res.stderr.count("reusing") == len(FIGURES[6].names("paper"))
