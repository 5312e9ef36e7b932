"""How long a job will take, estimated before it starts; refused beyond LIMIT_HOURS.

The estimate is the job's operation count over a speed:

* Monte Carlo (``samples``, ``correlation``, ``kde``, ``ntk-convergence``): multiply-adds
  from the cost model that also sizes the chunks (:mod:`resdiff.sampling.cost`), at
  ``MC_RATE`` multiply-adds per second per Numba thread. The feedforward cost is at the
  Gram factor's largest rank, so for deep networks at the edge of chaos (smaller ranks)
  it is an overestimate (about 3x for Fig. 1 at the paper preset), and the Chebyshev
  node count, chosen by a pilot at run time, is taken as TYPICAL_NODES. Against the
  times measured on this project's 2-core machine (README), Figs. 2-4 at the paper
  preset come within 0.6-1.5x. ``jacobian``: ``2 L D^3`` per draw and method;
  ``explosion``: ``RNG_COST + PHI_COST`` per coordinate and layer up to T (a passage
  stops a draw earlier).
* Training (``mnist-train``, Figs. 6-7): FLOPs of the forward pass per image
  (``flops_forward``; the backward pass counted as two forward passes) times the images
  of every epoch, at the speed of a 1024^3 float32 GEMM timed on the training device
  (a few milliseconds). Training does not reach a GEMM's speed (docs/training.md: 10-60%
  of it on CPUs), so this is a lower bound of the time.

No estimate costs more than the GEMM timing (and PyTorch's import for training jobs).
"""

import os
import time

from .errors import UserError

LIMIT_HOURS = 24.0
SAY_SECONDS = 10.0  # shorter jobs start without a word about their time
# multiply-adds per second per thread of resdiff's kernels: driver.MIN_CHUNK_WORK's
# 5e7 take ~25 ms on one core of this project's AMD EPYC
MC_RATE = 2e9
MNIST_TEST_IMAGES = 10000
# Chebyshev nodes per axis when the pilot chooses them: 14-20 at the paper's sizes
# (resdiff.sampling.plan); the cost grows with their square
TYPICAL_NODES = 20


def _threads():
    try:
        n = int(os.environ.get("NUMBA_NUM_THREADS", ""))
        if n >= 1:
            return n
    except ValueError:
        pass
    from .executor import available_cores

    return available_cores()


def _points(model, activation, sigma_b2, input_dim, nodes, n_out):
    """Points a draw is simulated at, as the evaluation plan chooses them."""
    from .sampling.plan import evaluation_plan

    if sigma_b2 is None:
        from .constraints import default_eoc_sigma_b2

        sigma_b2 = 1.0 if model == "resnet" else default_eoc_sigma_b2(activation)
    plan, k = evaluation_plan(model, activation, float(sigma_b2), input_dim, nodes, n_out)
    if plan == "homogeneous":
        return 2
    if plan == "chebyshev":
        k = TYPICAL_NODES if k is None else k
        return k**input_dim
    return n_out


def _draw_work(model, points, width, depth, draws):
    from .sampling.cost import layer_cost

    per_layer = min(layer_cost(model, s, points, width) for s in ("gram", "explicit"))
    return float(draws) * depth * per_layer


def monte_carlo_work(experiment, p):
    """Multiply-adds of a Monte Carlo experiment (``"samples"``, ``"correlation"``,
    ``"kde"``, ``"ntk_convergence"``, ``"jacobian"``, ``"explosion"``) with parameters
    ``p``; None for others."""
    from .sampling.cost import PHI_COST, RNG_COST

    if experiment == "jacobian":  # 2 L D^3 per draw and method (docs/jacobian.md, "Cost")
        methods = p["methods"] or (
            ["network"] if p["model"] == "feedforward" else ["resnet", "sde"]
        )
        runs = sum(m != "limit" for m in methods)
        return float(p["draws"]) * runs * 2.0 * p["depth"] * float(p["width"]) ** 3
    if experiment == "explosion":  # D normals and D activations a layer, up to T at most
        runs = sum(m != "limit" for m in p["methods"])
        return float(p["draws"]) * runs * p["depth"] * p["width"] * (RNG_COST + PHI_COST)
    if experiment == "kde":
        runs = sum(m != "analytic" for m in p["methods"])
        return runs * _draw_work("resnet", len(p["z"]), p["width"], p["depth"], p["draws"])
    if experiment == "ntk_convergence":  # 2 L steps of two inputs against D x D weights
        return float(p["draws"]) * sum(2 * s * (2 + RNG_COST) * s * s for s in p["sizes"])
    if experiment in ("samples", "correlation"):
        dim = p.get("input_dim", 1)
        n = p["inputs"] if experiment == "samples" else p["grid"]
        n_out = n ** int(dim)
        points = _points(
            p["model"], p["activation"], p.get("sigma_b2"), int(dim), p.get("nodes"), n_out
        )
        return _draw_work(p["model"], points, p["width"], p["depth"], p["draws"])
    return None


def flops_forward(arch, size):
    """FLOPs (2 x multiply-adds) of one image's forward pass at D = L = size."""
    D = L = size
    if arch == "fc":
        return 2 * (784 * D + L * D * D + 10 * D)
    return 2 * 784 * (D + L * 9 * D * D) + 2 * 10 * D


def training_flops(p):
    """FLOPs of a training run from its first epoch: each epoch a forward and backward
    pass (3 forward passes) per training image and a forward pass per test image."""
    n_test = p.get("n_test") or MNIST_TEST_IMAGES
    return p["epochs"] * (3 * p["n_train"] + n_test) * flops_forward(p["arch"], p["size"])


def training_speed(device="auto"):
    """``(FLOP/s, device name)``: a 1024^3 float32 GEMM timed on the device training
    would use (the best of three, after one warm-up)."""
    import torch

    name = (
        "cuda"
        if device == "auto" and torch.cuda.is_available()
        else ("cpu" if device == "auto" else device)
    )
    dev = torch.device(name)
    n = 1024
    a = torch.ones(n, n, device=dev)
    best = float("inf")
    for _ in range(4):
        t0 = time.perf_counter()
        a @ a
        if dev.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / max(best, 1e-9), name


def _hours(seconds):
    h = seconds / 3600
    if h >= 100:
        return f"{h:,.0f} h"
    if h >= 1:
        return f"{h:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


class Estimate:
    """The seconds of a job, added up from its parts."""

    def __init__(self):
        self.mc_work, self.train_flops, self.speed, self.device = 0.0, 0.0, None, None

    def add(self, experiment, params):
        work = monte_carlo_work(experiment, params)
        if work is not None:
            self.mc_work += work
        elif experiment == "mnist_train":
            self.train_flops += training_flops(params)
            if self.speed is None:
                self.speed, self.device = training_speed(params.get("device", "auto"))

    @property
    def seconds(self):
        s = self.mc_work / (MC_RATE * _threads())
        if self.train_flops:
            s += self.train_flops / self.speed
        return s

    def describe(self):
        parts = []
        if self.mc_work:
            parts.append(
                f"{self.mc_work:.1e} multiply-adds at {MC_RATE:.0e}/s on each of "
                f"{_threads()} threads"
            )
        if self.train_flops:
            parts.append(
                f"{self.train_flops:.1e} training FLOPs at the "
                f"{self.speed / 1e9:,.0f} GFLOP/s of a GEMM on {self.device}, "
                "which training does not reach"
            )
        return "; ".join(parts)


def experiment_work(experiment, params):
    """An :class:`Estimate` of ``experiment`` (a function decorated by
    :func:`resdiff.constraints.checked`) run with ``params``, after checking them
    against its table (a bad value is its ParameterError, not a crash here)."""
    import inspect

    bound = inspect.signature(experiment).bind(**params)
    bound.apply_defaults()
    experiment.constraints.check(bound.arguments)
    estimate = Estimate()
    estimate.add(experiment.__name__, bound.arguments)
    return estimate


def check(what, estimate, allow_long, size_hint=None, info=None):
    """Refuse a job whose estimate exceeds LIMIT_HOURS (a UserError naming the estimate,
    ``size_hint`` and ``--allow-long``); otherwise say the estimate (``info``)."""
    seconds = estimate.seconds
    if seconds <= 0:
        return seconds
    text = f"{what}: estimated {_hours(seconds)} ({estimate.describe()})"
    if seconds > LIMIT_HOURS * 3600 and not allow_long:
        raise LongJob(
            f"{text}, more than the {LIMIT_HOURS:g} h limit: not started; "
            f"reduce it ({size_hint or 'smaller sizes or draws'}) or pass "
            "--allow-long"
        )
    if info is not None and seconds >= SAY_SECONDS:
        info(f"{text}; an estimate, not a promise")
    return seconds


class LongJob(UserError):
    """A job estimated beyond LIMIT_HOURS and not allowed to be long."""
