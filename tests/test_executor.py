"""The executor layer: local worker processes (always run) and a real single-node Slurm
(marker ``slurm``, `make test-slurm`). Byte-identity of the CSVs with the serial run for
Figs. 2, 4 and 6 is checked in test_figures.py, against its smoke run."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from resdiff import executor
from resdiff.errors import UserError
from tests.conftest import HAVE_MNIST, HAVE_TORCH, ROOT, default_sigint, run_cli

SLURM_SCRIPT = ROOT / "scripts" / "slurm-localhost.sh"


def test_workers_share_the_cores_and_take_one_gpu_each():
    pool = executor.LocalWorkers(jobs=3, cores=8, gpus=["2", "5"])
    envs = [pool.worker_env(slot, 3) for slot in range(3)]
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["2", "5", "2"]
    assert {e["NUMBA_NUM_THREADS"] for e in envs} == {"2"}  # 8 // 3
    assert {e["OMP_NUM_THREADS"] for e in envs} == {"2"}
    # fewer units than jobs: the workers that do start get more threads
    assert pool.worker_env(0, 1)["NUMBA_NUM_THREADS"] == "8"
    assert executor.package_root() in envs[0]["PYTHONPATH"].split(os.pathsep)
    assert "CUDA_VISIBLE_DEVICES" not in executor.LocalWorkers(2, 4, gpus=[]).worker_env(0, 2)


def test_visible_gpus_follow_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,3")
    assert executor.visible_gpus() == ["1", "3"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert executor.visible_gpus() == []


@pytest.mark.parametrize(
    "text, parsed",
    [
        ("--account=abc", ("account", "abc")),
        ("qos=high", ("qos", "high")),
        ("--exclusive", ("exclusive", True)),
        ("--mail_type=END", ("mail-type", "END")),
    ],
)
def test_sbatch_flags(text, parsed):
    assert executor.parse_sbatch_flag(text) == parsed


@pytest.mark.parametrize("text", ["", "--", "--a b=c", "--x;rm=1"])
def test_malformed_sbatch_flags_are_user_errors(text):
    with pytest.raises(UserError, match="^slurm_sbatch: "):
        executor.parse_sbatch_flag(text)


@pytest.mark.parametrize(
    "argv, word",
    [
        (["--jobs", "0"], "--jobs"),
        (["--executor", "nosuch"], "--executor"),
        (["--slurm-partition", "gpu"], "'--executor': local: the Slurm options"),
        (["--slurm-cpus", "4"], "--slurm-cpus: only with --executor slurm"),
        (["--executor", "local", "--slurm-time", "30"], "--slurm-time: only with --executor slurm"),
        (["--executor", "slurm", "--slurm-sbatch", "--a b"], "--slurm-sbatch"),
    ],
)
def test_bad_executor_options_fail_before_any_work(argv, word, tmp_path):
    res = run_cli(
        "fig",
        "8",
        "--preset",
        "smoke",
        "--out-dir",
        tmp_path / "figs",
        *argv,
        env={"PATH": _path_with_fake_sbatch(tmp_path)},
    )
    assert res.returncode == 2, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and word in res.stderr, res.stderr
    assert not (tmp_path / "figs").exists()


def _path_with_fake_sbatch(tmp_path):
    """A PATH on which `sbatch` exists (an empty script that is never run): the option
    checks come before anything is submitted."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "sbatch").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "sbatch").chmod(0o755)
    return f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"


def test_slurm_without_sbatch_is_one_line_exit_2(tmp_path):
    res = run_cli(
        "fig",
        "8",
        "--preset",
        "smoke",
        "--out-dir",
        tmp_path / "figs",
        "--executor",
        "slurm",
        env={"PATH": str(tmp_path)},
    )
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip().splitlines() == [
        "resdiff: error: Invalid value for '--executor': slurm: no sbatch on the PATH "
        "(run on a Slurm login node, or use local)"
    ]
    assert not (tmp_path / "figs").exists()


def test_sbatch_refusing_the_jobs_is_one_line_exit_2(tmp_path):
    """sbatch's own error lines reach the user once, inside resdiff's one-line error."""
    pytest.importorskip("submitit")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(
        "#!/bin/sh\necho 'sbatch: error: invalid partition specified: nosuch' >&2\n"
        "echo 'sbatch: error: Batch job submission failed: Invalid partition name "
        "specified' >&2\nexit 1\n"
    )
    (bin_dir / "sbatch").chmod(0o755)
    res = run_cli(
        "fig",
        "8",
        "--preset",
        "smoke",
        "--out-dir",
        tmp_path / "figs",
        "--executor",
        "slurm",
        "--slurm-partition",
        "nosuch",
        env={"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"},
    )
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("resdiff: error: sbatch refused the jobs"), (
        res.stderr
    )
    assert "invalid partition specified: nosuch" in lines[0]


def test_a_failed_unit_is_reported_while_the_others_finish(tmp_path):
    """Fig. 6's units cannot find MNIST: each is reported with its log and the command
    that reruns it; Fig. 8 is still computed and drawn; exit code 2 at the end."""
    out = tmp_path / "figs"
    res = run_cli(
        "fig",
        "6,8",
        "--preset",
        "smoke",
        "--out-dir",
        out,
        "--jobs",
        "2",
        "--data-dir",
        tmp_path / "no-mnist",
        env={"RESDIFF_NO_DOWNLOAD": "1"},
        timeout=600,
    )
    assert res.returncode == 2, res.stderr
    failed = [l for l in res.stderr.splitlines() if " failed (" in l]
    names = sorted(l.split(" failed (")[0].split()[-1] for l in failed)
    from resdiff.figures import FIGURES

    assert names == sorted(FIGURES[6].names("smoke"))
    for line in failed:
        log = Path(line.split("; log: ")[1].split("; rerun: ")[0])
        assert log.is_file() and "no-mnist" in log.read_text()
        assert line.endswith(
            f"rerun: resdiff fig 6 --preset smoke --out-dir {out} "
            f"--data-dir {tmp_path / 'no-mnist'}"
        )
    assert (out / "smoke" / "fig8.png").is_file() and not (out / "smoke" / "fig6.png").exists()
    assert res.stderr.strip().splitlines()[-1].startswith("resdiff: error: figure(s) 6 ")
    n6 = len(FIGURES[6].names("smoke"))  # 4 optimizers x 2 sizes, kernel, 2 theory lines
    assert f"units: 2 done, 0 running, 0 queued, {n6} failed" in res.stderr


def test_a_unit_started_again_appends_to_its_log(tmp_path, monkeypatch, capsys):
    """A unit's log keeps every start (a training run resumed over several sittings
    keeps its earlier epochs), and what the parent reports (the error, the warnings)
    comes from the latest start only."""
    from resdiff.pipeline import Request, Unit

    monkeypatch.setenv("RESDIFF_NO_DOWNLOAD", "1")
    unit = Unit(6, "sgd-4", Request("smoke", tmp_path / "figs", data_dir=tmp_path / "no-mnist"))
    log = unit.path.with_suffix(".log")
    log.parent.mkdir(parents=True)
    earlier = "fc sgd D=L=4: epoch 3/4  (an earlier sitting)\nresdiff: warning: earlier\r"
    log.write_text(earlier)
    failures = []
    for _ in range(2):
        executor.LocalWorkers(jobs=1, cores=1).run(
            [unit], lambda u, failure, path: failures.append((failure, path))
        )
    text = log.read_bytes().decode()  # as written: no newline translation
    assert text.startswith(earlier + "\n==> fig 6 sgd-4: started ")  # a line of its own
    sittings = text.split("==> fig 6 sgd-4: started ")
    assert len(sittings) == 3
    errors = [[l for l in s.splitlines() if l.startswith("resdiff: error: ")] for s in sittings[1:]]
    assert all(len(e) == 1 and "no-mnist" in e[0] for e in errors), text
    assert [f.message for f, _ in failures] == [errors[0][0][len("resdiff: error: ") :]] * 2
    assert {path for _, path in failures} == {str(log)}
    assert "resdiff: warning: earlier" not in capsys.readouterr().err


def _processes_with(marker):
    """Pids of live processes whose environment holds ``marker``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


@pytest.mark.skipif(not (HAVE_MNIST and HAVE_TORCH), reason="trains on MNIST (PyTorch)")
def test_interrupt_stops_the_workers_and_drops_the_queue(tmp_path):
    """Ctrl-C while two training runs are running, one past its first epoch: exit 130
    within seconds, no worker left, no partial CSV, its checkpoint kept for the rerun,
    the queued runs never started."""
    marker = f"RESDIFF_TEST_{uuid.uuid4().hex}"
    out = tmp_path / "figs"
    env = dict(os.environ, **{marker: "1"})
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "resdiff",
            "fig",
            "7",
            "--preset",
            "quick",
            "--out-dir",
            str(out),
            "--jobs",
            "2",
        ],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    try:
        seen = ""
        while "2 running" not in seen and proc.poll() is None:
            seen += proc.stderr.readline()
        data = out / "data" / "quick"
        deadline = time.time() + 300
        while not list(data.glob("*.ckpt")) and time.time() < deadline:
            time.sleep(0.1)
        assert proc.poll() is None, seen
        workers = [p for p in _processes_with(marker) if p != proc.pid]
        assert len(workers) == 2
        t0 = time.time()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        stopped_in = time.time() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert stopped_in < 15
    assert _processes_with(marker) == []
    assert not list(data.glob("*.tmp")) and not list(data.glob(".*.tmp"))
    from resdiff.figures import FIGURES

    started = [p.stem for p in data.glob("*.log")]
    assert len(started) < len(FIGURES[7].names("quick"))  # the queue was dropped
    assert list(data.glob("*.ckpt"))


# --- a real Slurm --------------------------------------------------------------------
@pytest.fixture(scope="module")
def slurm_cluster():
    """A single-node Slurm on this machine (scripts/slurm-localhost.sh); the test skips
    with the daemons' own messages when they cannot start here."""
    res = subprocess.run(
        ["bash", str(SLURM_SCRIPT), "start"], capture_output=True, text=True, timeout=600
    )
    if res.returncode != 0:
        pytest.skip(
            "single-node Slurm did not start: "
            + " | ".join((res.stdout + res.stderr).strip().splitlines()[-12:])
        )
    conf = (
        subprocess.run(
            ["bash", str(SLURM_SCRIPT), "env"], capture_output=True, text=True, check=True
        )
        .stdout.strip()
        .split("=", 1)[1]
    )
    return {"SLURM_CONF": conf}


@pytest.mark.slurm
def test_fig2_on_slurm_gives_the_local_bytes(slurm_cluster, tmp_path):
    local, remote = tmp_path / "local", tmp_path / "slurm"
    res = run_cli("fig", "2", "--preset", "smoke", "--out-dir", local, timeout=900)
    assert res.returncode == 0, res.stderr
    res = run_cli(
        "fig",
        "2",
        "--preset",
        "smoke",
        "--out-dir",
        remote,
        "--executor",
        "slurm",
        env=slurm_cluster,
        timeout=900,
    )
    assert res.returncode == 0, res.stderr
    assert "submitted as Slurm job array" in res.stderr
    assert "1 done, 0 running, 0 queued" in res.stderr
    csvs = sorted(p.name for p in (local / "data" / "smoke").glob("*.csv"))
    assert csvs == ["fig2-kde.csv"]
    for name in csvs:
        assert (remote / "data" / "smoke" / name).read_bytes() == (
            local / "data" / "smoke" / name
        ).read_bytes()
    assert (remote / "smoke" / "fig2.png").is_file()


def _signal_job(sig, job, env):
    """``scancel --signal``; Slurm answers "try again later" while a job step starts."""
    for _ in range(40):
        res = subprocess.run(
            ["scancel", "--signal", sig, job],
            capture_output=True,
            text=True,
            env=dict(os.environ, **env),
        )
        if res.returncode == 0:
            return
        time.sleep(0.5)
    raise AssertionError(f"scancel --signal {sig} {job}: {res.stderr.strip()}")


@pytest.mark.slurm
@pytest.mark.skipif(not (HAVE_MNIST and HAVE_TORCH), reason="trains on MNIST (PyTorch)")
def test_a_preempted_training_run_is_requeued_and_resumes(slurm_cluster, tmp_path):
    """Slurm's pre-emption signal (SIGTERM, then SIGUSR2, as submitit sends them) to a
    running training job: submitit requeues it, the run continues from its checkpoint,
    and the CSV is the one of an uninterrupted run."""
    import json
    from resdiff import pipeline

    out = tmp_path / "slurm"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "resdiff",
            "fig",
            "7",
            "--preset",
            "quick",
            "--out-dir",
            str(out),
            "--executor",
            "slurm",
        ],
        cwd=ROOT,
        env=dict(os.environ, **slurm_cluster),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        seen = ""
        while "submitted as Slurm job array" not in seen and proc.poll() is None:
            seen += proc.stderr.readline()
        array = seen.split("job array ")[1].split()[0]
        data = out / "data" / "quick"
        name = "sgd-8"  # the longest run that starts first (about 20 x 5 s here)
        ckpt = data / f"fig7-{name}.ckpt"
        deadline = time.time() + 600
        while not ckpt.exists() and time.time() < deadline:
            time.sleep(0.2)
        # the job computing that run: its log says so (submitit: slurm/JOB_TASK/...err)
        job = next(
            log.parent.name
            for log in (data / "slurm").glob(f"{array}_*/*.err")
            if f"computing {name} " in log.read_text()
        )
        for sig in ("TERM", "USR2"):
            _signal_job(sig, job, slurm_cluster)
        _, err = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # it cancels its jobs
            proc.communicate(timeout=120)
    assert proc.returncode == 0, seen + err
    side = json.loads((data / f"{ckpt.stem}.csv.json").read_text())
    assert side["meta"]["resumed_from_epoch"] >= 1, side["meta"]
    logs = data / "slurm" / job
    assert f"Requeued job {job}" in (logs / f"{job}_0_log.out").read_text()  # submitit
    assert f"resuming from {ckpt} after epoch" in (logs / f"{job}_0_log.err").read_text()
    # the uninterrupted run, on one thread as the job (--slurm-cpus 1): PyTorch's CPU
    # convolutions need not give the same bits for another thread count
    unit = pipeline.Unit(7, name, pipeline.Request("quick", tmp_path / "local"))
    code = (
        "from resdiff import pipeline; "
        f"pipeline.compute(pipeline.Unit.from_json({unit.to_json()!r}))"
    )
    subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        check=True,
        timeout=900,
        env=dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1"),
    )
    assert (data / f"{ckpt.stem}.csv").read_bytes() == unit.path.read_bytes()


def _cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_the_worker_ends_when_its_parent_is_killed(tmp_path):
    """kill -9 of `resdiff fig 2 --jobs 2` while its worker computes (compiling its
    kernels: a fresh cache, so the unit lasts tens of seconds): the worker, in a session
    of its own, is gone within two seconds, with no traceback in its log."""
    marker = f"RESDIFF_TEST_{uuid.uuid4().hex}"
    out = tmp_path / "figs"
    env = dict(os.environ, **{marker: "1", "RESDIFF_NUMBA_CACHE": str(tmp_path / "numba")})
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "resdiff",
            "fig",
            "2",
            "--preset",
            "smoke",
            "--out-dir",
            str(out),
            "--jobs",
            "2",
        ],
        cwd=ROOT,
        env=env,
        stderr=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    try:
        log = out / "data" / "smoke" / "fig2-kde.log"
        deadline = time.time() + 120
        while not (log.exists() and "==>" in log.read_text()) and time.time() < deadline:
            assert proc.poll() is None
            time.sleep(0.05)
        time.sleep(1.0)
        workers = [p for p in _processes_with(marker) if p != proc.pid]
        assert len(workers) == 1
        proc.kill()
        proc.wait()
        t0 = time.time()
        while _processes_with(marker) and time.time() - t0 < 30:
            time.sleep(0.05)
        gone_in = time.time() - t0
    finally:
        for pid in _processes_with(marker):
            os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    text = log.read_text()
    assert gone_in < 2.0, f"the worker outlived its parent by {gone_in:.1f} s: {text}"
    assert "Traceback" not in text and "Error" not in text, text
    assert "terminated" in text.splitlines()[-1], text
    assert not list(out.rglob("*.csv")) and not list(out.rglob("*.tmp"))


def test_sigterm_to_a_worker_in_a_monte_carlo_kernel_is_shielded(tmp_path):
    """SIGTERM while the worker's kde kernels run (warm cache, 3 CPU seconds into Fig. 2
    quick, about 12 s of work): it waits for the chunk (interrupt.shielded) instead of
    raising inside compiled code; exit 143 within two seconds, one line in the log."""
    warm = run_cli(
        "kde",
        "--depth",
        "3",
        "--width",
        "3",
        "--draws",
        "4",
        "--out",
        tmp_path / "warm.csv",
        "--quiet",
    )
    assert warm.returncode == 0, warm.stderr
    from resdiff.pipeline import Request, Unit

    unit = Unit(2, "kde", Request("quick", tmp_path / "figs"))
    unit.path.parent.mkdir(parents=True)
    worker = subprocess.Popen(
        [sys.executable, "-m", "resdiff.executor"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        worker.stdin.write(unit.to_json() + "\n")
        worker.stdin.flush()
        deadline = time.time() + 120
        while _cpu_seconds(worker.pid) < 3.0 and time.time() < deadline:
            assert worker.poll() is None
            time.sleep(0.02)
        t0 = time.time()
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=30)
        stopped_in = time.time() - t0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    text = unit.path.with_suffix(".log").read_text()
    assert code == 143, text
    assert stopped_in < 2.0, f"took {stopped_in:.1f} s: {text}"
    assert "Traceback" not in text and "SystemError" not in text, text
    assert text.strip().splitlines()[-1].startswith("resdiff: worker: terminated"), text
    assert not unit.path.exists()
