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
import time
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


def data_path(out_dir, preset, number, name, seed=0, precision=None):
    """``OUT_DIR/data/PRESET/figN-NAME.csv``; other seeds than 0 and precisions other
    than fp32 get their own files."""
    tag = f"-seed{seed}" if seed else ""
    tag += f"-{precision}" if precision not in (None, "fp32") else ""
    return Path(out_dir) / "data" / preset / f"fig{number}-{name}{tag}.csv"


def _precision_of(spec, name, precision):
    return precision if spec.datasets[name].takes_precision else None


def show_params(number, preset, out_dir, seed=0, precision=None):
    """The parameters of every dataset of a figure, and what its sidecars recorded."""
    spec = figure_spec(number)
    lines = [f"figure {number}: {spec.title} (preset {preset})"]
    for name in spec.datasets:
        params = spec.params(name, preset, seed, precision)
        path = data_path(out_dir, preset, number, name, seed,
                         _precision_of(spec, name, precision))
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


def make_figure(number, preset, out_dir, force=False, data_dir=None, seed=0, precision=None):
    """Compute what figure ``number`` needs (reusing valid caches) and save it."""
    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r} (known: {', '.join(PRESETS)})")
    spec = figure_spec(number)
    out_dir = Path(out_dir)
    paths = {name: data_path(out_dir, preset, number, name, seed,
                             _precision_of(spec, name, precision)) for name in spec.datasets}
    sidecars = {}
    started = time.time()
    for name, dataset in spec.datasets.items():
        params = spec.params(name, preset, seed, precision)
        path = paths[name]
        io.check_writable(path, what="figure data")
        if not force and io.cached(path, params):
            info(f"fig {number}: reusing {path}")
        else:
            info(f"fig {number}: computing {name} ({preset} preset)")
            t0 = time.time()
            kwargs = dict(params, data_dir=data_dir) if dataset.needs_mnist else params
            result = _load(dataset.experiment)(**kwargs)
            for line in result.warnings:
                warn(f"fig {number} {name}: {line}")
            io.write_result(path, result.frame, params, result.meta,
                            command=f"fig {number} --preset {preset}", started=t0)
        sidecars[name] = io.read_sidecar(path)
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
    frames = {name: pd.read_csv(path) for name, path in paths.items()}
    fig = _load(spec.plot)(frames, sidecars, preset)
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
