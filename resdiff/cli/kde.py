import click

from . import options


@click.command(short_help="Figure 2: output draws at inputs z: ResNet, SDE, limit.")
@click.option("--depth", "-L", type=options.POSITIVE, default=500, show_default=True,
              help="Number of residual layers L (dt = 1/L).")
@click.option("--width", "-D", type=options.POSITIVE, default=500, show_default=True,
              help="Width D.")
@click.option("--draws", type=options.DRAWS, default=10000, show_default=True,
              help="Draws per method.")
@click.option("--z", "z", type=options.FINITE, multiple=True, default=(0.0, 1.0), show_default=True,
              help="Input (repeatable; default 0 and 1).")
@options.sigma_options(1.0, 1.0)
@click.option("--activation", type=options.ACTIVATION, default="tanh", show_default=True)
@click.option("--methods", default="resnet,sde,analytic", show_default=True,
              help="Comma-separated subset of resnet (ResNet recursion, eq. 26), sde (Euler "
                   "scheme of the limiting SDE, eq. 29) and analytic (eq. 34).")
@options.common("kde.csv")
def kde(depth, width, draws, z, sigma_w2, sigma_b2, activation, methods, seed, out, quiet):
    """Figure 2: draws of the output y = x_{T,1} at inputs z from the ResNet, the
    Euler discretisation of its limiting SDE and the analytic transition density.

    CSV columns: method, draw, z, value.
    """
    from ..experiments.kde import METHODS, kde as run
    chosen = [m.strip() for m in methods.split(",") if m.strip()]
    unknown = sorted(set(chosen) - set(METHODS))
    if unknown or not chosen:
        raise click.BadParameter(f"unknown method(s) {', '.join(unknown) or '(none)'}; "
                                 f"choose from {', '.join(METHODS)}", param_hint="'--methods'")
    params = dict(depth=depth, width=width, draws=draws, z=list(z), sigma_w2=sigma_w2,
                  sigma_b2=sigma_b2, activation=activation, methods=chosen, seed=seed)
    options.run_and_write("kde", run, params, out, quiet)
