"""Where and how function draws are evaluated (Figs. 1, 4, 5, 8): the evaluation plan,
the Chebyshev pilot, the memory check, then the draws (:func:`evaluate`).

**Where a draw is evaluated.** Each draw of a network is a random function
``z -> y(z)``; it is simulated at a set of points and mapped linearly onto the requested
inputs, ``y_out = P y_points`` (:func:`evaluation_plan`, :func:`points_and_map`):

* ``homogeneous``: ReLU without bias is positively homogeneous (both models), so
  ``y(z) = z y(1)`` for ``z > 0`` and ``|z| y(-1)`` for ``z < 0``, exactly: two points.
* ``chebyshev``: for the ResNet with a smooth activation, ``y`` is an analytic function
  of ``z`` whose Chebyshev coefficients decay geometrically; the draw is simulated at
  ``K`` Chebyshev-Lobatto nodes on ``[z_min, z_max]`` (``K x K`` tensor nodes for 2-D
  inputs) and interpolated barycentrically (:mod:`resdiff.sampling.chebyshev`). Node
  values are exact joint draws, so this interpolates exact draws; tests bound the
  interpolation error against direct evaluation with the same explicit weights, and
  every run reports an a posteriori estimate (:func:`tail_estimate`, the last Chebyshev
  coefficients, measured to overstate the error ~10x). K comes from a pilot
  (:func:`choose_nodes`) unless given, and is raised until that estimate meets
  INTERP_TOL (:func:`evaluate`). This plan is used whatever the number of inputs.
* ``direct``: every input is a point (``P = None``, the identity). The default for the
  feedforward network with a smooth activation: at the edge of chaos its draws are
  rough in ``z`` (their Chebyshev coefficients do not decay), so no interpolation is
  used.

**The same network on any grid.** A draw ``i`` is a function of ``(seed, i)`` and of
the simulated points. With Chebyshev nodes and with the homogeneous plan the points
depend on the range ``[z_min, z_max]`` and K alone, never on ``--inputs``, and so does
the sampler (:func:`resdiff.sampling.cost.choose_sampler` sees K points): refining the
grid gives the same draw, whose values at a common input agree to rounding (the
interpolation matrix rows are the same; tests/test_samples.py). With explicit weights
(the sampler for many points) a draw is a network's weights, the same for any points.
It cannot hold for the Gram sampler at the inputs themselves (``direct`` evaluation
with few inputs, and ``--nodes 0``): it draws the pre-activations at exactly those
points jointly, through a factor of their Gram matrix, so other points are another
joint draw, equal in law but not path by path. Only the automatic K can change the
draw, when more draws (``--draws``) move the a posteriori estimate.

The points are then simulated by :func:`resdiff.sampling.draws.point_draws`. Divergent
draws (swish) are counted and reported in :class:`Evaluation`; the statistics
(:mod:`resdiff.statistics`) leave them out.
"""

from dataclasses import dataclass, field

import numpy as np

from ..errors import AllDiverged
from ..activations import activation as get_activation
from . import chebyshev, driver
from .cost import choose_sampler, layer_cost
from .draws import PointDraws, point_draws
from .linalg import matmul, matmul_nt

# Chebyshev nodes for the ResNet are chosen per run by a pilot (:func:`choose_nodes`):
# PILOT_DRAWS draws at PILOT_NODES nodes give an envelope of the Chebyshev coefficients,
# and K is the smallest number of nodes whose next coefficients are below
# INTERP_TOL / PILOT_SAFETY (the pilot sees few draws; the run sees thousands). At the
# paper's (L, D) = (500, 10), (500, 100), (500, 500) this gives K = 18, 15, 14 (tanh)
# and 20, 18, 18 (swish) (figures/data/paper/fig4-*.csv.json), and the interpolation
# error against direct evaluation with the same explicit weights is below 1e-7 on every
# draw checked (tests/test_samples.py).
PILOT_DRAWS, PILOT_NODES, PILOT_WINDOW, PILOT_SAFETY = 16, 48, 5, 100.0
INTERP_TOL = 1e-6  # target of the a posteriori estimate (warn when not met)
# automatic K: while the run's own estimate exceeds INTERP_TOL, simulate again with
# K + max(NODES_STEP, K // 4) nodes, up to MAX_NODES (then warn)
NODES_STEP, MAX_NODES = 2, 64


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
        # Chebyshev even for few inputs: the nodes depend on the range and their count
        # alone, so a draw is the same network whatever --inputs (module docstring)
        return "chebyshev", None
    return "chebyshev", int(nodes)  # nodes >= 2 (constraints.SAMPLES)


def choose_nodes(
    model, activation, depth, width, sigma_w2, sigma_b2, z_min, z_max, seed, store=None
):
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
    pilot = point_draws(
        model,
        activation,
        depth,
        width,
        sigma_w2,
        sigma_b2,
        pts,
        PILOT_DRAWS,
        seed,
        f"pilot {model} {activation}",
        purpose="pilot",
        store=store,
    )
    y = pilot.y[np.isfinite(pilot.y).all(axis=1)]
    if len(y) == 0:
        return PILOT_NODES - PILOT_WINDOW, {"draws": PILOT_DRAWS, "finite": 0}
    env = np.abs(matmul_nt(y, chebyshev.coefficients_matrix(PILOT_NODES))).max(axis=0)
    window = np.convolve(env, np.ones(PILOT_WINDOW), mode="valid")  # e_m + ... + e_{m+4}
    # K nodes: the a posteriori estimate looks at c_{K-2} and c_{K-1}; bound e_{K-2..K+2}
    ok = np.flatnonzero(window[4:] <= INTERP_TOL / PILOT_SAFETY)
    k = int(ok[0]) + 6 if ok.size else PILOT_NODES - PILOT_WINDOW
    return k, {
        "draws": PILOT_DRAWS,
        "nodes": PILOT_NODES,
        "finite": int(len(y)),
        "envelope": [float(v) for v in env],
    }


def resolve_estimator(model, plan, estimator):
    """``empirical`` or ``conditional`` (feedforward only, and only when every output is
    a multiple of one simulated point, so the conditional variances map through P).
    The combinations that cannot work are refused by the rules of constraints.SAMPLES."""
    if estimator == "auto":
        return "conditional" if model == "feedforward" and plan != "chebyshev" else "empirical"
    return estimator


def points_and_map(plan, k, z_out, z_min, z_max, input_dim):
    """The simulated points and the map ``P`` with ``y(z_out) = P y(points)``."""
    if plan == "homogeneous":
        points = np.array([-1.0, 1.0])
        P = np.column_stack([np.maximum(-z_out, 0.0), np.maximum(z_out, 0.0)])
        return points, P
    if plan == "chebyshev":
        if input_dim == 1:
            return (
                chebyshev.nodes(k, z_min, z_max),
                chebyshev.interpolation_matrix(k, z_min, z_max, z_out),
            )
        axis = np.unique(z_out[:, 0])
        return (
            chebyshev.tensor_nodes(k, z_min, z_max),
            chebyshev.tensor_interpolation_matrix(k, z_min, z_max, axis, axis),
        )
    return z_out, None  # direct: P = I


def tail_estimate(values, k, input_dim):
    """Per draw: the last two Chebyshev coefficients' absolute values summed (per axis,
    worst axis, for 2-D): an a posteriori estimate of the interpolation error."""
    T = chebyshev.coefficients_matrix(k)
    if input_dim == 1:
        return np.abs(matmul_nt(values, T[-2:])).sum(axis=1)
    C = np.array([matmul_nt(matmul(T, v.reshape(k, k)), T) for v in values])  # T V T^T
    return np.maximum(np.abs(C[:, -2:, :]).sum(axis=(1, 2)), np.abs(C[:, :, -2:]).sum(axis=(1, 2)))


def memory_estimate(model, n_points, n_out, width, draws, plan):
    """Bytes a run needs at most: the draws at the points (and conditional variances),
    the per-thread work arrays of the sampler :func:`choose_sampler` picks (Gram: N x N
    factor and matrix; explicit: a D x D weight matrix; both: four N x D state arrays),
    the map P and one block of mapped outputs for the quantiles. Never draws x inputs:
    outputs are mapped in blocks."""
    import numba
    from ..statistics import QUANTILE_BLOCK_BYTES

    gram = choose_sampler(model, n_points, width) == "gram"
    per_thread = 8 * (2 * n_points**2 * gram + 4 * n_points * width + width * width * (not gram))
    outputs = 8 * draws * n_points * (3 if model == "feedforward" else 1)
    mapping = 0 if plan == "direct" else 8 * n_out * n_points
    return outputs + numba.get_num_threads() * per_thread + mapping + QUANTILE_BLOCK_BYTES


@dataclass(frozen=True, eq=False)
class Evaluation:
    """Draws at the simulated points and how they map onto the outputs.

    ``draws`` at the simulated points; ``P`` (outputs x points, or
    None: the points are the outputs); ``good``, the indices of the draws that did not
    diverge, in draw order; ``estimator`` (``empirical`` or ``conditional``); ``meta``,
    what the sidecar records; ``warnings``, lines for the user.
    """

    draws: PointDraws
    P: np.ndarray
    good: np.ndarray
    estimator: str
    meta: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)


def evaluate(
    model,
    activation,
    depth,
    width,
    sigma_w2,
    sigma_b2,
    z_out,
    z_min,
    z_max,
    input_dim,
    draws,
    nodes,
    estimator,
    seed,
    label,
    want_cov,
    store=None,
):
    """Plan, check the memory, simulate: the draws of the outputs at ``z_out`` ((n,) or
    (n, 2)) as an :class:`Evaluation` (parameters already checked against
    constraints.SAMPLES or CORRELATION, sigmas resolved). Raises
    :class:`resdiff.errors.AllDiverged` when no draw is left.

    With automatic nodes (``nodes=None``, Chebyshev plan) the pilot's K is raised until
    the run's own a posteriori estimate meets INTERP_TOL (each raise simulates the draws
    again at more nodes, up to MAX_NODES); ``meta["nodes_tried"]`` lists the counts."""
    plan, k = evaluation_plan(model, activation, sigma_b2, input_dim, nodes, z_out.shape[0])
    pilot = None
    auto_nodes = plan == "chebyshev" and k is None
    if auto_nodes:
        driver.check_memory(
            memory_estimate(model, PILOT_NODES, z_out.shape[0], width, draws, plan),
            f"{model} {activation}",
        )
        k, pilot = choose_nodes(
            model, activation, depth, width, sigma_w2, sigma_b2, z_min, z_max, seed, store
        )
    estimator = resolve_estimator(model, plan, estimator)
    tried = []
    while True:
        sim, points, P, est, tail = _simulate(
            model,
            activation,
            depth,
            width,
            sigma_w2,
            sigma_b2,
            z_out,
            z_min,
            z_max,
            input_dim,
            draws,
            plan,
            k,
            estimator,
            seed,
            label,
            want_cov,
            store,
        )
        tried.append(k)
        if not auto_nodes or est <= INTERP_TOL or k >= MAX_NODES:
            break
        k = min(k + max(NODES_STEP, k // 4), MAX_NODES)
    act = get_activation(activation)
    bad = sim.divergent
    n_bad = int(bad.sum())
    warnings = []
    if n_bad:
        warnings.append(
            f"{n_bad} of {draws} draws diverged (output non-finite or beyond "
            f"{driver.DIVERGENCE_BOUND:g}); they are left out of every statistic"
        )
    n_points = points.shape[0]
    meta = {
        "model": model,
        "activation": activation,
        "sigma_w2": sigma_w2,
        "sigma_b2": sigma_b2,
        "phi_prime_0": act.d1_at_0,
        "phi_second_0": act.d2_at_0,
        "evaluation": plan,
        "nodes": k,
        "points": int(n_points),
        "sampler": sim.sampler,
        "estimator": estimator,
        "layer_cost": {s: layer_cost(model, s, n_points, width) for s in ("gram", "explicit")},
        "divergent": n_bad,
        "draws_used": draws - n_bad,
    }
    if sim.rank is not None and np.isfinite(sim.rank).any():
        meta["mean_factor_rank"] = float(np.nanmean(sim.rank))
    if pilot is not None:
        meta["nodes_pilot"] = pilot
    if auto_nodes:
        meta["nodes_tried"] = tried
    if sim.pilot_rank is not None:
        meta["pilot_rank"] = sim.pilot_rank
    if plan == "chebyshev":
        meta["interp_error_estimate"] = est
        meta["interp_error_estimate_median"] = float(np.median(tail))
        if est > INTERP_TOL:
            more = (
                f"even at {MAX_NODES} nodes; " if auto_nodes else ""
            ) + "raise --nodes or use --nodes 0 for direct evaluation"
            warnings.append(
                f"interpolation error estimate {est:.2g} exceeds {INTERP_TOL:g} "
                f"(last Chebyshev coefficients of the worst draw); {more}"
            )
    return Evaluation(sim, P, np.flatnonzero(~bad), estimator, meta, warnings)


def _simulate(
    model,
    activation,
    depth,
    width,
    sigma_w2,
    sigma_b2,
    z_out,
    z_min,
    z_max,
    input_dim,
    draws,
    plan,
    k,
    estimator,
    seed,
    label,
    want_cov,
    store,
):
    """One simulation of :func:`evaluate` at ``k`` nodes: ``(draws at the points, points,
    P, worst a posteriori estimate (NaN unless Chebyshev), per-draw estimates)``."""
    points, P = points_and_map(plan, k, z_out, z_min, z_max, input_dim)
    n_points, n_out = points.shape[0], z_out.shape[0]
    driver.check_memory(
        memory_estimate(model, n_points, n_out, width, draws, plan),
        f"{model} {activation} ({n_points} simulated points, {draws} draws)",
    )
    sim = point_draws(
        model,
        activation,
        depth,
        width,
        sigma_w2,
        sigma_b2,
        points,
        draws,
        seed,
        label,
        want_cov=want_cov and estimator == "conditional",
        store=store,
    )
    bad = sim.divergent
    if int(bad.sum()) == draws:
        raise AllDiverged(
            f"all {draws} draws of {model} {activation} diverged (L = {depth}, "
            f"D = {width}, sigma_w2 = {sigma_w2:g}, sigma_b2 = {sigma_b2:g})"
        )
    if plan != "chebyshev":
        return sim, points, P, float("nan"), None
    tail = tail_estimate(sim.y[~bad], k, input_dim)
    return sim, points, P, float(tail.max()), tail
