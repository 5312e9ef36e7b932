"""``resdiff fig``: run (or reuse) a figure's experiments, then draw and save it.

Figures go to ``OUT_DIR/PRESET/figN.pdf`` and ``.png``, their CSVs to
``OUT_DIR/data/PRESET/figN-NAME.csv`` with sidecars. Every location is checked for
writing before anything is computed (:func:`check_outputs`). Each dataset is computed
under its own lock (:func:`resdiff.files.exclusive`) and reused when its sidecar records
the same parameters, seed and numerical versions (:mod:`resdiff.numerics`) and the CSV
matches the SHA-256 it recorded (:func:`resdiff.files.check_cached`); a damaged cache
is recomputed with a warning. A figure is drawn under its own lock, written atomically,
and carries the preset and the sidecars it was drawn from in its metadata; a figure
whose PNG records the same data and drawing code is not drawn again. So identical runs
started together compute each dataset once, and the later ones reuse it.

The unit of work is one dataset (:class:`Unit`): :func:`make_figure` computes a
figure's units one after another in this process; :func:`make_figures` hands them to
an executor (:mod:`resdiff.executor`: local worker processes, Slurm jobs), whose
workers run :func:`compute` and write through the same cache.

Following ``resdiff fig 1``: :mod:`resdiff.cli.fig` calls :func:`make_figure`; the
registry (:mod:`resdiff.figures`) names Fig. 1's datasets, each an experiment
(``resdiff.experiments.samples:samples``) with its parameters per preset;
:func:`compute` calls the experiment, which plans where the draws are simulated
(:mod:`resdiff.sampling.plan`), runs the Numba kernels (:mod:`resdiff.sampling.draws`,
:mod:`resdiff.sampling.feedforward`) and summarises them (:mod:`resdiff.statistics`);
the CSV and sidecar are written here, and :func:`draw` hands them to the plot
(:mod:`resdiff.plots.fig1`).

Simulations shared by datasets computed in one process (Fig. 5 reuses those of Figs. 1
and 4) go through one :class:`resdiff.sampling.store.DrawStore`, created per ``resdiff
fig`` process (or worker) and handed to every experiment that ``shares_draws``; it is
not a parameter, so it is neither in the sidecar nor in the cache key.
"""

import dataclasses
import hashlib
import importlib
import json
import shlex
import time
from pathlib import Path

from . import __version__, files, numerics, sources
from .errors import UserError
from .figures import FIGURES, PRESETS, stem
from .progress import info, warn
from .sampling.store import DrawStore


def _load(target):
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def _digest(text):
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# provenance that records where the data came from, not what they are: a figure drawn
# from the same CSV bytes computed at another commit is the same picture
INFORMATIONAL = ("commits",)


def _png_provenance(path):
    """The provenance a PNG records, after checking that it decodes in full (every
    chunk's CRC, then the pixels); raises OSError or ValueError if it does not."""
    from PIL import Image

    with Image.open(path) as png:
        png.verify()  # reads to the end: a truncated or altered file fails here
    with Image.open(path) as png:
        png.load()
        text = png.info.get("Description")
    if text is None:
        raise ValueError("it records no provenance")
    recorded = json.loads(text)
    if not isinstance(recorded, dict):
        raise ValueError("its provenance is not a record")
    return recorded


def _pdf_bytes(path):
    """A PDF's bytes, after checking that it is whole: ``%PDF-`` header, a
    ``startxref`` that points to its cross-reference table, ``%%EOF`` at the end;
    raises OSError or ValueError if it is not."""
    data = path.read_bytes()
    if not data.startswith(b"%PDF-") or not data.rstrip().endswith(b"%%EOF"):
        raise ValueError("it is not a whole PDF (no %PDF- header or no %%EOF at its end)")
    tail = data[-1024:].split(b"startxref")
    try:
        offset = int(tail[-1].split()[0]) if len(tail) > 1 else -1
    except (ValueError, IndexError):
        offset = -1
    if not 0 <= offset < len(data) or data[offset : offset + 4] != b"xref":
        raise ValueError("its cross-reference table is not where the PDF says")
    return data


def _drawn_from(targets, provenance):
    """True when every target is whole and records this provenance, up to its
    :data:`INFORMATIONAL` fields. A figure file that does not open in full, or whose
    provenance cannot be read, gets one warning and is redrawn (from the cached CSVs:
    nothing is recomputed)."""
    if not all(t.is_file() for t in targets):
        return False
    recorded, pdfs = None, []
    for target in targets:
        try:
            if target.suffix == ".png":
                recorded = _png_provenance(target)
            else:
                pdfs.append(_pdf_bytes(target))
        except Exception as exc:  # whatever a damaged file makes PIL raise
            warn(f"{target} is damaged ({_why(exc)}); drawing it again from its CSVs")
            return False

    def key(record):
        return {k: v for k, v in record.items() if k not in INFORMATIONAL}

    if key(recorded) != key(files.normalise(provenance)):
        return False
    from matplotlib.backends.backend_pdf import pdfRepr

    subject = pdfRepr(json.dumps(recorded))  # the PDF's /Subject, written with the PNG
    return all(subject in data for data in pdfs)


def _why(exc):
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


def dataset_digest(dataset):
    """The digest of the code that computes a dataset (its experiment's modules,
    :func:`resdiff.sources.code_digest`): provenance in its sidecar, not its key."""
    return sources.code_digest(dataset.experiment)


def dataset_numerics(dataset, params):
    """The numerical versions a dataset's CSV is keyed on (:func:`resdiff.numerics.versions`)."""
    return numerics.versions(dataset.experiment, params)


# what a dataset's CSV, and what a plot reads from its sidecar, are a function of (its
# parameters, seed and numerical versions), and the CSV's own hash; not when, where,
# how fast or by which revision of the code it was computed
DATA_FIELDS = ("params", "seed", "numerics", "csv_sha256")


def data_digest(sidecars):
    """The digest of the data a figure is drawn from: each dataset's
    :data:`DATA_FIELDS`, from its sidecar (name -> sidecar, as
    :func:`resdiff.files.normalise` gives them). The same CSVs computed again, at another
    time or on another machine, have the same digest; any other CSV has another."""
    return _digest(
        json.dumps(
            {
                name: {field: sidecar.get(field) for field in DATA_FIELDS}
                for name, sidecar in sidecars.items()
            },
            sort_keys=True,
        )
    )


def plot_digest(spec):
    """The digest of the code that draws figure ``spec``: its plot module and the
    plotting modules it imports (:mod:`resdiff.plots`). What the plot reads of the rest
    (the registry's parameters, the data) is in the data digest already."""
    return sources.code_digest(spec.plot, within="resdiff.plots")


def figure_spec(number):
    if number not in FIGURES:
        known = ", ".join(str(n) for n in FIGURES)
        raise UserError(f"figure {number} is not available (available: {known})")
    return FIGURES[number]


def _precision_tag(precision):
    return f"-{precision}" if precision not in (None, "fp32") else ""


def _trains(spec):
    return any(d.takes_precision for d in spec.datasets.values())


@dataclasses.dataclass(frozen=True)
class Request:
    """What one ``resdiff fig`` run asks of every figure it makes: the preset, where the
    figures and their data go, the seed, the training precision (None: fp32), the
    largest training network (None: all), whether to recompute valid caches, and where
    MNIST is. Plain values only, so that a :class:`Unit` travels as JSON."""

    preset: str = "quick"
    out_dir: str = "figures"
    seed: int = 0
    precision: str = None
    max_size: int = None
    force: bool = False
    data_dir: str = None

    def __post_init__(self):  # one spelling of each value, whatever the caller passed
        object.__setattr__(self, "out_dir", str(self.out_dir))
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "force", bool(self.force))
        if self.data_dir is not None:
            object.__setattr__(self, "data_dir", str(self.data_dir))

    def data_path(self, number, name):
        """:func:`data_path` of dataset ``name`` of figure ``number``."""
        return data_path(self.out_dir, self.preset, number, name, self.seed, self.precision)

    def figure_paths(self, number, partial=False):
        """:func:`figure_paths` of figure ``number``."""
        return figure_paths(
            self.out_dir, self.preset, number, self.precision, self.max_size, partial
        )


def figure_paths(out_dir, preset, number, precision=None, max_size=None, partial=False):
    """``[OUT_DIR/PRESET/figN.pdf, OUT_DIR/PRESET/figN.png]``: each preset its own folder;
    a training figure at another precision than fp32 is ``figN-PRECISION``, one whose
    larger networks ``max_size`` leaves out is ``figN[-PRECISION]-maxM``, M the largest
    size it shows, and one drawn without some of its datasets (``partial``, see
    :func:`draw_partial`) ends in ``-partial``."""
    spec, tag = figure_spec(number), ""
    if _trains(spec):
        tag = _precision_tag(precision)
        if spec.left_out(preset, max_size):
            tag += f"-max{spec.sizes(preset, max_size)[-1]}"
        if partial:
            tag += "-partial"
    return [Path(out_dir) / preset / f"{stem(number)}{tag}.{ext}" for ext in ("pdf", "png")]


def check_max_size(number, preset, max_size):
    """A usage error when ``max_size`` leaves figure ``number`` without any of its
    training runs (figures that train nothing ignore it)."""
    spec = figure_spec(number)
    if max_size is not None and _trains(spec) and not spec.sizes(preset, max_size):
        sizes = ", ".join(map(str, spec.sizes(preset)))
        raise UserError(
            f"fig {number}: no network of the {preset} preset has D = L <= "
            f"{max_size} (its sizes: {sizes})"
        )


def data_path(out_dir, preset, number, name, seed=0, precision=None):
    """``OUT_DIR/data/PRESET/figN-NAME.csv``; other seeds than 0, and training runs at
    other precisions than fp32, get their own files."""
    tag = f"-seed{seed}" if seed else ""
    if figure_spec(number).datasets[name].takes_precision:
        tag += _precision_tag(precision)
    return Path(out_dir) / "data" / preset / f"{stem(number)}-{name}{tag}.csv"


def show_params(number, request):
    """The parameters of every dataset of a figure, and what its sidecars recorded."""
    check_max_size(number, request.preset, request.max_size)
    spec = figure_spec(number)
    lines = [f"figure {number}: {spec.title} (preset {request.preset})"]
    left_out = spec.left_out(request.preset, request.max_size)
    if left_out:
        lines.append(f"  partial: D = L = {', '.join(map(str, left_out))} left out")
    for unit in units(number, request):
        lines.append(f"  {unit.name}: {unit.dataset.experiment}")
        lines.append(f"    params: {json.dumps(unit.params, sort_keys=True)}")
        side = files.read_sidecar(unit.path)
        if side is None:
            lines.append(f"    csv: {unit.path} (not computed yet)")
        else:
            check = unit.check_cached()
            state = "cached" if check.reusable else f"stale: {check.reason}"
            lines.append(
                f"    csv: {unit.path} ({state}; numerics {side.get('numerics')}, "
                f"resdiff {side.get('version')}, commit {side.get('git_commit')}, "
                f"{side.get('wall_time_s')} s, {side.get('threads')} threads)"
            )
    return "\n".join(lines)


def check_preset(preset):
    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r} (known: {', '.join(PRESETS)})")


def check_outputs(numbers, request):
    """Fail with one line, before anything is computed, if ``request.max_size`` leaves a
    figure without training runs or any file that figures ``numbers`` would write (CSVs,
    sidecars, locks, PDFs, PNGs) cannot be created."""
    check_preset(request.preset)
    for number in numbers:
        check_max_size(number, request.preset, request.max_size)
        for name in figure_spec(number).names(request.preset, request.max_size):
            files.check_writable(request.data_path(number, name), what="figure data")
        for target in request.figure_paths(number):
            files.check_writable(target, what="figure")


def _waiting(path):
    return lambda: info(f"waiting for another resdiff run that is writing {path}")


# A training run's checkpoint is rewritten at most this often (and after its last epoch):
# at the paper's D = L = 500 with Adam a checkpoint is about 1.5 GB.
CHECKPOINT_EVERY_S = 60.0


@dataclasses.dataclass(frozen=True)
class Failure:
    """Why a unit did not produce its dataset, and where its log is (what an executor,
    :mod:`resdiff.executor`, reports)."""

    message: str
    log: str


@dataclasses.dataclass(frozen=True)
class Unit:
    """One dataset of one figure: the unit of work an executor runs (this process, a
    worker process, a Slurm job). Plain values only, so it travels as JSON or a pickle."""

    figure: object  # a key of resdiff.figures.FIGURES (int or name)
    name: str
    request: Request  # its max_size only for the command that reruns it

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text):
        fields = json.loads(text)
        return cls(fields["figure"], fields["name"], Request(**fields["request"]))

    @property
    def preset(self):
        return self.request.preset

    @property
    def out_dir(self):
        return self.request.out_dir

    @property
    def label(self):
        return f"fig {self.figure} {self.name}"

    @property
    def dataset(self):
        return FIGURES[self.figure].datasets[self.name]

    @property
    def path(self):
        return self.request.data_path(self.figure, self.name)

    @property
    def params(self):
        return FIGURES[self.figure].params(
            self.name, self.preset, self.request.seed, self.request.precision
        )

    def check_cached(self):
        """:func:`resdiff.files.check_cached` of this unit's CSV."""
        return files.check_cached(
            self.path, self.params, dataset_numerics(self.dataset, self.params)
        )

    def rerun_command(self):
        """The serial command that computes this unit again (reusing what is cached)."""
        request = self.request
        words = [
            "resdiff",
            "fig",
            str(self.figure),
            "--preset",
            request.preset,
            "--out-dir",
            request.out_dir,
        ]
        if request.seed:
            words += ["--seed", str(request.seed)]
        if request.precision not in (None, "fp32"):
            words += ["--precision", request.precision]
        if request.max_size is not None:
            words += ["--max-size", str(request.max_size)]
        if request.data_dir:
            words += ["--data-dir", request.data_dir]
        return shlex.join(words)


def units(number, request):
    """The units of figure ``number`` that ``request`` asks for (the networks up to its
    ``max_size``), in registry order."""
    return [
        Unit(number, name, request)
        for name in figure_spec(number).names(request.preset, request.max_size)
    ]


def checkpoint_path(csv_path):
    """A training run's checkpoint, beside its CSV: ``figN-NAME.ckpt``."""
    return Path(csv_path).with_suffix(".ckpt")


def compute(unit, draw_store=None):
    """Compute ``unit``'s dataset unless a valid cache is there (or ``unit.request.force``);
    returns its sidecar. Every executor runs exactly this, in whatever process.
    ``draw_store``: the process's :class:`DrawStore`, for experiments that share draws.

    Runs under the dataset's lock: a concurrent identical run waits here and then finds
    the cache valid. A resumable experiment (a training run) continues from the
    checkpoint beside the CSV, which the lock covers too and which is removed once the
    CSV is written.
    """
    number, name, dataset, params, path = (
        unit.figure,
        unit.name,
        unit.dataset,
        unit.params,
        unit.path,
    )
    versions = dataset_numerics(dataset, params)
    with files.exclusive(path, on_wait=_waiting(path)):
        check = files.check_cached(path, params, versions)
        if check.reusable and not unit.request.force:
            info(f"fig {number}: reusing {path}")
            return check.sidecar
        if check.damaged:
            warn(f"fig {number}: {check.reason}; recomputing it")
        info(f"fig {number}: computing {name} ({unit.preset} preset)")
        t0 = time.time()
        kwargs = dict(params)
        if dataset.needs_mnist:
            kwargs["data_dir"] = unit.request.data_dir
        if dataset.shares_draws and draw_store is not None:
            kwargs["draw_store"] = draw_store
        checkpoint = checkpoint_path(path) if dataset.resumable else None
        if checkpoint is not None:
            kwargs.update(
                checkpoint=str(checkpoint), resume=True, checkpoint_every=CHECKPOINT_EVERY_S
            )
        result = _load(dataset.experiment)(**kwargs)
        for line in result.warnings:
            warn(f"fig {number} {name}: {line}")
        sidecar = files.write_result(
            path,
            result.frame,
            params,
            result.meta,
            command=f"fig {number} --preset {unit.preset}",
            started=t0,
            code=dataset_digest(dataset),
            numerics=versions,
        )
        if checkpoint is not None:
            checkpoint.unlink(missing_ok=True)
        return sidecar


def estimate(numbers, request):
    """The :class:`resdiff.estimate.Estimate` of computing what figures ``numbers`` need
    and have no valid cache of (every dataset with ``request.force``)."""
    from .estimate import Estimate

    total = Estimate()
    for number in numbers:
        todo = split_cached(units(number, request), request.force)[1]
        for unit, _ in todo:
            total.add(unit.dataset.experiment.split(":")[1], unit.params)
    return total


def split_cached(units, force=False):
    """``({name: sidecar}, [(unit, check)])``: the units whose CSV is a valid cache
    (none with ``force``), and the others with their :meth:`Unit.check_cached`."""
    cached, rest = {}, []
    for unit in units:
        check = unit.check_cached()
        if check.reusable and not force:
            cached[unit.name] = check.sidecar
        else:
            rest.append((unit, check))
    return cached, rest


def draw_partial(numbers, request):
    """Draw training figures ``numbers`` from the datasets already computed, computing
    nothing: those without a valid cache are left out, named in the caption and the
    PNG's metadata, and the figure is ``figN[...]-partial`` (the whole ``figN`` when
    none is missing). For a look at a long preset while it is still training. Every
    figure is checked before any is drawn."""
    plans, preset = [], request.preset
    for number in numbers:
        spec = figure_spec(number)
        if not _trains(spec):
            raise UserError(
                f"fig {number}: --partial applies only to the training "
                "figures (6, 7); the others are cheap to compute whole"
            )
        check_max_size(number, preset, request.max_size)
        sidecars, missing = split_cached(units(number, request))
        if not any(spec.datasets[name].takes_precision for name in sidecars):
            raise UserError(
                f"fig {number}: none of its training runs at the {preset} "
                f"preset is computed yet in "
                f"{Path(request.out_dir) / 'data' / preset}; nothing to draw"
            )
        for target in request.figure_paths(number, bool(missing)):
            files.check_writable(target, what="figure")
        plans.append((number, sidecars, missing))
    drawn = []
    for number, sidecars, missing in plans:
        for unit, check in missing:  # a damaged cache is worth a warning
            (warn if check.damaged else info)(
                f"fig {number}: left out {unit.name} ({check.reason})"
            )
        drawn.append(draw(number, request, sidecars, missing=[unit.name for unit, _ in missing]))
    return drawn


def _group_sidecar(sidecars):
    """What the plot reads for a group of datasets (a curve split into training runs):
    the parameters they share, and each member's own sidecar."""
    if len(sidecars) == 1:
        return next(iter(sidecars.values()))
    params = [s["params"] for s in sidecars.values()]
    common = {k: v for k, v in params[0].items() if all(p.get(k) == v for p in params)}
    return {"params": common, "members": sidecars}


def make_figure(number, request, draw_store=None):
    """Compute what figure ``number`` needs in this process, one dataset after another
    (reusing valid caches; the smaller networks first, as :func:`smallest_first`), and
    save it; the first failure stops it. Figures made in one process pass the same
    ``draw_store`` (default: a new one) to share draws. ``request.max_size`` leaves out
    the training runs of larger networks (a partial figure)."""
    check_outputs([number], request)
    started = time.time()
    store = DrawStore() if draw_store is None else draw_store
    sidecars = {u.name: compute(u, store) for u in smallest_first(units(number, request))}
    return draw(number, request, sidecars, started)


def draw(number, request, sidecars, started=None, missing=()):
    """Draw figure ``number`` from its CSVs, checked against ``sidecars`` (name ->
    sidecar), and save it; datasets of one group reach the plot as one frame. A
    partial figure tells its plot the sizes that ``request.max_size`` leaves out and the
    datasets ``missing`` (not computed yet)."""
    spec, preset, max_size = figure_spec(number), request.preset, request.max_size
    started = time.time() if started is None else started
    names = spec.names(preset, max_size, missing)  # registry order, however they came
    left_out = spec.left_out(preset, max_size)
    paths = {name: request.data_path(number, name) for name in names}
    sidecars = files.normalise({name: sidecars[name] for name in names})  # as read from disk
    provenance = {
        "resdiff": __version__,
        "figure": number,
        "preset": preset,
        "sidecars": {name: str(files.sidecar_path(path)) for name, path in paths.items()},
        "commits": sorted({str(s.get("git_commit")) for s in sidecars.values()}),
        # what the picture depends on: its data (their sidecars change whenever the CSVs
        # are rewritten) and the code that draws it
        "data_digest": data_digest(sidecars),
        "source_digest": plot_digest(spec),
    }
    if left_out:
        provenance["left_out_sizes"] = left_out
    if missing:
        provenance["missing"] = list(missing)
    targets = request.figure_paths(number, bool(missing))
    with files.exclusive(targets[0].with_suffix(""), on_wait=_waiting(targets[0])):
        if not request.force and _drawn_from(targets, provenance):
            info(f"fig {number}: {targets[0]} and .png are up to date (same data, same code)")
            return targets
        groups = spec.groups(preset, max_size, missing)
        frames = {
            group: _concat([files.read_result(paths[n], sidecars[n]) for n in members])
            for group, members in groups.items()
        }
        group_sidecars = {
            group: _group_sidecar({n: sidecars[n] for n in members})
            for group, members in groups.items()
        }
        partial = {
            **({"left_out": left_out} if left_out else {}),
            **({"missing": list(missing)} if missing else {}),
        }
        fig = _load(spec.plot)(frames, group_sidecars, preset, **partial)
        for target in targets:
            ext = target.suffix[1:]
            # no /CreationDate: the same data and code give the same PDF bytes
            meta = (
                {
                    "Subject": json.dumps(provenance),
                    "Creator": f"resdiff {__version__}",
                    "CreationDate": None,
                }
                if ext == "pdf"
                else {"Description": json.dumps(provenance), "Software": f"resdiff {__version__}"}
            )
            with files.atomic_write(target, "wb") as fh:
                fig.savefig(fh, format=ext, metadata=meta)
        import matplotlib.pyplot as plt

        plt.close(fig)
    info(f"fig {number}: wrote {', '.join(map(str, targets))} in {time.time() - started:.1f} s")
    return targets


def _concat(frames):
    if len(frames) == 1:
        return frames[0]
    import pandas as pd

    return pd.concat(frames, ignore_index=True)


def make_figures(numbers, request, executor):
    """Every figure of ``numbers`` with its units run by ``executor`` (a
    :mod:`resdiff.executor` pool); each figure is drawn as soon as its last unit is in.

    Datasets with a valid cache are reused here and never sent. A failed unit is
    reported at once, with its log and the command that reruns it, and does not stop
    the others. Returns the numbers of the figures that could not be made.
    """
    check_outputs(numbers, request)
    started, sidecars, todo, failed = time.time(), {}, {}, []
    for n in numbers:
        figure_units = units(n, request)
        sidecars[n], rest = split_cached(figure_units, request.force)
        todo[n] = [unit for unit, _ in rest]
        for unit in figure_units:
            if unit.name in sidecars[n]:
                info(f"fig {n}: reusing {unit.path}")

    def draw_or_fail(n):
        try:
            draw(n, request, sidecars[n], started)
        except UserError as exc:
            warn(f"fig {n}: {exc}")
            failed.append(n)

    def finished(unit, failure, log):
        n = unit.figure
        if failure is None:
            check = unit.check_cached()
            if check.reusable:
                sidecars[n][unit.name] = check.sidecar
            else:
                failure = Failure(f"its CSV cannot be used: {check.reason}", log)
        if failure is not None:
            warn(
                f"{unit.label} failed ({failure.message}); log: {failure.log}; "
                f"rerun: {unit.rerun_command()}"
            )
            if n not in failed:
                failed.append(n)
        todo[n].remove(unit)
        if not todo[n] and n not in failed:
            draw_or_fail(n)

    for n in numbers:
        if not todo[n]:
            draw_or_fail(n)
    executor.run(smallest_first([u for n in numbers for u in todo[n]]), finished)
    return [n for n in numbers if n in failed]


def smallest_first(units):
    """``units`` with the training runs of the smaller networks first (by ``size``,
    D = L; registry order otherwise, a stable sort, so figures without training runs
    keep the order in which they share draws): a run stopped part-way, or cut by a time
    limit, has then finished as many datasets as it could, and the paper preset of
    Fig. 6 (hours at D = L = 500) can be made in pieces, the small sizes first."""
    return sorted(units, key=lambda unit: unit.params.get("size", 0))


def figure_data(
    number, preset="quick", out_dir="figures", data_dir=None, seed=0, precision=None, max_size=None
):
    """The DataFrames that figure ``number`` is drawn from, as its plot receives them:
    read from the cache under ``OUT_DIR/data/PRESET/`` (the CSVs that ``resdiff fig``
    writes), computing only what is missing or stale, in this process. Nothing is drawn.

    Parameters
    ----------
    number : int
        The figure, 1-8.
    preset : {"paper", "quick", "smoke"}
        The scale: ``paper`` is the paper's (its data are committed in this repository's
        ``figures/data/paper/``); ``quick`` fewer draws or inputs; ``smoke`` small sizes.
    out_dir : str or path
        The folder whose ``data/PRESET/`` holds the cache, as ``resdiff fig --out-dir``.
    data_dir : str or None
        Where MNIST is (Figures 6-7; see :func:`resdiff.mnist_kernel`).
    seed : int
        Seed of every dataset (0 reproduces the committed figures).
    precision : {"fp32", "bf16", "tf32"} or None
        Figures 6-7: the training precision (None: fp32).
    max_size : int or None
        Figures 6-7: only the networks with D = L <= ``max_size``.

    Returns
    -------
    dict of str to pandas.DataFrame
        One tidy frame per curve of the figure, in the registry's order (e.g. ``{"kde":
        ...}`` for Figure 2, ``{"tanh": ..., "relu": ...}`` for Figure 1; Figure 6's
        training runs are grouped by optimizer). Each CSV's sidecar (``.csv.json``)
        beside it records how it was made.

    Raises
    ------
    UserError
        An unknown figure or preset, a folder that cannot be written, or missing MNIST.

    Examples
    --------
    >>> import resdiff
    >>> frames = resdiff.figure_data(2, preset="smoke", out_dir="/tmp/rd")  # doctest: +SKIP
    >>> frames["kde"].groupby(["method", "z"])["value"].std()  # doctest: +SKIP
    """
    request = Request(preset, out_dir, seed, precision, max_size, data_dir=data_dir)
    check_preset(preset)
    check_max_size(number, preset, max_size)
    spec = figure_spec(number)
    paths = {name: request.data_path(number, name) for name in spec.names(preset, max_size)}
    for path in paths.values():
        files.check_writable(path, what="figure data")
    store = DrawStore()
    sidecars = files.normalise(
        {u.name: compute(u, store) for u in smallest_first(units(number, request))}
    )
    return {
        group: _concat([files.read_result(paths[n], sidecars[n]) for n in members])
        for group, members in spec.groups(preset, max_size).items()
    }
