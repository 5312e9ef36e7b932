"""Does bf16 change the science? Final test accuracy, fp32 against bf16.

FC at D = L in {20, 50}, sgd and adam (the tuned rates), seeds 0-2, 120 epochs on 20,000
images and the full test set: 24 runs of `resdiff mnist-train`, each resumable
(--checkpoint/--resume; a finished run's CSV is kept and skipped). Then the table of
docs/training.md: per (D = L, optimizer) the mean final accuracy over the seeds in each
precision, the difference of the means and two standard errors of that difference
(from the seed-to-seed spread: sqrt(s_fp32^2 / n + s_bf16^2 / n)).

    python scripts/bf16_accuracy.py run --out-dir bench/out/bf16 --workers 2
    python scripts/bf16_accuracy.py table --out-dir bench/out/bf16
"""

import argparse
import itertools
import math
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SIZES, OPTIMIZERS, SEEDS, PRECISIONS = (20, 50), ("sgd", "adam"), (0, 1, 2), ("fp32", "bf16")
EPOCHS, N_TRAIN = 120, 20000


def runs():
    """Smallest size first, fp32 and bf16 of one seed next to each other."""
    return list(itertools.product(SIZES, OPTIMIZERS, SEEDS, PRECISIONS))


def csv_path(out_dir, size, opt, seed, precision):
    return Path(out_dir) / f"fc-{opt}-{size}-seed{seed}-{precision}.csv"


def run_one(out_dir, size, opt, seed, precision):
    out = csv_path(out_dir, size, opt, seed, precision)
    if out.exists():
        return 0
    cmd = [
        sys.executable,
        "-m",
        "resdiff",
        "mnist-train",
        "--arch",
        "fc",
        "--size",
        str(size),
        "--optimizer",
        opt,
        "--seed",
        str(seed),
        "--precision",
        precision,
        "--epochs",
        str(EPOCHS),
        "--n-train",
        str(N_TRAIN),
        "--out",
        str(out),
        "--checkpoint",
        f"{out}.ckpt",
        "--resume",
    ]
    with open(f"{out}.log", "a") as log:
        return subprocess.call(cmd, stdout=log, stderr=log)


def final_accuracies(out_dir, size, opt, precision):
    import pandas as pd

    accs = []
    for seed in SEEDS:
        path = csv_path(out_dir, size, opt, seed, precision)
        if path.exists():
            accs.append(float(pd.read_csv(path)["test_accuracy"].iloc[-1]))
    return accs


def mean_sd(values):
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else math.nan
    return mean, sd


def table(out_dir):
    lines = [
        "| D = L | optimizer | fp32 mean (sd) | bf16 mean (sd) | bf16 - fp32 | "
        "2 SE of the difference | within |",
        "|---|---|---|---|---|---|---|",
    ]
    for size, opt in itertools.product(SIZES, OPTIMIZERS):
        a = final_accuracies(out_dir, size, opt, "fp32")
        b = final_accuracies(out_dir, size, opt, "bf16")
        if len(a) < len(SEEDS) or len(b) < len(SEEDS):
            lines.append(
                f"| {size} | {opt} | {len(a)}/3 seeds done | {len(b)}/3 seeds done | | | not run |"
            )
            continue
        (ma, sa), (mb, sb) = mean_sd(a), mean_sd(b)
        se2 = 2 * math.sqrt(sa**2 / len(a) + sb**2 / len(b))
        lines.append(
            f"| {size} | {opt} | {ma:.4f} ({sa:.4f}) | {mb:.4f} ({sb:.4f}) | "
            f"{mb - ma:+.4f} | {se2:.4f} | {'yes' if abs(mb - ma) <= se2 else 'NO'} |"
        )
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("action", choices=["run", "table"])
    p.add_argument("--out-dir", default="bench/out/bf16")
    p.add_argument("--workers", type=int, default=1, help="runs at the same time")
    args = p.parse_args(argv)
    if args.action == "run":
        os.makedirs(args.out_dir, exist_ok=True)
        with ThreadPoolExecutor(args.workers) as pool:
            codes = list(pool.map(lambda r: run_one(args.out_dir, *r), runs()))
        print(f"{codes.count(0)}/{len(codes)} runs finished")
    print(table(args.out_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
