"""``resdiff fig``: run (or reuse) a figure's experiments, then draw and save it.

Figures go to ``OUT_DIR/PRESET/figN.pdf`` and ``.png``, their CSVs to
``OUT_DIR/data/PRESET/figN-NAME.csv`` with sidecars. Every location is checked for
writing before anything is computed (:func:`check_outputs`). Each dataset is computed
under its own lock (:func:`resdiff.io.exclusive`) and reused when its sidecar records
the same parameters, seed, version and computing code and the CSV matches the SHA-256
it recorded (:func:`resdiff.io.check_cached`); a damaged cache is recomputed with a
warning. A figure is drawn under its own lock, written atomically, and carries the
preset and the sidecars it was drawn from in its metadata; a figure whose PNG records
the same data and drawing code is not drawn again. So identical runs started together
compute each dataset once, and the later ones reuse it.
"""
import hashlib
import importlib
import json
import time
from pathlib import Path

from . import __version__, io, sources
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


def dataset_digest(dataset):
    """The code digest a dataset's CSV is keyed on: its experiment's modules
    (:func:`resdiff.sources.code_digest`)."""
    return sources.code_digest(dataset.experiment)


def plot_digest(spec):
    """The digest of the code that draws figure ``spec`` (its plot module and what it
    imports, the command line aside)."""
    return sources.code_digest(spec.plot, exclude=("resdiff.cli",))


def figure_spec(number):
    if number not in FIGURES:
        known = ", ".join(str(n) for n in sorted(FIGURES))
        raise UserError(f"figure {number} is not available (available: {known})")
    return FIGURES[number]


def figure_paths(out_dir, preset, number):
    """``[OUT_DIR/PRESET/figN.pdf, OUT_DIR/PRESET/figN.png]``: each preset its own folder."""
    return [Path(out_dir) / preset / f"fig{number}.{ext}" for ext in ("pdf", "png")]


def data_path(out_dir, preset, number, name, seed=0):
    """``OUT_DIR/data/PRESET/figN-NAME.csv``; other seeds than 0 get their own files."""
    tag = f"-seed{seed}" if seed else ""
    return Path(out_dir) / "data" / preset / f"fig{number}-{name}{tag}.csv"


def show_params(number, preset, out_dir, seed=0):
    """The parameters of every dataset of a figure, and what its sidecars recorded."""
    spec = figure_spec(number)
    lines = [f"figure {number}: {spec.title} (preset {preset})"]
    for name in spec.datasets:
        params = spec.params(name, preset, seed)
        path = data_path(out_dir, preset, number, name, seed)
        lines.append(f"  {name}: {spec.datasets[name].experiment}")
        lines.append(f"    params: {json.dumps(params, sort_keys=True)}")
        side = io.read_sidecar(path)
        if side is None:
            lines.append(f"    csv: {path} (not computed yet)")
        else:
            check = io.check_cached(path, params, dataset_digest(spec.datasets[name]))
            state = "cached" if check.reusable else f"stale: {check.reason}"
            lines.append(f"    csv: {path} ({state}; version {side.get('version')}, "
                         f"commit {side.get('git_commit')}, {side.get('wall_time_s')} s, "
                         f"{side.get('threads')} threads)")
    return "\n".join(lines)


def check_outputs(numbers, preset, out_dir, seed=0):
    """Fail with one line, before anything is computed, if any file that figures
    ``numbers`` would write (CSVs, sidecars, locks, PDFs, PNGs) cannot be created."""
    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r} (known: {', '.join(PRESETS)})")
    for number in numbers:
        spec = figure_spec(number)
        for name in spec.datasets:
            io.check_writable(data_path(out_dir, preset, number, name, seed),
                              what="figure data")
        for target in figure_paths(out_dir, preset, number):
            io.check_writable(target, what="figure")


def _waiting(path):
    return lambda: info(f"waiting for another resdiff run that is writing {path}")


def _ensure_dataset(number, preset, name, dataset, params, path, force, data_dir):
    """Compute dataset ``name`` into ``path`` unless a valid cache is there; returns its
    sidecar. Runs under the dataset's lock: a concurrent identical run waits here and
    then finds the cache valid."""
    code = dataset_digest(dataset)
    with io.exclusive(path, on_wait=_waiting(path)):
        check = io.check_cached(path, params, code)
        if check.reusable and not force:
            info(f"fig {number}: reusing {path}")
            return check.sidecar
        if check.damaged:
            warn(f"fig {number}: {check.reason}; recomputing it")
        info(f"fig {number}: computing {name} ({preset} preset)")
        t0 = time.time()
        kwargs = dict(params, data_dir=data_dir) if dataset.needs_mnist else params
        result = _load(dataset.experiment)(**kwargs)
        for line in result.warnings:
            warn(f"fig {number} {name}: {line}")
        return io.write_result(path, result.frame, params, result.meta,
                               command=f"fig {number} --preset {preset}", started=t0,
                               code=code)


def make_figure(number, preset, out_dir, force=False, data_dir=None, seed=0):
    """Compute what figure ``number`` needs (reusing valid caches) and save it."""
    check_outputs([number], preset, out_dir, seed)
    spec = figure_spec(number)
    paths = {name: data_path(out_dir, preset, number, name, seed) for name in spec.datasets}
    started = time.time()
    sidecars = {name: _ensure_dataset(number, preset, name, dataset,
                                      spec.params(name, preset, seed), paths[name], force,
                                      data_dir)
                for name, dataset in spec.datasets.items()}
    sidecars = io.normalise(sidecars)  # as a reader of the files sees them
    provenance = {
        "resdiff": __version__, "figure": number, "preset": preset,
        "sidecars": {name: str(io.sidecar_path(path)) for name, path in paths.items()},
        "commits": sorted({str(s.get("git_commit")) for s in sidecars.values()}),
        # what the picture depends on: its data (their sidecars change whenever the CSVs
        # are rewritten) and the code that draws it
        "data_digest": _digest(json.dumps(sidecars, sort_keys=True)),
        "source_digest": plot_digest(spec),
    }
    targets = figure_paths(out_dir, preset, number)
    with io.exclusive(targets[0].with_suffix(""), on_wait=_waiting(targets[0])):
        if not force and _drawn_from(targets, provenance):
            info(f"fig {number}: {targets[0]} and .png are up to date (same data, same code)")
            return targets
        frames = {name: io.read_result(path, sidecars[name]) for name, path in paths.items()}
        fig = _load(spec.plot)(frames, sidecars, preset)
        for target in targets:
            ext = target.suffix[1:]
            meta = ({"Subject": json.dumps(provenance), "Creator": f"resdiff {__version__}"}
                    if ext == "pdf" else {"Description": json.dumps(provenance),
                                          "Software": f"resdiff {__version__}"})
            with io.atomic_write(target, "wb") as fh:
                fig.savefig(fh, format=ext, metadata=meta)
        import matplotlib.pyplot as plt
        plt.close(fig)
    info(f"fig {number}: wrote {', '.join(map(str, targets))} in {time.time() - started:.1f} s")
    return targets
