from .. import constraints as cons
from . import options

T = cons.NTK


@options.command(
    "ntk-convergence", short_help="Figure 3: the finite NTK of the resnet model and its limit."
)
@options.option(
    T, "sizes", "--sizes", show_default=True, help="Comma-separated sizes L = D (depth = width)."
)
@options.option(T, "draws", "--draws", show_default=True, help="Independent networks per size.")
@options.option(
    T,
    "z",
    "--z",
    multiple=True,
    show_default=True,
    help="Input; give it exactly twice: the NTK is between them.",
)
@options.sigma_options(T)
@options.option(
    T,
    "activation",
    "--activation",
    show_default=True,
    help="swish has phi''(0) != 0: no analytic limit rows (the paper gives none).",
)
@options.allow_long_option
@options.common("ntk-convergence.csv")
def ntk_convergence(sizes, draws, z, sigma_w2, sigma_b2, activation, seed, out, quiet, allow_long):
    """Figure 3: the finite NTK (eq. 30) of the resnet model between two inputs, split
    into K_W (weights) and K_b (biases), with respect to the standard-normal parameters,
    output y = x_{T,1}, for each L = D in SIZES; plus its doubly infinite limit
    (Section 5.3).

    CSV columns: size, draw, component (W/b), value, kind (empirical; limit rows, with
    size and draw empty, hold K_W^inf and K_b^inf).
    """
    from ..experiments.ntk import ntk_convergence as run

    params = dict(
        sizes=sorted(set(sizes)),
        draws=draws,
        z=list(z),
        sigma_w2=sigma_w2,
        sigma_b2=sigma_b2,
        activation=activation,
        seed=seed,
    )
    options.run_and_write("ntk-convergence", run, params, out, quiet, allow_long)
