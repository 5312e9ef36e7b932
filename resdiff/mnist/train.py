"""Training loop for the completed ResNets (PyTorch; needs the ``train`` extra).

* Optimizers (Section 6.3): ``gd`` (full batch) and ``sgd`` (mini-batch) are plain
  gradient descent with a fixed learning rate; ``adam-full`` and ``adam`` are Adam with
  PyTorch's defaults (betas 0.9, 0.999, eps 1e-8). No momentum, clipping, weight decay
  or schedule.
* Loss: the mean squared error over all ``N x 10`` entries of the one-hot targets.
* Every step's batch (200 images, or the whole training set for the full-batch
  optimizers) is processed in chunks that fit a memory budget, accumulating the exact
  gradient of the batch loss; chunking changes only the floating-point summation order.
* Mini-batches are a fresh permutation per epoch, a function of ``(seed, epoch)`` only
  (the last batch may be smaller), so a run restarted from the checkpoint of epoch
  ``e`` repeats epochs ``e + 1, ...`` exactly.
* After each epoch: the test accuracy (argmax of the 10 outputs), one row, and an atomic
  checkpoint (model, optimizer state, rows). A non-finite epoch loss is a divergence:
  recorded (``diverged``), reported, and training stops.

On CPU a run is deterministic for a given seed (float32, PyTorch's CPU kernels; the
thread count, ``$OMP_NUM_THREADS`` or all cores, did not change a bit in the sizes
tested, see docs/training.md); on CUDA it is statistically, not bitwise, reproducible.
"""
import math
import os
import sys
import time
import zlib
from dataclasses import dataclass

import numpy as np
import torch

from .. import io
from ..errors import UserError
from ..progress import info, progress

OPTIMIZERS = ("gd", "sgd", "adam-full", "adam")
FULL_BATCH = ("gd", "adam-full")
CHECKPOINT_FORMAT = 1
CPU_MEMORY_BUDGET = 1 << 30      # bytes of saved activations per chunk on CPU
_SHUFFLE_TAG = zlib.crc32(b"mnist-train/shuffle")


def cpu_threads():
    """``$OMP_NUM_THREADS`` when set, else the cores this process may use."""
    try:
        n = int(os.environ.get("OMP_NUM_THREADS", ""))
        if n >= 1:
            return n
    except ValueError:
        pass
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def pick_device(name):
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is a user error."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available to PyTorch "
                        f"(torch {torch.__version__}); use --device cpu or auto")
    if name not in ("cpu", "cuda"):
        raise UserError(f"--device must be auto, cpu or cuda, got {name!r}")
    if name == "cpu":
        torch.set_num_threads(cpu_threads())
    return torch.device(name)


@dataclass
class TrainData:
    """Tensors on the training device: float32 inputs, one-hot targets, test labels."""
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    test_labels: torch.Tensor

    @classmethod
    def from_numpy(cls, x_train, y_train, x_test, test_labels, device):
        def put(a, dtype):
            return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)
        return cls(put(x_train, torch.float32), put(y_train, torch.float32),
                   put(x_test, torch.float32), put(test_labels, torch.int64))


def bytes_per_sample(model):
    """Activation memory autograd keeps per training sample (about 3 floats per unit)."""
    pixels = 28 * 28 if getattr(model, "arch", None) == "conv" else 1
    return 4 * 3 * model.width * (model.depth + 2) * pixels + 4 * 784


def chunk_size(model, device, grad=True):
    """Samples per forward/backward chunk: a deterministic function of model and device."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        budget = free // 3
    else:
        budget = CPU_MEMORY_BUDGET
    per = bytes_per_sample(model) if grad else max(1, bytes_per_sample(model) // (model.depth + 2))
    return int(max(1, min(budget // per, 1 << 16)))


def epoch_permutation(seed, epoch, n):
    ss = np.random.SeedSequence([int(seed), _SHUFFLE_TAG, int(epoch)])
    return np.random.default_rng(ss).permutation(n)


def make_optimizer(name, params, lr):
    if name in ("gd", "sgd"):
        return torch.optim.SGD(params, lr=lr, momentum=0.0)
    if name in ("adam", "adam-full"):
        return torch.optim.Adam(params, lr=lr)
    raise UserError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}")


@torch.no_grad()
def test_accuracy(model, data, chunk):
    """Fraction of test images whose largest output is the true class (NaN = wrong)."""
    model.eval()
    correct = 0
    n = data.x_test.shape[0]
    for start in range(0, n, chunk):
        out = model(data.x_test[start:start + chunk])
        pred = torch.nan_to_num(out, nan=-math.inf).argmax(dim=1)
        correct += int((pred == data.test_labels[start:start + chunk]).sum())
    return correct / n


def _step(model, opt, x, y, chunk):
    """One optimizer step on batch (x, y); returns the batch loss as a 0-d tensor."""
    opt.zero_grad(set_to_none=True)
    n = x.shape[0]
    scale = 1.0 / (n * y.shape[1])             # mean over all N x 10 entries
    total = torch.zeros((), device=x.device)
    for start in range(0, n, chunk):
        out = model(x[start:start + chunk])
        loss = (out - y[start:start + chunk]).pow(2).sum().mul(scale)
        loss.backward()
        total += loss.detach()
    opt.step()
    return total


def save_checkpoint(path, state):
    """``torch.save`` through the atomic writer (:func:`resdiff.io.atomic_write`)."""
    with io.atomic_write(path, "wb") as fh:
        torch.save(state, fh)


def load_checkpoint(path, device):
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # corrupt or foreign file
        raise UserError(f"cannot read checkpoint {path}: {exc}; delete it to start over")


def _format_eta(seconds):
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}"


def fit(model, data, *, optimizer, lr, batch_size, epochs, seed, device, config,
        checkpoint=None, resume=False, checkpoint_every=0.0, label="mnist-train"):
    """Train ``model`` in place; returns ``(rows, meta)``, one row per epoch.

    ``config`` (a JSON-able dict) identifies the run; a checkpoint is only resumed
    when its config is the same. The checkpoint is rewritten after an epoch when
    ``checkpoint_every`` seconds have passed since the last write (0: every epoch),
    and always after the last one; resuming is exact from any of them.
    """
    model.to(device)
    opt = make_optimizer(optimizer, model.parameters(), lr)
    n = data.x_train.shape[0]
    step_size = n if optimizer in FULL_BATCH else min(int(batch_size), n)
    steps_per_epoch = -(-n // step_size)
    chunk = min(step_size, chunk_size(model, device))
    eval_chunk = chunk_size(model, device, grad=False)
    rows, start_epoch, elapsed_before = [], 1, 0.0
    meta = {"device": str(device), "chunk": chunk, "steps_per_epoch": steps_per_epoch,
            "threads": torch.get_num_threads() if device.type == "cpu" else None,
            "n_parameters": model.n_parameters(), "resumed_from_epoch": None,
            "diverged_epoch": None}
    if checkpoint and resume and os.path.exists(checkpoint):
        state = load_checkpoint(checkpoint, device)
        if state.get("format") != CHECKPOINT_FORMAT or state.get("config") != config:
            old = state.get("config") or {}
            diff = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
            raise UserError(f"checkpoint {checkpoint} belongs to a different run "
                            f"(differs in: {', '.join(diff) or 'format'}); delete it or "
                            "drop --resume")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        rows = list(state["rows"])
        start_epoch = int(state["epoch"]) + 1
        elapsed_before = float(state.get("elapsed", 0.0))
        meta["resumed_from_epoch"] = int(state["epoch"])
        info(f"{label}: resuming from {checkpoint} after epoch {state['epoch']}")
        if rows and rows[-1]["diverged"]:
            meta["diverged_epoch"] = rows[-1]["epoch"]
            start_epoch = epochs + 1
    elif checkpoint and os.path.exists(checkpoint) and not resume:
        info(f"{label}: ignoring the existing checkpoint {checkpoint} (pass --resume to "
             "continue it); it will be overwritten")
    epoch_seconds = []
    remaining = max(0, epochs - start_epoch + 1)
    tty = sys.stderr.isatty()
    started = time.time()
    last_line = last_save = 0.0
    with progress(remaining * steps_per_epoch, label) as bar:
        for epoch in range(start_epoch, epochs + 1):
            t0 = time.time()
            model.train()
            if optimizer in FULL_BATCH:
                loss_sum = _step(model, opt, data.x_train, data.y_train, chunk)
            else:
                perm = torch.as_tensor(epoch_permutation(seed, epoch, n), device=device)
                loss_sum = torch.zeros((), device=device)
                for b in range(steps_per_epoch):
                    idx = perm[b * step_size:(b + 1) * step_size]
                    batch_loss = _step(model, opt, data.x_train[idx], data.y_train[idx], chunk)
                    loss_sum += batch_loss * idx.shape[0]
                    bar.update(1)
                loss_sum = loss_sum / n
            if optimizer in FULL_BATCH:
                bar.update(1)
            train_loss = float(loss_sum)               # mean over the epoch's steps
            diverged = not math.isfinite(train_loss)
            acc = math.nan if diverged else test_accuracy(model, data, eval_chunk)
            seconds = time.time() - t0
            # wall times go to the sidecar, not the rows: same seed, same bytes
            rows.append({"epoch": epoch, "train_loss": train_loss, "test_accuracy": acc,
                         "diverged": diverged})
            epoch_seconds.append(round(seconds, 4))
            done = epoch - start_epoch + 1
            eta = (time.time() - started) / done * (epochs - epoch)
            if hasattr(bar, "label"):
                bar.label = (f"{label} epoch {epoch}/{epochs} loss {train_loss:.4g} "
                             f"acc {acc:.4f}")
            if checkpoint and (diverged or epoch == epochs
                               or time.time() - last_save >= checkpoint_every):
                last_save = time.time()
                save_checkpoint(checkpoint, {
                    "format": CHECKPOINT_FORMAT, "config": config, "epoch": epoch,
                    "model": model.state_dict(), "optimizer": opt.state_dict(),
                    "rows": rows, "elapsed": elapsed_before + time.time() - started})
            if diverged:
                meta["diverged_epoch"] = epoch
                info(f"{label}: diverged at epoch {epoch} (loss {train_loss}); stopping")
                break
            if not tty and (epoch == epochs or time.time() - last_line > 30):
                last_line = time.time()
                info(f"{label}: epoch {epoch}/{epochs}  loss {train_loss:.5g}  test acc "
                     f"{acc:.4f}  {seconds:.2f} s/epoch  ETA {_format_eta(eta)}")
    meta["train_seconds"] = round(elapsed_before + time.time() - started, 3)
    meta["epoch_seconds"] = epoch_seconds  # epochs run in this call (after any resume)
    return rows, meta
