"""The Python examples of docs/python.md and of the README run as written (docs/python.md
says so), each file's blocks in order in one namespace, in a temporary folder."""

import contextlib
import io
import re

import pytest

from tests.conftest import HAVE_MNIST, HAVE_TORCH, ROOT

BLOCK = re.compile(r"^```python( mnist)?\n(.*?)^```", re.S | re.M)


def blocks(path, mnist=False):
    """The ```python blocks of ``path`` (with ``mnist``: the ```python mnist ones)."""
    return [code for tag, code in BLOCK.findall(path.read_text()) if bool(tag) == mnist]


def _run(codes, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for code in codes:
            exec(compile(code, "<docs>", "exec"), namespace)
    return namespace, out.getvalue()


def test_the_python_guide_runs(tmp_path, monkeypatch):
    codes = blocks(ROOT / "docs" / "python.md")
    assert len(codes) >= 6
    namespace, printed = _run(codes, tmp_path, monkeypatch)
    assert "ParameterError draws" in printed
    assert (tmp_path / "mine.png").stat().st_size > 0
    assert list(namespace["frames"]) == ["ntk"]
    assert (tmp_path / "figures" / "data" / "smoke" / "fig3-ntk.csv").is_file()


@pytest.mark.slow  # about 20 s: PyTorch, MNIST and a kernel solve
@pytest.mark.skipif(not (HAVE_MNIST and HAVE_TORCH), reason="needs MNIST and PyTorch")
def test_the_python_guide_mnist_examples_run(tmp_path, monkeypatch):
    codes = blocks(ROOT / "docs" / "python.md", mnist=True)
    assert len(codes) == 2
    namespace, _ = _run(["import resdiff"] + codes, tmp_path, monkeypatch)
    assert len(namespace["r"].frame) == 2  # two epochs


def test_the_readme_python_snippet_runs(tmp_path, monkeypatch):
    (code,) = blocks(ROOT / "README.md")
    namespace, printed = _run([code], tmp_path, monkeypatch)
    assert len(namespace["r"].frame) == 3 * 1000 * 2
    assert "analytic" in printed and "{'resnet': 0" in printed


def test_the_readme_stays_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 150
