"""The figure registry: figure N -> the experiments it needs, their parameters per
preset, and the function that draws it. This is the one place where the paper's
settings (and the [our reading] choices of FIGURES.md) live.

Presets: ``paper`` (the paper's scale), ``quick`` (default; all eight figures in about
15 minutes on 2 cores), ``smoke`` (all eight in about 3 minutes, for CI).
"""
from dataclasses import dataclass, field

PRESETS = ("paper", "quick", "smoke")


@dataclass(frozen=True)
class Dataset:
    """One experiment run: ``experiment(**params[preset])`` -> a CSV."""
    experiment: str               # "module:function" in resdiff.experiments
    params: dict                  # preset -> keyword parameters (seed included)
    needs_mnist: bool = False     # the CLI passes data_dir=... (not part of the cache key)


@dataclass(frozen=True)
class Figure:
    number: int
    title: str
    plot: str                     # "module:function": (frames, sidecars, preset) -> Figure
    datasets: dict = field(default_factory=dict)  # name -> Dataset

    def params(self, name, preset):
        return dict(self.datasets[name].params[preset])


def _same(**params):
    """The same parameters for every preset."""
    return {p: dict(params) for p in PRESETS}


def _by_preset(common, **per_preset):
    """``common`` parameters updated per preset: ``paper=dict(...), quick=..., smoke=...``."""
    return {p: {**common, **per_preset[p]} for p in PRESETS}


FIGURES = {}


def register(fig):
    FIGURES[fig.number] = fig
    return fig


# --- Figure 2: resnet / sde / analytic draws at z = 0, 1 (Section 6.1) -----------------
register(Figure(
    2, "ResNet, limiting SDE and analytic transition density (tanh)",
    "resdiff.plots.fig2:plot",
    {"kde": Dataset("resdiff.experiments.kde:kde", _by_preset(
        dict(z=[0.0, 1.0], sigma_w2=1.0, sigma_b2=1.0, activation="tanh",
             methods=["resnet", "sde", "analytic"], seed=0),
        paper=dict(depth=500, width=500, draws=10000),
        quick=dict(depth=200, width=200, draws=10000),
        smoke=dict(depth=50, width=50, draws=2000),
    ))},
))


# --- Figure 3: finite NTK vs its doubly infinite limit, z = 1, 2 (Section 6.1) ---------
# quick keeps every size of the paper (the L = D = 500 end is what shows convergence) with
# 40 draws, enough for the +/- 2 sd band; L = D = 500 costs ~0.75 s of CPU per draw.
register(Figure(
    3, "Finite NTK K_W, K_b against L = D and their limits (tanh)",
    "resdiff.plots.fig3:plot",
    {"ntk": Dataset("resdiff.experiments.ntk:ntk_convergence", _by_preset(
        dict(z=[1.0, 2.0], sigma_w2=1.0, sigma_b2=1.0, activation="tanh", seed=0),
        paper=dict(sizes=[10, 20, 50, 100, 200, 500], draws=100),
        quick=dict(sizes=[10, 20, 50, 100, 200, 500], draws=40),
        smoke=dict(sizes=[10, 20, 50, 100], draws=20),
    ))},
))
