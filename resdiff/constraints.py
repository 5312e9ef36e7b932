"""What each experiment accepts: one declarative table per experiment.

A table maps every keyword parameter of an experiment to a constraint (an integer
range, a finite real range, a choice, a list of those) and adds rules that involve
several parameters: orderings, memory and work estimates. :func:`checked` applies an
experiment's table when the experiment is called, whoever calls it (the command line,
the figure registry, a Python user), before any work is done. The command line builds
each option's type from the same table (:func:`resdiff.cli.options.option`), so a rule
is written once.

A violation raises :class:`ParameterError`, which names the *parameter*; the command
line turns parameter names into option names in one place
(:class:`resdiff.cli.options.Command`). This module imports nothing heavy: the CLI
reads it to build ``--help``.
"""

import functools
import inspect
import math
import string
from dataclasses import dataclass

from .errors import UserError

INT64_MAX = 2**63 - 1
# the activations, in the order of their kernel codes (resdiff.activations builds its
# table from this tuple); every one has phi(0) = 0
ACTIVATIONS = ("tanh", "swish", "relu", "gelu", "erf", "sin", "identity")
# Bias variance of a non-ReLU feedforward network at the edge of chaos (the paper fixes
# none; docs/figures.md, "[our reading]"). ReLU's edge of chaos needs sigma_b^2 = 0.
EOC_SIGMA_B2 = 0.05
# The completed ResNets trained on MNIST and their limit (Section 6.3): sigma_w^2 = 1,
# sigma_b = 0.1.
MNIST_SIGMA_W2 = 1.0
MNIST_SIGMA_B2 = 0.01


def default_eoc_sigma_b2(activation):
    """The bias variance of the edge of chaos used when none is given."""
    return 0.0 if activation == "relu" else EOC_SIGMA_B2


class ParameterError(UserError, ValueError):
    """A parameter value an experiment does not accept.

    ``message`` may hold ``{name}`` fields for the parameters it mentions; they are
    filled with the parameter names (``str(exc)``) or, by the CLI, with option names.
    """

    def __init__(self, parameter, message):
        self.parameter = parameter
        self.message = message
        super().__init__(self.render())

    def render(self, name=lambda p: p):
        """``parameter: message``, every name passed through ``name``."""
        return f"{name(self.parameter)}: {self.body(name)}"

    def body(self, name=lambda p: p):
        """The message with every ``{parameter}`` field replaced by ``name(parameter)``."""
        try:
            fields = {n: name(n) for _, n, _, _ in _FORMATTER.parse(self.message) if n}
            text = self.message.format(**fields)
        except (ValueError, KeyError, IndexError):  # braces that are not fields
            text = self.message
        return text


_FORMATTER = string.Formatter()


# --- constraints on one parameter --------------------------------------------------------
@dataclass(frozen=True)
class Integer:
    """An integer in ``[lo, hi]`` (``hi`` defaults to the int64 maximum: every count is
    passed to compiled kernels as int64)."""

    lo: int = None
    hi: int = INT64_MAX

    def check(self, name, value):
        if isinstance(value, bool) or not isinstance(value, int) and not _is_numpy_int(value):
            raise ParameterError(name, f"must be an integer, got {value!r}")
        value = int(value)
        if (self.lo is not None and value < self.lo) or value > self.hi:
            raise ParameterError(name, f"{value} is not {self.describe()}")

    def describe(self):
        if self.lo is None:
            return f"an integer up to {self.hi}"
        return f"an integer from {self.lo} to {self.hi}"


@dataclass(frozen=True)
class Real:
    """A finite real in ``[lo, hi]`` (``(lo, hi]`` when ``lo_open``); None: unbounded."""

    lo: float = None
    hi: float = None
    lo_open: bool = False

    def check(self, name, value):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            and not _is_numpy_real(value)
        ):
            raise ParameterError(name, f"must be a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise ParameterError(name, f"must be finite, got {value!r}")
        low = self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo)
        if low or (self.hi is not None and value > self.hi):
            raise ParameterError(name, f"{value:g} is not {self.describe()}")

    def describe(self):
        if self.lo is None and self.hi is None:
            return "a finite number"
        if self.hi is None:
            return f"a number {'>' if self.lo_open else '>='} {self.lo:g}"
        if self.lo is None:
            return f"a number <= {self.hi:g}"
        return f"a number in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}]"


@dataclass(frozen=True)
class OneOf:
    values: tuple

    def check(self, name, value):
        if value not in self.values:
            raise ParameterError(
                name, f"{value!r} is not one of {', '.join(map(str, self.values))}"
            )

    def describe(self):
        return f"one of {', '.join(map(str, self.values))}"


@dataclass(frozen=True)
class ListOf:
    """A non-empty list (at most ``most`` items) each meeting ``item``; with
    ``distinct``, no item twice (a repeated quantile or method would be computed and
    written twice)."""

    item: object
    least: int = 1
    most: int = None
    distinct: bool = False

    def check(self, name, value):
        if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
            raise ParameterError(name, f"must be a list, got {value!r}")
        if len(value) < self.least or (self.most is not None and len(value) > self.most):
            count = (
                f"exactly {self.least}"
                if self.least == self.most
                else f"at least {self.least}"
                if self.most is None
                else f"{self.least} to {self.most}"
            )
            raise ParameterError(name, f"needs {count} value(s), got {len(value)}")
        for v in value:
            self.item.check(name, v)
        if self.distinct:
            seen = set()
            for v in value:
                if v in seen:
                    raise ParameterError(name, f"{v!r} is given twice; give each once")
                seen.add(v)

    def describe(self):
        return f"a list of {self.item.describe()}s"


@dataclass(frozen=True)
class Optional:
    """None, or a value meeting ``inner`` (None means "the default": see the docstring
    of the experiment)."""

    inner: object

    def check(self, name, value):
        if value is not None:
            self.inner.check(name, value)

    def describe(self):
        return self.inner.describe()


def _is_numpy_int(value):
    return (
        type(value).__module__ == "numpy" and hasattr(value, "dtype") and value.dtype.kind in "iu"
    )


def _is_numpy_real(value):
    return (
        type(value).__module__ == "numpy" and hasattr(value, "dtype") and value.dtype.kind in "iuf"
    )


# --- rules on several parameters ------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    """``test(params)`` must hold; else a :class:`ParameterError` on ``parameter``."""

    parameter: str
    test: object
    message: str

    def check(self, params):
        if not self.test(params):
            raise ParameterError(self.parameter, self.message.format_map(_Keep(params)))


class _Keep(dict):
    """``format_map`` helper: ``{name}`` fields that are not values stay fields."""

    def __missing__(self, key):
        return "{" + key + "}"


@dataclass(frozen=True)
class Memory:
    """The bytes ``estimate(params)`` must fit in the memory available now; a lower
    bound of what the run holds at once, so a refusal is never wrong."""

    parameter: str
    estimate: object
    what: str

    def check(self, params):
        from .sampling.driver import MEMORY_FRACTION, available_memory_bytes

        need = self.estimate(params)
        limit = MEMORY_FRACTION * available_memory_bytes()
        if need > limit:
            raise ParameterError(
                self.parameter,
                f"needs at least {_bytes(need)} of memory "
                f"for {self.what}, more than the {_bytes(limit)} available",
            )


@dataclass(frozen=True)
class Work:
    """``estimate(params)``, a lower bound of the multiply-adds of the run, must fit
    int64: beyond 9.2e18 (centuries of CPU time) a run is refused, not started."""

    parameter: str
    estimate: object
    what: str

    def check(self, params):
        need = self.estimate(params)
        if need > INT64_MAX:
            raise ParameterError(
                self.parameter,
                f"{self.what} needs more than {need:.1e} "
                f"multiply-adds, more than int64 counts ({INT64_MAX:.1e}); "
                "reduce the sizes or draws",
            )


def _bytes(n):
    for unit, size in (("EiB", 2**60), ("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n / 2**20:.3g} MiB"


@dataclass(frozen=True)
class Constraints:
    params: dict  # parameter name -> constraint
    rules: tuple = ()  # checked in order, after every parameter is valid
    # "module:function" of the experiment: the command line reads its options' defaults
    # from that function's signature (resdiff.cli.options.experiment_defaults)
    experiment: str = None

    def check(self, params):
        for name, constraint in self.params.items():
            if name in params:
                constraint.check(name, params[name])
        for rule in self.rules:
            rule.check(params)


def checked(table):
    """Decorate an experiment so that its keyword parameters (defaults included) are
    checked against ``table`` before it runs."""

    def decorate(func):
        signature = inspect.signature(func)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            table.check(bound.arguments)
            return func(*args, **kwargs)

        wrapper.constraints = table
        return wrapper

    return decorate


# --- the tables -----------------------------------------------------------------------
POSITIVE = Integer(1)
SEED = Integer(0)
DRAWS = Integer(2)
VARIANCE = Real(0.0)
FINITE = Real()
KDE_METHODS = ("resnet", "sde", "analytic")
MODELS = ("resnet", "feedforward")
ESTIMATORS = ("auto", "empirical", "conditional")
MNIST_TRAIN_IMAGES, MNIST_TEST_IMAGES = 60000, 10000
ARCHS = ("fc", "conv")
OPTIMIZERS = ("gd", "sgd", "adam-full", "adam")
FULL_BATCH = ("gd", "adam-full")
# fp32: float32 throughout (the reference); tf32: CUDA's TF32 matmuls and convolutions
# (float32 on a CPU); bf16: matmul/convolution operands rounded to bfloat16, float32
# accumulation, residual stream, loss and weights (resdiff.mnist.models)
PRECISIONS = ("fp32", "bf16", "tf32")
DEVICES = ("auto", "cpu", "cuda")
# a simulation holds at least four N x D state arrays per thread (state, pre-activation,
# activation, increment)
STATE_ARRAYS = 4


def _threads():
    import numba

    return numba.get_num_threads()


KDE = Constraints(
    experiment="resdiff.experiments.kde:kde",
    params=dict(
        depth=POSITIVE,
        width=POSITIVE,
        draws=DRAWS,
        z=ListOf(FINITE),
        sigma_w2=VARIANCE,
        sigma_b2=VARIANCE,
        activation=OneOf(ACTIVATIONS),
        methods=ListOf(OneOf(KDE_METHODS), distinct=True),
        seed=SEED,
    ),
    rules=(
        # outputs (float64), ~6 copies per method through concat and the DataFrame
        Memory(
            "draws", lambda p: 8 * 6 * p["draws"] * len(p["z"]) * len(p["methods"]), "the draws"
        ),
        Memory(
            "width",
            lambda p: 8 * STATE_ARRAYS * len(p["z"]) * p["width"] * _threads(),
            "the network states",
        ),
        Work("depth", lambda p: p["draws"] * p["depth"] * p["width"] * len(p["z"]), "kde"),
    ),
)


def _function_space_rules(out_param, n_out, n_out_bytes, input_dim):
    """Rules shared by ``samples`` and ``correlation``; ``n_out(params)`` is the number of
    outputs (set by parameter ``out_param``), ``n_out_bytes(params)`` what they need at
    least."""
    return (
        Rule(
            "z_min",
            lambda p: p["z_min"] < p["z_max"],
            "{z_min:g} must be smaller than {{z_max}} ({z_max:g})",
        ),
        Rule(
            "z_min",
            lambda p: math.isfinite(p["z_max"] - p["z_min"]),
            "the inputs [{z_min:g}, {z_max:g}] ({{z_min}}, {{z_max}}) span more than a "
            "float holds (z_max - z_min overflows); give a narrower range",
        ),
        Rule(
            "nodes", lambda p: p["nodes"] != 1, "use 0 (every input) or at least 2 Chebyshev nodes"
        ),
        Rule(
            "estimator",
            lambda p: p["estimator"] != "conditional" or p["model"] == "feedforward",
            "conditional needs {{model}} feedforward (the ResNet output is not "
            "conditionally Gaussian)",
        ),
        Rule(
            "estimator",
            lambda p: p["estimator"] != "conditional" or not p["nodes"],
            "conditional cannot be combined with Chebyshev interpolation ({{nodes}} K); "
            "use {{nodes}} 0",
        ),
        Memory(out_param, n_out_bytes, "the outputs"),
        # explicit Chebyshev nodes: their values per draw and the map to the outputs
        Memory(
            "nodes",
            lambda p: 8 * (p["nodes"] or 0) ** input_dim(p) * (n_out(p) + p["draws"]),
            "the Chebyshev nodes",
        ),
        # two simulated points per draw at least, and the per-thread states
        Memory("draws", lambda p: 8 * 2 * p["draws"], "the draws"),
        Memory(
            "width", lambda p: 8 * STATE_ARRAYS * 2 * p["width"] * _threads(), "the network states"
        ),
        Work(
            "depth",
            lambda p: p["draws"] * p["depth"] * p["width"] * min(n_out(p), p["width"] + 1),
            "this run",
        ),
    )


_FUNCTION_SPACE = dict(
    model=OneOf(MODELS),
    activation=OneOf(ACTIVATIONS),
    depth=POSITIVE,
    width=POSITIVE,
    z_min=FINITE,
    z_max=FINITE,
    draws=DRAWS,
    sigma_w2=Optional(VARIANCE),
    sigma_b2=Optional(VARIANCE),
    nodes=Optional(Integer(0)),
    estimator=OneOf(ESTIMATORS),
    seed=SEED,
)


def _samples_outputs(p):
    return p["inputs"] ** p["input_dim"]


SAMPLES = Constraints(
    experiment="resdiff.experiments.samples:samples",
    params=dict(
        _FUNCTION_SPACE,
        inputs=Integer(2),
        input_dim=OneOf((1, 2)),
        keep_draws=Integer(0),
        quantiles=ListOf(Real(0.0, 1.0), least=0, distinct=True),
    ),
    # per output: its coordinates and, in the CSV, one row of 5 values per kept draw
    # and quantile level
    rules=_function_space_rules(
        "inputs",
        _samples_outputs,
        lambda p: (
            8
            * _samples_outputs(p)
            * (p["input_dim"] + 5 * (min(p["keep_draws"], p["draws"]) + len(p["quantiles"])))
        ),
        lambda p: p["input_dim"],
    ),
)

CORRELATION = Constraints(
    experiment="resdiff.experiments.samples:correlation",
    params=dict(_FUNCTION_SPACE, grid=Integer(2)),
    # the GRID x GRID covariance, correlation and CSV columns (z1, z2, rho)
    rules=_function_space_rules(
        "grid", lambda p: p["grid"], lambda p: 8 * 5 * p["grid"] ** 2, lambda p: 1
    ),
)

NTK = Constraints(
    experiment="resdiff.experiments.ntk:ntk_convergence",
    params=dict(
        sizes=ListOf(POSITIVE),
        draws=DRAWS,
        z=ListOf(FINITE, least=2, most=2),
        sigma_w2=VARIANCE,
        sigma_b2=VARIANCE,
        activation=OneOf(("tanh", "swish")),
        seed=SEED,
    ),
    rules=(
        Memory(
            "sizes",
            lambda p: _ntk_memory(max(p["sizes"])) + 64 * p["draws"] * len(p["sizes"]),
            "ntk-convergence",
        ),
        Work("sizes", lambda p: p["draws"] * sum(s**3 for s in p["sizes"]), "ntk-convergence"),
    ),
)


def _ntk_memory(size):
    from .ntk import memory_bytes

    return memory_bytes(size, size, _threads(), _threads())  # a chunk: a draw per thread


MNIST_KERNEL = Constraints(
    experiment="resdiff.experiments.mnist_kernel:mnist_kernel",
    params=dict(
        n_train=Integer(1, MNIST_TRAIN_IMAGES),
        noise=Optional(Real(0.0, lo_open=True)),
        sigma_w2=VARIANCE,
        sigma_b2=VARIANCE,
        kernel=OneOf(("ntk", "nngp")),
        seed=SEED,
    ),
)

MNIST_KERNEL_DYNAMICS = Constraints(
    experiment="resdiff.experiments.mnist_kernel:mnist_kernel_dynamics",
    params=dict(
        n_train=Integer(1, MNIST_TRAIN_IMAGES),
        dynamics=OneOf(("gd", "sgd")),
        init=OneOf(("random", "zero")),
        epochs=POSITIVE,
        lr=Optional(Real(0.0, lo_open=True)),
        batch_size=Optional(POSITIVE),
        draws=POSITIVE,
        sigma_w2=VARIANCE,
        sigma_b2=VARIANCE,
        kernel=OneOf(("ntk", "nngp")),
        seed=SEED,
    ),
    rules=(
        Rule(
            "batch_size",
            lambda p: (p["batch_size"] is not None) == (p["dynamics"] == "sgd"),
            "is the mini-batch of sgd: required with sgd, not accepted with gd (full batch)",
        ),
    ),
)


def _network_parameters(p, size):
    """Trainable parameters of the completed model at ``D = L = size``: the L residual
    layers (D x D, or 3 x 3 x D x D for conv, and their biases), input and output maps."""
    per_layer = (9 if p["arch"] == "conv" else 1) * size * size + size
    return size * per_layer + 784 * size + 10 * size


MNIST_TRAIN = Constraints(
    experiment="resdiff.experiments.mnist_train:mnist_train",
    params=dict(
        arch=OneOf(ARCHS),
        optimizer=OneOf(OPTIMIZERS),
        size=POSITIVE,
        batch_size=POSITIVE,
        epochs=POSITIVE,
        lr=Optional(Real(0.0, lo_open=True)),
        n_train=Integer(1, MNIST_TRAIN_IMAGES),
        n_test=Optional(Integer(1, MNIST_TEST_IMAGES)),
        sigma_w2=VARIANCE,
        sigma_b2=VARIANCE,
        seed=SEED,
        device=OneOf(DEVICES),
        checkpoint_every=Real(0.0),
        precision=OneOf(PRECISIONS),
    ),
    rules=(
        # float32 parameters, gradients and (Adam) two moments; activations not counted
        Memory("size", lambda p: 4 * 4 * _network_parameters(p, p["size"]), "training"),
        Work(
            "size",
            lambda p: p["epochs"] * p["n_train"] * _network_parameters(p, p["size"]),
            "training",
        ),
    ),
)


EOC = Constraints(
    params=dict(activation=OneOf(ACTIVATIONS), sigma_b2=Optional(VARIANCE), seed=SEED),
    experiment="resdiff.experiments.eoc:eoc",
)


# --- Section 4 and Proposition 5.1 (beyond the paper) ----------------------------------
JACOBIAN_METHODS = ("resnet", "sde", "limit", "network")
EXPLOSION_METHODS = ("resnet", "sde", "limit")
# activations without phi''(0): no eq. (27) drift, no Proposition 5.1 (resdiff.activations)
NOT_TWICE_DIFFERENTIABLE = ("relu",)


def _jacobian_methods(p):
    if p["methods"] is not None:
        return p["methods"]
    return ["network"] if p["model"] == "feedforward" else ["resnet", "sde", "limit"]


def _jacobian_memory(p):
    from .sampling.jacobian import memory_bytes

    return memory_bytes(p["width"], _threads())


JACOBIAN = Constraints(
    params=dict(
        model=OneOf(MODELS),
        activation=OneOf(ACTIVATIONS),
        depth=POSITIVE,
        width=POSITIVE,
        draws=DRAWS,
        z=FINITE,
        sigma_w2=Optional(VARIANCE),
        sigma_b2=Optional(VARIANCE),
        methods=Optional(ListOf(OneOf(JACOBIAN_METHODS))),
        seed=SEED,
    ),
    experiment="resdiff.experiments.jacobian:jacobian",
    rules=(
        Rule(
            "methods",
            lambda p: (p["model"] == "feedforward") == ("network" in _jacobian_methods(p)),
            "network is the method of {{model}} feedforward, and its only one; resnet, "
            "sde and limit are those of {{model}} resnet",
        ),
        Rule(
            "activation",
            lambda p: (
                p["activation"] not in NOT_TWICE_DIFFERENTIABLE
                or not {"sde", "limit"} & set(_jacobian_methods(p))
            ),
            "{activation} has no phi''(0): eq. (27) and its limits need one; use "
            "{{methods}} resnet",
        ),
        Memory("width", _jacobian_memory, "the Jacobians (D x D per thread)"),
        Work(
            "depth",
            lambda p: 2 * p["draws"] * p["depth"] * p["width"] ** 3 * len(_jacobian_methods(p)),
            "jacobian",
        ),
    ),
)


EXPLOSION = Constraints(
    params=dict(
        activation=OneOf(ACTIVATIONS),
        z=FINITE,
        sigma_w2=VARIANCE,
        sigma_b2=VARIANCE,
        horizon=Real(0.0, lo_open=True),
        threshold=Real(0.0, lo_open=True),
        depth=POSITIVE,
        width=POSITIVE,
        draws=DRAWS,
        methods=ListOf(OneOf(EXPLOSION_METHODS)),
        seed=SEED,
    ),
    experiment="resdiff.experiments.explosion:explosion",
    rules=(
        Rule(
            "activation",
            lambda p: p["activation"] not in NOT_TWICE_DIFFERENTIABLE,
            "{activation} has no phi''(0), which decides explosion (Proposition 5.1)",
        ),
        Rule(
            "threshold",
            lambda p: p["threshold"] > p["z"] ** 2,
            "{threshold:g} must exceed q_0 = z^2 = {z:g}^2 (the passage would be at t = 0)",
        ),
        Memory("draws", lambda p: 8 * 4 * p["draws"] * len(p["methods"]), "the times"),
        Memory("width", lambda p: 8 * 2 * p["width"] * _threads(), "the network states"),
        Work(
            "depth", lambda p: p["draws"] * p["depth"] * p["width"] * len(p["methods"]), "explosion"
        ),
    ),
)
