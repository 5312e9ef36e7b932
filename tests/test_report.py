"""`resdiff report` builds one self-contained page from the committed data, and it
renders in a real browser with every image loaded; `resdiff plot` draws CSVs of each
kind with the figures' plot code."""

import base64
import json
import re
import shutil
import subprocess
import time

import pytest

from resdiff import report
from resdiff.figures import FIGURES
from tests.conftest import ROOT

PAPER = ROOT / "figures" / "data" / "paper"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# marks the page once every image has loaded and decoded (or not): read with --dump-dom
PROBE = (
    "<script>window.addEventListener('load', () => { const im = [...document.images];"
    " const ok = im.filter(i => i.complete && i.naturalWidth > 0).length;"
    " document.body.setAttribute('data-images', ok + '/' + im.length); });</script>"
)


@pytest.fixture(scope="module")
def page():
    started = time.perf_counter()
    text = report.build("paper", ROOT / "figures")
    return text, time.perf_counter() - started


def test_the_page_is_built_from_committed_data_quickly_and_is_self_contained(page):
    text, seconds = page
    assert seconds < 30
    images = re.findall(r"<img src='([^']*)'", text)
    # Figs. 1-8, then those beyond the paper (jacobian, explosion), in the registry's order
    assert len(images) == len(FIGURES) == 10
    assert all(s.startswith("data:image/png;base64,") for s in images)
    # nothing to fetch: no external source, stylesheet, script or font
    assert not re.search(r"(src|href)=['\"](https?:|//|file:)", text)
    assert "<script" not in text and "<link" not in text and "@import" not in text
    for number, src in zip(FIGURES, images):  # each the whole committed PNG
        png = report.figure_image(ROOT / "figures", "paper", number)
        assert base64.b64decode(src.split(",", 1)[1]) == png.read_bytes()
        assert f"resdiff fig {number} --preset paper" in text
    assert "resdiff fig 7 --preset paper --max-size 10" in text


def test_every_comparison_row_and_provenance_is_on_the_page(page):
    from resdiff import comparison

    text, _ = page
    for row in comparison.claims():
        assert report._inline(row.measured) in text
    sidecar = json.loads((PAPER / "fig2-kde.csv.json").read_text())
    assert sidecar["git_commit"][:10] in text and sidecar["machine"]["kernel_target"] in text


def test_numerical_versions_are_shown_when_recorded(tmp_path):
    data = tmp_path / "data" / "paper"
    data.mkdir(parents=True)
    for name in ("fig2-kde.csv", "fig2-kde.csv.json"):
        shutil.copy(PAPER / name, data / name)
    side = json.loads((data / "fig2-kde.csv.json").read_text())
    side["numerics"] = {"resnet": 3, "rng": 1}
    (data / "fig2-kde.csv.json").write_text(json.dumps(side))
    section = report.figure_section(2, "paper", tmp_path, [])
    assert "limits" not in section and "resnet 3, rng 1" in section
    assert "Not drawn yet" in section  # no PNG in this folder
    assert "not computed" in report.figure_section(3, "paper", tmp_path, [])


def test_report_command(page, tmp_path):
    out = tmp_path / "r.html"
    code, err = _cli("report", "--figures-dir", ROOT / "figures", "--out", out)
    assert code == 0, err
    assert out.read_text() == page[0]


def _cli(*argv, cwd=ROOT):
    """``resdiff ARGV`` in this process: ``(exit code, stderr)``."""
    import contextlib
    import io

    from resdiff.cli import main

    err = io.StringIO()
    with (
        contextlib.redirect_stderr(err),
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.chdir(cwd),
        pytest.raises(SystemExit) as stop,
    ):
        main([str(a) for a in argv])
    return stop.value.code, err.getvalue()


def _browser():
    return next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)


def _headless(browser, profile, *args):
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--hide-scrollbars",
        "--virtual-time-budget=10000",
    ]
    return subprocess.run([browser, *flags, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(
    _browser() is None,
    reason="no Chromium on this machine (Debian: apt-get install chromium; .ci/run installs it)",
)
def test_the_page_renders_in_chromium_with_every_image(page, tmp_path):
    text, _ = page
    probe = tmp_path / "probe.html"
    probe.write_text(text.replace("</body>", PROBE + "</body>"))
    res = _headless(_browser(), tmp_path / "profile-dom", "--dump-dom", probe.as_uri())
    marks = re.findall(r'data-images="(\d+)/(\d+)"', res.stdout)
    assert marks == [(str(len(FIGURES)),) * 2], (marks, res.stderr[-2000:])
    shot = tmp_path / "page.png"
    page_file = tmp_path / "report.html"
    page_file.write_text(text)
    _headless(
        _browser(),
        tmp_path / "profile-shot",
        "--window-size=1100,1600",
        f"--screenshot={shot}",
        page_file.as_uri(),
    )
    from PIL import Image

    with Image.open(shot) as image:
        assert image.size == (1100, 1600)
        grey = image.convert("L")
        lo, hi = grey.getextrema()
        assert hi - lo > 100  # text and a figure on white, not a blank page


# --- resdiff plot ------------------------------------------------------------------------
PLOTS = {
    "kde": ["fig2-kde"],
    "ntk": ["fig3-ntk"],
    "samples": ["fig4-tanh-1", "fig4-swish-3"],
    "samples-2d": ["fig8-swish"],
    "correlation": ["fig5-resnet-tanh", "fig5-feedforward-relu"],
    "fc-training": ["fig6-sgd-10", "fig6-sgd-50", "fig6-kernel", "fig6-limit-sgd"],
    "conv-training": ["fig7-sgd-10", "fig7-adam-10"],
}


def _plot(names, out):
    from resdiff import files
    from resdiff.plots import runs

    data = [
        (
            f"{n}.csv",
            files.read_result(PAPER / f"{n}.csv", files.read_sidecar(PAPER / f"{n}.csv")),
            files.read_sidecar(PAPER / f"{n}.csv"),
        )
        for n in names
    ]
    if names == ["fig2-kde"]:  # 200 of the 10,000 draws: the KDEs of all take seconds
        data = [(n, f[f["draw"] < 200], side) for n, f, side in data]
    fig = runs.plot(data)
    fig.savefig(out)
    return fig


@pytest.mark.parametrize("kind", list(PLOTS))
def test_plot_draws_each_kind(kind, tmp_path):
    import matplotlib.pyplot as plt

    fig = _plot(PLOTS[kind], tmp_path / "x.png")
    axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    expected = {"kde": 3, "ntk": 2, "fc-training": 2, "conv-training": 1}.get(
        kind, len(PLOTS[kind])
    )
    assert len(axes) == expected
    assert "resdiff plot" in fig._supxlabel.get_text()
    assert (tmp_path / "x.png").stat().st_size > 10000
    plt.close(fig)


def test_plot_command_and_its_errors(tmp_path):
    out = tmp_path / "k.pdf"
    code, err = _cli("plot", PAPER / "fig3-ntk.csv", "--out", out)
    assert code == 0 and out.read_bytes().startswith(b"%PDF"), err
    lonely = tmp_path / "a.csv"
    lonely.write_text("z,value\n0,1\n")
    cases = (
        (
            ("plot", PAPER / "fig2-kde.csv", PAPER / "fig3-ntk.csv", "--out", tmp_path / "m.png"),
            "different subcommands",
        ),
        (("plot", lonely, "--out", tmp_path / "o.png"), "sidecar"),
        (("plot", PAPER / "fig3-ntk.csv", "--out", tmp_path / "x.gif"), "--out"),
    )
    for argv, word in cases:
        code, err = _cli(*argv)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and word in lines[0], err
    assert not (tmp_path / "m.png").exists() and not (tmp_path / "o.png").exists()
