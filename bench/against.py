"""The Monte Carlo workloads of the paper preset timed in this checkout and in another
one (an earlier commit), alternately, in one run: the speed-up ratios that the speed
targets are stated in.

    git worktree add /tmp/base 0f831cd
    python -m bench.against --base /tmp/base

Each workload is a paper-preset dataset of the registry with fewer draws (every draw
costs the same, so the time scales to the paper's count; the output says how many). Each
tree runs in its own process with its own Numba cache, compiled before the timing, and
the trees alternate ``--rounds`` times; the best time of each is kept.
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

# FIG:DATASET:DRAWS (draws timed; the paper preset's count is in the registry)
WORKLOADS = (
    "2:kde:1000",
    "4:swish-3:40",
    "4:tanh-3:40",
    "1:tanh:4",
    "1:relu:1000",
    "5:feedforward-tanh:10",
)

# run inside each tree: prints "label seconds paper_draws" per workload
_CHILD = r"""
import importlib, sys, time
from resdiff import progress
from resdiff.figures import FIGURES
progress.set_quiet(True)
for spec in sys.argv[1:]:
    fig, name, draws = spec.split(":")
    fig = int(fig) if fig.isdigit() else fig
    ds = FIGURES[fig].datasets[name]
    params = dict(ds.params["paper"])
    full, params["draws"] = params["draws"], int(draws)
    module, attr = ds.experiment.split(":")
    fn = getattr(importlib.import_module(module), attr)
    fn(**{**params, "draws": 2})  # compile (or load the cache) outside the timing
    t0 = time.perf_counter()
    fn(**params)
    print(spec, time.perf_counter() - t0, full, flush=True)
"""


def run_tree(root, workloads, cache):
    env = dict(os.environ, PYTHONPATH=str(root), RESDIFF_NUMBA_CACHE=cache)
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, *workloads],
        cwd=root,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {
        spec: (float(t), int(full)) for spec, t, full in (line.split() for line in out.splitlines())
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, type=Path, help="checkout of the earlier commit")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("workloads", nargs="*", default=WORKLOADS, metavar="FIG:DATASET:DRAWS")
    args = ap.parse_args()
    if not (args.base / "resdiff" / "__init__.py").is_file():
        ap.error(f"--base {args.base}: not a resdiff checkout (no resdiff/__init__.py)")
    here = Path(__file__).resolve().parents[1]
    best = {"base": {}, "here": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for tag, root in (("base", args.base.resolve()), ("here", here)):
                for spec, (t, full) in run_tree(root, args.workloads, f"{tmp}/{tag}").items():
                    old = best[tag].get(spec, (float("inf"), full))[0]
                    best[tag][spec] = (min(old, t), full)
                print(f"round {r + 1}/{args.rounds}: {tag} done", file=sys.stderr, flush=True)
    print("| workload | draws timed | base (s, paper scale) | here (s, paper scale) | speed-up |")
    print("|---|---|---|---|---|")
    for spec in args.workloads:
        fig, name, draws = spec.split(":")
        (tb, full), (th, _) = best["base"][spec], best["here"][spec]
        scale = full / int(draws)
        print(
            f"| fig {fig} {name} | {draws} of {full} | {tb * scale:.0f} | {th * scale:.0f} | "
            f"{tb / th:.2f}x |"
        )


if __name__ == "__main__":
    main()
