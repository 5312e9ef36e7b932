"""Numerical versions: what a dataset's numbers are a function of, besides its parameters.

A cached dataset is keyed on its parameters (seed included) and on the numerical
versions of the kernel families that compute it (:func:`versions`), not on the text of
the code: a refactor, a rename, a new module, a new activation or experiment, a
docstring or a ``--help`` text changes no key, so committed results (hours of training)
survive them. The digest of the code (:mod:`resdiff.sources`) is still recorded in every
sidecar, as provenance.

A change that changes a number must bump its family's version here. The golden tests
(``tests/test_golden.py``) make that impossible to miss: each family has a small fixed
run whose output is recorded in ``tests/golden.json``; a failing one names the family
to bump and the committed datasets to recompute (:func:`dependents`). docs/numerics.md
says when to bump and how to recompute and commit.

Families are coarse on purpose: one per kernel module or group of modules that the
golden tests can check on their own.
"""

# family -> (version, what it covers). Bump a version when its numbers change, on
# purpose or not; never reuse an old number.
FAMILIES = {
    # rng 2: Philox4x32-10 and Box-Muller (was xoshiro256** and a ziggurat, now
    # resdiff.rng_xoshiro, the training runs' own)
    # rng 3: Box-Muller in float32, 32 bits for the radius and 24 for the angle of a
    # pair (was float64, 40 and 24 bits)
    "rng": (
        3,
        "resdiff.rng, resdiff.fixedmath (log, sin, cos in float32): the counter-based "
        "streams and normals of the Monte Carlo experiments",
    ),
    # activations 2: swish through resdiff.fixedmath's exp (was libm's)
    "activations": (
        2,
        "resdiff.activations, resdiff.fixedmath (exp): phi, phi', phi'' as "
        "the kernels evaluate them",
    ),
    "linalg": (1, "resdiff.sampling.linalg: fixed-order products, pivoted Cholesky"),
    "resnet": (
        1,
        "resdiff.sampling.resnet: the ResNet (eq. 26) and its Euler scheme "
        "(eq. 6), Gram sampler and explicit weights",
    ),
    "feedforward": (1, "resdiff.sampling.feedforward: the feedforward network (Fig. 1)"),
    # plan 2: Chebyshev nodes for any number of inputs (the same network on any grid);
    # automatic K raised until the a posteriori estimate meets 1e-6
    "plan": (
        2,
        "resdiff.sampling.plan, chebyshev, draws: where draws are simulated, "
        "node choice, interpolation, chunking into streams",
    ),
    "statistics": (1, "resdiff.statistics: quantiles, the conditional estimator, correlations"),
    "limits": (1, "resdiff.limits: the ODEs of Proposition 5.1, eq. 34, the NTK limits"),
    "eoc": (1, "resdiff.edge_of_chaos: the edge of chaos (Gauss-Hermite recursion)"),
    "ntk": (1, "resdiff.ntk: the finite NTK (eq. 30)"),
    "jacobian": (
        1,
        "resdiff.sampling.jacobian: the Jacobians of eq. 26, 27, 28 and of the "
        "feedforward network, Jacobi singular values",
    ),
    "explosion": (
        1,
        "resdiff.sampling.explosion: first passage of q_t above a threshold (Gram sampler, N = 1)",
    ),
    "mnist-data": (1, "resdiff.mnist.data: subsets, features, epoch permutations"),
    "mnist-kernel": (1, "resdiff.mnist.kernel: the NTK of the limit, kernel regression"),
    "mnist-dynamics": (1, "resdiff.mnist.dynamics: the limit trained by GD / SGD"),
    "train-fc": (
        1,
        "resdiff.mnist.models and train: the FC ResNet, its initialisation "
        "stream (resdiff.rng_xoshiro) and its training (PyTorch)",
    ),
    # train-conv 2: the conv residual stack (models.ConvResidualStack) on CPU by
    # default (was PyTorch's per-layer graph; float32 sums in another order)
    "train-conv": (
        2,
        "resdiff.mnist.models and train: the conv ResNet, its "
        "initialisation stream (resdiff.rng_xoshiro) and its training "
        "(PyTorch)",
    ),
}

_MONTE_CARLO = ("rng", "activations", "linalg")


def _samples(params):
    model = params.get("model")
    kernel = ("resnet",) if model == "resnet" else ("feedforward", "eoc")
    return _MONTE_CARLO + ("plan", "statistics") + kernel


# experiment ("module:function", as the figure registry names it) -> params -> families
EXPERIMENTS = {
    "resdiff.experiments.samples:samples": _samples,
    "resdiff.experiments.samples:correlation": _samples,
    "resdiff.experiments.kde:kde": lambda p: _MONTE_CARLO + ("resnet", "limits"),
    "resdiff.experiments.ntk:ntk_convergence": lambda p: ("rng", "activations", "ntk", "limits"),
    "resdiff.experiments.eoc:eoc": lambda p: ("activations", "eoc"),
    "resdiff.experiments.explosion:explosion": lambda p: _MONTE_CARLO + ("explosion", "limits"),
    "resdiff.experiments.jacobian:jacobian": lambda p: (
        _MONTE_CARLO
        + ("jacobian", "limits")
        + (("eoc",) if p.get("model") == "feedforward" else ())
    ),
    "resdiff.experiments.mnist_kernel:mnist_kernel": lambda p: (
        "mnist-data",
        "mnist-kernel",
        "limits",
    ),
    "resdiff.experiments.mnist_kernel:mnist_kernel_dynamics": lambda p: (
        "rng",
        "mnist-data",
        "mnist-kernel",
        "limits",
        "mnist-dynamics",
    ),
    "resdiff.experiments.mnist_train:mnist_train": lambda p: (
        "mnist-data",
        "train-conv" if p.get("arch") == "conv" else "train-fc",
    ),
}


def experiment_name(target):
    """``"module:function"`` of an experiment given as that string or as the function
    (a :func:`resdiff.constraints.checked` wrapper keeps the name)."""
    if callable(target):
        return f"{target.__module__}:{target.__name__}"
    return str(target)


def families(experiment, params):
    """The kernel families whose numbers experiment ``experiment`` (``"module:function"``
    or the function) computes ``params`` with, sorted."""
    name = experiment_name(experiment)
    if name not in EXPERIMENTS:
        raise KeyError(
            f"{name} has no entry in resdiff.numerics.EXPERIMENTS: say which "
            "kernel families compute it"
        )
    return sorted(set(EXPERIMENTS[name](params)))


def versions(experiment, params):
    """``{family: version}``: the numerical version of a dataset, part of its cache key
    and recorded in its sidecar (``numerics``)."""
    return {family: FAMILIES[family][0] for family in families(experiment, params)}


def dependents(family, figures=None, preset="paper"):
    """``["figN-NAME", ...]``: the datasets of the figure registry at ``preset`` whose
    numbers family ``family`` computes (what to recompute after bumping it)."""
    from .figures import stem

    if figures is None:
        from .figures import FIGURES as figures
    found = []
    for number, spec in sorted(figures.items(), key=lambda item: str(item[0])):
        for name in spec.names(preset):
            dataset = spec.datasets[name]
            if family in families(dataset.experiment, dataset.params[preset]):
                found.append(f"{stem(number)}-{name}")
    return found
