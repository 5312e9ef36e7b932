"""``resdiff report``: one self-contained HTML page from the data already computed.

For each figure of a preset: the picture (the PNG that ``resdiff fig`` drew, embedded as
a ``data:`` URI) and its title, the paper's claims beside what resdiff measured
(:mod:`resdiff.comparison`, the paper preset), the provenance of every dataset from its
sidecar (parameters, seed, numerical versions, commit, CPU, wall time) and the command
that remakes it. Nothing is computed and nothing is fetched: the page has no external
stylesheet, script, font or image.
"""

import base64
import html
import json
import re
from pathlib import Path

from . import __version__
from .figures import FIGURES, stem

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 62rem; margin: 2rem auto;
       padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2.5rem;
       border-bottom: 1px solid #ccc; }
figure { margin: 1rem 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.9rem; color: #444; }
table { border-collapse: collapse; width: 100%; font-size: 0.85rem; margin: 0.8rem 0; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.45rem; vertical-align: top;
         text-align: left; }
th { background: #f3f3f3; }
code, pre { font-family: ui-monospace, monospace; font-size: 0.85em; }
pre { background: #f6f6f6; padding: 0.5rem; overflow-x: auto; }
.missing { color: #a00; } .params { max-width: 22rem; overflow-wrap: anywhere; }
"""


def _inline(text):
    """The little markdown of the comparison rows as HTML: `code`, **bold**, and links
    shown as their text (the page points nowhere)."""
    out = html.escape(text, quote=False)
    out = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", out)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)


def data_uri(path):
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def figure_image(figures_dir, preset, number):
    """The PNG of figure ``number``: ``figN.png`` (``NAME.png`` beyond the paper) when
    there is one, else a partial figure (``figN-maxM.png``, ``figN-partial.png``); None
    when none was drawn."""
    folder = Path(figures_dir) / preset
    whole = folder / f"{stem(number)}.png"
    if whole.is_file():
        return whole
    partial = sorted(folder.glob(f"{stem(number)}-*.png"))
    return partial[0] if partial else None


def remake_command(number, preset, image):
    words = ["resdiff", "fig", str(number), "--preset", preset]
    match = re.search(r"-max(\d+)", image.name) if image is not None else None
    if match:
        words += ["--max-size", match.group(1)]
    return " ".join(words)


def _seconds(s):
    if s is None:
        return ""
    if s >= 3600:
        return f"{s / 3600:.1f} h"
    return f"{s / 60:.1f} min" if s >= 120 else f"{s:.1f} s"


def _value(v):
    if isinstance(v, list):
        return "[" + ", ".join(map(_value, v)) + "]"
    return f"{v:g}" if isinstance(v, float) else str(v)


def provenance_rows(sidecar, shared=()):
    """``(parameters, seed, numerics, commit, cpu, time)`` strings of one sidecar; the
    parameters in ``shared`` (those every dataset of the figure has) are left out."""
    params = {k: v for k, v in sidecar.get("params", {}).items() if k != "seed" and k not in shared}
    machine = sidecar.get("machine") or {}
    cpu = " ".join(str(x) for x in (machine.get("cpu"), machine.get("kernel_target")) if x) or "?"
    numerics = sidecar.get("numerics")
    numerics = (
        ", ".join(f"{k} {v}" for k, v in sorted(numerics.items()))
        if isinstance(numerics, dict)
        else "not recorded"
    )
    commit = str(sidecar.get("git_commit") or "?")[:10]
    if sidecar.get("git_dirty"):
        commit += " (dirty)"
    wall = _seconds(sidecar.get("wall_time_s"))
    meta = sidecar.get("meta") or {}
    if meta.get("resumed_from_epoch") and meta.get("train_seconds") is not None:
        wall = (
            f"{wall} (the run that finished, from epoch {meta['resumed_from_epoch']}); "
            f"{_seconds(meta['train_seconds'])} of training in all"
        )
    return (_params_text(params), str(sidecar.get("seed", "")), numerics, commit, cpu, wall)


def _params_text(params):
    return ", ".join(f"{k}={_value(v)}" for k, v in sorted(params.items()))


def shared_params(sidecars):
    """The parameters (seed aside) with one value in every sidecar of ``sidecars``."""
    if len(sidecars) < 2:
        return {}
    first, *rest = [s.get("params", {}) for s in sidecars]
    return {
        k: v for k, v in first.items() if k != "seed" and all(k in p and p[k] == v for p in rest)
    }


def _table(head, rows, classes=()):
    cells = "".join(f"<th>{h}</th>" for h in head)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td class='{c}'>{v}</td>" if c else f"<td>{v}</td>"
            for v, c in zip(r, list(classes) + [""] * len(r))
        )
        + "</tr>"
        for r in rows
    )
    return f"<table><tr>{cells}</tr>{body}</table>"


def figure_section(number, preset, figures_dir, claims):
    spec = FIGURES[number]
    data = Path(figures_dir) / "data" / preset
    image = figure_image(figures_dir, preset, number)
    label = f"Figure {number}"  # Figure 2, Figure jacobian
    parts = [f"<section id='{stem(number)}'><h2>{label}: {html.escape(spec.title)}</h2>"]
    if image is None:
        parts.append(f"<p class='missing'>Not drawn yet at the {preset} preset.</p>")
    else:
        parts.append(
            f"<figure><img src='{data_uri(image)}' alt='{label}'>"
            f"<figcaption>{label} ({preset} preset, "
            f"<code>{html.escape(image.name)}</code>): "
            f"{html.escape(spec.title)}.</figcaption></figure>"
        )
    rows = [c for c in claims if c.figure == number]
    if rows:
        parts.append(
            "<h3>The paper and resdiff</h3>"
            + _table(
                ("the paper", "resdiff measured", "agree?"),
                [(_inline(c.paper), _inline(c.measured), _inline(c.agree)) for c in rows],
            )
        )
    sidecars, prov = {}, []
    for name in spec.names(preset):
        path = data / f"{stem(number)}-{name}.csv.json"
        if path.is_file():
            sidecars[name] = json.loads(path.read_text())
    shared = shared_params(list(sidecars.values()))
    for name in spec.names(preset):
        if name in sidecars:
            prov.append(
                (
                    f"<code>{stem(number)}-{html.escape(name)}.csv</code>",
                    *(html.escape(x) for x in provenance_rows(sidecars[name], shared)),
                )
            )
        else:
            prov.append(
                (
                    f"<code>{stem(number)}-{html.escape(name)}.csv</code>",
                    "<span class='missing'>not computed</span>",
                    "",
                    "",
                    "",
                    "",
                    "",
                )
            )
    parts.append("<h3>Provenance</h3>")
    if shared:
        parts.append(
            f"<p>Parameters of every dataset: <code>{html.escape(_params_text(shared))}</code></p>"
        )
    parts.append(
        _table(
            (
                "dataset",
                "parameters" + (" (the others)" if shared else ""),
                "seed",
                "numerical versions",
                "commit",
                "CPU",
                "wall time",
            ),
            prov,
            classes=("", "params"),
        )
    )
    parts.append(
        f"<p>Remake it: <code>{html.escape(remake_command(number, preset, image))}"
        "</code></p></section>"
    )
    return "".join(parts)


def build(preset="paper", figures_dir="figures"):
    """The page, as a string."""
    from . import comparison

    claims = comparison.claims(Path(figures_dir) / "data" / "paper") if preset == "paper" else []
    numbers = list(FIGURES)  # the registry's order: Figs. 1-8, then those beyond the paper
    toc = " · ".join(f"<a href='#{stem(n)}'>Fig. {n}</a>" for n in numbers)
    note = (
        ""
        if preset == "paper"
        else "<p>The paper's claims are compared at the paper preset only "
        "(<code>resdiff report --preset paper</code>).</p>"
    )
    sections = "".join(figure_section(n, preset, figures_dir, claims) for n in numbers)
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>resdiff report: {preset} preset</title><style>{STYLE}</style></head>"
        f"<body><h1>resdiff: the figures of <em>Doubly infinite residual networks: a "
        f"diffusion process approach</em> ({preset} preset)</h1>"
        f"<p>Drawn from the CSVs and sidecars in <code>{html.escape(str(figures_dir))}"
        f"/data/{preset}/</code>; nothing was computed for this page. resdiff "
        f"{__version__}.</p>{note}<p>{toc}</p>{sections}</body></html>"
    )
