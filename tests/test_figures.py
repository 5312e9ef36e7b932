"""Every figure at the smoke preset: valid PDF and PNG files, provenance,
cache reuse and clean errors."""

import json
from pathlib import Path

import pytest

from resdiff.figures import FIGURES, PRESETS, stem
from tests.conftest import HAVE_MNIST, HAVE_TORCH, run_cli

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# Figs. 6-7 train on MNIST with PyTorch: without either they are left to the MNIST tests'
# skip messages, and the other six are still checked
CAN_TRAIN = HAVE_MNIST and HAVE_TORCH
BEYOND = ["jacobian", "explosion"]  # the figures beyond the paper
SMOKE_FIGURES = (list(range(1, 9)) if CAN_TRAIN else [1, 2, 3, 4, 5, 8]) + BEYOND
needs_training = pytest.mark.skipif(not CAN_TRAIN, reason="Figs. 6-7 need MNIST and PyTorch")


@pytest.fixture(scope="module")
def smoke_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("figs")
    res = run_cli(
        "fig", ",".join(map(str, SMOKE_FIGURES)), "--preset", "smoke", "--out-dir", out, timeout=900
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return out


def test_registry_has_all_eight_figures_with_every_preset():
    assert [k for k in FIGURES if isinstance(k, int)] == list(range(1, 9))
    assert [k for k in FIGURES if isinstance(k, str)] == ["jacobian", "explosion"]
    for fig in FIGURES.values():
        for dataset in fig.datasets.values():
            assert set(dataset.params) <= set(PRESETS) and dataset.params
            for params in dataset.params.values():
                assert "seed" in params
        # what the plot receives is the same at every preset: only sizes may differ
        assert len({tuple(fig.groups(p)) for p in PRESETS}) == 1


def test_training_runs_are_one_dataset_each_grouped_by_optimizer():
    fig6 = FIGURES[6]
    assert list(fig6.groups("smoke")) == [
        "gd",
        "sgd",
        "adam-full",
        "adam",
        "kernel",
        "limit-gd",
        "limit-sgd",
    ]
    assert fig6.groups("smoke")["adam-full"] == ["adam-full-4", "adam-full-8"]
    assert fig6.groups("paper")["sgd"] == [f"sgd-{s}" for s in (10, 20, 50, 100, 200, 500)]
    for name in fig6.groups("paper")["sgd"]:
        assert fig6.params(name, "paper")["size"] == int(name.split("-")[1])
        assert fig6.datasets[name].resumable


@pytest.mark.parametrize(
    "number",
    [pytest.param(n, marks=needs_training) if n in (6, 7) else n for n in [*range(1, 9), *BEYOND]],
)
def test_smoke_figure_files_are_valid_images(smoke_dir, number):
    import matplotlib.image as mpimg

    png = smoke_dir / "smoke" / f"{stem(number)}.png"
    pdf = smoke_dir / "smoke" / f"{stem(number)}.pdf"
    assert png.read_bytes()[:8] == PNG_MAGIC
    img = mpimg.imread(png)
    assert img.shape[0] > 200 and img.shape[1] > 200
    assert img[..., :3].std() > 0.01  # not blank
    head = pdf.read_bytes()
    assert head.startswith(b"%PDF-") and b"%%EOF" in head[-1024:]
    # provenance: preset and sidecars in the PNG metadata
    from PIL import Image

    meta = json.loads(Image.open(png).info["Description"])
    assert meta["preset"] == "smoke" and meta["figure"] == number
    for side in meta["sidecars"].values():
        assert Path(side).is_file()


@pytest.mark.parametrize("number", SMOKE_FIGURES)
def test_no_text_is_cut_off_at_the_figure_edge(smoke_dir, tmp_path, monkeypatch, number):
    """Titles, labels, legends and the caption lie inside the figure (Fig. 6's caption
    lines are longer than the figure is wide); redrawn from the smoke CSVs."""
    import shutil

    from matplotlib.figure import Figure
    from matplotlib.text import Text

    from resdiff import pipeline

    shutil.copytree(smoke_dir / "data", tmp_path / "data")
    cut = []
    save = Figure.savefig

    def checked_save(fig, *args, **kwargs):
        fig.canvas.draw()
        renderer, box = fig.canvas.get_renderer(), fig.bbox
        # tick labels outside an axis' limits exist but are not drawn
        ticks = {
            id(label)
            for ax in fig.axes
            for get in ("get_xticklabels", "get_yticklabels", "get_zticklabels")
            if hasattr(ax, get)
            for label in getattr(ax, get)(which="both")
        }
        for text in fig.findobj(Text):
            if text.get_visible() and text.get_text().strip() and id(text) not in ticks:
                extent = text.get_window_extent(renderer)
                if (
                    extent.x0 < box.x0 - 1
                    or extent.x1 > box.x1 + 1
                    or extent.y0 < box.y0 - 1
                    or extent.y1 > box.y1 + 1
                ):
                    cut.append(text.get_text())
        return save(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", checked_save)
    pipeline.make_figure(number, pipeline.Request("smoke", tmp_path))
    assert cut == []


def test_two_local_workers_give_the_serial_bytes(smoke_dir, tmp_path):
    """Figs. 2, 4 and 6 with --jobs 2 (each dataset, each training run, on a worker
    process with one thread) write the CSVs of the serial run, byte for byte."""
    figs = [2, 4, 6] if CAN_TRAIN else [2, 4]
    res = run_cli(
        "fig",
        ",".join(map(str, figs)),
        "--preset",
        "smoke",
        "--out-dir",
        tmp_path,
        "--jobs",
        "2",
        timeout=900,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "on 2 local workers" in res.stderr
    names = [f"fig{n}-{name}.csv" for n in figs for name in FIGURES[n].names("smoke")]
    # Fig. 6: 4 optimizers x 2 sizes, kernel regression and the two theory lines
    assert len(names) == 1 + 6 + 11 * (6 in figs)
    for name in names:
        parallel = (tmp_path / "data" / "smoke" / name).read_bytes()
        assert parallel == (smoke_dir / "data" / "smoke" / name).read_bytes(), name


def test_redrawn_figure_has_the_same_bytes(smoke_dir, tmp_path):
    """Drawn again from the same CSVs, a figure is the same file, PDF included (no
    creation date), so a committed figure redrawn elsewhere leaves git clean."""
    import shutil

    from resdiff import pipeline

    shutil.copytree(smoke_dir / "data", tmp_path / "data")
    targets = pipeline.make_figure(3, pipeline.Request("smoke", tmp_path))
    first = [t.read_bytes() for t in targets]
    for t in targets:
        t.unlink()
    assert pipeline.make_figure(3, pipeline.Request("smoke", tmp_path)) == targets
    assert [t.read_bytes() for t in targets] == first


def test_second_run_reuses_the_cache(smoke_dir):
    png = smoke_dir / "smoke" / "fig2.png"
    before = png.stat().st_mtime_ns
    res = run_cli("fig", "2", "--preset", "smoke", "--out-dir", smoke_dir)
    assert res.returncode == 0, res.stderr
    assert "reusing" in res.stderr and "computing" not in res.stderr
    assert "up to date" in res.stderr and png.stat().st_mtime_ns == before  # not redrawn


def test_same_csv_computed_again_is_not_redrawn(smoke_dir):
    """A dataset recomputed with the same bytes, at another time, commit or machine (as
    on a fresh clone), leaves its figure as it is; other bytes would redraw it."""
    from resdiff import pipeline

    side = smoke_dir / "data" / "smoke" / "fig3-ntk.csv.json"
    record = json.loads(side.read_text())
    again = {
        **record,
        "wall_time_s": record["wall_time_s"] + 1,
        "git_commit": "0" * 40,
        "machine": {"cpu": "another"},
        "threads": 7,
    }
    assert pipeline.data_digest({"ntk": again}) == pipeline.data_digest({"ntk": record})
    assert pipeline.data_digest(
        {"ntk": {**record, "csv_sha256": "0" * 64}}
    ) != pipeline.data_digest({"ntk": record})
    png = smoke_dir / "smoke" / "fig3.png"
    before = png.stat().st_mtime_ns
    original = side.read_text()
    side.write_text(json.dumps(again))
    try:
        res = run_cli("fig", "3", "--preset", "smoke", "--out-dir", smoke_dir)
    finally:
        side.write_text(original)  # the session's smoke data, as the other tests expect
    assert res.returncode == 0, res.stderr
    assert "up to date" in res.stderr and png.stat().st_mtime_ns == before


def test_changed_parameters_are_not_reused(smoke_dir, tmp_path):
    csv = smoke_dir / "data" / "smoke" / "fig2-kde.csv"
    side = Path(str(csv) + ".json")
    record = json.loads(side.read_text())
    record["params"]["draws"] += 1  # as if computed with other parameters
    side.write_text(json.dumps(record))
    res = run_cli("fig", "2", "--preset", "smoke", "--out-dir", smoke_dir)
    assert res.returncode == 0, res.stderr
    # recomputed with the registry's parameters: the same bytes, so the figure stands
    assert "computing" in res.stderr and "up to date" in res.stderr


def test_show_params_prints_provenance(smoke_dir):
    res = run_cli("fig", "3", "--preset", "smoke", "--out-dir", smoke_dir, "--show-params")
    assert res.returncode == 0, res.stderr
    assert "params:" in res.stdout and "cached" in res.stdout


def test_other_numerical_versions_are_not_reused(smoke_dir):
    """A CSV made by code of another numerical version is recomputed; one made by other
    code of the same versions (a refactor) is reused."""
    csv = smoke_dir / "data" / "smoke" / "fig8-tanh.csv"
    side = Path(str(csv) + ".json")
    record = json.loads(side.read_text())
    assert record["source_digest"] and record["numerics"]["resnet"]
    record["source_digest"] = "0" * 16
    side.write_text(json.dumps(record))
    res = run_cli("fig", "8", "--preset", "smoke", "--out-dir", smoke_dir)
    assert res.returncode == 0, res.stderr
    assert "computing" not in res.stderr
    record["numerics"]["resnet"] -= 1
    side.write_text(json.dumps(record))
    res = run_cli("fig", "8", "--preset", "smoke", "--out-dir", smoke_dir)
    assert res.returncode == 0, res.stderr
    assert "computing tanh" in res.stderr and "reusing" in res.stderr  # swish still valid


def test_seed_option_keeps_its_own_data(smoke_dir):
    res = run_cli("fig", "8", "--preset", "smoke", "--out-dir", smoke_dir, "--seed", "7")
    assert res.returncode == 0, res.stderr
    data = smoke_dir / "data" / "smoke"
    seven = json.loads((data / "fig8-tanh-seed7.csv.json").read_text())
    zero = json.loads((data / "fig8-tanh.csv.json").read_text())
    assert seven["params"]["seed"] == 7 and zero["params"]["seed"] == 0
    assert (data / "fig8-tanh-seed7.csv").read_bytes() != (data / "fig8-tanh.csv").read_bytes()
    from PIL import Image

    meta = json.loads(Image.open(smoke_dir / "smoke" / "fig8.png").info["Description"])
    assert all("seed7" in side for side in meta["sidecars"].values())


def test_list_of_figures_shows_each(tmp_path):
    res = run_cli("fig", "3,2,3", "--preset", "smoke", "--out-dir", tmp_path, "--show-params")
    assert res.returncode == 0, res.stderr
    titles = [line.split(":")[0] for line in res.stdout.splitlines() if line.startswith("figure ")]
    assert titles == ["figure 3", "figure 2"]  # in the order given, once each
    from resdiff.cli.fig import FigureArg

    assert FigureArg().convert("all", None, None) == list(range(1, 9)) + ["jacobian", "explosion"]
    assert FigureArg().convert("2,Jacobian,2", None, None) == [2, "jacobian"]


def test_named_figures_write_name_files(tmp_path):
    from resdiff import pipeline

    assert pipeline.figure_paths(tmp_path, "smoke", "jacobian")[1].name == "jacobian.png"
    assert (
        pipeline.data_path(tmp_path, "smoke", "explosion", "sde-width-25").name
        == "explosion-sde-width-25.csv"
    )
    res = run_cli("fig", "explosion", "--preset", "smoke", "--out-dir", tmp_path, "--show-params")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("figure explosion:")
    bad = run_cli("fig", "jacobians", "--out-dir", tmp_path)
    assert bad.returncode == 2 and "jacobian, explosion" in bad.stderr


def test_make_fign_runs_that_figure():
    """`make figN` is a static pattern rule: a plain pattern rule is never tried for the
    .PHONY targets fig1..fig8, and `make fig2` then did nothing."""
    import shutil
    import subprocess
    from tests.conftest import ROOT

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    for n, preset in ((2, "quick"), (6, "paper")):
        res = subprocess.run(
            ["make", "-n", f"fig{n}", f"PRESET={preset}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert res.returncode == 0, res.stderr
        assert f"resdiff fig {n} --preset {preset}" in res.stdout, res.stdout


@pytest.fixture(scope="module")
def fig8_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("fig8")
    res = run_cli("fig", "8", "--preset", "smoke", "--out-dir", out)
    assert res.returncode == 0, res.stderr
    return out


@pytest.mark.parametrize(
    "damage", ["truncate-png", "truncate-pdf", "png-without-provenance", "pdf-xref"]
)
def test_a_damaged_figure_is_redrawn_from_its_csvs_with_one_warning(fig8_dir, tmp_path, damage):
    """A figure file that does not open in full, or whose provenance cannot be read, is
    not "up to date": it is drawn again from the cached CSVs (nothing computed), with one
    warning, and is then whole: the next run finds it up to date."""
    import shutil

    shutil.copytree(fig8_dir, tmp_path, dirs_exist_ok=True)
    pdf, png = tmp_path / "smoke" / "fig8.pdf", tmp_path / "smoke" / "fig8.png"
    good = {p: p.read_bytes() for p in (pdf, png)}
    csvs = {p: p.stat().st_mtime_ns for p in (tmp_path / "data").rglob("*.csv")}
    if damage == "truncate-png":
        png.write_bytes(good[png][:5000])
    elif damage == "truncate-pdf":
        pdf.write_bytes(good[pdf][:5000])
    elif damage == "pdf-xref":  # ends as a PDF should, but its startxref points elsewhere
        head = good[pdf].rpartition(b"startxref")[0]
        pdf.write_bytes(head + b"startxref\n12\n%%EOF\n")
    else:  # opens, but its provenance is gone
        from PIL import Image

        with Image.open(png) as image:
            image.save(png, format="png")
    damaged = pdf if "pdf" in damage else png
    res = run_cli("fig", "8", "--preset", "smoke", "--out-dir", tmp_path)
    assert res.returncode == 0, res.stderr
    warnings = [line for line in res.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and str(damaged) in warnings[0] and "damaged" in warnings[0], (
        res.stderr
    )
    assert "up to date" not in res.stderr and "computing" not in res.stderr, res.stderr
    assert {p: p.stat().st_mtime_ns for p in csvs} == csvs  # no CSV recomputed
    res = run_cli("fig", "8", "--preset", "smoke", "--out-dir", tmp_path)
    assert res.returncode == 0 and "up to date" in res.stderr, res.stderr
    assert "warning" not in res.stderr, res.stderr
