"""Figures 1, 4, 5 and 8: function draws, per-input quantiles and output correlations.

``resdiff fig 1`` reaches here through the registry (:mod:`resdiff.figures`, which
names :func:`samples` and its parameters per preset) and the pipeline
(:func:`resdiff.pipeline.compute`); ``resdiff samples`` and ``resdiff correlation``
through :mod:`resdiff.cli.samples`. Each experiment resolves the default variances
(:func:`resolve_sigmas`), lays out the inputs, and hands them to
:func:`resdiff.sampling.plan.evaluate`, which decides where each draw is simulated
(every input, two points by homogeneity, or Chebyshev nodes interpolated), chooses
the sampler and runs the kernels (:mod:`resdiff.sampling.draws`). The statistics
(quantiles, their standard errors, correlations; empirical or conditional estimator)
come from :mod:`resdiff.statistics`. Divergent draws (swish) are counted, reported and
left out of every statistic.

``draw_store`` (not a parameter: it changes no number) is the pipeline's
:class:`resdiff.sampling.store.DrawStore`: figures drawn in one process share the
simulations they have in common (Fig. 5 reuses those of Figs. 1 and 4).
"""

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .. import statistics
from ..constraints import CORRELATION, SAMPLES, checked, default_eoc_sigma_b2
from ..sampling.linalg import matmul_nt
from ..sampling.plan import evaluate
from . import Result


def resolve_sigmas(model, activation, sigma_w2, sigma_b2):
    """The defaults of docs/cli.md: feedforward at its edge of chaos, resnet ``1, 1``.

    A feedforward network given only ``sigma_b2`` gets the edge-of-chaos ``sigma_w2`` for
    it; given only ``sigma_w2``, ``sigma_b2`` is 0 (ReLU) or ``EOC_SIGMA_B2``.
    """
    if model == "resnet":
        return (
            1.0 if sigma_w2 is None else float(sigma_w2),
            1.0 if sigma_b2 is None else float(sigma_b2),
        )
    if sigma_b2 is None:
        sigma_b2 = default_eoc_sigma_b2(activation)
    if sigma_w2 is None:
        from ..edge_of_chaos import edge_of_chaos

        sigma_w2 = edge_of_chaos(activation, sigma_b2).sigma_w2
    return float(sigma_w2), float(sigma_b2)


def _grid(n, lo, hi, input_dim):
    """Evenly spaced inputs, both ends included; 2-D: all ``(z1, z2)``, z1 slowest."""
    z = np.linspace(lo, hi, n)
    if input_dim == 1:
        return z
    z1, z2 = np.meshgrid(z, z, indexing="ij")
    return np.column_stack([z1.ravel(), z2.ravel()])


def _evaluate(model, activation, sigma_w2, sigma_b2, label, **kw):
    """:func:`resdiff.sampling.plan.evaluate` with the default variances resolved."""
    sigma_w2, sigma_b2 = resolve_sigmas(model, activation, sigma_w2, sigma_b2)
    return evaluate(
        model,
        activation,
        sigma_w2=sigma_w2,
        sigma_b2=sigma_b2,
        label=f"{label} {model} {activation}",
        **kw,
    )


_MODEL_PARAMETERS = """model : {"resnet", "feedforward"}
        ``resnet``: the paper's F (``x_0 = z 1_D``, ``y = x_{T,1}``, eq. 26);
        ``feedforward``: its E (``y`` = pre-activation 1 of the last layer).
    activation : {"tanh", "swish", "relu"}
        The activation phi.
    depth : int
        Residual layers L (time step 1 / L), or feedforward layers.
    width : int
        Width D (feedforward: units per layer).
    z_min, z_max : float
        The input range, both ends included.
    draws : int
        Independent network draws (at least 2).
    sigma_w2, sigma_b2 : float or None
        Weight and bias variances (eq. 16). None: resnet 1 and 1; feedforward its edge
        of chaos (ReLU 2 and 0; otherwise ``sigma_b^2 = 0.05`` and the ``sigma_w^2`` that
        :func:`resdiff.eoc` solves, about 1.7610 for tanh).
    nodes : int or None
        Where each draw is simulated: 0 at every input; K >= 2 at K Chebyshev nodes per
        axis, then interpolated (smooth activations). None: automatic (ReLU without bias
        at two points, exact by homogeneity; resnet tanh / swish at K nodes chosen by a
        16-draw pilot; feedforward at every input).
    estimator : {"auto", "empirical", "conditional"}
        How quantiles and correlations are estimated: from the draws, or (feedforward
        only) from the Gaussian law of the output given the last hidden layer; ``auto``:
        conditional for feedforward.
    seed : int
        Seed: the same seed gives the same numbers for any thread count.
    draw_store : resdiff.sampling.store.DrawStore, optional
        Simulations shared between calls in one process (changes no number)."""


@checked(SAMPLES)
def samples(
    *,
    model: str = "resnet",
    activation: str = "tanh",
    depth: int = 500,
    width: int = 500,
    inputs: int = 400,
    z_min: float = -2.0,
    z_max: float = 2.0,
    input_dim: int = 1,
    draws: int = 10000,
    keep_draws: int = 5,
    quantiles: Sequence[float] = (0.05, 0.5, 0.95),
    sigma_w2: float | None = None,
    sigma_b2: float | None = None,
    nodes: int | None = None,
    estimator: str = "auto",
    seed: int = 0,
    draw_store=None,
) -> Result:
    """Function draws and per-input quantiles of the network output over an input range
    or a 2-D grid (Figures 1, 4 and 8).

    The defaults are a panel of the paper's Figure 4: the tanh ResNet at L = D = 500,
    400 inputs on [-2, 2], 10,000 draws, 5 of them kept, the 5/50/95% quantiles.

    Parameters
    ----------
    {model_parameters}
    inputs : int
        Number of inputs, evenly spaced on ``[z_min, z_max]`` (per axis when
        ``input_dim`` is 2).
    input_dim : {1, 2}
        2: inputs ``(z1, z2)`` on an ``inputs x inputs`` grid; the resnet puts z1 on the
        coordinates d <= D/2 and z2 on the rest.
    keep_draws : int
        Draws written to the frame: the first ones that did not diverge.
    quantiles : sequence of float
        Quantile levels computed per input (may be empty).

    Returns
    -------
    Result
        ``.frame``: columns ``z`` (and ``z2``), ``kind`` (``draw`` or ``quantile``),
        ``id`` (draw number or quantile level), ``value``; 2-D inputs with ``z`` varying
        slowest. ``.meta``: the variances used, the evaluation plan, divergent-draw
        counts, quantile standard errors, the kept draws. ``.warnings``: lines about
        divergent draws or interpolation error.

    Raises
    ------
    ParameterError
        A parameter out of range or an impossible combination (a ``ValueError`` naming
        the parameter).
    AllDiverged
        Every draw diverged.

    Examples
    --------
    >>> import resdiff
    >>> r = resdiff.samples(depth=20, width=20, inputs=11, draws=50, keep_draws=2)
    >>> sorted(r.frame["kind"].unique())
    ['draw', 'quantile']
    >>> len(r.frame)  # (2 draws + 3 quantiles) x 11 inputs
    55
    """
    levels = [float(q) for q in quantiles]
    z_out = _grid(inputs, z_min, z_max, input_dim)
    ev = _evaluate(
        model,
        activation,
        sigma_w2,
        sigma_b2,
        "samples",
        depth=depth,
        width=width,
        z_out=z_out,
        z_min=z_min,
        z_max=z_max,
        input_dim=input_dim,
        draws=draws,
        nodes=nodes,
        estimator=estimator,
        seed=seed,
        want_cov=False,
        store=draw_store,
    )
    y, P, good, meta = ev.draws.y, ev.P, ev.good, dict(ev.meta)
    var = ev.draws.var if ev.estimator == "conditional" else None
    kept = good[:keep_draws]
    n_out = z_out.shape[0]
    qv = np.empty((0, n_out))
    if levels:
        qv = statistics.quantiles(y, good, P, levels, var)
        se = statistics.quantile_se(y, good, P, levels, n_out, var)
        if se is not None:
            meta["quantile_se_max"], meta["quantile_se_median"] = se
    kept_values = y[kept] if P is None else matmul_nt(y[kept], P)
    coords = {"z": z_out} if input_dim == 1 else {"z": z_out[:, 0], "z2": z_out[:, 1]}
    frames = [
        pd.DataFrame({**coords, "kind": "draw", "id": float(d), "value": kept_values[i]})
        for i, d in enumerate(kept)
    ]
    frames += [
        pd.DataFrame({**coords, "kind": "quantile", "id": q, "value": qv[j]})
        for j, q in enumerate(levels)
    ]
    frame = pd.concat(frames, ignore_index=True)
    meta["kept_draws"] = [int(d) for d in kept]
    return Result(frame, meta, list(ev.warnings))


@checked(CORRELATION)
def correlation(
    *,
    model: str = "resnet",
    activation: str = "tanh",
    depth: int = 500,
    width: int = 500,
    grid: int = 80,
    z_min: float = -2.0,
    z_max: float = 2.0,
    draws: int = 10000,
    sigma_w2: float | None = None,
    sigma_b2: float | None = None,
    nodes: int | None = None,
    estimator: str = "auto",
    seed: int = 0,
    draw_store=None,
) -> Result:
    """The output correlation ``rho[y(z1), y(z2)]`` over a ``grid x grid`` lattice of
    inputs (Figure 5).

    The defaults are a panel of the paper's Figure 5: the tanh ResNet at L = D = 500,
    an 80 x 80 grid on [-2, 2] (0 excluded), 10,000 draws.

    Parameters
    ----------
    {model_parameters}
    grid : int
        Grid points per axis, evenly spaced on ``[z_min, z_max]``, both ends included.

    Returns
    -------
    Result
        ``.frame``: columns ``z1, z2, rho`` with ``z1`` varying slowest; NaN where the
        output has zero variance. ``.meta``: as :func:`samples`, and ``rho_min``.

    Raises
    ------
    ParameterError
        A parameter out of range or an impossible combination (a ``ValueError`` naming
        the parameter).
    AllDiverged
        Every draw diverged.

    Examples
    --------
    >>> import resdiff
    >>> r = resdiff.correlation(depth=20, width=20, grid=5, draws=50)
    >>> list(r.frame.columns), len(r.frame)
    (['z1', 'z2', 'rho'], 25)
    """
    z_out = _grid(grid, z_min, z_max, 1)
    ev = _evaluate(
        model,
        activation,
        sigma_w2,
        sigma_b2,
        "correlation",
        depth=depth,
        width=width,
        z_out=z_out,
        z_min=z_min,
        z_max=z_max,
        input_dim=1,
        draws=draws,
        nodes=nodes,
        estimator=estimator,
        seed=seed,
        want_cov=True,
        store=draw_store,
    )
    meta, warnings = dict(ev.meta), list(ev.warnings)
    cov_sum = ev.draws.cov_sum if ev.estimator == "conditional" else None
    rho, zero = statistics.correlation(statistics.covariance(ev.draws.y, ev.good, ev.P, cov_sum))
    if zero.any():
        warnings.append(
            "the output has zero variance at z = "
            f"{', '.join(f'{v:g}' for v in z_out[zero])}; its correlations are "
            "undefined (NaN in the CSV, blank in the figure)"
        )
    z1, z2 = np.meshgrid(z_out, z_out, indexing="ij")
    frame = pd.DataFrame({"z1": z1.ravel(), "z2": z2.ravel(), "rho": rho.ravel()})
    finite = rho[np.isfinite(rho)]
    meta["rho_min"] = float(finite.min()) if finite.size else None
    return Result(frame, meta, warnings)


for _f in (samples, correlation):  # the parameters both share, written once
    _f.__doc__ = _f.__doc__.replace("{model_parameters}", _MODEL_PARAMETERS)
