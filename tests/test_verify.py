"""``resdiff verify``: recompute a slice of the committed datasets and compare."""

import hashlib
import json
import shutil

import pandas as pd
import pytest

from resdiff import verify
from tests.conftest import HAVE_MNIST, HAVE_TORCH, ROOT, run_cli

PAPER = ROOT / "figures" / "data" / "paper"


@pytest.mark.skipif(not (PAPER / "fig8-tanh.csv").is_file(), reason="no paper data")
def test_committed_monte_carlo_slices_reproduce_byte_for_byte():
    res = run_cli("verify", "--only", "fig8,fig2-kde")
    assert res.returncode == 0, res.stderr
    lines = [line for line in res.stdout.splitlines() if line.startswith("fig")]
    assert [line.split()[0] for line in lines] == ["fig2-kde", "fig8-tanh", "fig8-swish"]
    assert all("  reproduced  " in line and "same bytes" in line for line in lines), lines
    assert "3 reproduced" in res.stdout.splitlines()[-1]


@pytest.mark.skipif(not (HAVE_TORCH and HAVE_MNIST), reason="needs PyTorch and MNIST")
def test_first_epoch_of_a_committed_training_run_reproduces():
    res = run_cli("verify", "--only", "fig6-sgd-10")
    assert res.returncode == 0, res.stderr + res.stdout
    assert "fig6-sgd-10" in res.stdout and "first epoch" in res.stdout


def _copy(out, names):
    data = out / "data" / "paper"
    data.mkdir(parents=True)
    for name in names:
        for suffix in (".csv", ".csv.json"):
            shutil.copy(PAPER / f"{name}{suffix}", data / f"{name}{suffix}")
    return data


@pytest.mark.skipif(not (PAPER / "fig8-tanh.csv").is_file(), reason="no paper data")
def test_a_wrong_committed_value_differs_and_fails(tmp_path):
    """The negative control: a kept draw edited in the CSV, the sidecar's hash made to
    match (a valid cache with other numbers) is reported as differing, exit code 1."""
    data = _copy(tmp_path, ["fig8-tanh", "fig8-swish", "fig5-resnet-tanh"])
    csv = data / "fig8-tanh.csv"
    frame = pd.read_csv(csv)
    frame.loc[3, "value"] *= 1.0 + 1e-12
    text = frame.to_csv(index=False, float_format="%.17g").encode()
    csv.write_bytes(text)
    side = data / "fig8-tanh.csv.json"
    record = json.loads(side.read_text())
    record["csv_sha256"] = hashlib.sha256(text).hexdigest()
    side.write_text(json.dumps(record))
    res = run_cli("verify", "--out-dir", tmp_path)
    assert res.returncode == 1, res.stderr + res.stdout
    rows = {line.split()[0]: line for line in res.stdout.splitlines() if line.startswith("fig")}
    assert "  differs  " in rows["fig8-tanh"] and "1e-12" in rows["fig8-tanh"]
    assert "  reproduced  " in rows["fig8-swish"]
    assert "not checked" in rows["fig5-resnet-tanh"] and "correlations" in rows["fig5-resnet-tanh"]


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    res = run_cli("verify", "--out-dir", tmp_path)
    assert res.returncode == 2 and "no committed dataset" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    res = run_cli("verify", "--only", "fig9")
    assert res.returncode == 2 and "fig9" in res.stderr and "Traceback" not in res.stderr


def _frame(values):
    return pd.DataFrame({"epoch": [1, 2], "train_loss": values, "test_accuracy": [0.5, 0.6]})


def test_training_within_rounding_monte_carlo_not():
    a, b = _frame([0.1, 0.2]), _frame([0.1 * (1 + 3e-7), 0.2])
    assert verify.compare(verify.TRAINING, a, a, {})[0] == verify.REPRODUCED
    status, detail = verify.compare(verify.TRAINING, a, b, {"machine": {"cpu": "X"}})
    assert status == verify.ROUNDING and "3e-07" in detail and "X" in detail
    mc = "resdiff.experiments.kde:kde"
    assert verify.compare(mc, a, b, {})[0] == verify.DIFFERS
    assert verify.compare(verify.TRAINING, a, _frame([0.11, 0.2]), {})[0] == verify.DIFFERS


def test_nothing_checked_is_not_a_pass():
    skipped = verify.Outcome("fig5-x", verify.NOT_CHECKED, "why")
    assert not verify.passed([skipped])
    assert verify.passed([skipped, verify.Outcome("fig8-x", verify.REPRODUCED, "")])
    assert not verify.passed([verify.Outcome("fig8-x", verify.DIFFERS, "")])
