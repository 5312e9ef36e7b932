"""How far 30 Adam steps take a width-10 network on 2,000 MNIST images.

Issue 6 asks `resdiff mnist-train --arch fc --size 10 --optimizer adam --epochs 3
--n-train 2000` to end above 80% test accuracy: 3 epochs of batches of 200 are 30 Adam
steps. This script measures, on the same 2,000 images (`--seed` picks them and the
initialisation) and the full 10,000-image test set, the final test accuracy of

* `ntk`: the completed FC ResNet of FIGURES.md (D = L = 10), resdiff's own code path;
* `standard`: the same architecture initialised the way PyTorch's `nn.Linear` does
  (standard parametrisation: input 784 -> 10 without bias, 10 residual layers
  `x += tanh(W x + b)` with `nn.Linear(10, 10)`, output 10 -> 10 without bias), trained
  by resdiff's own steps, batch order and evaluation; it tells whether the NTK
  parametrisation is what holds the model back;
* `linear`: a linear classifier 784 -> 10 (no width-10 bottleneck), trained the same way;

for each learning rate in `--lrs`, plus the limiting kernel regression (kernel eq. 37,
noise 1/n) on the same images, the value wide networks trained to convergence approach.
Mean MSE over the one-hot entries, batches of 200 in a fresh permutation per epoch
(`resdiff.mnist.train.epoch_permutation`).

    .venv/bin/python scripts/thirty_adam_steps.py --data-dir ../shared/mnist --seeds 0,1,2
"""
import argparse
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as resdiff does

import torch  # noqa: E402
from torch import nn  # noqa: E402

from resdiff import progress  # noqa: E402
from resdiff.experiments.mnist_kernel import mnist_kernel  # noqa: E402
from resdiff.experiments.mnist_train import load_split, mnist_train  # noqa: E402
from resdiff.mnist import train  # noqa: E402

SIZE, N_TRAIN, EPOCHS, BATCH = 10, 2000, 3, 200


class StandardResNet(nn.Module):
    """The completed FC ResNet's layers with PyTorch's default initialisation."""

    def __init__(self, size):
        super().__init__()
        self.inp = nn.Linear(784, size, bias=False)
        self.res = nn.ModuleList(nn.Linear(size, size) for _ in range(size))
        self.out = nn.Linear(size, 10, bias=False)

    def forward(self, x):
        x = self.inp(x)
        for layer in self.res:
            x = x + torch.tanh(layer(x))
        return self.out(x)


def train_plain(model, split, lr, seed):
    """Adam, batches of 200, EPOCHS epochs, with resdiff's own steps, batch order and
    evaluation (resdiff.mnist.train); final test accuracy."""
    data = train.TrainData.from_numpy(*split[:4], torch.device("cpu"))
    opt = train.make_optimizer("adam", model.parameters(), lr)
    n = data.x_train.shape[0]
    for epoch in range(1, EPOCHS + 1):
        perm = torch.as_tensor(train.epoch_permutation(seed, epoch, n))
        for start in range(0, n, BATCH):
            idx = perm[start:start + BATCH]
            train._step(model, opt, data.x_train[idx], data.y_train[idx], BATCH)
    return train.test_accuracy(model, data, n)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--lrs", default="0.001,0.003,0.01,0.03,0.1,0.3")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    lrs = [float(s) for s in args.lrs.split(",")]
    progress.set_quiet(True)
    started = time.time()
    acc = {}  # (model, lr) -> [accuracy per seed]
    kernel = []
    for seed in seeds:
        split = load_split(N_TRAIN, seed, None, args.data_dir)
        kernel.append(mnist_kernel(n_train=N_TRAIN, noise=None, sigma_w2=1.0, sigma_b2=0.01,
                                   kernel="ntk", seed=seed,
                                   data_dir=args.data_dir).frame["accuracy"].iloc[0])
        for lr in lrs:
            res = mnist_train(arch="fc", size=SIZE, optimizer="adam", epochs=EPOCHS, lr=lr,
                              n_train=N_TRAIN, seed=seed, device="cpu",
                              data_dir=args.data_dir)
            acc.setdefault(("ntk", lr), []).append(res.frame["test_accuracy"].iloc[-1])
            for name, make in (("standard", lambda: StandardResNet(SIZE)),
                               ("linear", lambda: nn.Linear(784, 10))):
                torch.manual_seed(seed)
                acc.setdefault((name, lr), []).append(train_plain(make(), split, lr, seed))
            print(f"seed {seed} lr {lr:g} done ({time.time() - started:.0f} s)",
                  file=sys.stderr)
    print(f"Final test accuracy after {EPOCHS} epochs of Adam (batch {BATCH}, "
          f"{EPOCHS * N_TRAIN // BATCH} steps) on {N_TRAIN:,} images, full test set; "
          f"seeds {args.seeds} (min-max)\n")
    print("| model | " + " | ".join(f"lr {lr:g}" for lr in lrs) + " |")
    print("|---|" + "---|" * len(lrs))
    for name in ("ntk", "standard", "linear"):
        cells = (f"{min(acc[name, lr]):.3f}-{max(acc[name, lr]):.3f}" for lr in lrs)
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\nlimiting kernel regression (eq. 37, noise 1/{N_TRAIN}): "
          f"{min(kernel):.4f}-{max(kernel):.4f}; {time.time() - started:.0f} s in all")


if __name__ == "__main__":
    main()
