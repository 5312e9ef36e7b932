"""``resdiff eoc``: the edge of chaos of a feedforward network."""

import click

from .. import constraints as cons
from . import options


@options.command(short_help="Edge of chaos of the feedforward network: sigma_w^2, q*.")
@options.option(cons.EOC, "activation", "--activation", show_default=True)
@options.option(
    cons.EOC,
    "sigma_b2",
    "--sigma-b2",
    help=f"Bias variance sigma_b^2 [default: {cons.EOC_SIGMA_B2:g}; relu 0].",
)
@click.option(
    "--seed",
    type=options.click_type(cons.SEED),
    default=0,
    show_default=True,
    help="Unused (the solution is deterministic); accepted like every subcommand.",
)
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write a one-row CSV (activation, sigma_b2, sigma_w2, q_star, chi_1) "
    "and its sidecar OUT.json.",
)
@click.option("--quiet", "-q", is_flag=True, help="No informational lines on stderr.")
def eoc(activation, sigma_b2, seed, out, quiet):
    """Solve the edge of chaos: the variance fixed point q* = sigma_w2 E[phi(sqrt(q*) Z)^2]
    + sigma_b2 and chi_1 = sigma_w2 E[phi'(sqrt(q*) Z)^2] = 1 (Gauss-Hermite quadrature,
    bisection). Prints sigma_w2 and q_star (NaN for relu, where every q is a fixed point).
    """
    from ..experiments.eoc import eoc as run

    if sigma_b2 is None:  # resolved here too, so that the sidecar records the value
        sigma_b2 = cons.default_eoc_sigma_b2(activation)
    params = dict(activation=activation, sigma_b2=sigma_b2, seed=seed)
    if out is None:
        result = run(**params)
    else:
        result = options.run_and_write("eoc", run, params, out, quiet)
    row = result.frame.iloc[0]
    click.echo(f"sigma_w2 = {row['sigma_w2']:.10g}")
    click.echo(f"q_star = {row['q_star']:.10g}")
