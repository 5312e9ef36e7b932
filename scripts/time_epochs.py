"""Seconds per training epoch of `resdiff mnist-train`, per architecture and D = L.

Times the real code path (resdiff.mnist.train: `_step` with its memory chunking, and
`test_accuracy`) on random inputs of MNIST's shape, so no data is needed:
a few mini-batch steps (median of `--repeats` timings after one warm-up step) and the
evaluation of a block of test images, extrapolated to one epoch of the paper preset:
20,000 training images in steps of 200, then the 10,000 test images. A full-batch epoch
does the same arithmetic in one step. Sizes too large to run here (memory or time) are
estimated from the largest measured size by the FLOP count (`--estimate`).

    .venv/bin/python scripts/time_epochs.py --arch fc --sizes 10,20,50,100,200,500
    .venv/bin/python scripts/time_epochs.py --arch conv --sizes 4,10,25 --estimate 50,100,150
"""
import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as resdiff does

import torch  # noqa: E402

from resdiff.mnist import models, train  # noqa: E402

N_TRAIN, N_TEST, BATCH, EPOCHS = 20000, 10000, 200, 120


def flops_forward(arch, size):
    """Multiply-adds x 2 of one image's forward pass."""
    D = L = size
    if arch == "fc":
        return 2 * (784 * D + L * D * D + 10 * D)
    return 2 * 784 * (D + L * 9 * D * D) + 2 * 10 * D


def flops_epoch(arch, size):
    return (3 * N_TRAIN + N_TEST) * flops_forward(arch, size)  # backward ~ 2x forward


def measure(arch, size, device, steps, repeats, n_eval):
    model = models.build(arch, size).to(device)
    shape = (BATCH, 784) if arch == "fc" else (BATCH, 1, 28, 28)
    x = torch.rand(shape, device=device)
    y = torch.nn.functional.one_hot(torch.randint(0, 10, (BATCH,)), 10).float().to(device)
    opt = train.make_optimizer("sgd", model.parameters(), 1e-3)
    chunk = min(BATCH, train.chunk_size(model, device))

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    train._step(model, opt, x, y, chunk)   # warm-up
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            train._step(model, opt, x, y, chunk)
        sync()
        times.append((time.perf_counter() - t0) / steps)
    step = statistics.median(times)
    eshape = (n_eval, 784) if arch == "fc" else (n_eval, 1, 28, 28)
    data = train.TrainData(x, y, torch.rand(eshape, device=device),
                           torch.randint(0, 10, (n_eval,), device=device))
    echunk = train.chunk_size(model, device, grad=False)
    train.test_accuracy(model, data, echunk)
    sync()
    t0 = time.perf_counter()
    train.test_accuracy(model, data, echunk)
    sync()
    per_image = (time.perf_counter() - t0) / n_eval
    return step, per_image


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", choices=["fc", "conv"], default="fc")
    p.add_argument("--sizes", default="10,20,50,100,200,500")
    p.add_argument("--estimate", default="", help="sizes to extrapolate by FLOPs only")
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--n-eval", type=int, default=1000)
    args = p.parse_args(argv)
    device = train.pick_device(args.device)
    threads = torch.get_num_threads()
    print(f"# {args.arch}, device {device}, {threads} threads, torch {torch.__version__}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}")
    print("| D = L | s / step (batch 200) | ms / test image | s / epoch (paper preset) | "
          "GFLOP/s | 120 epochs |")
    print("|---|---|---|---|---|---|")
    last = None
    for size in [int(s) for s in args.sizes.split(",") if s]:
        step, img = measure(args.arch, size, device, args.steps, args.repeats, args.n_eval)
        epoch = N_TRAIN / BATCH * step + N_TEST * img
        rate = flops_epoch(args.arch, size) / epoch / 1e9
        last = (size, rate)
        print(f"| {size} | {step:.4f} | {img * 1e3:.4f} | {epoch:.1f} | {rate:.1f} | "
              f"{epoch * EPOCHS / 3600:.2f} h |", flush=True)
    for size in [int(s) for s in args.estimate.split(",") if s]:
        epoch = flops_epoch(args.arch, size) / (last[1] * 1e9)
        print(f"| {size} | (est.) | (est.) | {epoch:.0f} (est.) | {last[1]:.1f} (as D = L = "
              f"{last[0]}) | {epoch * EPOCHS / 3600:.1f} h (est.) |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
