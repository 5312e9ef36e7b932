"""A job's time is estimated before it starts: refused beyond the limit (exit 2, one line,
nothing written, nothing computed), said below it, started anyway with --allow-long."""

import time

import pytest

from resdiff import estimate
from tests.conftest import HAVE_TORCH, run_cli

HUGE = {
    "samples": ["samples", "-L", "100000", "-D", "100000", "--draws", "100000"],
    "correlation": ["correlation", "--model", "feedforward", "-L", "100000", "-D", "5000"],
    "kde": ["kde", "-L", "1000000", "-D", "1000", "--draws", "1000000"],
    "ntk-convergence": ["ntk-convergence", "--sizes", "5000", "--draws", "1000"],
    "mnist-train": ["mnist-train", "--arch", "conv", "--size", "400", "--epochs", "120"],
}


def _refused(res, limit_words=("estimated", "24 h", "--allow-long")):
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("resdiff: error: "), res.stderr
    for word in limit_words:
        assert word in lines[0], lines[0]
    assert "Traceback" not in res.stderr
    return lines[0]


@pytest.mark.parametrize("name", list(HUGE))
def test_a_job_of_years_is_refused_before_it_starts(name, tmp_path):
    if name == "mnist-train" and not HAVE_TORCH:
        pytest.skip("PyTorch not installed (the `train` extra)")
    out = tmp_path / "sub" / "a.csv"
    t0 = time.time()
    res = run_cli(*HUGE[name], "--out", out, timeout=120)
    line = _refused(res)
    assert f"{name}: estimated" in line
    assert not (tmp_path / "sub").exists()  # no file, no folder
    assert time.time() - t0 < 60


@pytest.mark.skipif(not HAVE_TORCH, reason="PyTorch not installed (the `train` extra)")
def test_fig7_paper_on_a_cpu_is_refused_before_any_training(tmp_path):
    res = run_cli(
        "fig",
        "7",
        "--preset",
        "paper",
        "--out-dir",
        tmp_path / "figs",
        env={"CUDA_VISIBLE_DEVICES": ""},
        timeout=180,
    )
    line = _refused(
        res, ("fig 7 --preset paper: estimated", "training FLOPs", "--max-size", "--allow-long")
    )
    assert " h " in line
    written = [p for p in (tmp_path / "figs").rglob("*") if p.is_file()]
    assert not [p for p in written if p.suffix in (".csv", ".ckpt", ".log", ".png")], written


def test_the_estimate_is_said_below_the_limit_and_refused_above_unless_allowed():
    said = []
    job = estimate.Estimate()
    job.mc_work = estimate.MC_RATE * estimate._threads() * 3600.0  # one hour's work
    assert estimate.check("samples", job, False, info=said.append) == pytest.approx(3600)
    assert len(said) == 1 and "samples: estimated 1.0 h" in said[0] and "estimate" in said[0]
    job.mc_work *= 25  # 25 hours
    with pytest.raises(estimate.LongJob, match="estimated 25.0 h.*--allow-long"):
        estimate.check("samples", job, False, info=said.append)
    said.clear()
    estimate.check("samples", job, True, info=said.append)
    assert len(said) == 1 and "25.0 h" in said[0]
    small = estimate.Estimate()
    small.mc_work = 1.0
    estimate.check("samples", small, False, info=said.append)
    assert len(said) == 1  # a job of a few seconds starts without a word


def test_estimates_are_cheap_and_follow_the_work():
    """Every Monte Carlo figure at the paper preset is estimated in well under a second
    (once the modules the run needs anyway are imported), and the estimate scales with
    the draws and the depth."""
    from resdiff import pipeline

    for _repeat in range(2):  # the first imports the sampling modules
        t0 = time.perf_counter()
        for n in (1, 2, 3, 4, 5, 8):
            request = pipeline.Request("paper", "/nonexistent", force=True)
            assert pipeline.estimate([n], request).seconds > 0
    assert time.perf_counter() - t0 < 0.2
    p = dict(depth=50, width=50, draws=1000, z=[0.0, 1.0], methods=["resnet", "sde"])
    one = estimate.monte_carlo_work("kde", p)
    assert estimate.monte_carlo_work("kde", {**p, "draws": 3000}) == pytest.approx(3 * one)
    assert estimate.monte_carlo_work("kde", {**p, "depth": 100}) == pytest.approx(2 * one)
    assert estimate.monte_carlo_work("kde", {**p, "methods": ["resnet"]}) == pytest.approx(one / 2)


def test_the_allow_long_flag_is_accepted_and_refusal_comes_after_bad_values(tmp_path):
    res = run_cli(*HUGE["samples"], "--draws", "1", "--out", tmp_path / "a.csv")
    assert res.returncode == 2 and "--draws" in res.stderr and "estimated" not in res.stderr
    res = run_cli(
        "kde",
        "-L",
        "3",
        "-D",
        "3",
        "--draws",
        "10",
        "--allow-long",
        "--out",
        tmp_path / "k.csv",
        "--quiet",
    )
    assert res.returncode == 0, res.stderr
