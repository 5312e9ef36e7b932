"""``resdiff verify``: does this installation reproduce the committed results?

For every dataset committed under ``OUT_DIR/data/PRESET/`` it recomputes a cheap slice
(:func:`plan`) and compares it with the committed rows (:func:`compare`):

* Monte Carlo datasets keep some draws in full (``kind = draw`` rows, the ``draw``
  column); every draw is a pure function of (seed, purpose, draw, layer), so draws 0-4
  are recomputed alone, with the evaluation plan the sidecar records;
* kernel regression and the limit's training dynamics are recomputed in full;
* each training run up to D = L = :data:`MAX_TRAINING_SIZE` trains its first epoch.

Each dataset is then ``reproduced`` (the same bytes), ``reproduced within rounding``
(PyTorch, numpy's BLAS and LAPACK, whose last bits differ between CPUs: the largest relative
difference and why), ``differs``, or ``not checked`` (and why: a statistic over every
draw, a run too long for the slice, a stale cache). Nothing is written.
"""

import hashlib
import io as _io
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import files, machine, numerics
from .figures import FIGURES, stem

REPRODUCED, ROUNDING, DIFFERS, NOT_CHECKED = (
    "reproduced",
    "reproduced within rounding",
    "differs",
    "not checked",
)
VERIFY_DRAWS = 5  # draws 0-4 of each Monte Carlo dataset
MAX_TRAINING_SIZE = 100  # first epochs of the training runs up to D = L = 100
ROUNDING_RTOL = 1e-12  # numpy's BLAS and LAPACK in float64: last bits
# float32 training, first epoch: PyTorch's AVX2 and AVX-512 kernels round differently and
# Adam amplifies it (conv, D = L = 10: 3.9e-4 relative in the first epoch's loss,
# docs/training.md); a wrong kernel differs by far more
TRAINING_RTOL = 1e-3


def recorded_capability(sidecar):
    """The SIMD kernels PyTorch trained with (``"AVX2"``, ``"AVX512"``...): recorded in
    the sidecar's meta since December 2026; before, AVX-512 when the machine had it."""
    meta = sidecar.get("meta") or {}
    if meta.get("torch_cpu_capability"):
        return meta["torch_cpu_capability"]
    features = ((sidecar.get("machine") or {}).get("kernel_features") or "").split()
    return "AVX512" if "avx512f" in features else "AVX2"


def capability_env(capability):
    """The environment that makes PyTorch (ATen and oneDNN) use ``capability``'s
    kernels on a CPU that has more (an AVX-512 CPU reproduces AVX2 runs bit for bit)."""
    name = {"AVX2": "avx2", "AVX512": "avx512"}.get(str(capability).upper())
    if name is None:
        return {}
    return {"ATEN_CPU_CAPABILITY": name, "ONEDNN_MAX_CPU_ISA": name.upper()}


TRAINING = "resdiff.experiments.mnist_train:mnist_train"
# experiments whose numbers are not byte-reproducible across CPUs (docs/training.md)
_OPENBLAS = "numpy's BLAS and LAPACK (OpenBLAS, whose kernels depend on the CPU)"
NOT_BYTE_EXACT = {
    TRAINING: "PyTorch's float32 kernels",
    "resdiff.experiments.mnist_kernel:mnist_kernel": _OPENBLAS,
    "resdiff.experiments.mnist_kernel:mnist_kernel_dynamics": _OPENBLAS,
}


@dataclass
class Slice:
    """What to recompute for one committed dataset: ``experiment(**params)`` and the
    rows of both CSVs to compare (``rows(frame)``); ``skip`` says why not, instead."""

    label: str
    experiment: str = None
    params: dict = None
    rows: object = None
    what: str = ""
    skip: str = None
    needs_mnist: bool = False


@dataclass
class Outcome:
    label: str
    status: str
    detail: str
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def _first_draws(column, n=VERIFY_DRAWS):
    return lambda frame: frame[frame[column] < n]


def _kept(frame):
    return frame[frame["kind"] == "draw"]


def _first_epoch(frame):
    return frame[frame["epoch"] == 1]


def plan(experiment, params, sidecar):
    """The :class:`Slice` of a committed dataset computed by ``experiment`` with
    ``params`` (its sidecar: ``sidecar``)."""
    meta = sidecar.get("meta", {})
    name = experiment.split(":")[1]
    if name == "samples":
        kept = meta.get("kept_draws") or []
        if not kept:
            return Slice(None, skip="keeps no draw")
        slice_params = {**params, "draws": max(kept) + 1, "quantiles": []}
        if meta.get("evaluation") == "chebyshev":
            slice_params["nodes"] = meta["nodes"]  # the pilot saw all draws' run
        return Slice(
            None, experiment, slice_params, _kept, f"kept draws {', '.join(map(str, kept))}"
        )
    if name == "kde":
        return Slice(
            None,
            experiment,
            {**params, "draws": VERIFY_DRAWS},
            _first_draws("draw"),
            f"draws 0-{VERIFY_DRAWS - 1} of each method",
        )
    if name == "ntk_convergence":
        return Slice(
            None,
            experiment,
            {**params, "draws": VERIFY_DRAWS},
            lambda f: f[(f["kind"] == "limit") | (f["draw"] < VERIFY_DRAWS)],
            f"draws 0-{VERIFY_DRAWS - 1} of each size, and the limits",
        )
    if name in ("jacobian", "explosion"):
        return Slice(
            None,
            experiment,
            {**params, "draws": VERIFY_DRAWS},
            lambda f: f[f["draw"].fillna(-1) < VERIFY_DRAWS],
            f"draws 0-{VERIFY_DRAWS - 1} of each method, and the limits",
        )
    if name == "correlation":
        return Slice(
            None,
            skip="its CSV holds only correlations over all "
            f"{params['draws']} draws, no single draw to recompute",
        )
    if name in ("mnist_kernel", "mnist_kernel_dynamics"):
        return Slice(None, experiment, dict(params), lambda f: f, "in full", needs_mnist=True)
    if name == "mnist_train":
        if params["size"] > MAX_TRAINING_SIZE:
            return Slice(
                None,
                skip=f"D = L = {params['size']}: its first epoch alone is "
                "beyond the slice's budget (verify trains up to "
                f"D = L = {MAX_TRAINING_SIZE})",
            )
        return Slice(
            None, experiment, {**params, "epochs": 1}, _first_epoch, "first epoch", needs_mnist=True
        )
    return Slice(None, skip=f"no slice defined for {experiment}")


def _csv(frame):
    return frame.to_csv(index=False, float_format="%.17g").encode()


def _largest_relative_difference(committed, recomputed):
    worst = 0.0
    for column in committed.columns:
        a, b = committed[column], recomputed[column]
        if (
            pd.api.types.is_numeric_dtype(a)
            and pd.api.types.is_numeric_dtype(b)
            and not pd.api.types.is_bool_dtype(a)
        ):
            a, b = a.to_numpy(float), b.to_numpy(float)
            both_nan = np.isnan(a) & np.isnan(b)
            if (np.isnan(a) != np.isnan(b)).any():
                return float("inf")
            scale = np.maximum(np.abs(a), np.abs(b))
            diff = np.where(
                both_nan | (scale == 0), 0.0, np.abs(a - b) / np.where(scale == 0, 1.0, scale)
            )
            worst = max(worst, float(diff.max(initial=0.0)))
        elif not a.astype(str).reset_index(drop=True).equals(b.astype(str).reset_index(drop=True)):
            return float("inf")
    return worst


def compare(experiment, committed, recomputed, sidecar):
    """``(status, detail)`` of recomputed rows against the committed ones."""
    committed = committed.reset_index(drop=True)
    recomputed = recomputed.reset_index(drop=True)
    if list(committed.columns) != list(recomputed.columns) or len(committed) != len(recomputed):
        return DIFFERS, (
            f"{len(recomputed)} rows of columns {list(recomputed.columns)} "
            f"against {len(committed)} of {list(committed.columns)}"
        )
    if _csv(committed) == _csv(recomputed):
        return REPRODUCED, f"{len(committed)} rows, same bytes"
    worst = _largest_relative_difference(committed, recomputed)
    why = NOT_BYTE_EXACT.get(experiment)
    tolerance = TRAINING_RTOL if experiment == TRAINING else ROUNDING_RTOL
    if why is not None and worst <= tolerance:
        here, there = machine.describe(), sidecar.get("machine") or {}
        where = (
            f"computed on {there.get('cpu')} ({there.get('kernel_target')}), here "
            f"{here.get('cpu')} ({here.get('kernel_target')})"
        )
        return ROUNDING, (
            f"largest relative difference {worst:.2g} (tolerance "
            f"{tolerance:g}): {why} round differently across CPUs; "
            f"{where}"
        )
    return DIFFERS, f"largest relative difference {worst:.3g} over {len(committed)} rows"


def committed_datasets(preset, out_dir, only=None):
    """``[(figure, name, dataset, csv path)]`` of the registry at ``preset`` whose CSV is
    in ``OUT_DIR/data/PRESET/``; ``only``: labels ``figN`` or ``figN-NAME`` (``NAME``,
    ``NAME-DATASET`` for the named figures) to keep."""
    from .pipeline import data_path

    found = []
    for number, spec in FIGURES.items():
        for name in spec.names(preset):
            label = f"{stem(number)}-{name}"
            if only and not any(label == o or stem(number) == o for o in only):
                continue
            path = data_path(out_dir, preset, number, name)
            if path.is_file() or files.sidecar_path(path).is_file():
                found.append((number, name, spec.datasets[name], path))
    return found


def _prepare(number, name, dataset, path, preset):
    """``(label, check, slice)``; the slice says why not when there is nothing to run."""
    label = f"{stem(number)}-{name}"
    params = dataset.params[preset]
    check = files.check_cached(path, params, numerics.versions(dataset.experiment, params))
    if not check.reusable:
        return label, check, Slice(label, skip=f"not a valid cache here: {check.reason}")
    piece = plan(dataset.experiment, params, check.sidecar)
    piece.label = label
    return label, check, piece


def _compute(piece, check, data_dir):
    """The slice's CSV bytes. Training runs go to a process of their own, with the SIMD
    kernels the run was trained with (:func:`capability_env`)."""
    import importlib

    kwargs = dict(piece.params)
    if piece.needs_mnist:
        kwargs["data_dir"] = None if data_dir is None else str(data_dir)
    if piece.experiment == TRAINING:
        return _run_in_child(
            piece.experiment, kwargs, capability_env(recorded_capability(check.sidecar))
        )
    module, attr = piece.experiment.split(":")
    return _csv(getattr(importlib.import_module(module), attr)(**kwargs).frame)


def _outcome(dataset, path, check, piece, data, seconds):
    committed = files.read_result(path, check.sidecar)
    # the recomputed frame through the same CSV text as the committed one
    recomputed = pd.read_csv(_io.BytesIO(data))
    status, detail = compare(
        dataset.experiment, piece.rows(committed), piece.rows(recomputed), check.sidecar
    )
    return Outcome(
        piece.label,
        status,
        f"{piece.what}: {detail}",
        seconds,
        {"sha256": hashlib.sha256(_csv(piece.rows(recomputed))).hexdigest()},
    )


def verify_one(number, name, dataset, path, preset, data_dir=None):
    """The :class:`Outcome` of one committed dataset."""
    label, check, piece = _prepare(number, name, dataset, path, preset)
    if piece.skip:
        return Outcome(label, NOT_CHECKED, piece.skip)
    started = time.time()
    data = _compute(piece, check, data_dir)
    return _outcome(dataset, path, check, piece, data, time.time() - started)


def verify_all(datasets, preset, data_dir=None, jobs=2, on_start=None):
    """Yield the :class:`Outcome` of each of ``datasets`` (:func:`committed_datasets`),
    in order. The training slices (single-threaded PyTorch, in child processes) run up
    to ``jobs`` at a time beside the others, which run here; ``on_start(label)`` is
    called as each dataset is taken up here."""
    from concurrent.futures import ThreadPoolExecutor

    prepared = [(d, _prepare(*d, preset)) for d in datasets]
    pool = ThreadPoolExecutor(max_workers=max(1, jobs))

    def timed(piece, check):
        started = time.time()
        return _compute(piece, check, data_dir), time.time() - started

    try:
        background = {
            label: pool.submit(timed, piece, check)
            for _, (label, check, piece) in prepared
            if not piece.skip and piece.experiment == TRAINING
        }
        for (_number, _name, dataset, path), (label, check, piece) in prepared:
            if on_start is not None:
                on_start(label)
            if piece.skip:
                yield Outcome(label, NOT_CHECKED, piece.skip)
                continue
            if label in background:
                data, seconds = background[label].result()
            else:
                started = time.time()
                data, seconds = _compute(piece, check, data_dir), time.time() - started
            yield _outcome(dataset, path, check, piece, data, seconds)
    finally:
        for future in background.values() if "background" in locals() else ():
            future.cancel()
        _kill_children()
        pool.shutdown(wait=True, cancel_futures=True)


_CHILDREN = set()


def _kill_children():
    for child in list(_CHILDREN):
        child.kill()


def _run_in_child(experiment, kwargs, env):
    """``experiment(**kwargs)``'s CSV bytes, computed by ``python -m resdiff.verify`` with
    ``env`` added to the environment (read by PyTorch when it is imported)."""
    import json
    import os
    import subprocess
    import sys
    from . import progress
    from .errors import UserError

    with subprocess.Popen(
        [sys.executable, "-m", "resdiff.verify"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, **env},
    ) as child:
        _CHILDREN.add(child)
        try:
            out, _ = child.communicate(
                json.dumps([experiment, kwargs, progress.is_quiet()]).encode()
            )
        finally:
            _CHILDREN.discard(child)
    if child.returncode != 0:
        raise UserError(
            f"verify: recomputing {experiment} failed (exit code "
            f"{child.returncode}; its message is above)"
        )
    return out


def _child():
    """``python -m resdiff.verify``: ``[experiment, kwargs, quiet]`` on stdin, its CSV
    bytes on stdout; an error is one line on stderr and exit code 2."""
    import importlib
    import json
    import sys
    from . import interrupt, progress
    from .errors import UserError

    interrupt.install()
    experiment, kwargs, quiet = json.loads(sys.stdin.buffer.read())
    progress.set_quiet(quiet)
    module, attr = experiment.split(":")
    try:
        result = getattr(importlib.import_module(module), attr)(**kwargs)
    except UserError as exc:
        print(f"resdiff: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except (KeyboardInterrupt, interrupt.Terminated):
        sys.exit(130)
    sys.stdout.buffer.write(_csv(result.frame))


def passed(outcomes):
    """True when every dataset that was checked reproduced (within rounding included)."""
    return all(o.status in (REPRODUCED, ROUNDING, NOT_CHECKED) for o in outcomes) and any(
        o.status != NOT_CHECKED for o in outcomes
    )


if __name__ == "__main__":
    _child()
