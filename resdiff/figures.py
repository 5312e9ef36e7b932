"""The figure registry: figure N -> the experiments it needs, their parameters per
preset, and the function that draws it. This is the one place where the paper's
settings (and the [our reading] choices of docs/figures.md) live.

The paper's figures are keyed by their numbers 1-8 (files ``figN.*``); the figures
beyond the paper by their names (``jacobian``, ``explosion``; files ``NAME.*``).

Presets: ``paper`` (the paper's scale), ``quick`` (default; fewer draws or inputs, and
smaller networks, images and epochs for Figs. 2, 6 and 7), ``smoke`` (small sizes, for
CI). Measured times: BENCHMARKS.md.
"""

from dataclasses import dataclass, field

from .constraints import MNIST_SIGMA_B2, MNIST_SIGMA_W2

PRESETS = ("paper", "quick", "smoke")


@dataclass(frozen=True)
class Dataset:
    """One experiment run: ``experiment(**params[preset])`` -> a CSV.

    A dataset exists in the presets that ``params`` names. Datasets with the same
    ``group`` are one curve of the figure, split so each can run on its own worker: the
    pipeline hands the plot one frame per group, their rows concatenated in registry
    order. A ``resumable`` experiment takes ``checkpoint=PATH, resume=True,
    checkpoint_every=SECONDS``; the pipeline keeps PATH beside the CSV. One that
    ``shares_draws`` takes ``draw_store=`` (:class:`resdiff.sampling.store.DrawStore`):
    the datasets computed in one process share the simulations they have in common.
    """

    experiment: str  # "module:function" in resdiff.experiments
    params: dict  # preset -> keyword parameters (seed included)
    needs_mnist: bool = False  # the CLI passes data_dir=... (not part of the cache key)
    group: str = None  # the frame the plot receives (default: the dataset's name)
    resumable: bool = False  # takes checkpoint=... (not part of the cache key)
    takes_precision: bool = False  # `fig --precision` applies (the training runs)
    shares_draws: bool = False  # takes draw_store=... (not part of the cache key)


def stem(key):
    """The file stem of figure ``key``: ``figN`` for the paper's, the name otherwise."""
    return f"fig{key}" if isinstance(key, int) else str(key)


def parse_key(text):
    """A figure key from the command line: ``"3"`` -> 3, ``"jacobian"`` -> "jacobian";
    KeyError when there is no such figure."""
    text = str(text).strip().lower()
    key = int(text) if text.isdigit() else text
    if key not in FIGURES:
        raise KeyError(key)
    return key


@dataclass(frozen=True)
class Figure:
    number: object  # int (the paper's figures) or str (beyond the paper)
    title: str
    plot: str  # "module:function": (frames, sidecars, preset) -> Figure
    datasets: dict = field(default_factory=dict)  # name -> Dataset

    def names(self, preset, max_size=None, exclude=()):
        """The datasets of this figure at ``preset``, in registry order; with
        ``max_size``, the training runs of networks larger than D = L = max_size are left
        out (datasets without a size, such as the kernel line, stay), and so are the
        names in ``exclude``."""
        return [
            name
            for name, d in self.datasets.items()
            if preset in d.params
            and (max_size is None or d.params[preset].get("size", 0) <= max_size)
            and name not in exclude
        ]

    def sizes(self, preset, max_size=None):
        """The sizes D = L of the training runs at ``preset`` (up to ``max_size``),
        ascending."""
        return sorted(
            {
                self.datasets[n].params[preset]["size"]
                for n in self.names(preset, max_size)
                if "size" in self.datasets[n].params[preset]
            }
        )

    def left_out(self, preset, max_size):
        """The sizes D = L of the training runs at ``preset`` that ``max_size`` leaves
        out, ascending."""
        return sorted(set(self.sizes(preset)) - set(self.sizes(preset, max_size)))

    def groups(self, preset, max_size=None, exclude=()):
        """``{frame name: [dataset names]}`` at ``preset`` (as :meth:`names` selects
        them): what the plot receives."""
        groups = {}
        for name in self.names(preset, max_size, exclude):
            groups.setdefault(self.datasets[name].group or name, []).append(name)
        return groups

    def params(self, name, preset, seed=None, precision=None):
        """The keyword parameters of dataset ``name``; ``seed`` replaces the registry's,
        and a ``precision`` other than fp32 is added to those of the training runs."""
        params = dict(self.datasets[name].params[preset])
        if seed is not None:
            params["seed"] = int(seed)
        if precision not in (None, "fp32") and self.datasets[name].takes_precision:
            params["precision"] = precision
        return params


def _by_preset(common, **per_preset):
    """``common`` parameters updated per preset: ``paper=dict(...), quick=..., smoke=...``."""
    return {p: {**common, **per_preset[p]} for p in PRESETS}


FIGURES = {}


def register(fig):
    FIGURES[fig.number] = fig
    return fig


# --- Figures 1, 4, 5, 8: function space (Sections 1 and 6.2, Appendix B) ---------------
# Feedforward sigmas None = the edge of chaos (relu 2, 0; tanh sigma_b^2 = 0.05 and the
# solved sigma_w^2 ~ 1.7610), resolved by the experiment and recorded in its meta.
# Feedforward quantiles and correlations use the conditional estimator (the output is
# Gaussian given the last hidden layer): at 500 x 500 its standard error with 64 draws is
# about 5x smaller than that of the empirical quantiles of 10,000 draws, while a draw at
# 400 inputs costs ~4.6 s (the factor's rank is ~100), so 10,000 would take ~6 h here.
# The ResNet panels keep the paper's 10,000 draws. Datasets that simulate the same model
# at the same points with the same draws and seed share one simulation in a process
# through the pipeline's DrawStore (Fig. 5's L = D = 500 ResNets and ReLU network are
# Fig. 4's and Fig. 1's).
def _function_space(kind, model, activation, per_preset, **common):
    experiment = f"resdiff.experiments.samples:{kind}"
    base = dict(
        model=model,
        activation=activation,
        z_min=-2.0,
        z_max=2.0,
        sigma_w2=None,
        sigma_b2=None,
        nodes=None,
        estimator="auto",
        seed=0,
        **common,
    )
    if model == "resnet":
        base.update(sigma_w2=1.0, sigma_b2=1.0)
    if kind == "samples":
        base.setdefault("input_dim", 1)
        base.setdefault("keep_draws", 5)
        base.setdefault("quantiles", [0.05, 0.5, 0.95])
    return Dataset(experiment, _by_preset(base, **per_preset), shares_draws=True)


_FIG1 = {  # feedforward, 400 inputs at the paper's scale
    "tanh": dict(
        paper=dict(depth=500, width=500, inputs=400, draws=64),
        quick=dict(depth=500, width=500, inputs=200, draws=16),
        smoke=dict(depth=50, width=50, inputs=100, draws=16),
    ),
    "relu": dict(
        paper=dict(depth=500, width=500, inputs=400, draws=10000),
        quick=dict(depth=500, width=500, inputs=400, draws=2000),
        smoke=dict(depth=50, width=50, inputs=100, draws=500),
    ),
}
register(
    Figure(
        1,
        "Function samples of deep feedforward networks at the edge of chaos",
        "resdiff.plots.fig1:plot",
        {act: _function_space("samples", "feedforward", act, _FIG1[act]) for act in _FIG1},
    )
)


# --- Figure 2: resnet / sde / analytic draws at z = 0, 1 (Section 6.1) -----------------
register(
    Figure(
        2,
        "ResNet, limiting SDE and analytic transition density (tanh)",
        "resdiff.plots.fig2:plot",
        {
            "kde": Dataset(
                "resdiff.experiments.kde:kde",
                _by_preset(
                    dict(
                        z=[0.0, 1.0],
                        sigma_w2=1.0,
                        sigma_b2=1.0,
                        activation="tanh",
                        methods=["resnet", "sde", "analytic"],
                        seed=0,
                    ),
                    paper=dict(depth=500, width=500, draws=10000),
                    quick=dict(depth=200, width=200, draws=10000),
                    smoke=dict(depth=50, width=50, draws=2000),
                ),
            )
        },
    )
)


# --- Figure 3: finite NTK vs its doubly infinite limit, z = 1, 2 (Section 6.1) ---------
# quick keeps every size of the paper (the L = D = 500 end is what shows convergence) with
# 40 draws, enough for the +/- 2 sd band; L = D = 500 costs ~0.75 s of CPU per draw.
register(
    Figure(
        3,
        "Finite NTK K_W, K_b against L = D and their limits (tanh)",
        "resdiff.plots.fig3:plot",
        {
            "ntk": Dataset(
                "resdiff.experiments.ntk:ntk_convergence",
                _by_preset(
                    dict(z=[1.0, 2.0], sigma_w2=1.0, sigma_b2=1.0, activation="tanh", seed=0),
                    paper=dict(sizes=[10, 20, 50, 100, 200, 500], draws=100),
                    quick=dict(sizes=[10, 20, 50, 100, 200, 500], draws=40),
                    smoke=dict(sizes=[10, 20, 50, 100], draws=20),
                ),
            )
        },
    )
)


_FIG4_SIZES = {
    "paper": [(500, 10), (500, 100), (500, 500)],
    "quick": [(500, 10), (500, 100), (500, 500)],
    "smoke": [(50, 10), (50, 20), (50, 50)],
}
_FIG4_SCALE = {
    "paper": dict(inputs=400, draws=10000),
    "quick": dict(inputs=400, draws=1000),
    "smoke": dict(inputs=100, draws=200),
}


def _fig4_dataset(act, i):
    per = {
        p: dict(depth=_FIG4_SIZES[p][i][0], width=_FIG4_SIZES[p][i][1], **_FIG4_SCALE[p])
        for p in PRESETS
    }
    return _function_space("samples", "resnet", act, per)


register(
    Figure(
        4,
        "Function samples of ResNets (tanh top, swish bottom)",
        "resdiff.plots.fig4:plot",
        {f"{act}-{i + 1}": _fig4_dataset(act, i) for act in ("tanh", "swish") for i in range(3)},
    )
)

_FIG5 = {
    ("resnet", "tanh"): dict(
        paper=dict(depth=500, width=500, draws=10000),
        quick=dict(depth=500, width=500, draws=1000),
        smoke=dict(depth=50, width=50, draws=200),
    ),
    ("feedforward", "tanh"): dict(
        paper=dict(depth=500, width=500, draws=100),
        quick=dict(depth=500, width=500, draws=16),
        smoke=dict(depth=50, width=50, draws=16),
    ),
    ("feedforward", "relu"): dict(
        paper=dict(depth=500, width=500, draws=10000),
        quick=dict(depth=500, width=500, draws=2000),
        smoke=dict(depth=50, width=50, draws=500),
    ),
}
_FIG5[("resnet", "swish")] = _FIG5[("resnet", "tanh")]
_FIG5_GRID = {"paper": 80, "quick": 80, "smoke": 20}
register(
    Figure(
        5,
        "Output correlation heatmaps: ResNets (top) and feedforward networks (bottom)",
        "resdiff.plots.fig5:plot",
        {
            f"{model}-{act}": _function_space(
                "correlation",
                model,
                act,
                {p: dict(grid=_FIG5_GRID[p], **_FIG5[(model, act)][p]) for p in PRESETS},
            )
            for model, act in (
                ("resnet", "tanh"),
                ("resnet", "swish"),
                ("feedforward", "tanh"),
                ("feedforward", "relu"),
            )
        },
    )
)


# --- Figures 6-7: MNIST training of the completed ResNets (Sections 6.3-6.4) ------------
# One dataset per training run, named OPTIMIZER-SIZE (D = L = SIZE), grouped by optimizer
# into the curve the plot draws; each run is a unit of work of its own (a worker, a Slurm
# job) and resumes from its per-epoch checkpoint. Learning rates: the tuned defaults
# (docs/lr_sweep.md), written out so the cache key changes when they do. quick and
# smoke shrink sizes, images and (conv) epochs to fit a 2-core CPU; captions say so.
def _mnist_training(arch, optimizer, scale):
    """``{"OPTIMIZER-SIZE": Dataset}``, each in the presets whose ``sizes`` include SIZE."""
    from .experiments.mnist_train import TUNED_LR

    common = dict(
        arch=arch,
        optimizer=optimizer,
        lr=TUNED_LR[(arch, optimizer)],
        batch_size=200,
        seed=0,
        device="auto",
        sigma_w2=MNIST_SIGMA_W2,
        sigma_b2=MNIST_SIGMA_B2,
    )
    sizes = sorted({s for p in PRESETS for s in scale[p]["sizes"]})
    runs = {}
    for size in sizes:
        per_preset = {}
        for p in PRESETS:
            if size in scale[p]["sizes"]:
                run = {k: v for k, v in scale[p].items() if k != "sizes"}
                per_preset[p] = {**common, "size": size, **run}
        runs[f"{optimizer}-{size}"] = Dataset(
            "resdiff.experiments.mnist_train:mnist_train",
            per_preset,
            needs_mnist=True,
            group=optimizer,
            resumable=True,
            takes_precision=True,
        )
    return runs


_FC_SCALE = dict(
    paper=dict(sizes=[10, 20, 50, 100, 200, 500], epochs=120, n_train=20000, n_test=None),
    quick=dict(sizes=[4, 8, 16, 32], epochs=120, n_train=2000, n_test=2000),
    smoke=dict(sizes=[4, 8], epochs=5, n_train=500, n_test=1000),
)
_CONV_SCALE = dict(
    paper=dict(sizes=[10, 25, 50, 100, 150], epochs=120, n_train=20000, n_test=None),
    quick=dict(sizes=[2, 4, 8], epochs=20, n_train=2000, n_test=1000),
    smoke=dict(sizes=[2, 4], epochs=1, n_train=200, n_test=200),
)


# The limit trained like the networks (theory lines of the left panel): GD and SGD at
# the networks' rate, epochs, images and batches; 5 GP prior draws (and batch orders) give
# the band. NTK theory does not cover Adam, so the right panel has none.
def _fig6_limit_training(optimizer):
    from .experiments.mnist_train import TUNED_LR

    common = dict(
        dynamics=optimizer,
        init="random",
        lr=TUNED_LR[("fc", optimizer)],
        batch_size=200 if optimizer == "sgd" else None,
        draws=5,
        sigma_w2=MNIST_SIGMA_W2,
        sigma_b2=MNIST_SIGMA_B2,
        kernel="ntk",
        seed=0,
    )
    return Dataset(
        "resdiff.experiments.mnist_kernel:mnist_kernel_dynamics",
        _by_preset(
            common,
            **{
                p: dict(n_train=_FC_SCALE[p]["n_train"], epochs=_FC_SCALE[p]["epochs"])
                for p in PRESETS
            },
        ),
        needs_mnist=True,
    )


register(
    Figure(
        6,
        "MNIST: final test accuracy of the completed FC ResNet against D = L",
        "resdiff.plots.fig6:plot",
        {
            **{
                name: run
                for opt in ("gd", "sgd", "adam-full", "adam")
                for name, run in _mnist_training("fc", opt, _FC_SCALE).items()
            },
            "kernel": Dataset(
                "resdiff.experiments.mnist_kernel:mnist_kernel",
                _by_preset(
                    dict(
                        noise=None,
                        sigma_w2=MNIST_SIGMA_W2,
                        sigma_b2=MNIST_SIGMA_B2,
                        kernel="ntk",
                        seed=0,
                    ),
                    **{p: dict(n_train=_FC_SCALE[p]["n_train"]) for p in PRESETS},
                ),
                needs_mnist=True,
            ),
            **{f"limit-{opt}": _fig6_limit_training(opt) for opt in ("gd", "sgd")},
        },
    )
)

register(
    Figure(
        7,
        "MNIST: final test accuracy of the completed conv ResNet against D = L",
        "resdiff.plots.fig7:plot",
        {
            name: run
            for opt in ("sgd", "adam")
            for name, run in _mnist_training("conv", opt, _CONV_SCALE).items()
        },
    )
)


register(
    Figure(
        8,
        "2-D function samples of ResNets (tanh left, swish right)",
        "resdiff.plots.fig8:plot",
        {
            act: _function_space(
                "samples",
                "resnet",
                act,
                {
                    "paper": dict(depth=100, width=100, inputs=50, draws=10, keep_draws=3),
                    "quick": dict(depth=100, width=100, inputs=50, draws=10, keep_draws=3),
                    "smoke": dict(depth=20, width=20, inputs=20, draws=4, keep_draws=3),
                },
                input_dim=2,
            )
            for act in ("tanh", "swish")
        },
    )
)


# --- Beyond the paper: Section 4's Jacobian, Proposition 5.1's explosion -----
# Jacobian: an exact Jacobian costs 2 L D^3 multiply-adds per draw and method
# (docs/jacobian.md, "Cost"), so the paper preset stops at L = D = 200 (~5 minutes on
# 2 cores). Three groups: the ResNet, its SDE and the limits at L = D ("sizes"); the
# feedforward network at its edge of chaos and the ResNet at a fixed D over depths.
_JAC = dict(activation="tanh", z=1.0, seed=0)
_JAC_SIZES = {
    "paper": ([10, 20, 50, 100, 200], 100),
    "quick": ([8, 16, 32, 64], 200),
    "smoke": ([4, 8, 16], 50),
}
_JAC_DEPTHS = {
    "paper": (32, [4, 16, 64, 256], 100),
    "quick": (16, [4, 16, 64, 256], 100),
    "smoke": (8, [4, 16, 64], 50),
}


def _jacobian_datasets():
    datasets = {}
    sizes = sorted({s for p in PRESETS for s in _JAC_SIZES[p][0]})
    for size in sizes:
        per = {
            p: dict(
                _JAC,
                model="resnet",
                depth=size,
                width=size,
                draws=_JAC_SIZES[p][1],
                sigma_w2=1.0,
                sigma_b2=1.0,
                methods=["resnet", "sde", "limit"],
            )
            for p in PRESETS
            if size in _JAC_SIZES[p][0]
        }
        datasets[f"size-{size}"] = Dataset(
            "resdiff.experiments.jacobian:jacobian", per, group="sizes"
        )
    depths = sorted({d for p in PRESETS for d in _JAC_DEPTHS[p][1]})
    for model, method in (("feedforward", "network"), ("resnet", "resnet")):
        for depth in depths:
            per = {}
            for p in PRESETS:
                width, ds, draws = _JAC_DEPTHS[p]
                if depth in ds:
                    sig = (
                        dict(sigma_w2=None, sigma_b2=None)
                        if model == "feedforward"
                        else dict(sigma_w2=1.0, sigma_b2=1.0)
                    )
                    per[p] = dict(
                        _JAC,
                        model=model,
                        depth=depth,
                        width=width,
                        draws=draws,
                        methods=[method],
                        **sig,
                    )
            datasets[f"{model}-depth-{depth}"] = Dataset(
                "resdiff.experiments.jacobian:jacobian", per, group=f"depth-{model}"
            )
    return datasets


register(
    Figure(
        "jacobian",
        "Beyond the paper: the Jacobian of Section 4 (Theorem 4.1, Corollary 4.1)",
        "resdiff.plots.jacobian:plot",
        _jacobian_datasets(),
    )
)

# Explosion: swish, x_0 = 1_D, Q = 100 over T = 4 (t* = 2.3747). The SDE at several D
# (fixed L), the ResNet at several L (fixed D).
_EXP = dict(
    activation="swish", z=1.0, sigma_w2=1.0, sigma_b2=1.0, horizon=4.0, threshold=100.0, seed=0
)
_EXP_WIDTHS = {
    "paper": (1000, [100, 400, 1600], 1000),
    "quick": (1000, [50, 200, 800], 300),
    "smoke": (200, [25, 100], 100),
}
_EXP_DEPTHS = {
    "paper": (400, [250, 1000, 4000], 1000),
    "quick": (200, [100, 400, 1600], 300),
    "smoke": (50, [100, 400], 100),
}


def _explosion_datasets():
    datasets = {}
    for width in sorted({w for p in PRESETS for w in _EXP_WIDTHS[p][1]}):
        per = {
            p: dict(
                _EXP,
                depth=_EXP_WIDTHS[p][0],
                width=width,
                draws=_EXP_WIDTHS[p][2],
                methods=["sde", "limit"],
            )
            for p in PRESETS
            if width in _EXP_WIDTHS[p][1]
        }
        datasets[f"sde-width-{width}"] = Dataset(
            "resdiff.experiments.explosion:explosion", per, group="widths"
        )
    for depth in sorted({d for p in PRESETS for d in _EXP_DEPTHS[p][1]}):
        per = {
            p: dict(
                _EXP,
                depth=depth,
                width=_EXP_DEPTHS[p][0],
                draws=_EXP_DEPTHS[p][2],
                methods=["resnet", "sde"],
            )
            for p in PRESETS
            if depth in _EXP_DEPTHS[p][1]
        }
        datasets[f"resnet-depth-{depth}"] = Dataset(
            "resdiff.experiments.explosion:explosion", per, group="depths"
        )
    return datasets


register(
    Figure(
        "explosion",
        "Beyond the paper: the explosion time of Proposition 5.1 (swish)",
        "resdiff.plots.explosion:plot",
        _explosion_datasets(),
    )
)
