"""Golden tests: a change of numbers cannot slip through without a numerical version.

A dataset is keyed on its parameters and the numerical versions of the kernel families
that compute it (:mod:`resdiff.numerics`), not on its code, so a refactor keeps the
committed results. What keeps that honest is this file: every family has a small fixed
run (:data:`CASES`) whose output is recorded in ``tests/golden.json`` with the versions
it was recorded under:

* Monte Carlo and deterministic kernels: the SHA-256 of the CSV bytes, which are the
  same on every x86-64 CPU with FMA and for any thread count;
* PyTorch training: the values, compared with a relative tolerance (:data:`TORCH_RTOL`),
  because float32 rounding differs in the last bits between CPU vendors
  (docs/training.md);
* NumPy's BLAS and LAPACK (the kernel regression of Fig. 6): the values, compared with
  a tolerance relative to their largest one (:data:`BLAS_RTOL`), because the summation
  order of a BLAS product depends on its build, the CPU and the thread count.

A case that computes other numbers under the recorded versions fails and names the
families to bump and the committed datasets to recompute. After a bump, record the new
numbers with ``python -m tests.test_golden --update`` (docs/numerics.md).
"""

import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from resdiff import numerics
from tests.conftest import HAVE_MNIST, HAVE_TORCH

GOLDEN = Path(__file__).with_name("golden.json")
TORCH_RTOL = 1e-6  # float32 training: last-bit differences between CPU vendors
# float64 BLAS/LAPACK: 1 vs 2 OpenBLAS threads, or the N x N solve instead of the
# Woodbury one, move the mnist-kernel scores by 3e-13 of the largest (docs/numerics-audit.md)
BLAS_RTOL = 1e-9


@dataclass(frozen=True)
class Case:
    """One golden run: ``experiment(**params)`` (a ``"module:function"``) whose CSV is
    recorded. ``family``: the family the case exists for (each family has one or
    more); the case also depends on every family of its experiment."""

    family: str
    experiment: str
    params: dict = field(default_factory=dict)
    torch: bool = False  # compared within TORCH_RTOL, not byte for byte
    mnist: bool = False  # needs the MNIST files
    blas: bool = False  # column "value" compared within BLAS_RTOL, not byte for byte

    @property
    def families(self):
        if self.experiment.startswith("tests."):
            return [self.family]
        return numerics.families(self.experiment, self.params)


_SAMPLES = dict(z_min=-2.0, z_max=2.0, input_dim=1, keep_draws=3, quantiles=[0.1, 0.5, 0.9], seed=3)
_TRAIN = dict(
    batch_size=50,
    epochs=2,
    n_train=200,
    n_test=200,
    seed=1,
    device="cpu",
    sigma_w2=1.0,
    sigma_b2=0.01,
)

CASES = {
    # the generator and the linear algebra on their own (module-level functions below)
    "rng-normals": Case("rng", "tests.test_golden:rng_normals"),
    "activations": Case(
        "activations", "tests.test_golden:activation_values", dict(names=["relu", "swish", "tanh"])
    ),
    # the activations beyond the paper, a case of their own so the paper's stay recorded
    "activations-beyond": Case(
        "activations",
        "tests.test_golden:activation_values",
        dict(names=["erf", "gelu", "identity", "sin"]),
    ),
    "linalg": Case("linalg", "tests.test_golden:linalg_products"),
    "limits": Case("limits", "tests.test_golden:limit_values"),
    "mnist-data": Case("mnist-data", "tests.test_golden:mnist_data_values", mnist=True),
    # Gram sampler: the ResNet (eq. 26) and the Euler scheme of its SDE (eq. 6); eq. 34
    "resnet-gram-kde": Case(
        "resnet",
        "resdiff.experiments.kde:kde",
        dict(
            depth=12,
            width=16,
            draws=6,
            z=[0.0, 1.0],
            sigma_w2=1.0,
            sigma_b2=1.0,
            activation="swish",
            methods=["resnet", "sde", "analytic"],
            seed=2,
        ),
    ),
    # explicit weights, every input a point (nodes=0): more points than width
    "resnet-explicit": Case(
        "resnet",
        "resdiff.experiments.samples:samples",
        dict(
            model="resnet",
            activation="tanh",
            depth=10,
            width=4,
            inputs=24,
            draws=5,
            sigma_w2=1.0,
            sigma_b2=1.0,
            nodes=0,
            estimator="empirical",
            **_SAMPLES,
        ),
    ),
    # the Gram sampler at a few fixed Chebyshev nodes (fewer points than width)
    "resnet-gram-samples": Case(
        "resnet",
        "resdiff.experiments.samples:samples",
        dict(
            model="resnet",
            activation="tanh",
            depth=10,
            width=40,
            inputs=50,
            draws=5,
            sigma_w2=1.0,
            sigma_b2=1.0,
            nodes=6,
            estimator="auto",
            **_SAMPLES,
        ),
    ),
    # Chebyshev nodes chosen by the pilot, interpolated (the plan)
    "resnet-chebyshev": Case(
        "plan",
        "resdiff.experiments.samples:samples",
        dict(
            model="resnet",
            activation="swish",
            depth=10,
            width=40,
            inputs=200,
            draws=5,
            sigma_w2=1.0,
            sigma_b2=1.0,
            nodes=None,
            estimator="auto",
            **_SAMPLES,
        ),
    ),
    # the pilot's K over a sweep of input ranges: one run's K moves only when a constant
    # of the rule (PILOT_SAFETY, INTERP_TOL, ...) crosses its threshold, a sweep's does
    "plan-pilot": Case("plan", "tests.test_golden:pilot_nodes"),
    "feedforward-empirical": Case(
        "feedforward",
        "resdiff.experiments.samples:samples",
        dict(
            model="feedforward",
            activation="tanh",
            depth=8,
            width=6,
            inputs=12,
            draws=6,
            sigma_w2=None,
            sigma_b2=None,
            nodes=None,
            estimator="empirical",
            **_SAMPLES,
        ),
    ),
    "feedforward-relu": Case(
        "feedforward",
        "resdiff.experiments.samples:samples",
        dict(
            model="feedforward",
            activation="relu",
            depth=8,
            width=6,
            inputs=12,
            draws=6,
            sigma_w2=None,
            sigma_b2=None,
            nodes=None,
            estimator="auto",
            **_SAMPLES,
        ),
    ),
    # few inputs, a wider network: the Gram sampler with its lazy pivoted Cholesky (the
    # cases above use explicit weights; their Gram pilot only counts the factor's rank)
    "feedforward-gram": Case(
        "feedforward",
        "resdiff.experiments.samples:samples",
        dict(
            model="feedforward",
            activation="tanh",
            depth=8,
            width=16,
            inputs=6,
            draws=6,
            sigma_w2=None,
            sigma_b2=None,
            nodes=None,
            estimator="auto",
            **_SAMPLES,
        ),
    ),
    "conditional-estimator": Case(
        "statistics",
        "resdiff.experiments.samples:samples",
        dict(
            model="feedforward",
            activation="tanh",
            depth=8,
            width=6,
            inputs=12,
            draws=6,
            sigma_w2=None,
            sigma_b2=None,
            nodes=None,
            estimator="conditional",
            **_SAMPLES,
        ),
    ),
    "correlation": Case(
        "statistics",
        "resdiff.experiments.samples:correlation",
        dict(
            model="resnet",
            activation="tanh",
            depth=10,
            width=6,
            grid=7,
            z_min=-2.0,
            z_max=2.0,
            draws=8,
            sigma_w2=1.0,
            sigma_b2=1.0,
            nodes=None,
            estimator="auto",
            seed=4,
        ),
    ),
    "ntk": Case(
        "ntk",
        "resdiff.experiments.ntk:ntk_convergence",
        dict(
            sizes=[4, 9],
            draws=4,
            z=[1.0, 2.0],
            sigma_w2=1.0,
            sigma_b2=1.0,
            activation="tanh",
            seed=5,
        ),
    ),
    # Section 4: the three Jacobians (ResNet, SDE with the phi''(0) drift, feedforward)
    "jacobian-resnet": Case(
        "jacobian",
        "resdiff.experiments.jacobian:jacobian",
        dict(
            model="resnet",
            activation="gelu",
            depth=6,
            width=5,
            draws=3,
            z=0.5,
            sigma_w2=1.0,
            sigma_b2=1.0,
            methods=["resnet", "sde", "limit"],
            seed=6,
        ),
    ),
    "jacobian-feedforward": Case(
        "jacobian",
        "resdiff.experiments.jacobian:jacobian",
        dict(
            model="feedforward",
            activation="tanh",
            depth=5,
            width=6,
            draws=3,
            z=1.0,
            sigma_w2=None,
            sigma_b2=None,
            methods=["network"],
            seed=6,
        ),
    ),
    # Proposition 5.1: first passage of q_t, ResNet and SDE, and t*
    "explosion": Case(
        "explosion",
        "resdiff.experiments.explosion:explosion",
        dict(
            activation="swish",
            z=1.0,
            sigma_w2=1.0,
            sigma_b2=1.0,
            horizon=4.0,
            threshold=20.0,
            depth=100,
            width=10,
            draws=5,
            methods=["resnet", "sde", "limit"],
            seed=7,
        ),
    ),
    "eoc": Case("eoc", "resdiff.experiments.eoc:eoc", dict(activation="tanh", sigma_b2=0.05)),
    "mnist-kernel": Case(
        "mnist-kernel",
        "resdiff.experiments.mnist_kernel:mnist_kernel",
        dict(n_train=300, noise=None, sigma_w2=1.0, sigma_b2=0.01, kernel="ntk", seed=0),
        mnist=True,
    ),
    # the posterior mean itself: the accuracy above moves only when a prediction flips
    "mnist-kernel-scores": Case(
        "mnist-kernel", "tests.test_golden:mnist_kernel_scores", mnist=True, blas=True
    ),
    "mnist-dynamics": Case(
        "mnist-dynamics",
        "resdiff.experiments.mnist_kernel:mnist_kernel_dynamics",
        dict(
            n_train=200,
            dynamics="sgd",
            init="random",
            epochs=2,
            lr=20.0,
            batch_size=50,
            draws=2,
            sigma_w2=1.0,
            sigma_b2=0.01,
            kernel="ntk",
            seed=0,
        ),
        mnist=True,
    ),
    "train-fc": Case(
        "train-fc",
        "resdiff.experiments.mnist_train:mnist_train",
        dict(arch="fc", size=4, optimizer="sgd", lr=20.0, **_TRAIN),
        torch=True,
        mnist=True,
    ),
    "train-fc-adam": Case(
        "train-fc",
        "resdiff.experiments.mnist_train:mnist_train",
        dict(arch="fc", size=4, optimizer="adam", lr=0.001, **_TRAIN),
        torch=True,
        mnist=True,
    ),
    "train-conv": Case(
        "train-conv",
        "resdiff.experiments.mnist_train:mnist_train",
        dict(
            arch="conv",
            size=2,
            optimizer="sgd",
            lr=0.5,
            **{**_TRAIN, "epochs": 1, "n_train": 100, "n_test": 100},
        ),
        torch=True,
        mnist=True,
    ),
}


# --- runs of the families that no experiment covers on its own ---------------------------
def _frame(**parts):
    """A tidy frame ``part, index, value`` of the named arrays, flattened."""
    return pd.concat(
        [
            pd.DataFrame({"part": name, "index": np.arange(np.size(v)), "value": np.ravel(v)})
            for name, v in parts.items()
        ],
        ignore_index=True,
    )


def rng_normals():
    from resdiff import rng

    return _frame(
        value=np.concatenate([rng.normals(7, "golden", stream, 257) for stream in (0, 1, 12345)])
    )


def activation_values(names):
    from resdiff.activations import ACTIVATIONS, dphi, phi

    x = np.linspace(-6.0, 6.0, 241)
    rows = {}
    for name in sorted(names):
        act = ACTIVATIONS[name]
        rows[f"{name}_phi"] = [phi(act.code, v) for v in x]
        rows[f"{name}_dphi"] = [dphi(act.code, v) for v in x]
    return _frame(x=x, **rows)


def linalg_products():
    # inputs from the frozen generator (resdiff.rng_xoshiro), so that this case sees
    # the linear algebra only, not the Monte Carlo generator (family rng)
    from resdiff import rng_xoshiro as rng
    from resdiff.sampling.linalg import matmul, matmul_nt, pivoted_cholesky

    a = rng.normals(1, "golden/linalg", 0, 7 * 13).reshape(7, 13)
    b = rng.normals(1, "golden/linalg", 1, 5 * 13).reshape(5, 13)
    s = np.ascontiguousarray(matmul_nt(a, a))
    factor = np.zeros_like(s)
    rank = pivoted_cholesky(s.copy(), factor, 1e-13)
    return _frame(
        ab=matmul_nt(a, b),
        aat=matmul(a, np.ascontiguousarray(a.T)),
        factor=np.append(factor.ravel(), rank),
    )


def limit_values():
    from resdiff import limits

    start = limits.initial_moments(np.array([[0.5] * 4, [-1.0] * 4, [2.0] * 4]))
    rows = []
    for sw, sb, d1, d2 in ((1.0, 1.0, 1.0, 0.0), (2.0, 0.5, 0.5, 0.5), (1.0, 1.0, 0.5, 0.5)):
        end = limits.moment_paths(start, sw, sb, d1, d2, steps=2000)
        mean, cov = limits.transition_gaussian(np.array([0.5, -1.0, 2.0]), start, end)
        rows += [
            *np.ravel(mean),
            *np.ravel(cov),
            *limits.ntk_limits(1.5, sw, sb, d1),
            limits.explosion_time(start, sw, sb, d1, d2, t_max=50.0) or -1.0,
        ]
    return _frame(value=rows)


def pilot_nodes():
    """The Chebyshev pilot (:func:`resdiff.sampling.plan.choose_nodes`) of the ResNet
    on ``[-a, a]`` for a sweep of ``a``: its ``K`` and coefficient envelope each."""
    from resdiff.sampling.plan import choose_nodes

    rows = {}
    for act, ranges in (
        ("tanh", np.arange(0.5, 2.26, 0.25)),
        ("swish", np.arange(1.0, 3.01, 0.25)),
    ):
        for a in ranges:
            k, pilot = choose_nodes("resnet", act, 10, 40, 1.0, 1.0, -a, a, 3)
            rows[f"{act}_{a:g}"] = [k, *pilot["envelope"]]
    return _frame(**rows)


def mnist_kernel_scores(data_dir):
    """Kernel regression with the limit NTK (eq. 37) on 300 training images: the
    posterior mean's scores on the first 100 test images (BLAS: see BLAS_RTOL)."""
    from resdiff.mnist import data, kernel

    mnist = data.load_mnist(data_dir, download=False)
    subset = data.training_subset(300, 0)
    slope, offset = kernel.coefficients("ntk", 1.0, 0.01)
    scores = kernel.posterior_mean(
        data.as_features(mnist.train_images[subset]),
        data.one_hot(mnist.train_labels[subset]),
        data.as_features(mnist.test_images[:100]),
        slope,
        offset,
        1.0 / 300,
    )
    return _frame(scores=scores)


def mnist_data_values(data_dir):
    from resdiff.mnist import data

    mnist = data.load_mnist(data_dir, download=False)
    subset = data.training_subset(20000, 0)
    return _frame(
        subset=subset[:500],
        permutation=data.epoch_permutation(0, 3, 2000, 1),
        features=data.as_features(mnist.train_images[subset[:3]]),
        labels=mnist.train_labels[subset[:50]],
    )


# --- running and comparing ------------------------------------------------------------------
def _load(target):
    import importlib

    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def run(case, data_dir=None):
    """The case's CSV bytes, as :func:`resdiff.files.write_result` writes them."""
    kwargs = dict(case.params)
    if case.mnist:
        kwargs["data_dir"] = data_dir
    out = _load(case.experiment)(**kwargs)
    frame = out if isinstance(out, pd.DataFrame) else out.frame
    return frame.to_csv(index=False, float_format="%.17g").encode()


def record(case, data):
    entry = {
        "numerics": {f: numerics.FAMILIES[f][0] for f in case.families},
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    if case.torch or case.blas:
        frame = pd.read_csv(pd.io.common.BytesIO(data))
        columns = ("value",) if case.blas else ("train_loss", "test_accuracy")
        entry["values"] = {c: frame[c].tolist() for c in columns}
    return entry


def _advice(case):
    lines = []
    for family in case.families:
        deps = numerics.dependents(family)
        lines.append(
            f"  {family} (now {numerics.FAMILIES[family][0]}): recompute "
            f"{', '.join(deps) if deps else 'no committed dataset'}"
        )
    return "\n".join(lines)


def compare(name, case, data, golden):
    """None when ``data`` is what ``golden`` recorded for ``case``, else why not."""
    recorded = golden.get(name)
    current = {f: numerics.FAMILIES[f][0] for f in case.families}
    if recorded is None:
        return f"{name}: no golden record; run python -m tests.test_golden --update"
    if recorded["numerics"] != current:
        return (
            f"{name}: recorded under numerical versions {recorded['numerics']}, now "
            f"{current}: record the new numbers with python -m tests.test_golden "
            "--update (and recompute the datasets of the bumped families)"
        )
    if case.torch:
        frame = pd.read_csv(pd.io.common.BytesIO(data))
        for column, values in recorded["values"].items():
            got = frame[column].to_numpy(float)
            want = np.asarray(values, float)
            if got.shape != want.shape or not np.allclose(got, want, rtol=TORCH_RTOL, atol=0.0):
                worst = (
                    np.max(np.abs(got - want) / np.abs(want))
                    if got.shape == want.shape
                    else float("inf")
                )
                return (
                    f"{name}: {column} differs by up to {worst:.3g} (relative; "
                    f"tolerance {TORCH_RTOL:g}) under the same numerical versions. "
                    "If the change is meant, bump one of these families in "
                    f"resdiff/numerics.py:\n{_advice(case)}"
                )
        return None
    if case.blas:
        got = pd.read_csv(pd.io.common.BytesIO(data))["value"].to_numpy(float)
        want = np.asarray(recorded["values"]["value"], float)
        worst = (
            np.max(np.abs(got - want)) / np.max(np.abs(want))
            if got.shape == want.shape
            else float("inf")
        )
        if not worst <= BLAS_RTOL:  # NaN fails too
            return (
                f"{name}: its values differ by up to {worst:.3g} of the largest (tolerance "
                f"{BLAS_RTOL:g}) under the same numerical versions. If the change is "
                f"meant, bump one of these families in resdiff/numerics.py:\n"
                f"{_advice(case)}\nthen run python -m tests.test_golden --update"
            )
        return None
    if hashlib.sha256(data).hexdigest() != recorded["sha256"]:
        return (
            f"{name}: its numbers changed under the same numerical versions (a case "
            f"of family {case.family}). If the change is meant, bump the family whose code "
            f"you changed in resdiff/numerics.py, one of:\n{_advice(case)}\nthen run "
            "python -m tests.test_golden --update; if it is not meant, it is a bug"
        )
    return None


def _golden():
    return json.loads(GOLDEN.read_text()) if GOLDEN.is_file() else {}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name, request):
    case = CASES[name]
    if case.torch and not HAVE_TORCH:
        pytest.skip("needs PyTorch (the train extra)")
    data_dir = None
    if case.mnist:
        if not HAVE_MNIST:
            pytest.skip("needs MNIST (RESDIFF_DATA_DIR)")
        data_dir = request.getfixturevalue("mnist_dir")
    problem = compare(name, case, run(case, data_dir), _golden())
    assert problem is None, problem


def test_every_family_has_a_golden_case():
    covered = {case.family for case in CASES.values()}
    assert set(numerics.FAMILIES) <= covered, sorted(set(numerics.FAMILIES) - covered)


def test_every_experiment_has_its_families():
    from resdiff.figures import FIGURES

    for spec in FIGURES.values():
        for dataset in spec.datasets.values():
            for params in dataset.params.values():
                assert set(numerics.families(dataset.experiment, params)) <= set(numerics.FAMILIES)


def test_a_perturbed_kernel_fails_its_golden_case(monkeypatch):
    """The check itself can fail: the Gram sampler's case with the bias variance 1% off
    (as a kernel computing with a wrong constant would) does not match its record."""
    name = "resnet-gram-kde"
    case = CASES[name]
    perturbed = Case(case.family, case.experiment, {**case.params, "sigma_b2": 1.01})
    problem = compare(name, perturbed, run(perturbed), _golden())
    assert problem and "bump the family" in problem and "fig2-kde" in problem


def update(names=None):
    """Record every case (or ``names``) anew in tests/golden.json."""
    from tests.conftest import DATA_DIR

    golden = _golden()
    for name in sorted(names or CASES):
        case = CASES[name]
        if case.mnist and not HAVE_MNIST:
            sys.exit(f"{name} needs MNIST: set RESDIFF_DATA_DIR")
        golden[name] = record(case, run(case, DATA_DIR))
        print(f"recorded {name}", file=sys.stderr)
    GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    args = sys.argv[1:]
    if not args or args[0] != "--update":
        sys.exit("usage: python -m tests.test_golden --update [CASE ...]")
    update(args[1:])
