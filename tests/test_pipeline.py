"""resdiff.pipeline on its own, with a stand-in figure (no numerics): what is computed,
reused, recomputed and redrawn; output checks before any work; and two real `fig`
processes racing for the same outputs."""

import shutil
import subprocess
import sys

import pandas as pd
import pytest

from resdiff import pipeline
from resdiff.errors import UserError
from resdiff import numerics
from resdiff.figures import PRESETS, Dataset, Figure
from tests.conftest import ROOT, run_cli

CALLS = []


def count_experiment(n, seed):
    """A stand-in experiment: ``n`` rows, and a record of the call."""
    from resdiff.experiments import Result

    CALLS.append((n, seed))
    return Result(pd.DataFrame({"i": range(n), "v": [seed + i / 3 for i in range(n)]}), {"n": n})


def plot_rows(frames, sidecars, preset):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot(frames["a"]["i"], frames["a"]["v"])
    return fig


NUMBER = 99


@pytest.fixture(autouse=True)
def stand_in_numerics(monkeypatch):
    """The stand-in experiments of this module, computed by family ``rng``."""
    for name in ("count_experiment", "store_experiment", "sized_experiment"):
        monkeypatch.setitem(numerics.EXPERIMENTS, f"{__name__}:{name}", lambda params: ("rng",))


@pytest.fixture
def figure(monkeypatch):
    CALLS.clear()
    spec = Figure(
        NUMBER,
        "stand-in",
        f"{__name__}:plot_rows",
        {"a": Dataset(f"{__name__}:count_experiment", {p: dict(n=20, seed=0) for p in PRESETS})},
    )
    monkeypatch.setitem(pipeline.FIGURES, NUMBER, spec)
    return spec


def _make(out, **kwargs):
    return pipeline.make_figure(NUMBER, pipeline.Request("smoke", out, **kwargs))


def test_computes_once_then_reuses_and_does_not_redraw(figure, tmp_path, capsys):
    targets = _make(tmp_path)
    assert targets == [tmp_path / "smoke" / f"fig{NUMBER}.{e}" for e in ("pdf", "png")]
    csv = tmp_path / "data" / "smoke" / f"fig{NUMBER}-a.csv"
    assert CALLS == [(20, 0)] and csv.is_file()
    stamps = [t.stat().st_mtime_ns for t in targets]
    _make(tmp_path)
    assert CALLS == [(20, 0)]
    assert [t.stat().st_mtime_ns for t in targets] == stamps
    assert "up to date" in capsys.readouterr().err
    # only the outputs remain: no temporary or lock files
    leftovers = [p for p in tmp_path.rglob(".*")]
    assert leftovers == []


def test_a_damaged_csv_is_recomputed_with_one_warning(figure, tmp_path, capsys):
    _make(tmp_path)
    csv = tmp_path / "data" / "smoke" / f"fig{NUMBER}-a.csv"
    good = csv.read_bytes()
    for damaged in (good[: len(good) // 2], b"", b"\xff\xfe\x00garbage\x81" * 10):
        csv.write_bytes(damaged)
        capsys.readouterr()
        _make(tmp_path)
        err = capsys.readouterr().err
        warnings = [line for line in err.splitlines() if "warning" in line]
        assert len(warnings) == 1 and "does not match its sidecar" in warnings[0], err
        assert "Traceback" not in err
        assert csv.read_bytes() == good
    assert len(CALLS) == 4


def test_other_numerics_or_force_recomputes_without_warning(figure, tmp_path, capsys, monkeypatch):
    _make(tmp_path)
    monkeypatch.setattr(pipeline, "dataset_numerics", lambda dataset, params: {"x": 2})
    capsys.readouterr()
    _make(tmp_path)
    assert len(CALLS) == 2 and "warning" not in capsys.readouterr().err
    _make(tmp_path)
    assert len(CALLS) == 2
    _make(tmp_path, force=True)
    assert len(CALLS) == 3


def test_seed_keeps_its_own_files(figure, tmp_path):
    _make(tmp_path, seed=5)
    _make(tmp_path)
    assert CALLS == [(20, 5), (20, 0)]
    assert (tmp_path / "data" / "smoke" / f"fig{NUMBER}-a-seed5.csv").is_file()


STORES = []


def store_experiment(n, seed, draw_store=None):
    """A stand-in experiment that shares draws: records the store it was handed."""
    STORES.append(draw_store)
    return count_experiment(n, seed)


def test_one_draw_store_per_process_reaches_only_the_experiments_that_share_draws(
    monkeypatch, tmp_path
):
    """`fig` hands one store to every figure it makes in its process; it is not a
    parameter, so the sidecar and the cache key do not see it."""
    CALLS.clear()
    STORES.clear()
    for number, n in ((NUMBER, 20), (NUMBER + 1, 30)):
        monkeypatch.setitem(
            pipeline.FIGURES,
            number,
            Figure(
                number,
                "stand-in",
                f"{__name__}:plot_rows",
                {
                    "a": Dataset(
                        f"{__name__}:store_experiment",
                        {p: dict(n=n, seed=0) for p in PRESETS},
                        shares_draws=True,
                    ),
                    "b": Dataset(
                        f"{__name__}:count_experiment",  # would fail on draw_store=
                        {p: dict(n=n + 1, seed=0) for p in PRESETS},
                    ),
                },
            ),
        )
    store = pipeline.DrawStore()
    for number in (NUMBER, NUMBER + 1):
        pipeline.make_figure(number, pipeline.Request("smoke", tmp_path), draw_store=store)
    assert STORES == [store, store] and len(CALLS) == 4
    side = pipeline.files.read_sidecar(tmp_path / "data" / "smoke" / f"fig{NUMBER}-a.csv")
    assert side["params"] == {"n": 20, "seed": 0}
    # without one, each figure gets a store of its own
    pipeline.make_figure(NUMBER, pipeline.Request("smoke", tmp_path, force=True))
    assert isinstance(STORES[-1], pipeline.DrawStore) and STORES[-1] is not store


@pytest.fixture
def unwritable(tmp_path):
    """``D`` that cannot be written while ``D/data`` can (chmod, or for root, which
    permission bits do not stop, the immutable attribute)."""
    out = tmp_path / "D"
    (out / "data").mkdir(parents=True)
    out.chmod(0o555)
    immutable = False
    if _writable(out) and shutil.which("chattr"):
        immutable = subprocess.run(["chattr", "+i", str(out)], capture_output=True).returncode == 0
    try:
        if _writable(out) or not _writable(out / "data"):
            pytest.skip("cannot make a directory unwritable here")
        yield out
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(out)], check=True)
        out.chmod(0o755)


def _writable(folder):
    probe = folder / ".probe"
    try:
        probe.write_text("")
    except OSError:
        return False
    probe.unlink()
    return True


def test_unwritable_out_dir_fails_before_computing(figure, unwritable):
    with pytest.raises(UserError, match="cannot write figure"):
        _make(unwritable)
    assert CALLS == [] and list((unwritable / "data").iterdir()) == []


def test_fig_command_checks_every_output_before_computing(unwritable):
    res = run_cli("fig", "2,3", "--preset", "smoke", "--out-dir", unwritable, timeout=120)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "cannot write figure" in res.stderr, res.stderr
    assert list((unwritable / "data").iterdir()) == []


def test_two_identical_runs_at_once_compute_once(tmp_path):
    """Two `fig 2` processes into one folder: both succeed, one computes, the other
    waits for it and reuses its CSV; no temporary or lock file is left."""
    argv = [
        sys.executable,
        "-m",
        "resdiff",
        "fig",
        "2",
        "--preset",
        "smoke",
        "--out-dir",
        str(tmp_path),
    ]
    procs = [
        subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [(p.wait(timeout=600), p.communicate()[1]) for p in procs]
    for code, err in results:
        assert code == 0, err
    errs = [err for _, err in results]
    assert sum("computing kde" in err for err in errs) == 1, errs
    assert sum("reusing" in err for err in errs) == 1, errs
    assert [p for p in tmp_path.rglob(".*")] == []
    assert (tmp_path / "smoke" / "fig2.png").is_file()


PLOTTED = []


def plot_sizes(frames, sidecars, preset, left_out=(), missing=()):
    """A stand-in training plot: records the sizes it was given and what it was told
    is left out (sizes, and datasets when ``missing`` is given)."""
    PLOTTED.append(
        (sorted(frames["runs"]["size"].unique().tolist()), list(left_out))
        + ((list(missing), "line" in frames) if missing else ())
    )
    return plot_rows({"a": frames["runs"]}, sidecars, preset)


def sized_experiment(n, seed, size):
    """A stand-in training run of a network of size D = L = ``size``."""
    from resdiff.experiments import Result

    CALLS.append((n, size))
    return Result(
        pd.DataFrame({"i": range(n), "v": [seed + i for i in range(n)], "size": size}), {"n": n}
    )


@pytest.fixture
def training_figure(monkeypatch):
    """A stand-in for Figs. 6-7: one run per size D = L in {4, 8, 16}, one curve, and a
    dataset without a size (like the kernel line); the registry lists the largest run
    first."""
    CALLS.clear()
    PLOTTED.clear()
    runs = {
        f"run-{size}": Dataset(
            f"{__name__}:sized_experiment",
            {p: dict(n=5, seed=0, size=size) for p in PRESETS},
            group="runs",
            takes_precision=True,
        )
        for size in (16, 4, 8)
    }
    spec = Figure(
        NUMBER,
        "stand-in training",
        f"{__name__}:plot_sizes",
        {
            **runs,
            "line": Dataset(
                f"{__name__}:count_experiment", {p: dict(n=3, seed=0) for p in PRESETS}
            ),
        },
    )
    monkeypatch.setitem(pipeline.FIGURES, NUMBER, spec)
    return spec


def _provenance(png):
    import json

    from PIL import Image

    with Image.open(png) as image:
        return json.loads(image.info["Description"])


def test_max_size_draws_a_partial_figure_from_the_whole_figures_csvs(training_figure, tmp_path):
    targets = _make(tmp_path, max_size=10)
    assert [t.name for t in targets] == [f"fig{NUMBER}-max8.pdf", f"fig{NUMBER}-max8.png"]
    assert sorted(CALLS) == [(3, 0), (5, 4), (5, 8)]  # D = L = 16 is not trained
    assert PLOTTED == [([4, 8], [16])]  # ... and the caption says so
    provenance = _provenance(targets[1])
    assert provenance["left_out_sizes"] == [16]
    assert sorted(provenance["sidecars"]) == ["line", "run-4", "run-8"]
    # the whole figure reuses those CSVs and trains only what was left out
    whole = _make(tmp_path)
    assert whole[1].name == f"fig{NUMBER}.png" and "left_out_sizes" not in _provenance(whole[1])
    assert sorted(CALLS) == [(3, 0), (5, 4), (5, 8), (5, 16)]
    assert PLOTTED[1] == ([4, 8, 16], [])
    # a bound that leaves nothing out is the whole figure, already drawn
    assert _make(tmp_path, max_size=16) == whole and len(PLOTTED) == 2


def test_max_size_below_every_size_fails_before_computing(training_figure, tmp_path):
    with pytest.raises(UserError, match="no network of the smoke preset has D = L <= 3"):
        _make(tmp_path, max_size=3)
    assert CALLS == [] and not tmp_path.joinpath("data").exists()


def test_max_size_is_in_the_command_that_reruns_a_unit(training_figure):
    unit = pipeline.units(NUMBER, pipeline.Request("smoke", "out", max_size=8))[0]
    assert unit.rerun_command().endswith("--max-size 8")


def test_partial_draws_what_is_computed_and_computes_nothing(training_figure, tmp_path):
    _make(tmp_path, max_size=4)  # the line and D = L = 4 are computed
    CALLS.clear()
    targets = pipeline.draw_partial([NUMBER], pipeline.Request("smoke", tmp_path))[0]
    assert [t.name for t in targets] == [f"fig{NUMBER}-partial.pdf", f"fig{NUMBER}-partial.png"]
    assert CALLS == []
    assert PLOTTED[-1] == ([4], [], ["run-16", "run-8"], True)  # registry order
    provenance = _provenance(targets[1])
    assert provenance["missing"] == ["run-16", "run-8"]
    assert sorted(provenance["sidecars"]) == ["line", "run-4"]
    # once everything is computed, --partial is the whole figure, already drawn
    whole = _make(tmp_path)
    plotted = len(PLOTTED)
    assert pipeline.draw_partial([NUMBER], pipeline.Request("smoke", tmp_path)) == [whole]
    assert len(PLOTTED) == plotted and "missing" not in _provenance(whole[1])


def test_partial_leaves_out_a_damaged_cache(training_figure, tmp_path):
    _make(tmp_path)
    csv = pipeline.data_path(tmp_path, "smoke", NUMBER, "run-8")
    csv.write_text(csv.read_text()[:-3])  # truncated
    targets = pipeline.draw_partial([NUMBER], pipeline.Request("smoke", tmp_path))[0]
    assert _provenance(targets[1])["missing"] == ["run-8"]
    assert PLOTTED[-1] == ([4, 16], [], ["run-8"], True)


def test_partial_without_any_training_run_fails_and_writes_nothing(training_figure, tmp_path):
    with pytest.raises(UserError, match="none of its training runs .* is computed yet"):
        pipeline.draw_partial([NUMBER], pipeline.Request("smoke", tmp_path))
    assert CALLS == [] and list(tmp_path.iterdir()) == []


def test_partial_refuses_a_figure_that_trains_nothing(figure, tmp_path):
    with pytest.raises(UserError, match="only to the training figures"):
        pipeline.draw_partial([NUMBER], pipeline.Request("smoke", tmp_path))


def test_one_process_trains_the_smaller_networks_first(training_figure, tmp_path):
    _make(tmp_path)
    assert CALLS == [(3, 0), (5, 4), (5, 8), (5, 16)]


def test_executors_get_the_smaller_training_runs_first():
    """Fig. 6's paper preset goes out smallest D = L first, in registry order within a
    size (GD, SGD, full-batch Adam, Adam), the datasets without a size first."""
    units = pipeline.units(6, pipeline.Request("paper", "figures"))
    order = pipeline.smallest_first(units)
    assert sorted(map(id, order)) == sorted(map(id, units))  # a permutation
    sizes = [u.params.get("size", 0) for u in order]
    assert sizes == sorted(sizes)
    assert [u.name for u in order[:3]] == ["kernel", "limit-gd", "limit-sgd"]
    assert [u.name for u in order[3:7]] == ["gd-10", "sgd-10", "adam-full-10", "adam-10"]
    assert order[-1].name == "adam-500"
