"""The record of where the tuned learning rates of `resdiff mnist-train` (Figures 6-7)
came from: final test accuracy per (architecture, optimizer, learning rate, size), at a
reduced scale that fits a small CPU. It is kept beside its table, docs/lr_sweep.md, which
it wrote; the package does not import it.

The paper tunes "a single learning rate ... to optimize final test accuracy" (Section
6.3). This script does the same on a grid of rates spaced by about 3x, for every
optimizer, and picks, among the rates that did not diverge at any size, the one with
the best final accuracy at the largest size swept (ties: the best mean over the sizes). Its table
(docs/lr_sweep.md) records the scale it ran at; the chosen rates are the defaults in
resdiff/experiments/mnist_train.py (TUNED_LR).

    .venv/bin/python docs/lr_sweep.py --data-dir MNIST_DIR \
        --csv docs/lr_sweep.csv --md docs/lr_sweep.md

Runs already in --csv (same arch, optimizer, lr, size, scale) are reused, so the sweep
can be interrupted and restarted.
"""

import argparse
import math
import os
import sys
import time

import pandas as pd

from resdiff import progress
from resdiff.experiments.mnist_train import mnist_train

GRIDS = {
    "gd": [3.0, 10.0, 20.0, 30.0, 50.0, 100.0, 300.0, 1000.0],
    "sgd": [1.0, 3.0, 10.0, 20.0, 30.0, 50.0, 100.0, 300.0],
    "adam-full": [1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1],
    "adam": [1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1],
}
# reduced scale: (sizes D = L, n_train, n_test, epochs per optimizer)
SCALES = {
    "fc": dict(
        sizes=[10, 20, 50],
        n_train=5000,
        n_test=2000,
        epochs={"gd": 120, "adam-full": 120, "sgd": 20, "adam": 20},
        optimizers=["gd", "sgd", "adam-full", "adam"],
    ),
    "conv": dict(
        sizes=[4, 8],
        n_train=2000,
        n_test=2000,
        epochs={"sgd": 20, "adam": 20},
        optimizers=["sgd", "adam"],
    ),
}
# extra (size: {optimizer: rates}) runs: Adam's best rate is the one expected to fall
# with the size (its steps move every parameter by about lr), so the plausible rates are
# also run at D = L = 100 (a full-batch run there costs ~6 min on the shared CPU).
EXTRA = {"fc": {100: {"adam": [1e-2, 3e-2, 1e-1], "adam-full": [1e-2, 3e-2, 1e-1]}}}
KEY = ["arch", "optimizer", "lr", "size", "n_train", "n_test", "epochs", "seed"]


def run(args):
    progress.set_quiet(True)
    done = pd.read_csv(args.csv) if os.path.exists(args.csv) else pd.DataFrame(columns=KEY)
    rows = done.to_dict("records")
    have = {tuple(r[k] for k in KEY) for r in rows}
    for arch in args.arch:
        scale = SCALES[arch]
        for optimizer in scale["optimizers"]:
            extra = [
                (lr, size)
                for size, rates in EXTRA.get(arch, {}).items()
                for lr in rates.get(optimizer, [])
            ]
            for lr, size in [
                (lr, size) for lr in GRIDS[optimizer] for size in scale["sizes"]
            ] + extra:
                epochs = scale["epochs"][optimizer]
                key = (
                    arch,
                    optimizer,
                    lr,
                    size,
                    scale["n_train"],
                    scale["n_test"],
                    epochs,
                    args.seed,
                )
                if key in have:
                    continue
                t0 = time.time()
                res = mnist_train(
                    arch=arch,
                    size=size,
                    optimizer=optimizer,
                    lr=lr,
                    epochs=epochs,
                    n_train=scale["n_train"],
                    n_test=scale["n_test"],
                    seed=args.seed,
                    device="cpu",
                    data_dir=args.data_dir,
                )
                last = res.frame.iloc[-1]
                row = dict(zip(KEY, key))
                row.update(
                    final_accuracy=float(last["test_accuracy"]),
                    best_accuracy=float(res.frame["test_accuracy"].max()),
                    final_loss=float(last["train_loss"]),
                    diverged=bool(res.frame["diverged"].any()),
                    seconds=round(time.time() - t0, 1),
                )
                rows.append(row)
                pd.DataFrame(rows).to_csv(args.csv, index=False)
                print(
                    f"{arch} {optimizer:9s} lr={lr:<7g} D=L={size:<3d} final acc "
                    f"{row['final_accuracy']:.4f}{' DIVERGED' if row['diverged'] else ''}"
                    f" ({row['seconds']} s)",
                    flush=True,
                )
    return pd.DataFrame(rows)


def choose(frame):
    """Per (arch, optimizer): among the rates that never diverged, the one with the best
    final accuracy at the largest size swept (the closest to the paper's sizes), ties
    broken by the mean over all sizes. Returns ``{(arch, optimizer): (lr, acc, size)}``."""
    f = frame.copy()
    f["diverged"] = f["diverged"].astype(bool)
    chosen = {}
    for (arch, optimizer), g in f.groupby(["arch", "optimizer"]):
        stable = g.groupby("lr")["diverged"].sum() == 0
        g = g[g["lr"].map(stable)]
        top = g["size"].max()
        at_top = g[g["size"] == top].set_index("lr")["final_accuracy"]
        mean = g.groupby("lr")["final_accuracy"].mean()
        lr = max(at_top.index, key=lambda r: (round(at_top[r], 6), mean[r]))
        chosen[(arch, optimizer)] = (float(lr), float(at_top[lr]), int(top))
    return chosen


def markdown(frame, machine):
    chosen = choose(frame)
    out = [
        "# Learning-rate sweep ([`lr_sweep.py`](lr_sweep.py))",
        "",
        "Final test accuracy after the last epoch; one column per learning rate, one row",
        "per (architecture, optimizer, D = L). **Reduced scale**, not the paper's "
        "(20,000 images, 120 epochs, D = L up to 500 / 150): the CPU budget here allows",
        "no more. Among the rates that diverged (`div`) at no size, the one with the best",
        "final accuracy at the largest size swept (bold; ties: the best mean over the",
        "sizes) is the default of `resdiff mnist-train` (`TUNED_LR`): the paper uses one",
        "rate for all sizes, its sizes are mostly larger than ours, and a rate at the",
        "edge of stability diverges at some sizes and not others.",
        "",
    ]
    for arch in ("fc", "conv"):
        sub = frame[frame["arch"] == arch]
        if sub.empty:
            continue
        s = SCALES[arch]
        out.append(
            f"## {arch}: D = L in {s['sizes']}, {s['n_train']} training images, "
            f"{s['n_test']} test images (seeded subset), seed "
            f"{int(sub['seed'].iloc[0])}"
        )
        out.append("")
        for optimizer in s["optimizers"]:
            o = sub[sub["optimizer"] == optimizer]
            if o.empty:
                continue
            lrs = sorted(o["lr"].unique())
            best = chosen.get((arch, optimizer), (None,))[0]
            epochs = int(o["epochs"].iloc[0])
            steps = epochs * (
                1 if optimizer in ("gd", "adam-full") else math.ceil(s["n_train"] / 200)
            )
            out.append(f"**{optimizer}** ({epochs} epochs = {steps} steps)")
            out.append("")
            out.append(
                "| D = L | "
                + " | ".join(f"**{lr:g}**" if lr == best else f"{lr:g}" for lr in lrs)
                + " |"
            )
            out.append("|---|" + "---|" * len(lrs))
            for size in sorted(o["size"].unique()):
                cells = []
                for lr in lrs:
                    r = o[(o["size"] == size) & (o["lr"] == lr)]
                    if r.empty:
                        cells.append("")
                    elif bool(r["diverged"].iloc[0]):
                        cells.append("div")
                    else:
                        cells.append(f"{r['final_accuracy'].iloc[0]:.4f}")
                out.append(f"| {size} | " + " | ".join(cells) + " |")
            out.append("")
    out.append("## Chosen rates")
    out.append("")
    out.append("| arch | optimizer | lr | its final accuracy at the largest size swept |")
    out.append("|---|---|---|---|")
    for (arch, optimizer), (lr, score, size) in sorted(chosen.items()):
        out.append(f"| {arch} | {optimizer} | {lr:g} | {score:.4f} (D = L = {size}) |")
    out.append("")
    out.append(
        "Full-batch training of the conv model (`gd`, `adam-full`) is not in the paper "
        "and was not swept;"
    )
    out.append("its defaults are the conv `sgd` and `adam` rates.")
    out.append("")
    out.append(f"Machine: {machine}. Total sweep time {frame['seconds'].sum() / 60:.1f} min.")
    out.append("")
    return "\n".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=None)
    p.add_argument("--arch", nargs="+", default=["fc", "conv"], choices=["fc", "conv"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--csv", default="docs/lr_sweep.csv")
    p.add_argument("--md", default="docs/lr_sweep.md")
    p.add_argument("--machine", default=f"{os.cpu_count()} CPU cores (shared)")
    args = p.parse_args(argv)
    frame = run(args)
    with open(args.md, "w") as fh:
        fh.write(markdown(frame, args.machine))
    for (arch, optimizer), (lr, score, size) in sorted(choose(frame).items()):
        print(
            f"chosen: {arch} {optimizer} lr={lr:g} (final accuracy {score:.4f} at D = L = {size})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
