"""Figures 1, 4, 5 and 8: function draws, per-input quantiles and output correlations.

**Where a draw is evaluated.** Each draw of a network is a random function
``z -> y(z)``; it is simulated at a set of points and mapped linearly onto the requested
inputs, ``y_out = P y_points``:

* ``homogeneous``: ReLU without bias is positively homogeneous (both models), so
  ``y(z) = z y(1)`` for ``z > 0`` and ``|z| y(-1)`` for ``z < 0``, exactly: two points.
* ``chebyshev``: for the ResNet with a smooth activation, ``y`` is an analytic function
  of ``z`` whose Chebyshev coefficients decay geometrically; the draw is simulated at
  ``K`` Chebyshev-Lobatto nodes on ``[z_min, z_max]`` (``K x K`` tensor nodes for 2-D
  inputs) and interpolated barycentrically. Node values are exact joint draws, so this
  interpolates exact draws; tests bound the interpolation error against direct
  evaluation with the same explicit weights, and every run reports an a posteriori
  estimate (the last Chebyshev coefficients, measured to overstate the error ~10x).
* ``direct``: every input is a point (``P = I``). The default for the feedforward
  network with a smooth activation: at the edge of chaos its draws are rough in ``z``
  (their Chebyshev coefficients do not decay), so no interpolation is used.

The points are simulated by the exact Gram sampler or with explicit weights, whichever
needs fewer operations (:func:`choose_sampler`).

**How statistics are estimated.** ``empirical``: quantiles and correlations of the draws
(the ResNet). ``conditional`` (feedforward): the output is exactly Gaussian given the
last hidden layer, ``y | h_{L-1} ~ N(0, S_L)``, so each draw contributes its conditional
law: quantiles are those of the mixture of ``N(0, S_L(z, z))`` over the draws and the
covariance is the mean of ``S_L`` (conditional Monte Carlo, "Rao-Blackwellisation").
Both are consistent for the same quantities; the conditional one has a much smaller
variance per draw (``meta["quantile_se"]`` reports batch-means standard errors).

Correlations over a grid are those of ``P C P^T``, i.e. exactly those of the interpolated
draws. Divergent draws (swish) are counted, reported and left out of every statistic.
"""
from collections import OrderedDict

import numpy as np
import pandas as pd

from .. import interrupt, rng, statistics
from ..constraints import CORRELATION, MODELS, SAMPLES, checked, default_eoc_sigma_b2
from ..errors import AllDiverged, UserError
from ..models import activation as get_activation
from ..sampling import chebyshev, driver
from ..sampling.cost import layer_cost
from ..sampling.linalg import matmul, matmul_nt
from ..sampling import feedforward as ff
from ..sampling import resnet as rn
from . import Result

# Chebyshev nodes for the ResNet are chosen per run by a pilot (:func:`choose_nodes`):
# PILOT_DRAWS draws at PILOT_NODES nodes give an envelope of the Chebyshev coefficients,
# and K is the smallest number of nodes whose next coefficients are below
# INTERP_TOL / PILOT_SAFETY (the pilot sees few draws; the run sees thousands). At the
# paper's (L, D) = (500, 10), (500, 100), (500, 500) this gives K = 13-14 (tanh) and
# 17-18 (swish), and the interpolation error against direct evaluation with the same
# explicit weights is below 1e-7 on every draw checked (tests/test_samples.py).
PILOT_DRAWS, PILOT_NODES, PILOT_WINDOW, PILOT_SAFETY = 16, 48, 5, 100.0
INTERP_TOL = 1e-6        # warn when the a posteriori estimate exceeds this
COV_POINTS = 128          # keep the conditional covariance when there are at most this many
_MEMO_BYTES = 512 * 2**20
_memo = OrderedDict()     # point draws shared by samples() and correlation() in a process


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
        from ..eoc import edge_of_chaos
        sigma_w2 = edge_of_chaos(activation, sigma_b2).sigma_w2
    return float(sigma_w2), float(sigma_b2)


def choose_sampler(model, n_points, width, rank=None):
    """``"gram"`` or ``"explicit"``: the one with fewer operations per layer."""
    gram = layer_cost(model, "gram", n_points, width, rank)
    explicit = layer_cost(model, "explicit", n_points, width)
    return "gram" if gram <= explicit else "explicit"


def evaluation_plan(model, activation, sigma_b2, input_dim, nodes, n_out):
    """``("homogeneous" | "chebyshev" | "direct", K)`` for the ``--nodes`` option value;
    ``K = None`` means "chosen by the pilot" (:func:`choose_nodes`).

    ``nodes=None`` is automatic; ``0`` asks for direct evaluation at every input.
    """
    if nodes == 0:
        return "direct", 0
    if nodes is None:
        if activation == "relu":
            if sigma_b2 == 0.0 and input_dim == 1:
                return "homogeneous", 2
            return "direct", 0  # piecewise linear with kinks: no polynomial shortcut
        if model == "feedforward":
            return "direct", 0  # rough in z at the edge of chaos (module docstring)
        if n_out <= PILOT_NODES:
            return "direct", 0  # no fewer nodes than inputs to be had
        return "chebyshev", None
    return "chebyshev", int(nodes)  # nodes >= 2 (constraints.SAMPLES)


def choose_nodes(model, activation, depth, width, sigma_w2, sigma_b2, z_min, z_max, seed):
    """Chebyshev nodes per axis from a pilot; returns ``(K, pilot record)``.

    The pilot simulates PILOT_DRAWS draws (their own streams) of the 1-D model at
    PILOT_NODES nodes, takes the largest absolute Chebyshev coefficients over the draws,
    ``e_m``, and returns the smallest ``K >= 6`` with ``e_{K-2} + ... + e_{K+2}`` below
    ``INTERP_TOL / PILOT_SAFETY``. 2-D inputs use the same K per axis (each input
    coordinate drives half of the state, as smoothly as the 1-D input drives all of it);
    every run checks its own draws a posteriori (:func:`tail_estimate`).
    The largest coefficient envelope over 16 draws, ``e_{K-2} + ... + e_{K+2}``, is held
    100x below the tolerance because the run's maximum is over thousands of draws.
    """
    pts = chebyshev.nodes(PILOT_NODES, z_min, z_max)
    sim = point_draws(model, activation, depth, width, sigma_w2, sigma_b2, pts,
                      PILOT_DRAWS, seed, f"pilot {model} {activation}", purpose="pilot")
    y = sim["y"][np.isfinite(sim["y"]).all(axis=1)]
    if len(y) == 0:
        return PILOT_NODES - PILOT_WINDOW, {"draws": PILOT_DRAWS, "finite": 0}
    env = np.abs(matmul_nt(y, chebyshev.coefficients_matrix(PILOT_NODES))).max(axis=0)
    window = np.convolve(env, np.ones(PILOT_WINDOW), mode="valid")  # e_m + ... + e_{m+4}
    # K nodes: the a posteriori estimate looks at c_{K-2} and c_{K-1}; bound e_{K-2..K+2}
    ok = np.flatnonzero(window[4:] <= INTERP_TOL / PILOT_SAFETY)
    k = int(ok[0]) + 6 if ok.size else PILOT_NODES - PILOT_WINDOW
    return k, {"draws": PILOT_DRAWS, "nodes": PILOT_NODES, "finite": int(len(y)),
               "envelope": [float(v) for v in env]}


def resolve_estimator(model, plan, estimator):
    """``empirical`` or ``conditional`` (feedforward only, and only when every output is
    a multiple of one simulated point, so the conditional variances map through P).
    The combinations that cannot work are refused by the rules of constraints.SAMPLES."""
    if estimator == "auto":
        return "conditional" if model == "feedforward" and plan != "chebyshev" else "empirical"
    return estimator


def _grid(n, lo, hi, input_dim):
    """Evenly spaced inputs, both ends included; 2-D: all ``(z1, z2)``, z1 slowest."""
    z = np.linspace(lo, hi, n)
    if input_dim == 1:
        return z
    z1, z2 = np.meshgrid(z, z, indexing="ij")
    return np.column_stack([z1.ravel(), z2.ravel()])


def _points_and_map(plan, k, z_out, z_min, z_max, input_dim):
    """The simulated points and the map ``P`` with ``y(z_out) = P y(points)``."""
    if plan == "homogeneous":
        points = np.array([-1.0, 1.0])
        P = np.column_stack([np.maximum(-z_out, 0.0), np.maximum(z_out, 0.0)])
        return points, P
    if plan == "chebyshev":
        if input_dim == 1:
            return (chebyshev.nodes(k, z_min, z_max),
                    chebyshev.interpolation_matrix(k, z_min, z_max, z_out))
        axis = np.unique(z_out[:, 0])
        return (chebyshev.tensor_nodes(k, z_min, z_max),
                chebyshev.tensor_interpolation_matrix(k, z_min, z_max, axis, axis))
    return z_out, None  # direct: P = I


def tail_estimate(values, k, input_dim):
    """Per draw: the last two Chebyshev coefficients' absolute values summed (per axis,
    worst axis, for 2-D): an a posteriori estimate of the interpolation error."""
    T = chebyshev.coefficients_matrix(k)
    if input_dim == 1:
        return np.abs(matmul_nt(values, T[-2:])).sum(axis=1)
    C = np.array([matmul_nt(matmul(T, v.reshape(k, k)), T) for v in values])  # T V T^T
    return np.maximum(np.abs(C[:, -2:, :]).sum(axis=(1, 2)),
                      np.abs(C[:, :, -2:]).sum(axis=(1, 2)))


def _run(model, act, depth, width, sigma_w2, sigma_b2, points, draws, key, sampler,
         want_cov, label):
    """Simulate; returns a dict with ``y`` (and for feedforward ``var``, ``cov_sum``,
    ``rank``)."""
    m = points.shape[0]
    work = layer_cost(model, sampler, m, width)
    if model == "resnet":
        kernel = rn.stepper(sampler, key, rn.resnet_inputs(points, width), depth, sigma_w2,
                            sigma_b2, act.code, act.d1_at_0, act.d2_at_0, rn.RESNET)
        chunk, layers = driver.plan_chunks(draws, depth, work, 8 * m * width)
        with np.errstate(over="ignore", invalid="ignore"):
            y = driver.run_chunked(kernel, draws, label, chunk, depth, layers)
        return {"y": y}
    # one accumulator for all chunks, summed in draw order: the same for any chunking
    cov_sum = np.zeros((m, m) if want_cov else (0, 0))
    kernel = ff.stepper(sampler, key, points, depth, width, sigma_w2, sigma_b2, act.code,
                        cov_sum, driver.DIVERGENCE_BOUND)
    # per draw of a chunk: the hidden state (M x D) and the conditional covariance (M x M)
    chunk, layers = driver.plan_chunks(draws, depth, work, 8 * m * (width + want_cov * m))
    with np.errstate(over="ignore", invalid="ignore"):
        y, var, rank = ff.run_chunked(kernel, draws, label, chunk, depth, layers)
    return {"y": y, "var": var, "cov_sum": cov_sum if want_cov else None, "rank": rank}


def memory_estimate(model, n_points, n_out, width, draws, plan):
    """Bytes a run needs at most: the draws at the points (and conditional variances),
    the per-thread work arrays of the sampler :func:`choose_sampler` picks (Gram: N x N
    factor and matrix; explicit: a D x D weight matrix; both: four N x D state arrays),
    the map P and one quantile block. Never draws x inputs: outputs are mapped in blocks."""
    import numba
    gram = choose_sampler(model, n_points, width) == "gram"
    per_thread = 8 * (2 * n_points ** 2 * gram + 4 * n_points * width
                      + width * width * (not gram))
    outputs = 8 * draws * n_points * (3 if model == "feedforward" else 1)
    mapping = 0 if plan == "direct" else 8 * n_out * n_points
    return (outputs + numba.get_num_threads() * per_thread + mapping
            + statistics.QUANTILE_BLOCK_BYTES)


def point_draws(model, activation, depth, width, sigma_w2, sigma_b2, points, draws, seed,
                label, want_cov=False, purpose="samples"):
    """Simulate ``draws`` draws at ``points`` ((M,) or (M, 2)).

    Returns a dict: ``y`` (draws, M) with NaN rows for divergent draws, ``sampler``, and
    for the feedforward model ``var`` (draws, M), ``cov_sum`` (M x M or None) and
    ``rank`` (draws,): the conditional law of the output given the last hidden layer.
    Memoised in-process (Figs. 4 and 5 share the L = D = 500 ResNets when drawn by one
    ``resdiff fig`` run). Draw ``i`` depends only on ``(seed, model, sampler, i)``.
    """
    if model not in MODELS:
        raise UserError(f"unknown model {model!r} (known: {', '.join(MODELS)})")
    act = get_activation(activation)
    points = np.ascontiguousarray(points, dtype=float)
    m = points.shape[0]
    want_cov = model == "feedforward" and (want_cov or m <= COV_POINTS)
    memo_key = (purpose, model, activation, depth, width, float(sigma_w2), float(sigma_b2),
                points.shape, points.tobytes(), draws, seed)
    hit = _memo.get(memo_key)
    if hit is not None and (not want_cov or hit.get("cov_sum") is not None):
        _memo.move_to_end(memo_key)
        return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in hit.items()}
    sampler = choose_sampler(model, m, width)
    pilot = None
    if model == "feedforward" and sampler == "explicit" and m > 8 and draws > 1:
        # the worst-case rank favours explicit weights; the factor's actual rank is often
        # far smaller (deep networks at the edge of chaos): measure it on draw 0
        key = rng.stream_key(seed, f"{purpose}/{model}/gram")
        with interrupt.shielded():
            pilot = ff.gram_paths(key, 0, 1, ff.as_inputs(points), depth, width, sigma_w2,
                                  sigma_b2, act.code, np.zeros((0, 0)),
                                  driver.DIVERGENCE_BOUND)[2]
        if np.isfinite(pilot[0]):
            sampler = choose_sampler(model, m, width, rank=float(pilot[0]))
    key = rng.stream_key(seed, f"{purpose}/{model}/{sampler}")
    out = _run(model, act, depth, width, sigma_w2, sigma_b2, points, draws, key, sampler,
               want_cov, label)
    # the ResNet kernels mark only non-finite draws; the feedforward ones already applied
    # the bound to y and to the conditional variances (feedforward._accumulate)
    out["divergent"] = driver.mark_divergent(out["y"])
    out["sampler"] = sampler
    if pilot is not None:
        out["pilot_rank"] = float(pilot[0])
    _memo[memo_key] = out
    _memo.move_to_end(memo_key)
    while len(_memo) > 1 and sum(sum(v.nbytes for v in e.values() if isinstance(v, np.ndarray))
                                 for e in _memo.values()) > _MEMO_BYTES:
        _memo.popitem(last=False)
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in out.items()}


def _simulate(model, activation, depth, width, sigma_w2, sigma_b2, z_out, z_min, z_max,
              input_dim, draws, nodes, estimator, seed, label, want_cov):
    """Shared part of :func:`samples` and :func:`correlation` (parameters already checked
    against constraints.SAMPLES or CORRELATION)."""
    sigma_w2, sigma_b2 = resolve_sigmas(model, activation, sigma_w2, sigma_b2)
    act = get_activation(activation)
    plan, k = evaluation_plan(model, activation, sigma_b2, input_dim, nodes, z_out.shape[0])
    pilot = None
    if plan == "chebyshev" and k is None:
        driver.check_memory(memory_estimate(model, PILOT_NODES, z_out.shape[0], width,
                                            draws, plan), f"{model} {activation}")
        k, pilot = choose_nodes(model, activation, depth, width, sigma_w2, sigma_b2, z_min,
                                z_max, seed)
        if k ** input_dim >= z_out.shape[0]:
            plan, k = "direct", 0  # as many nodes as inputs: evaluate the inputs
    estimator = resolve_estimator(model, plan, estimator)
    points, P = _points_and_map(plan, k, z_out, z_min, z_max, input_dim)
    n_points, n_out = points.shape[0], z_out.shape[0]
    driver.check_memory(memory_estimate(model, n_points, n_out, width, draws, plan),
                        f"{model} {activation} ({n_points} simulated points, {draws} draws)")
    sim = point_draws(model, activation, depth, width, sigma_w2, sigma_b2, points, draws,
                      seed, label, want_cov=want_cov and estimator == "conditional")
    bad = sim["divergent"]
    n_bad = int(bad.sum())
    warnings = []
    if n_bad == draws:
        raise AllDiverged(f"all {draws} draws of {model} {activation} diverged (L = {depth}, "
                          f"D = {width}, sigma_w2 = {sigma_w2:g}, sigma_b2 = {sigma_b2:g})")
    if n_bad:
        warnings.append(f"{n_bad} of {draws} draws diverged (output non-finite or beyond "
                        f"{driver.DIVERGENCE_BOUND:g}); they are left out of every statistic")
    meta = {
        "model": model, "activation": activation, "sigma_w2": sigma_w2,
        "sigma_b2": sigma_b2, "phi_prime_0": act.d1_at_0, "phi_second_0": act.d2_at_0,
        "evaluation": plan, "nodes": k, "points": int(n_points), "sampler": sim["sampler"],
        "estimator": estimator,
        "layer_cost": {s: layer_cost(model, s, n_points, width) for s in ("gram", "explicit")},
        "divergent": n_bad, "draws_used": draws - n_bad,
    }
    if "rank" in sim and np.isfinite(sim["rank"]).any():
        meta["mean_factor_rank"] = float(np.nanmean(sim["rank"]))
    if pilot is not None:
        meta["nodes_pilot"] = pilot
    if "pilot_rank" in sim:
        meta["pilot_rank"] = sim["pilot_rank"]
    if plan == "chebyshev":
        tail = tail_estimate(sim["y"][~bad], k, input_dim)
        est = float(tail.max())
        meta["interp_error_estimate"] = est
        meta["interp_error_estimate_median"] = float(np.median(tail))
        if est > INTERP_TOL:
            warnings.append(f"interpolation error estimate {est:.2g} exceeds {INTERP_TOL:g} "
                            "(last Chebyshev coefficients of the worst draw); raise --nodes "
                            "or use --nodes 0 for direct evaluation")
    return sim, bad, P, meta, warnings


@checked(SAMPLES)
def samples(*, model, activation, depth, width, inputs, z_min, z_max, input_dim, draws,
            keep_draws, quantiles, sigma_w2, sigma_b2, nodes=None, estimator="auto", seed=0):
    """Function draws and per-input quantiles (Figs. 1, 4, 8).

    CSV rows: ``z`` (and ``z2``), ``kind`` (``draw`` / ``quantile``), ``id`` (draw number
    or quantile level), ``value``. 2-D inputs form an ``inputs x inputs`` grid with ``z``
    (the first coordinate) varying slowest.
    """
    levels = [float(q) for q in quantiles]
    z_out = _grid(inputs, z_min, z_max, input_dim)
    sim, bad, P, meta, warnings = _simulate(
        model, activation, depth, width, sigma_w2, sigma_b2, z_out, z_min, z_max, input_dim,
        draws, nodes, estimator, seed, f"samples {model} {activation}", want_cov=False)
    good = np.flatnonzero(~bad)
    kept = good[:keep_draws]
    n_out = z_out.shape[0]
    var = sim["var"] if meta["estimator"] == "conditional" else None
    qv = (statistics.quantiles(sim["y"], good, P, levels, var) if levels
          else np.empty((0, n_out)))
    if levels:
        se = statistics.quantile_se(sim["y"], good, P, levels, n_out, var)
        if se is not None:
            meta["quantile_se_max"], meta["quantile_se_median"] = se
    y_kept = sim["y"][kept]
    kept_values = y_kept if P is None else matmul_nt(y_kept, P)
    coords = ({"z": z_out} if input_dim == 1 else {"z": z_out[:, 0], "z2": z_out[:, 1]})
    frames = [pd.DataFrame({**coords, "kind": "draw", "id": float(d), "value": kept_values[i]})
              for i, d in enumerate(kept)]
    frames += [pd.DataFrame({**coords, "kind": "quantile", "id": q, "value": qv[j]})
               for j, q in enumerate(levels)]
    frame = pd.concat(frames, ignore_index=True)
    meta["kept_draws"] = [int(d) for d in kept]
    return Result(frame, meta, warnings)


@checked(CORRELATION)
def correlation(*, model, activation, depth, width, grid, z_min, z_max, draws, sigma_w2,
                sigma_b2, nodes=None, estimator="auto", seed=0):
    """Output correlation ``rho[y(z1), y(z2)]`` over a ``grid x grid`` lattice (Fig. 5).

    CSV rows: ``z1``, ``z2``, ``rho`` with ``z1`` varying slowest.
    """
    z_out = _grid(grid, z_min, z_max, 1)
    sim, bad, P, meta, warnings = _simulate(
        model, activation, depth, width, sigma_w2, sigma_b2, z_out, z_min, z_max, 1, draws,
        nodes, estimator, seed, f"correlation {model} {activation}", want_cov=True)
    cov_sum = sim["cov_sum"] if meta["estimator"] == "conditional" else None
    rho, zero = statistics.correlation(statistics.covariance(sim["y"], np.flatnonzero(~bad),
                                                             P, cov_sum))
    if zero.any():
        warnings.append("the output has zero variance at z = "
                        f"{', '.join(f'{v:g}' for v in z_out[zero])}; its correlations are "
                        "undefined (NaN in the CSV, blank in the figure)")
    z1, z2 = np.meshgrid(z_out, z_out, indexing="ij")
    frame = pd.DataFrame({"z1": z1.ravel(), "z2": z2.ravel(), "rho": rho.ravel()})
    finite = rho[np.isfinite(rho)]
    meta["rho_min"] = float(finite.min()) if finite.size else None
    return Result(frame, meta, warnings)
