from .. import constraints as cons
from . import options

T = cons.KDE


@options.command(short_help="Figure 2: output draws at inputs z: ResNet, SDE, limit.")
@options.option(
    T, "depth", "--depth", "-L", show_default=True, help="Number of residual layers L (dt = 1/L)."
)
@options.option(T, "width", "--width", "-D", show_default=True, help="Width D.")
@options.option(T, "draws", "--draws", show_default=True, help="Draws per method.")
@options.option(T, "z", "--z", multiple=True, show_default=True, help="Input (repeatable).")
@options.sigma_options(T)
@options.option(T, "activation", "--activation", show_default=True)
@options.option(
    T,
    "methods",
    "--methods",
    show_default=True,
    help="Comma-separated subset of resnet (ResNet recursion, eq. 26), sde (Euler "
    "scheme of the limiting SDE, eq. 29) and analytic (eq. 34).",
)
@options.allow_long_option
@options.common("kde.csv")
def kde(
    depth, width, draws, z, sigma_w2, sigma_b2, activation, methods, seed, out, quiet, allow_long
):
    """Figure 2: draws of the output y = x_{T,1} at inputs z from the ResNet, the
    Euler discretisation of its limiting SDE and the analytic transition density.

    CSV columns: method, draw, z, value.
    """
    from ..experiments.kde import kde as run

    params = dict(
        depth=depth,
        width=width,
        draws=draws,
        z=list(z),
        sigma_w2=sigma_w2,
        sigma_b2=sigma_b2,
        activation=activation,
        methods=list(methods),
        seed=seed,
    )
    options.run_and_write("kde", run, params, out, quiet, allow_long)
