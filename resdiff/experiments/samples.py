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
        return (1.0 if sigma_w2 is None else float(sigma_w2),
                1.0 if sigma_b2 is None else float(sigma_b2))
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
    return evaluate(model, activation, sigma_w2=sigma_w2, sigma_b2=sigma_b2,
                    label=f"{label} {model} {activation}", **kw)


@checked(SAMPLES)
def samples(*, model, activation, depth, width, inputs, z_min, z_max, input_dim, draws,
            keep_draws, quantiles, sigma_w2, sigma_b2, nodes=None, estimator="auto", seed=0,
            draw_store=None):
    """Function draws and per-input quantiles (Figs. 1, 4, 8).

    CSV rows: ``z`` (and ``z2``), ``kind`` (``draw`` / ``quantile``), ``id`` (draw number
    or quantile level), ``value``. 2-D inputs form an ``inputs x inputs`` grid with ``z``
    (the first coordinate) varying slowest.
    """
    levels = [float(q) for q in quantiles]
    z_out = _grid(inputs, z_min, z_max, input_dim)
    ev = _evaluate(model, activation, sigma_w2, sigma_b2, "samples", depth=depth,
                   width=width, z_out=z_out, z_min=z_min, z_max=z_max, input_dim=input_dim,
                   draws=draws, nodes=nodes, estimator=estimator, seed=seed, want_cov=False,
                   store=draw_store)
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
    coords = ({"z": z_out} if input_dim == 1 else {"z": z_out[:, 0], "z2": z_out[:, 1]})
    frames = [pd.DataFrame({**coords, "kind": "draw", "id": float(d), "value": kept_values[i]})
              for i, d in enumerate(kept)]
    frames += [pd.DataFrame({**coords, "kind": "quantile", "id": q, "value": qv[j]})
               for j, q in enumerate(levels)]
    frame = pd.concat(frames, ignore_index=True)
    meta["kept_draws"] = [int(d) for d in kept]
    return Result(frame, meta, list(ev.warnings))


@checked(CORRELATION)
def correlation(*, model, activation, depth, width, grid, z_min, z_max, draws, sigma_w2,
                sigma_b2, nodes=None, estimator="auto", seed=0, draw_store=None):
    """Output correlation ``rho[y(z1), y(z2)]`` over a ``grid x grid`` lattice (Fig. 5).

    CSV rows: ``z1``, ``z2``, ``rho`` with ``z1`` varying slowest.
    """
    z_out = _grid(grid, z_min, z_max, 1)
    ev = _evaluate(model, activation, sigma_w2, sigma_b2, "correlation", depth=depth,
                   width=width, z_out=z_out, z_min=z_min, z_max=z_max, input_dim=1,
                   draws=draws, nodes=nodes, estimator=estimator, seed=seed, want_cov=True,
                   store=draw_store)
    meta, warnings = dict(ev.meta), list(ev.warnings)
    cov_sum = ev.draws.cov_sum if ev.estimator == "conditional" else None
    rho, zero = statistics.correlation(statistics.covariance(ev.draws.y, ev.good, ev.P,
                                                             cov_sum))
    if zero.any():
        warnings.append("the output has zero variance at z = "
                        f"{', '.join(f'{v:g}' for v in z_out[zero])}; its correlations are "
                        "undefined (NaN in the CSV, blank in the figure)")
    z1, z2 = np.meshgrid(z_out, z_out, indexing="ij")
    frame = pd.DataFrame({"z1": z1.ravel(), "z2": z2.ravel(), "rho": rho.ravel()})
    finite = rho[np.isfinite(rho)]
    meta["rho_min"] = float(finite.min()) if finite.size else None
    return Result(frame, meta, warnings)
