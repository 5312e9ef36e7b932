"""resdiff: regenerate the figures of "Doubly infinite residual networks: a diffusion
process approach" (Peluchetti & Favaro).

The Python API is one function per subcommand, each returning a
:class:`~resdiff.experiments.Result` whose ``.frame`` is the tidy DataFrame the command
line writes as CSV (docs/python.md)::

    import resdiff
    r = resdiff.kde(depth=10, width=10, draws=50)
    r.frame.groupby(["method", "z"])["value"].mean()

Importing the package has no side effects and is fast: the functions are imported on
first use, Numba is configured by :mod:`resdiff.jit` when the first kernel module is
imported, and matplotlib's backend is left as the user has it.
"""

__version__ = "0.1.0"

# public name -> "module:attribute", imported on first use
API = {
    "samples": "resdiff.experiments.samples:samples",
    "correlation": "resdiff.experiments.samples:correlation",
    "kde": "resdiff.experiments.kde:kde",
    "ntk_convergence": "resdiff.experiments.ntk:ntk_convergence",
    "eoc": "resdiff.experiments.eoc:eoc",
    "mnist_kernel": "resdiff.experiments.mnist_kernel:mnist_kernel",
    "mnist_kernel_dynamics": "resdiff.experiments.mnist_kernel:mnist_kernel_dynamics",
    "mnist_train": "resdiff.experiments.mnist_train:mnist_train",
    "jacobian": "resdiff.experiments.jacobian:jacobian",
    "explosion": "resdiff.experiments.explosion:explosion",
    "figure_data": "resdiff.pipeline:figure_data",
    "Result": "resdiff.experiments:Result",
    "ParameterError": "resdiff.constraints:ParameterError",
    "UserError": "resdiff.errors:UserError",
}

__all__ = ["__version__", *API]


def __getattr__(name):
    target = API.get(name)
    if target is None:
        raise AttributeError(f"module 'resdiff' has no attribute {name!r}")
    import importlib

    module, attr = target.split(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(API))
