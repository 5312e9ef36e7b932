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

On CPU a run is deterministic for a given seed: every PyTorch op runs on one thread and
the parallelism is over fixed blocks of the batch (:func:`resdiff.mnist.models.set_cpu_threads`),
so the thread count, ``$OMP_NUM_THREADS`` or all cores, does not change the numbers; on
CUDA a run is statistically, not bitwise, reproducible.
"""

import math
import os
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch

from .. import files
from ..constraints import FULL_BATCH, OPTIMIZERS, ParameterError
from ..errors import UserError
from ..progress import info, progress, warn
from . import models
from .data import epoch_permutation

CHECKPOINT_FORMAT = 1
CPU_MEMORY_BUDGET = 1 << 30  # bytes of saved activations per chunk on CPU


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
        raise ParameterError(
            "device",
            "cuda: no CUDA device is available to PyTorch "
            f"(torch {torch.__version__}); use cpu or auto",
        )
    if name not in ("cpu", "cuda"):
        raise ParameterError("device", f"must be auto, cpu or cuda, got {name!r}")
    if name == "cpu":
        models.set_cpu_threads(cpu_threads())
        keep_freed_memory()
    return torch.device(name)


def keep_freed_memory():
    """Have glibc's malloc keep freed memory for reuse instead of returning it to the
    kernel; True if it took effect.

    A training step allocates its large buffers afresh (at D = L = 500 the saved
    activations and the 500 MB weight gradient, about 1.1 GB): by default each comes
    from a fresh ``mmap``, whose 270,000 page faults took 0.7 s of system time per step
    (a fifth of the step) on the 2-core AMD EPYC. Served from the heap, and kept there
    after ``free``, the pages are reused: 269,000 faults in the first step, 48,000 in
    the second, none from the third on. The numbers do not change; the process keeps
    its peak memory until it ends.
    """
    import ctypes
    import ctypes.util

    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc's <malloc.h>
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc: nothing to tune
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))


def native_bf16(device):
    """Whether ``device`` multiplies bfloat16 natively: a CUDA GPU of compute capability
    8 or more, or a CPU whose flags (``/proc/cpuinfo``) include ``amx_bf16`` or
    ``avx512_bf16``. Without them PyTorch's bf16 GEMMs are emulated and were 15-300x
    slower than float32 on an AVX2 CPU (docs/training.md)."""
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device)[0] >= 8
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next(
                (line.split(":", 1)[1].split() for line in fh if line.startswith("flags")), []
            )
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def set_precision(precision, device):
    """Switch the device's float32 matmul mode for ``precision``; a dict for the sidecar.

    fp32 turns TF32 off on CUDA (PyTorch's default allows it in convolutions), tf32
    turns it on for matmuls and convolutions; on a CPU both are float32. bf16 rounds
    the operands in the model itself (:func:`resdiff.mnist.models.round_bf16`) and
    computes the products in float32: the same numbers as native bf16 GEMMs with float32
    accumulation, at float32 speed plus the rounding, so it is never faster than fp32
    here; it warns so.
    """
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
        torch.backends.cudnn.allow_tf32 = precision == "tf32"
    if precision == "bf16":
        warn(
            "--precision bf16 rounds matmul operands to bfloat16 and multiplies in "
            "float32 (the numerics of bf16 with float32 accumulation), so it is slower "
            "than fp32, not faster"
            + ("" if native_bf16(device) else "; this device has no native bf16 arithmetic")
        )
    return {
        "precision": precision,
        "native_bf16": native_bf16(device),
        "matmul_allow_tf32": device.type == "cuda" and precision == "tf32",
    }


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

        return cls(
            put(x_train, torch.float32),
            put(y_train, torch.float32),
            put(x_test, torch.float32),
            put(test_labels, torch.int64),
        )


def _conv_stack(model, device):
    """Whether ``model`` runs its residual stack as ``models.ConvResidualStack`` on
    ``device`` (None: the CPU)."""
    return (
        getattr(model, "arch", None) == "conv"
        and (device is None or device.type == "cpu")
        and model.fused
        and not model.bf16
    )


def bytes_per_sample(model, device=None):
    """Activation memory kept per training sample on ``device`` (None: the CPU): about 3
    floats per unit for autograd's per-layer graph and the FC stack; ``2 L + 3``
    channels-last planes of ``D`` channels for the conv stack (``x_l`` and ``tanh(.)``
    of every layer, ``x_0``, the gradient)."""
    if _conv_stack(model, device):
        return 4 * model.width * (2 * model.depth + 3) * 28 * 28 + 4 * 784
    pixels = 28 * 28 if getattr(model, "arch", None) == "conv" else 1
    return 4 * 3 * model.width * (model.depth + 2) * pixels + 4 * 784


def chunk_size(model, device, grad=True):
    """Samples per forward/backward chunk: a deterministic function of model and device.
    For the conv stack a multiple of its block (``models.CONV_BLOCK``) when one fits,
    so that no chunk ends in a short block that leaves the other threads idle."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        budget = free // 3
    else:
        budget = CPU_MEMORY_BUDGET
    per = bytes_per_sample(model, device)
    if not grad:
        per = max(1, per // (model.depth + 2))
    chunk = int(max(1, min(budget // per, 1 << 16)))
    if _conv_stack(model, device) and chunk > models.CONV_BLOCK:
        chunk -= chunk % models.CONV_BLOCK
    return chunk


def make_optimizer(name, params, lr):
    if name in ("gd", "sgd"):
        return torch.optim.SGD(params, lr=lr, momentum=0.0)
    if name in ("adam", "adam-full"):
        return torch.optim.Adam(params, lr=lr)
    raise ParameterError("optimizer", f"must be one of {', '.join(OPTIMIZERS)}, got {name!r}")


@torch.no_grad()
def test_accuracy(model, data, chunk):
    """Fraction of test images whose largest output is the true class (NaN = wrong)."""
    model.eval()
    correct = 0
    n = data.x_test.shape[0]
    for start in range(0, n, chunk):
        out = model(data.x_test[start : start + chunk])
        pred = torch.nan_to_num(out, nan=-math.inf).argmax(dim=1)
        correct += int((pred == data.test_labels[start : start + chunk]).sum())
    return correct / n


def _step(model, opt, x, y, chunk):
    """One optimizer step on batch (x, y); returns the batch loss as a 0-d tensor."""
    opt.zero_grad(set_to_none=True)
    n = x.shape[0]
    scale = 1.0 / (n * y.shape[1])  # mean over all N x 10 entries
    total = torch.zeros((), device=x.device)
    for start in range(0, n, chunk):
        out = model(x[start : start + chunk])
        loss = (out - y[start : start + chunk]).pow(2).sum().mul(scale)
        loss.backward()
        total += loss.detach()
    opt.step()
    return total


def save_checkpoint(path, state):
    """``torch.save`` through the atomic writer (:func:`resdiff.files.atomic_write`)."""
    with files.atomic_write(path, "wb") as fh:
        torch.save(state, fh)


def load_checkpoint(path, device):
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # corrupt or foreign file
        raise UserError(f"cannot read checkpoint {path}: {exc}; delete it to start over") from None


def _format_eta(seconds):
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}"


def _resume(checkpoint, config, device, model, opt, label):
    """The saved ``(rows, last epoch, elapsed seconds)``, loaded into model and optimizer."""
    state = load_checkpoint(checkpoint, device)
    if state.get("format") != CHECKPOINT_FORMAT or state.get("config") != config:
        old = state.get("config") or {}
        diff = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
        raise UserError(
            f"checkpoint {checkpoint} belongs to a different run "
            f"(differs in: {', '.join(diff) or 'format'}); delete it or "
            "drop --resume"
            + (
                f" (it was trained with PyTorch's {old['torch_cpu_capability']} kernels: "
                "resume it on a CPU that has them)"
                if "torch_cpu_capability" in diff and old.get("torch_cpu_capability")
                else ""
            )
        )
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    info(f"{label}: resuming from {checkpoint} after epoch {state['epoch']}")
    return list(state["rows"]), int(state["epoch"]), float(state.get("elapsed", 0.0))


def _train_epoch(model, opt, data, *, full_batch, step_size, chunk, seed, epoch, bar):
    """One epoch of steps; the mean of the step losses (weighted by batch size)."""
    model.train()
    if full_batch:
        loss = _step(model, opt, data.x_train, data.y_train, chunk)
        bar.update(1)
        return float(loss)
    n = data.x_train.shape[0]
    perm = torch.as_tensor(epoch_permutation(seed, epoch, n), device=data.x_train.device)
    loss_sum = torch.zeros((), device=data.x_train.device)
    for start in range(0, n, step_size):
        idx = perm[start : start + step_size]
        loss_sum += _step(model, opt, data.x_train[idx], data.y_train[idx], chunk) * idx.shape[0]
        bar.update(1)
    return float(loss_sum / n)


def fit(
    model,
    data,
    *,
    optimizer,
    lr,
    batch_size,
    epochs,
    seed,
    device,
    config,
    checkpoint=None,
    resume=False,
    checkpoint_every=0.0,
    label="mnist-train",
):
    """Train ``model`` in place; returns ``(rows, meta)``, one row per epoch.

    ``config`` (a JSON-able dict) identifies the run; a checkpoint is only resumed
    when its config is the same. The checkpoint is rewritten after an epoch when
    ``checkpoint_every`` seconds have passed since the last write (0: every epoch),
    and always after the last one; resuming is exact from any of them.
    """
    model.to(device)
    opt = make_optimizer(optimizer, model.parameters(), lr)
    n = data.x_train.shape[0]
    full_batch = optimizer in FULL_BATCH
    step_size = n if full_batch else min(int(batch_size), n)
    steps_per_epoch = -(-n // step_size)
    chunk = min(step_size, chunk_size(model, device))
    eval_chunk = chunk_size(model, device, grad=False)
    rows, last_epoch, elapsed_before = [], 0, 0.0
    meta = {
        "device": str(device),
        "chunk": chunk,
        "steps_per_epoch": steps_per_epoch,
        "threads": cpu_threads() if device.type == "cpu" else None,
        "n_parameters": model.n_parameters(),
        "resumed_from_epoch": None,
        "diverged_epoch": None,
    }
    if checkpoint and resume and os.path.exists(checkpoint):
        rows, last_epoch, elapsed_before = _resume(checkpoint, config, device, model, opt, label)
        meta["resumed_from_epoch"] = last_epoch
        if rows and rows[-1]["diverged"]:
            meta["diverged_epoch"] = rows[-1]["epoch"]
            last_epoch = epochs
    elif checkpoint and os.path.exists(checkpoint) and not resume:
        info(
            f"{label}: ignoring the existing checkpoint {checkpoint} (pass --resume to "
            "continue it); it will be overwritten"
        )

    def save(epoch):
        save_checkpoint(
            checkpoint,
            {
                "format": CHECKPOINT_FORMAT,
                "config": config,
                "epoch": epoch,
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "rows": rows,
                "elapsed": elapsed_before + time.time() - started,
            },
        )

    epoch_seconds = []
    tty = sys.stderr.isatty()
    started = time.time()
    last_line = last_save = 0.0
    with progress(max(0, epochs - last_epoch) * steps_per_epoch, label) as bar:
        for epoch in range(last_epoch + 1, epochs + 1):
            t0 = time.time()
            train_loss = _train_epoch(
                model,
                opt,
                data,
                full_batch=full_batch,
                step_size=step_size,
                chunk=chunk,
                seed=seed,
                epoch=epoch,
                bar=bar,
            )
            diverged = not math.isfinite(train_loss)
            acc = math.nan if diverged else test_accuracy(model, data, eval_chunk)
            # wall times go to the sidecar, not the rows: same seed, same bytes
            rows.append(
                {
                    "epoch": epoch,
                    "train_loss": train_loss,
                    "test_accuracy": acc,
                    "diverged": diverged,
                }
            )
            epoch_seconds.append(round(time.time() - t0, 4))
            bar.set_postfix(f"epoch {epoch}/{epochs} loss {train_loss:.4g} acc {acc:.4f}")
            if checkpoint and (
                diverged or epoch == epochs or time.time() - last_save >= checkpoint_every
            ):
                last_save = time.time()
                save(epoch)
            if diverged:
                meta["diverged_epoch"] = epoch
                info(f"{label}: diverged at epoch {epoch} (loss {train_loss}); stopping")
                break
            if not tty and (epoch == epochs or time.time() - last_line > 30):
                last_line = time.time()
                eta = (last_line - started) / (epoch - last_epoch) * (epochs - epoch)
                info(
                    f"{label}: epoch {epoch}/{epochs}  loss {train_loss:.5g}  test acc "
                    f"{acc:.4f}  {epoch_seconds[-1]:.2f} s/epoch  ETA {_format_eta(eta)}"
                )
    meta["train_seconds"] = round(elapsed_before + time.time() - started, 3)
    meta["epoch_seconds"] = epoch_seconds  # epochs run in this call (after any resume)
    return rows, meta
