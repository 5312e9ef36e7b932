"""The whole `resdiff mnist-train` process against the same network written plainly.

In one run: the wall time of the process

    resdiff mnist-train --arch fc --size 500 --optimizer sgd --lr 1 --epochs 1
                        --n-train 4000 --n-test 200 --precision P

(interpreter start, imports, MNIST, model initialisation, 20 steps, evaluation, CSV) for
each precision, against 20 SGD steps (batch 200, lr 1, mean squared error) of the same
network written the plain way in eager float32 PyTorch: ``nn.Linear`` layers in a
``ModuleList``, ``x = x + tanh(layer(x))``, on all cores (``--plain-threads``), timed from the
first step (its construction is not counted). ``--plain-steps k`` times k < 20 plain
steps and scales to 20 (every step does the same work); the output says so.

    python -m bench.acceptance --size 500 --plain-steps 5 --plain-threads all,1
"""

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as resdiff does


def plain_seconds(size, steps, threads):
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(0)

    class Plain(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = nn.Linear(784, size, bias=False)
            self.layers = nn.ModuleList(nn.Linear(size, size) for _ in range(size))
            self.out = nn.Linear(size, 10, bias=False)

        def forward(self, z):
            x = self.inp(z)
            for layer in self.layers:
                x = x + torch.tanh(layer(x))
            return self.out(x)

    model = Plain()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    x = torch.rand(200, 784)
    y = nn.functional.one_hot(torch.randint(0, 10, (200,)), 10).float()
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        ((model(x) - y) ** 2).mean().backward()
        opt.step()
    return time.perf_counter() - t0


def cli_seconds(size, precision, out_dir):
    out = os.path.join(out_dir, f"acceptance-{precision}.csv")
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
        "sgd",
        "--lr",
        "1",
        "--epochs",
        "1",
        "--n-train",
        "4000",
        "--n-test",
        "200",
        "--precision",
        precision,
        "--out",
        out,
        "--quiet",
    ]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=500)
    p.add_argument("--precisions", default="fp32,bf16")
    p.add_argument("--plain-steps", type=int, default=20)
    p.add_argument(
        "--plain-threads",
        default="all",
        help="'all' (the cores this process may use), or a list such as all,1",
    )
    args = p.parse_args(argv)
    from bench.run import machine

    print(
        f"cpu: {machine()['cpu']}, {os.cpu_count()} cores, python "
        f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f}"
    )
    scale = 20 / args.plain_steps
    with tempfile.TemporaryDirectory() as tmp:
        cli = {prec: cli_seconds(args.size, prec, tmp) for prec in args.precisions.split(",")}
    for threads in args.plain_threads.split(","):
        n = len(os.sched_getaffinity(0)) if threads == "all" else int(threads)
        plain = plain_seconds(args.size, args.plain_steps, n) * scale
        how = "" if scale == 1 else f" ({args.plain_steps} steps timed, x{scale:g})"
        print(f"plain eager float32, {n} threads: {plain:.1f} s for 20 steps{how}")
        for prec, seconds in cli.items():
            print(
                f"  resdiff mnist-train --precision {prec}: {seconds:.1f} s whole process"
                f" -> {plain / seconds:.2f}x faster"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
