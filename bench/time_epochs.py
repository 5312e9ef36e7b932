"""Seconds per training epoch of `resdiff mnist-train`, per (architecture, D = L, precision).

Times the real code path (resdiff.mnist.train: `_step` with its memory chunking, and
`test_accuracy`, threads and precision set as `mnist-train` sets them) on random inputs
of MNIST's shape, so no data is needed: a few mini-batch steps (median of `--repeats`
timings after one warm-up step) and the evaluation of a block of test images,
extrapolated to one epoch of the paper preset: 20,000 training images in steps of 200,
then the 10,000 test images. A full-batch epoch does the same arithmetic in one step.
Each row gives the CPU seconds per step (all threads; on a shared machine less noisy
than the wall clock), the achieved GFLOP/s and its fraction of the GEMM peak of the
dtype the products run in, measured in the same run (bf16 multiplies in float32 here
unless the device has native bf16, see resdiff.mnist.train.set_precision). Sizes too
large to run here are estimated from the largest measured size by the FLOP count
(`--estimate`).

    python -m bench.time_epochs --arch fc --sizes 20,100,500 --precisions fp32,bf16
    python -m bench.time_epochs --arch conv --sizes 4,10,25 --estimate 50,100,150
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as resdiff does

import torch  # noqa: E402

from resdiff import progress  # noqa: E402
from resdiff.constraints import PRECISIONS, ParameterError  # noqa: E402
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


def gemm_size(device):
    """n of the peak's n x n x n GEMM: long enough to time (a GPU does 1536^3 in 0.1 ms)."""
    return 8192 if device.type == "cuda" else 1536


def gemm_peak(device, dtype, repeats=3, tf32=False):
    """FLOP/s of an n x n x n GEMM (n = :func:`gemm_size`) on all the threads training
    uses; on CUDA with TF32 matmuls if ``tf32``, else in full float32."""
    n = gemm_size(device)
    threads = train.cpu_threads()
    if device.type == "cpu":
        torch.set_num_threads(threads)
    else:
        torch.backends.cuda.matmul.allow_tf32 = tf32
    a = torch.randn(n, n, device=device).to(dtype)
    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        a @ a
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    if device.type == "cpu":
        models.set_cpu_threads(threads)  # back to training's setting
    return 2 * n**3 / statistics.median(times[1:])


def measure(arch, size, device, steps, repeats, n_eval, precision="fp32", per_layer=False):
    train.set_precision(precision, device)
    extra = {"fused": False} if arch == "conv" and per_layer else {}
    model = models.build(arch, size, precision=precision, **extra).to(device)
    shape = (BATCH, 784) if arch == "fc" else (BATCH, 1, 28, 28)
    x = torch.rand(shape, device=device)
    y = torch.nn.functional.one_hot(torch.randint(0, 10, (BATCH,)), 10).float().to(device)
    opt = train.make_optimizer("sgd", model.parameters(), 1e-3)
    chunk = min(BATCH, train.chunk_size(model, device))

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    train._step(model, opt, x, y, chunk)  # warm-up
    sync()
    times, cpu_times = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(steps):
            train._step(model, opt, x, y, chunk)
        sync()
        times.append((time.perf_counter() - t0) / steps)
        cpu_times.append((time.process_time() - c0) / steps)
    step, cpu_step = statistics.median(times), statistics.median(cpu_times)
    eshape = (n_eval, 784) if arch == "fc" else (n_eval, 1, 28, 28)
    data = train.TrainData(
        x, y, torch.rand(eshape, device=device), torch.randint(0, 10, (n_eval,), device=device)
    )
    echunk = train.chunk_size(model, device, grad=False)
    train.test_accuracy(model, data, echunk)
    sync()
    t0 = time.perf_counter()
    train.test_accuracy(model, data, echunk)
    sync()
    per_image = (time.perf_counter() - t0) / n_eval
    return step, per_image, cpu_step


def table(
    arch, sizes, precisions, device, steps=3, repeats=3, n_eval=1000, estimate=(), per_layer=False
):
    """Markdown lines of the training table; printed as they are measured."""
    progress.set_quiet(True)  # the bf16 warning is the table's business, not stderr's
    native = train.native_bf16(device)
    peaks = {"fp32": gemm_peak(device, torch.float32)}
    if "tf32" in precisions and device.type == "cuda":
        peaks["tf32"] = gemm_peak(device, torch.float32, tf32=True)
    if "bf16" in precisions and native:
        peaks["bf16"] = gemm_peak(device, torch.bfloat16)
    n = gemm_size(device)
    lines = [
        f"{arch}, device {device}, {train.cpu_threads()} threads, torch "
        f"{torch.__version__}; GEMM peak ({n}^3, same run): "
        + ", ".join(f"{name} {peak / 1e9:.1f} GFLOP/s" for name, peak in peaks.items())
        + (
            ""
            if "bf16" in peaks
            else "; no native bf16: bf16 rows multiply in float32 (peak: fp32's)"
        ),
        "",
        "| arch | D = L | precision | s / step (batch 200) | CPU s / step | s / epoch | "
        "GFLOP/s | fraction of GEMM peak | 120 epochs |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for line in lines:
        print(line, flush=True)
    last = None
    for size in sizes:
        for precision in precisions:
            peak = peaks.get(precision, peaks["fp32"])
            step, img, cpu_step = measure(
                arch, size, device, steps, repeats, n_eval, precision, per_layer
            )
            epoch = N_TRAIN / BATCH * step + N_TEST * img
            rate = flops_epoch(arch, size) / epoch
            if precision == "fp32":
                last = (size, rate)
            lines.append(
                f"| {arch} | {size} | {precision} | {step:.4f} | {cpu_step:.4f} | "
                f"{epoch:.1f} | "
                f"{rate / 1e9:.1f} | {rate / peak:.0%} | "
                f"{epoch * EPOCHS / 3600:.2f} h |"
            )
            print(lines[-1], flush=True)
    for size in estimate:
        epoch = flops_epoch(arch, size) / last[1]
        lines.append(
            f"| {arch} | {size} | fp32 | (est.) | | {epoch:.0f} (est.) | "
            f"{last[1] / 1e9:.1f} (as D = L = {last[0]}) | | "
            f"{epoch * EPOCHS / 3600:.1f} h (est.) |"
        )
        print(lines[-1], flush=True)
    return lines


# `make bench` / `make bench-train`: (arch, sizes) at fp32 and bf16
BENCH = (("fc", (20, 100, 500)), ("conv", (4, 10)))


def bench_tables(device=torch.device("cpu")):
    """The training section of BENCHMARKS.md (markdown lines)."""
    lines = [
        "## Training (Figs. 6-7): seconds per epoch, 20,000 training + 10,000 test images",
        "",
        "From `python -m bench.time_epochs --bench` (`make bench-train`).",
        "",
    ]
    for arch, sizes in BENCH:
        lines += table(
            arch, sizes, ["fp32", "bf16"], device, n_eval=1000 if arch == "fc" else 200
        ) + [""]
    return lines


def int_list(text):
    """``"10,25,50"`` -> [10, 25, 50]; a usage error (exit code 2) otherwise."""
    try:
        return [int(s) for s in text.split(",") if s]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not comma-separated integers: {text!r}") from None


def precision_list(text):
    """``"fp32,bf16"`` -> ["fp32", "bf16"], each one of :data:`PRECISIONS`."""
    names = text.split(",")
    unknown = [n for n in names if n not in PRECISIONS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"{', '.join(unknown)}: not one of {', '.join(PRECISIONS)}"
        )
    return names


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--bench",
        action="store_true",
        help="the table of `make bench` (%s)"
        % "; ".join(f"{a} D = L in {', '.join(map(str, s))}" for a, s in BENCH),
    )
    p.add_argument("--arch", choices=["fc", "conv"], default="fc")
    p.add_argument("--sizes", type=int_list, default="10,20,50,100,200,500")
    p.add_argument("--precisions", type=precision_list, default="fp32")
    p.add_argument(
        "--estimate", type=int_list, default="", help="sizes to extrapolate by FLOPs only"
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--n-eval", type=int, default=1000)
    p.add_argument(
        "--per-layer",
        action="store_true",
        help="conv: time PyTorch's per-layer graph (fused=False, train-conv 1's) instead "
        "of the residual stack as one node (models.ConvResidualStack, the default)",
    )
    args = p.parse_args(argv)
    try:
        device = train.pick_device(args.device)
    except ParameterError as exc:
        p.error(str(exc))
    if args.bench:
        bench_tables(device)
        return 0
    table(
        args.arch,
        args.sizes,
        args.precisions,
        device,
        args.steps,
        args.repeats,
        args.n_eval,
        args.estimate,
        args.per_layer,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
