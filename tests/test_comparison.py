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
    assert {r.figure for r in rows} == {2, 3, 4, 5, 6, 7, 8}
    assert all(r.paper and r.measured and r.agree for r in rows)


@pytest.mark.parametrize("n, m, shift", [(400, 400, 0.0), (400, 400, 0.15),
                                         (2000, 2000, 0.05), (300, 500, 0.1)])
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
    assert comparison.line_r2(z, z ** 2) == pytest.approx(0.0, abs=1e-12)
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
