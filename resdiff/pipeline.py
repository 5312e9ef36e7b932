"""``resdiff fig``: run (or reuse) a figure's experiments, then draw and save it.

CSVs go to ``OUT_DIR/data/PRESET/figN-NAME.csv`` with their sidecars; a CSV is reused
only when its sidecar records the same parameters, seed, package version and computing
sources (:func:`resdiff.io.cached`). Figures are written atomically as PDF and PNG, with
the preset and the sidecars they were drawn from in their metadata; a figure whose PNG
records the same data and drawing code is not drawn again.
"""
import hashlib
import importlib
import json
import os
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from . import __version__, io, source_digest
from .errors import UserError
from .figures import FIGURES, PRESETS
from .progress import info, warn


def _load(target):
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def _digest(text):
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _drawn_from(targets, provenance):
    """True when every target exists and the PNG records exactly this provenance."""
    if not all(t.is_file() for t in targets):
        return False
    from PIL import Image
    try:
        with Image.open(targets[-1]) as png:
            return png.info.get("Description") == json.dumps(provenance)
    except OSError:
        return False


def figure_spec(number):
    if number not in FIGURES:
        known = ", ".join(str(n) for n in sorted(FIGURES))
        raise UserError(f"figure {number} is not available (available: {known})")
    return FIGURES[number]


def data_path(out_dir, preset, number, name, seed=0):
    """``OUT_DIR/data/PRESET/figN-NAME.csv``; other seeds than 0 get their own files."""
    tag = f"-seed{seed}" if seed else ""
    return Path(out_dir) / "data" / preset / f"fig{number}-{name}{tag}.csv"


def show_params(number, preset, out_dir, seed=0):
    """The parameters of every dataset of a figure, and what its sidecars recorded."""
    spec = figure_spec(number)
    lines = [f"figure {number}: {spec.title} (preset {preset})"]
    for name in spec.names(preset):
        params = spec.params(name, preset, seed)
        path = data_path(out_dir, preset, number, name, seed)
        lines.append(f"  {name}: {spec.datasets[name].experiment}")
        lines.append(f"    params: {json.dumps(params, sort_keys=True)}")
        side = io.read_sidecar(path)
        if side is None:
            lines.append(f"    csv: {path} (not computed yet)")
        else:
            state = "cached" if io.cached(path, params) else "stale"
            lines.append(f"    csv: {path} ({state}; version {side.get('version')}, "
                         f"commit {side.get('git_commit')}, {side.get('wall_time_s')} s, "
                         f"{side.get('threads')} threads)")
    return "\n".join(lines)


# A training run's checkpoint is rewritten at most this often (and after its last epoch):
# at the paper's D = L = 500 with Adam a checkpoint is about 1.5 GB.
CHECKPOINT_EVERY_S = 60.0


@dataclass(frozen=True)
class Unit:
    """One dataset of one figure: the unit of work an executor runs (this process, a
    worker process, a Slurm job). Plain values only, so it travels as JSON or a pickle."""
    figure: int
    name: str
    preset: str
    out_dir: str
    seed: int = 0
    data_dir: str = None

    @property
    def label(self):
        return f"fig {self.figure} {self.name}"

    @property
    def path(self):
        return data_path(self.out_dir, self.preset, self.figure, self.name, self.seed)

    @property
    def params(self):
        return FIGURES[self.figure].params(self.name, self.preset, self.seed)

    def rerun_command(self):
        """The serial command that computes this unit again (reusing what is cached)."""
        words = ["resdiff", "fig", str(self.figure), "--preset", self.preset,
                 "--out-dir", str(self.out_dir)]
        if self.seed:
            words += ["--seed", str(self.seed)]
        if self.data_dir:
            words += ["--data-dir", str(self.data_dir)]
        return shlex.join(words)


def checkpoint_path(csv_path):
    """A training run's checkpoint, beside its CSV: ``figN-NAME.ckpt``."""
    return Path(csv_path).with_suffix(".ckpt")


def plan(number, preset, out_dir, force=False, data_dir=None, seed=0):
    """The units figure ``number`` still needs (all of them with ``force``); each cached
    dataset is reported as reused. Checks the preset and that the CSVs can be written."""
    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r} (known: {', '.join(PRESETS)})")
    spec = figure_spec(number)
    units = []
    for name in spec.names(preset):
        unit = Unit(number, name, preset, str(out_dir), seed,
                    None if data_dir is None else str(data_dir))
        io.check_writable(unit.path, what="figure data")
        if not force and io.cached(unit.path, unit.params):
            info(f"fig {number}: reusing {unit.path}")
        else:
            units.append(unit)
    return units


def compute(unit):
    """Run the experiment of ``unit`` and write its CSV and sidecar; every executor runs
    exactly this, in whatever process. A resumable experiment continues from the
    checkpoint beside the CSV, which is removed once the CSV is written."""
    dataset = FIGURES[unit.figure].datasets[unit.name]
    params = unit.params
    info(f"fig {unit.figure}: computing {unit.name} ({unit.preset} preset)")
    t0 = time.time()
    kwargs = dict(params)
    if dataset.needs_mnist:
        kwargs["data_dir"] = unit.data_dir
    checkpoint = checkpoint_path(unit.path) if dataset.resumable else None
    if checkpoint is not None:
        kwargs.update(checkpoint=str(checkpoint), resume=True,
                      checkpoint_every=CHECKPOINT_EVERY_S)
    result = _load(dataset.experiment)(**kwargs)
    for line in result.warnings:
        warn(f"fig {unit.figure} {unit.name}: {line}")
    io.write_result(unit.path, result.frame, params, result.meta,
                    command=f"fig {unit.figure} --preset {unit.preset}", started=t0)
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)
    return unit.path


def _group_sidecar(sidecars):
    """What the plot reads for a group of datasets: the parameters they share, and each
    member's own sidecar."""
    if len(sidecars) == 1:
        return next(iter(sidecars.values()))
    params = [s["params"] for s in sidecars.values()]
    common = {k: v for k, v in params[0].items() if all(p.get(k) == v for p in params)}
    return {"params": common, "members": sidecars}


def draw(number, preset, out_dir, force=False, seed=0, started=None):
    """Draw figure ``number`` from its cached CSVs (all must be there) and save it."""
    spec = figure_spec(number)
    out_dir = Path(out_dir)
    started = time.time() if started is None else started
    names = spec.names(preset)
    paths = {name: data_path(out_dir, preset, number, name, seed) for name in names}
    sidecars = {name: io.read_sidecar(path) for name, path in paths.items()}
    provenance = {
        "resdiff": __version__, "figure": number, "preset": preset,
        "sidecars": {name: str(io.sidecar_path(path)) for name, path in paths.items()},
        "commits": sorted({str(s.get("git_commit")) for s in sidecars.values()}),
        # what the picture depends on: its data (their sidecars change whenever the CSVs
        # are rewritten) and the code that draws it
        "data_digest": _digest(json.dumps(sidecars, sort_keys=True)),
        "source_digest": source_digest(),
    }
    targets = [out_dir / f"fig{number}.{ext}" for ext in ("pdf", "png")]
    if not force and _drawn_from(targets, provenance):
        info(f"fig {number}: {targets[0]} and .png are up to date (same data, same code)")
        return targets
    import pandas as pd
    groups = spec.groups(preset)
    frames = {group: pd.concat([pd.read_csv(paths[n]) for n in members], ignore_index=True)
              for group, members in groups.items()}
    group_sidecars = {group: _group_sidecar({n: sidecars[n] for n in members})
                      for group, members in groups.items()}
    fig = _load(spec.plot)(frames, group_sidecars, preset)
    written = []
    for target in targets:
        ext = target.suffix[1:]
        tmp = target.with_name(f".{target.name}.tmp")
        meta = ({"Subject": json.dumps(provenance), "Creator": f"resdiff {__version__}"}
                if ext == "pdf" else {"Description": json.dumps(provenance),
                                      "Software": f"resdiff {__version__}"})
        try:
            fig.savefig(tmp, format=ext, metadata=meta)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                tmp.unlink()
        written.append(target)
    import matplotlib.pyplot as plt
    plt.close(fig)
    info(f"fig {number}: wrote {', '.join(map(str, written))} in {time.time() - started:.1f} s")
    return written


def make_figure(number, preset, out_dir, force=False, data_dir=None, seed=0):
    """Compute what figure ``number`` needs in this process (reusing valid caches), one
    dataset after another, and save the figure; the first failure stops it."""
    started = time.time()
    for unit in plan(number, preset, out_dir, force, data_dir, seed):
        compute(unit)
    return draw(number, preset, out_dir, force, seed, started)


def make_figures(numbers, preset, out_dir, executor, force=False, data_dir=None, seed=0):
    """Every figure of ``numbers`` with its units run by ``executor`` (a
    :mod:`resdiff.executor` pool); each figure is drawn as soon as its last unit is in.

    A failed unit is reported at once, with its log and the command that reruns it, and
    does not stop the others. Returns the numbers of the figures that could not be made.
    """
    from .executor import Failure
    units = {n: plan(n, preset, out_dir, force, data_dir, seed) for n in numbers}
    pending = {n: len(us) for n, us in units.items()}
    failed, started = [], time.time()

    def draw_or_fail(n):
        try:
            draw(n, preset, out_dir, force, seed, started)
        except UserError as exc:
            warn(f"fig {n}: {exc}")
            failed.append(n)

    def finished(unit, failure, log):
        n = unit.figure
        if failure is None and not io.cached(unit.path, unit.params):
            failure = Failure("the worker ended without writing a valid CSV (did it run "
                              "other resdiff sources?)", log)
        if failure is not None:
            warn(f"{unit.label} failed ({failure.message}); log: {failure.log}; "
                 f"rerun: {unit.rerun_command()}")
            if n not in failed:
                failed.append(n)
        pending[n] -= 1
        if pending[n] == 0 and n not in failed:
            draw_or_fail(n)

    for n in numbers:
        if pending[n] == 0:
            draw_or_fail(n)
    executor.run([u for n in numbers for u in units[n]], finished)
    return [n for n in numbers if n in failed]
