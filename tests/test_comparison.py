"""docs/paper-comparison.md is generated from the committed CSVs by
resdiff.comparison, and its statistics are those of the reference implementations."""

import numpy as np
import pytest
from scipy import stats

from resdiff import comparison


@pytest.fixture(scope="module")
def rows():
    return comparison.claims()


def test_the_document_is_current(rows):
    """Regenerate with `python -m resdiff.comparison` after the paper data change."""
    assert comparison.DOC.read_text() == comparison.markdown(rows)


def test_every_figure_with_committed_data_has_a_row(rows):
    assert {r.figure for r in rows} == {2, 3, 4, 5, 6, 7, 8, "jacobian", "explosion"}
    assert all(r.paper and r.measured and r.agree for r in rows)


@pytest.mark.parametrize(
    "n, m, shift", [(400, 400, 0.0), (400, 400, 0.15), (2000, 2000, 0.05), (300, 500, 0.1)]
)
def test_ks_matches_scipy(n, m, shift):
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal(n), rng.standard_normal(m) + shift
    ref = stats.ks_2samp(a, b, method="exact" if n == m else "asymp")
    d = comparison.ks_statistic(a, b)
    assert d == pytest.approx(ref.statistic, abs=1e-15)
    # scipy's asymptotic p is the one-sample law at round(nm / (n + m)): close, not equal
    tol = 1e-9 if n == m else 0.02
    assert comparison.ks_pvalue(d, n, m) == pytest.approx(ref.pvalue, abs=tol)


def test_line_r2_and_slope():
    z = np.linspace(-2, 2, 50)
    assert comparison.line_r2(z, 3 * z + 1) == pytest.approx(1.0)
    assert comparison.line_r2(z, z**2) == pytest.approx(0.0, abs=1e-12)
    sizes = np.array([10, 100, 1000])
    assert comparison.loglog_slope(sizes, 5.0 / sizes) == pytest.approx(-1.0)


def test_rows_follow_the_data(tmp_path):
    """A changed CSV changes the row: the numbers are read, not typed."""
    import shutil

    for name in ("fig6-kernel.csv", "fig6-kernel.csv.json"):
        shutil.copy(comparison.PAPER_DATA / name, tmp_path / name)
    csv = tmp_path / "fig6-kernel.csv"
    csv.write_text(csv.read_text().replace("0.85529999999999995", "0.801"))
    (row,) = comparison.claims(tmp_path, figures={6})
    assert row.measured.startswith("80.10%") and row.agree.startswith("**no**")


def test_the_rows_beyond_the_paper_follow_the_data(tmp_path):
    """The Section 4 and Proposition 5.1 rows are read from the CSVs too: a ResNet whose
    log det is shifted by 1 fails its row, and explosion times moved away from t* fail
    theirs."""
    import shutil

    for path in comparison.PAPER_DATA.glob("jacobian-*"):
        shutil.copy(path, tmp_path / path.name)
    for path in comparison.PAPER_DATA.glob("explosion-*"):
        shutil.copy(path, tmp_path / path.name)
    rows = comparison.claims(tmp_path, figures={"jacobian", "explosion"})
    assert [r.agree.split(":")[0] for r in rows] == ["yes"] * 4
    import pandas as pd

    last = max(tmp_path.glob("jacobian-size-*.csv"), key=lambda p: int(p.stem.split("-")[-1]))
    f = pd.read_csv(last)
    f.loc[(f["method"] == "resnet") & (f["statistic"] == "logdet"), "value"] += 1.0
    f.to_csv(last, index=False)
    widest = max(
        tmp_path.glob("explosion-sde-width-*.csv"), key=lambda p: int(p.stem.split("-")[-1])
    )
    f = pd.read_csv(widest)
    f.loc[f["method"] == "sde", "explosion_time"] += 0.05
    f.to_csv(widest, index=False)
    rows = comparison.claims(tmp_path, figures={"jacobian", "explosion"})
    verdicts = {r.paper.split(":")[0]: r.agree for r in rows}
    assert verdicts["Section 4, consequence i)"].startswith("**no**")
    assert verdicts["Proposition 5.1 (ii), Remark 3.3"].startswith("**no**")
    assert verdicts["Theorem 4.1"].startswith("yes")
