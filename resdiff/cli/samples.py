"""``resdiff samples`` (Figs. 1, 4, 8) and ``resdiff correlation`` (Fig. 5)."""

from .. import constraints as cons
from . import options

NODES_HELP = (
    "Where each draw is simulated: 0 = at every input; K >= 2 = at K Chebyshev "
    "nodes per axis, then interpolated (smooth activations). Default: automatic "
    "(ReLU without bias: the two points +-1, exact by homogeneity; resnet tanh/"
    "swish: K from a 16-draw pilot so that the interpolation error stays below "
    "1e-6, checked a posteriori; feedforward: every input)."
)
ESTIMATOR_HELP = (
    "How quantiles and correlations are estimated: empirical (from the draws) "
    "or conditional (feedforward only: the output is Gaussian given the last "
    "hidden layer, and each draw contributes that Gaussian; same target, much "
    "smaller Monte Carlo error). auto: conditional for feedforward."
)


def _model_options(table):
    def decorate(f):
        f = options.option(
            table, "estimator", "--estimator", show_default=True, help=ESTIMATOR_HELP
        )(f)
        f = options.option(table, "nodes", "--nodes", help=NODES_HELP)(f)
        f = options.option(
            table,
            "sigma_b2",
            "--sigma-b2",
            help="Bias variance sigma_b^2 (default: resnet 1; feedforward its "
            f"edge of chaos: relu 0, otherwise {cons.EOC_SIGMA_B2:g}).",
        )(f)
        f = options.option(
            table,
            "sigma_w2",
            "--sigma-w2",
            help="Weight variance sigma_w^2 (default: resnet 1; feedforward its "
            "edge of chaos: relu 2, tanh ~1.7610 from `resdiff eoc`).",
        )(f)
        f = options.option(
            table, "draws", "--draws", show_default=True, help="Independent network draws."
        )(f)
        f = options.option(table, "z_max", "--z-max", show_default=True, help="Largest input.")(f)
        f = options.option(table, "z_min", "--z-min", show_default=True, help="Smallest input.")(f)
        f = options.option(
            table,
            "width",
            "--width",
            "-D",
            show_default=True,
            help="Width D (feedforward: units per layer).",
        )(f)
        f = options.option(
            table,
            "depth",
            "--depth",
            "-L",
            show_default=True,
            help="Depth: residual layers L (dt = 1/L), or feedforward layers.",
        )(f)
        f = options.option(table, "activation", "--activation", show_default=True)(f)
        f = options.option(
            table,
            "model",
            "--model",
            show_default=True,
            help="resnet: the paper's F (x_0 = z 1_D, y = x_{T,1}); "
            "feedforward: its E (y = pre-activation 1 of the last "
            "layer).",
        )(f)
        return f

    return decorate


def _sigmas(model, activation, sigma_w2, sigma_b2):
    """The defaults resolved, so that the sidecar records the values used."""
    from ..experiments.samples import resolve_sigmas

    return resolve_sigmas(model, activation, sigma_w2, sigma_b2)


@options.command(short_help="Figures 1, 4, 8: function draws of the output over inputs.")
@_model_options(cons.SAMPLES)
@options.option(
    cons.SAMPLES,
    "inputs",
    "--inputs",
    show_default=True,
    help="Number of inputs, evenly spaced on [z-min, z-max], both ends included "
    "(per axis with --input-dim 2).",
)
@options.option(
    cons.SAMPLES,
    "input_dim",
    "--input-dim",
    show_default=True,
    help="2: inputs (z1, z2) on an INPUTS x INPUTS grid; the resnet puts z1 on "
    "coordinates d <= D/2 and z2 on the rest.",
)
@options.option(
    cons.SAMPLES,
    "keep_draws",
    "--keep-draws",
    show_default=True,
    help="Draws written to the CSV (the first ones that did not diverge).",
)
@options.option(
    cons.SAMPLES,
    "quantiles",
    "--quantiles",
    show_default=True,
    help="Quantile levels computed per input.",
)
@options.allow_long_option
@options.common("samples.csv")
def samples(
    model,
    activation,
    depth,
    width,
    z_min,
    z_max,
    draws,
    sigma_w2,
    sigma_b2,
    nodes,
    estimator,
    inputs,
    input_dim,
    keep_draws,
    quantiles,
    seed,
    out,
    quiet,
    allow_long,
):
    """Figures 1, 4 and 8: function draws of the output over an input range (or a 2-D
    grid), and per-input quantiles. Divergent draws (swish can explode) are counted,
    reported and left out.

    CSV columns: z (and z2 for 2-D inputs), kind (draw/quantile), id (draw number or
    quantile level), value.
    """
    from ..experiments.samples import samples as run

    sigma_w2, sigma_b2 = _sigmas(model, activation, sigma_w2, sigma_b2)
    params = dict(
        model=model,
        activation=activation,
        depth=depth,
        width=width,
        inputs=inputs,
        z_min=z_min,
        z_max=z_max,
        input_dim=input_dim,
        draws=draws,
        keep_draws=keep_draws,
        quantiles=list(quantiles),
        sigma_w2=sigma_w2,
        sigma_b2=sigma_b2,
        nodes=nodes,
        estimator=estimator,
        seed=seed,
    )
    options.run_and_write("samples", run, params, out, quiet, allow_long)


@options.command(short_help="Figure 5: output correlation over a grid of input pairs.")
@_model_options(cons.CORRELATION)
@options.option(
    cons.CORRELATION,
    "grid",
    "--grid",
    show_default=True,
    help="Grid points per axis, evenly spaced on [z-min, z-max], both ends "
    "included (the default 80 on [-2, 2] excludes 0).",
)
@options.allow_long_option
@options.common("correlation.csv")
def correlation(
    model,
    activation,
    depth,
    width,
    z_min,
    z_max,
    draws,
    sigma_w2,
    sigma_b2,
    nodes,
    estimator,
    grid,
    seed,
    out,
    quiet,
    allow_long,
):
    """Figure 5: the correlation rho[y(z1), y(z2)] of the output over a GRID x GRID
    lattice of inputs. Divergent draws are counted, reported and left out.

    CSV columns: z1, z2, rho (z1 varies slowest).
    """
    from ..experiments.samples import correlation as run

    sigma_w2, sigma_b2 = _sigmas(model, activation, sigma_w2, sigma_b2)
    params = dict(
        model=model,
        activation=activation,
        depth=depth,
        width=width,
        grid=grid,
        z_min=z_min,
        z_max=z_max,
        draws=draws,
        sigma_w2=sigma_w2,
        sigma_b2=sigma_b2,
        nodes=nodes,
        estimator=estimator,
        seed=seed,
    )
    options.run_and_write("correlation", run, params, out, quiet, allow_long)
