"""Where a figure's units of work run: local worker processes or Slurm jobs.

A unit (:class:`resdiff.pipeline.Unit`) is one dataset of one figure; every executor runs
:func:`resdiff.pipeline.compute` on it, which writes the dataset's CSV and sidecar through
the same cache as a serial run, and the parent process gathers the results by reading
that cache. Every random number is a pure function of the seed and the draw, and no
result depends on the thread count, so where a unit runs changes no byte of its CSV.

* :class:`LocalWorkers` (``--executor local --jobs N``, N > 1): N worker processes
  (``python -m resdiff.executor``), each computing one unit at a time, with the unit's
  log beside its CSV (``figN-NAME.log``; each start of the unit appends to it after a
  ``==>`` line, so a resumed training run keeps its earlier sittings' epochs). The
  cores are shared out (``NUMBA_NUM_THREADS`` and ``OMP_NUM_THREADS`` = cores //
  workers) and, with GPUs, each worker sees one (``CUDA_VISIBLE_DEVICES``). A worker
  ends when its parent does, even after ``kill -9`` (:func:`_end_with_parent`). ``--jobs 1``
  does not come here: the pipeline computes in its own process, as it always has.
* :class:`SlurmJobs` (``--executor slurm``): one Slurm job array through submitit
  (docs/cluster.md says why submitit), logs in ``slurm/`` beside the CSVs. A job that
  is preempted or reaches its time limit is requeued by submitit and its unit starts
  again; a training run continues from its per-epoch checkpoint.

Both report how many units are done, running and queued; a failed unit is reported with
its log and the command that reruns it while the others go on; an interrupt (Ctrl-C,
SIGTERM) stops the running units, drops the queued ones and cancels submitted jobs.
"""

import contextlib
import io
import json
import logging
import os
import selectors
import shlex
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections import deque
from pathlib import Path

from .constraints import ParameterError
from .errors import UserError
from .pipeline import Failure
from .progress import info, warn

KINDS = ("local", "slurm")
SLURM_POLL_S = 2.0  # slurm: how often the queue is read
SLURM_INSTALL_HINT = (
    "the Slurm executor needs submitit, the optional extra 'slurm': pip install 'resdiff[slurm]'"
)


def package_root():
    """The folder that holds the ``resdiff`` package this process runs: workers get it
    first on ``PYTHONPATH``, so they run the same sources as the parent."""
    return str(Path(__file__).resolve().parent.parent)


def available_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def visible_gpus():
    """GPU ids this process may use: ``$CUDA_VISIBLE_DEVICES`` when set, else the GPUs
    ``nvidia-smi -L`` lists, else none."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip() and g.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return []
    return [
        str(i) for i, line in enumerate(l for l in out.stdout.splitlines() if l.startswith("GPU "))
    ]


def _log_size(path):
    """Where this start of a unit begins in its log: the size the log has so far."""
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0


def _log_lines(path, start=0):
    """The lines of a log from byte ``start`` on (this start of the unit, not the earlier
    ones the log also keeps)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(start)
            return fh.read().decode(errors="replace").splitlines()
    except OSError:
        return []


def _last_line(path, start=0):
    """The last non-empty line of a log from byte ``start`` (the error of a failed unit)."""
    lines = [l for l in _log_lines(path, start) if l.strip()]
    return lines[-1].strip() if lines else ""


def _warnings_in(path, start=0):
    """The warning lines a unit printed from byte ``start`` of its log (divergent draws
    are results: the parent shows them as a serial run would)."""
    return [l for l in _log_lines(path, start) if l.startswith("resdiff: warning: ")]


class _Progress:
    """``fig: N units: d done, r running, q queued[, f failed]``, printed when it changes."""

    def __init__(self, total):
        self.total, self.last = total, None

    def show(self, done, running, queued, failed):
        counts = (done, running, queued, failed)
        if counts == self.last:
            return
        self.last = counts
        tail = f", {failed} failed" if failed else ""
        info(f"fig: {self.total} units: {done} done, {running} running, {queued} queued{tail}")


class LocalWorkers:
    """``jobs`` worker processes on this machine, one unit each at a time."""

    def __init__(self, jobs, cores=None, gpus=None):
        self.jobs = int(jobs)
        self.cores = available_cores() if cores is None else int(cores)
        self.gpus = visible_gpus() if gpus is None else list(gpus)

    def worker_env(self, slot, workers):
        """The environment of worker ``slot`` of ``workers``: its share of the cores and,
        with GPUs, one GPU (``slot`` modulo their number)."""
        env = dict(os.environ)
        threads = str(max(1, self.cores // workers))
        env.update(
            NUMBA_NUM_THREADS=threads,
            OMP_NUM_THREADS=threads,
            PYTHONPATH=os.pathsep.join(p for p in (package_root(), env.get("PYTHONPATH")) if p),
        )
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = self.gpus[slot % len(self.gpus)]
        return env

    def run(self, units, finished):
        """Run ``units``; ``finished(unit, Failure or None, log path)`` is called in this
        process as each one ends."""
        if not units:
            return
        workers = min(self.jobs, len(units))
        queue, busy, idle = deque(units), {}, {}
        progress, done, failed = _Progress(len(units)), 0, 0
        threads = max(1, self.cores // workers)
        info(
            f"fig: {len(units)} units on {workers} local workers, {threads} "
            f"thread{'s' if threads > 1 else ''} each"
            + (f", GPUs {','.join(self.gpus)}" if self.gpus else "")
        )
        selector = selectors.DefaultSelector()
        try:
            free = list(range(workers))
            while queue or busy:
                while queue and (free or idle):
                    unit = queue.popleft()
                    log = unit.path.with_suffix(".log")
                    log.parent.mkdir(parents=True, exist_ok=True)
                    start = _log_size(log)
                    if idle:
                        slot, proc = idle.popitem()
                    else:  # a new worker; until its first unit starts it logs there
                        slot = free.pop(0)
                        env = self.worker_env(slot, workers)
                        env[PARENT_PID_ENV] = str(os.getpid())
                        with open(log, "a") as fh:
                            proc = subprocess.Popen(
                                [sys.executable, "-m", "resdiff.executor"],
                                stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE,
                                stderr=fh,
                                env=env,
                                text=True,
                                start_new_session=True,
                            )
                        selector.register(proc.stdout, selectors.EVENT_READ, slot)
                    proc.stdin.write(unit.to_json() + "\n")
                    proc.stdin.flush()
                    busy[slot] = (unit, proc, log, start)
                progress.show(done, len(busy), len(queue), failed)
                for key, _ in selector.select(timeout=1.0):
                    slot = key.data
                    unit, proc, log, start = busy.pop(slot)
                    line = proc.stdout.readline()
                    if line:
                        status = json.loads(line)
                        idle[slot] = proc
                    else:  # the worker died: its slot starts a new one if needed
                        selector.unregister(proc.stdout)
                        code = proc.wait()
                        status = {
                            "ok": False,
                            "message": f"the worker exited with code {code}: "
                            f"{_last_line(log, start)}",
                        }
                        free.append(slot)
                    for text in _warnings_in(log, start):
                        print(text, file=sys.stderr)
                    if status["ok"]:
                        done += 1
                        finished(unit, None, str(log))
                    else:
                        failed += 1
                        finished(unit, Failure(status["message"], str(log)), str(log))
            progress.show(done, 0, 0, failed)
        finally:  # done, interrupted (or a bug here): stop the workers, drop the queue
            queue.clear()
            running = [proc for _, proc, _, _ in busy.values()]
            for proc in running + list(idle.values()):
                with contextlib.suppress(OSError):
                    proc.stdin.close()  # an idle worker ends at the end of its input
            _stop(running)
            _stop(list(idle.values()), signal_first=False)
            selector.close()


def _stop(procs, grace=10.0, signal_first=True):
    """SIGTERM each process (a worker leaves no partial file), then SIGKILL stragglers."""
    for proc in procs:
        if signal_first and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.time() + grace
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def parse_sbatch_flag(text):
    """``--key=value``, ``key=value`` or ``--key`` -> ``(key, value or True)``."""
    body = text.strip().lstrip("-")
    key, sep, value = body.partition("=")
    if not key or not all(c.isalnum() or c in "-_" for c in key):
        raise ParameterError(
            "slurm_sbatch", f"{text!r}: expected --FLAG=VALUE or --FLAG (an sbatch option)"
        )
    return key.replace("_", "-"), (value if sep else True)


class SlurmJobs:
    """The units as one Slurm job array, submitted and watched through submitit."""

    def __init__(self, partition=None, gpus=0, cpus=1, time_min=240, sbatch=(), max_running=None):
        if shutil.which("sbatch") is None:
            raise ParameterError(
                "executor_kind",
                "slurm: no sbatch on the PATH (run on a Slurm login node, or use local)",
            )
        self.extra = dict(parse_sbatch_flag(f) for f in sbatch)  # the options first
        try:
            import submitit  # noqa: F401
        except ImportError:
            raise UserError(SLURM_INSTALL_HINT) from None
        self.partition, self.gpus, self.cpus = partition, int(gpus), int(cpus)
        self.time_min, self.max_running = int(time_min), max_running

    def parameters(self):
        """The keyword parameters of ``submitit.SlurmExecutor.update_parameters``."""
        threads = "${SLURM_CPUS_PER_TASK:-1}"
        params = dict(
            job_name="resdiff",
            time=self.time_min,
            cpus_per_task=self.cpus,
            nodes=1,
            ntasks_per_node=1,
            additional_parameters=dict(self.extra),
            setup=[
                f"export NUMBA_NUM_THREADS={threads} OMP_NUM_THREADS={threads}",
                f"export PYTHONPATH={shlex.quote(package_root())}${{PYTHONPATH:+:$PYTHONPATH}}",
            ],
        )
        if self.partition:
            params["partition"] = self.partition
        if self.gpus:
            params["gpus_per_node"] = self.gpus
        if self.max_running:
            params["array_parallelism"] = int(self.max_running)
        return params

    def run(self, units, finished):
        if not units:
            return
        import submitit

        # without accounting (sacct) submitit warns at every state check; the queue
        # (squeue) and the result files say all this needs
        logging.getLogger("submitit").setLevel(logging.ERROR)
        folder = units[0].path.parent / "slurm"
        executor = submitit.SlurmExecutor(folder=folder / "%j", max_num_timeout=3)
        executor.update_parameters(**self.parameters())
        try:
            # submitit prints sbatch's refusal and also puts it in its exception: one line
            with contextlib.redirect_stderr(io.StringIO()), executor.batch():
                jobs = [executor.submit(SlurmUnit(), unit) for unit in units]
        except Exception as exc:  # sbatch refused (no such partition, too many CPUs...)
            raise UserError(
                f"sbatch refused the jobs: {' '.join(str(exc).split())[:400]}"
            ) from None
        array = jobs[0].job_id.split("_")[0]
        info(f"fig: {len(units)} units submitted as Slurm job array {array} (logs: {folder})")
        waiting = dict(zip((j.job_id for j in jobs), zip(units, jobs)))
        progress, done, failed, gone = _Progress(len(units)), 0, 0, {}
        try:
            while waiting:
                states = _queue_states(list(waiting))
                for job_id, (unit, job) in list(waiting.items()):
                    failure = None
                    if job.paths.result_pickle.exists():
                        try:
                            job.result()
                        except Exception as exc:
                            failure = Failure(_first_lines(exc), str(job.paths.stderr))
                    elif job_id in states:
                        gone.pop(job_id, None)
                        continue
                    else:  # not in the queue and no result yet: give it a few polls
                        gone[job_id] = gone.get(job_id, 0) + 1
                        if gone[job_id] < 5:
                            continue
                        failure = Failure(
                            "the job left the queue without a result (killed, or its node failed)",
                            str(job.paths.stderr),
                        )
                    del waiting[job_id]
                    for line in _warnings_in(job.paths.stderr):
                        print(line, file=sys.stderr)
                    if failure is None:
                        done += 1
                    else:
                        failed += 1
                    finished(unit, failure, str(job.paths.stderr))
                running = sum(1 for j in waiting if states.get(j) in ("RUNNING", "COMPLETING"))
                progress.show(done, running, len(waiting) - running, failed)
                if waiting:
                    time.sleep(SLURM_POLL_S)
        finally:
            if waiting:  # interrupted: nothing submitted may outlive the command
                subprocess.run(["scancel", *waiting], capture_output=True, timeout=60)
                warn(f"cancelled {len(waiting)} Slurm job(s): {' '.join(waiting)}")


def _queue_states(job_ids):
    """``{job id: state}`` of the jobs still in the Slurm queue (``squeue``)."""
    ids = sorted({j.split("_")[0] for j in job_ids})
    try:
        out = subprocess.run(
            ["squeue", "-h", "-r", "-o", "%i %T", "-j", ",".join(ids)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return {j: "UNKNOWN" for j in job_ids}  # cannot tell: assume still there
    if out.returncode != 0 and "Invalid job id" not in out.stderr:
        return {j: "UNKNOWN" for j in job_ids}
    states = dict(line.split()[:2] for line in out.stdout.splitlines() if line.strip())
    return {j: states[j] for j in job_ids if j in states}


def _first_lines(exc, n=3):
    """submitit's failure message is the job's whole traceback: keep its last lines."""
    lines = [l for l in str(exc).splitlines() if l.strip()]
    return " / ".join(l.strip() for l in lines[-n:]) if lines else type(exc).__name__


try:  # the job's callable: a Checkpointable is requeued (same unit) after preemption
    from submitit.helpers import Checkpointable as _Requeueable
except ImportError:  # the `slurm` extra is not installed: SlurmJobs says so
    _Requeueable = object


class SlurmUnit(_Requeueable):
    """Compute one unit inside a Slurm job (through submitit, which pickles this)."""

    def __call__(self, unit):
        from . import pipeline

        pipeline.compute(unit)
        return str(unit.path)


def from_options(kind, jobs=None, partition=None, gpus=0, cpus=1, time_min=240, sbatch=()):
    """The executor the ``fig`` options ask for; ``None`` for the serial default (this
    process, one unit after another). Checks everything before any work starts."""
    if kind not in KINDS:
        raise ParameterError("executor_kind", f"must be one of {', '.join(KINDS)}, got {kind!r}")
    if jobs is not None and jobs < 1:
        raise ParameterError("jobs", f"must be at least 1, got {jobs}")
    if kind == "slurm":
        return SlurmJobs(partition, gpus, cpus, time_min, sbatch, max_running=jobs)
    if kind == "local" and (partition or gpus or sbatch):
        raise ParameterError(
            "executor_kind",
            "local: the Slurm options ({slurm_partition}, {slurm_gpus}, {slurm_sbatch}) need slurm",
        )
    return None if (jobs or 1) == 1 else LocalWorkers(jobs)


# --- the worker process of LocalWorkers -------------------------------------------------
PARENT_PID_ENV = "RESDIFF_WORKER_PARENT"  # the pid of the process that started a worker
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
PARENT_POLL_S = 0.5  # without prctl: how often the parent is looked for


def _end_with_parent():
    """SIGTERM this worker when its parent dies (``kill -9`` of ``resdiff fig`` included;
    the worker has a session of its own, so no signal to the parent's group reaches it).
    Linux: a parent-death signal (prctl); elsewhere a thread that looks for the parent
    every PARENT_POLL_S. Either way the signal goes through :mod:`resdiff.interrupt`: a
    running kernel ends its chunk, the unit's temporary files are removed, and the
    worker exits with 143 (:func:`worker`)."""
    parent = int(os.environ.get(PARENT_PID_ENV, "0") or 0)
    if not parent:
        return
    armed = False
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        armed = libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0
    if os.getppid() != parent:  # it died before the signal was armed
        os.kill(os.getpid(), signal.SIGTERM)
    if armed:
        return

    def watch():
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os.kill(os.getpid(), signal.SIGTERM)

    import threading

    threading.Thread(target=watch, daemon=True).start()


def _quit(code, why):
    """End the worker at once with one line in its log (no traceback): the unit's
    temporary files were removed as the exception unwound."""
    with contextlib.suppress(OSError, ValueError):
        print(f"resdiff: worker: {why}; the unfinished unit wrote no output", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def _log_to(path, label):
    """Send this process's stdout and stderr (file descriptors 1 and 2, so also what
    compiled code prints) to the end of ``path``, after a line that says which unit
    starts there and when: the log keeps every start of the unit."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
    size = os.fstat(fd).st_size
    # a line of its own, also after an earlier start's last (\r-ended) progress line
    ended = size == 0 or os.pread(fd, 1, size - 1) == b"\n"
    when = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    header = f"==> {label}: started {when} (pid {os.getpid()})\n"
    os.write(fd, header.encode() if ended else b"\n" + header.encode())
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def worker():
    """``python -m resdiff.executor``: a local worker. Reads one unit (JSON) a line from
    stdin, computes it with its output in the unit's log, and answers one JSON line
    ``{"ok": ..., "message": ...}``; ends at the end of its input, and with exit code
    143 on SIGTERM (130 on SIGINT) in the middle of a unit. The units it computes share
    one :class:`resdiff.sampling.store.DrawStore`, as in a serial run."""
    from . import interrupt

    interrupt.install()  # SIGTERM waits for the running kernel's chunk (interrupt.py)
    try:
        _end_with_parent()
        _serve()
    except KeyboardInterrupt:
        _quit(130, "interrupted")
    except interrupt.Terminated:
        _quit(143, "terminated (stopped by resdiff fig, or its parent ended)")
    except BrokenPipeError:  # the parent is gone: no one to answer
        _quit(143, "its parent ended")


def _serve():
    from . import pipeline

    answers = os.fdopen(os.dup(1), "w", buffering=1)
    store = pipeline.DrawStore()
    for line in sys.stdin:
        unit = pipeline.Unit.from_json(line)
        _log_to(unit.path.with_suffix(".log"), unit.label)
        status = {"ok": True, "message": ""}
        try:
            pipeline.compute(unit, store)
        except UserError as exc:
            print(f"resdiff: error: {exc}", file=sys.stderr)
            status = {"ok": False, "message": str(exc)}
        except Exception as exc:  # a bug: the traceback goes to the log
            traceback.print_exc()
            status = {"ok": False, "message": f"{type(exc).__name__}: {exc}"}
        sys.stdout.flush()
        sys.stderr.flush()
        answers.write(json.dumps(status) + "\n")


if __name__ == "__main__":
    worker()
