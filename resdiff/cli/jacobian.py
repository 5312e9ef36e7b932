"""``resdiff jacobian`` (Section 4) and ``resdiff explosion`` (Proposition 5.1)."""

from .. import constraints as cons
from . import options

T = cons.JACOBIAN


@options.command(short_help="Section 4: Jacobian statistics: ResNet, SDE, limit.")
@options.option(
    T,
    "model",
    "--model",
    show_default=True,
    help="resnet: eq. (26) and the SDE (27); feedforward: Fig. 1's network at "
    "the edge of chaos (method network).",
)
@options.option(T, "activation", "--activation", show_default=True)
@options.option(
    T,
    "depth",
    "--depth",
    "-L",
    show_default=True,
    help="Residual layers L (dt = 1/L), or feedforward layers.",
)
@options.option(T, "width", "--width", "-D", show_default=True, help="Width D.")
@options.option(T, "draws", "--draws", show_default=True, help="Independent networks per method.")
@options.option(
    T, "z", "--z", show_default=True, help="Input: x_0 = z 1_D (feedforward: the scalar input)."
)
@options.option(
    T,
    "sigma_w2",
    "--sigma-w2",
    help="Weight variance sigma_w^2 (default: resnet 1; feedforward its edge of chaos).",
)
@options.option(
    T,
    "sigma_b2",
    "--sigma-b2",
    help="Bias variance sigma_b^2 (default: resnet 1; feedforward relu 0, "
    f"otherwise {cons.EOC_SIGMA_B2:g}).",
)
@options.option(
    T,
    "methods",
    "--method",
    "--methods",
    help="Comma-separated subset of resnet (eq. 26), sde (Euler scheme of eq. "
    "27, same weights) and limit (docs/jacobian.md)  [default: all three; "
    "feedforward: network].",
)
@options.allow_long_option
@options.common("jacobian.csv")
def jacobian(
    model,
    activation,
    depth,
    width,
    draws,
    z,
    sigma_w2,
    sigma_b2,
    methods,
    seed,
    out,
    quiet,
    allow_long,
):
    """Section 4: statistics of the Jacobian J = J(x_T, x_0) per draw: logdet =
    log|det J|, moment1 = tr(J J^T)/D, moment2 = tr((J J^T)^2)/D, smax, smin, and
    inverse_error = ||J G - I||_F / sqrt(D) with G integrated by eq. (28) on the same
    path (Corollary 4.1). Cost: 2 L D^3 multiply-adds per draw and method.

    CSV columns: method, depth, width, draw, statistic, value (limit rows: no draw).
    """
    from ..experiments.jacobian import jacobian as run
    from ..experiments.samples import resolve_sigmas

    sigma_w2, sigma_b2 = resolve_sigmas(model, activation, sigma_w2, sigma_b2)
    params = dict(
        model=model,
        activation=activation,
        depth=depth,
        width=width,
        draws=draws,
        z=z,
        sigma_w2=sigma_w2,
        sigma_b2=sigma_b2,
        methods=None if methods is None else list(methods),
        seed=seed,
    )
    options.run_and_write("jacobian", run, params, out, quiet, allow_long)


E = cons.EXPLOSION


@options.command(short_help="Proposition 5.1: when q_t = |x_t|^2/D first exceeds Q.")
@options.option(
    E, "activation", "--activation", show_default=True, help="Any but relu (no phi''(0))."
)
@options.option(E, "z", "--z", show_default=True, help="Input: x_0 = z 1_D.")
@options.sigma_options(E)
@options.option(
    E,
    "horizon",
    "--horizon",
    show_default=True,
    help="Horizon T (dt = T / L); no passage by T is an empty time.",
)
@options.option(
    E, "threshold", "--threshold", show_default=True, help="Threshold Q on q_t = |x_t|^2 / D."
)
@options.option(E, "depth", "--depth", "-L", show_default=True, help="Layers L over [0, T].")
@options.option(E, "width", "--width", "-D", show_default=True, help="Width D.")
@options.option(E, "draws", "--draws", show_default=True, help="Draws per method.")
@options.option(
    E,
    "methods",
    "--method",
    "--methods",
    show_default=True,
    help="Comma-separated subset of resnet (eq. 26), sde (Euler scheme of eq. 29) "
    "and limit (t* of the ODEs of Proposition 5.1).",
)
@options.allow_long_option
@options.common("explosion.csv")
def explosion(
    activation,
    z,
    sigma_w2,
    sigma_b2,
    horizon,
    threshold,
    depth,
    width,
    draws,
    methods,
    seed,
    out,
    quiet,
    allow_long,
):
    """Proposition 5.1 (ii), Remark 3.3: per draw, the first time t at which
    q_t = |x_t|^2 / D exceeds Q, for the ResNet and its SDE, and the deterministic t* of
    the D -> infinity ODEs.

    CSV columns: method, depth, width, draw, explosion_time (empty: not by T).
    """
    from ..experiments.explosion import explosion as run

    params = dict(
        activation=activation,
        z=z,
        sigma_w2=sigma_w2,
        sigma_b2=sigma_b2,
        horizon=horizon,
        threshold=threshold,
        depth=depth,
        width=width,
        draws=draws,
        methods=list(methods),
        seed=seed,
    )
    options.run_and_write("explosion", run, params, out, quiet, allow_long)
