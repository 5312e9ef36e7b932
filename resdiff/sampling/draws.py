"""Draws of a network's output at a set of points: the sampler chosen, the kernels run in
chunks, divergent draws marked.

:func:`point_draws` simulates ``draws`` independent networks (the ResNet of
:mod:`resdiff.sampling.resnet` or the feedforward network of
:mod:`resdiff.sampling.feedforward`) at points ``(M,)`` or ``(M, 2)`` by the exact Gram
sampler or with explicit weights, whichever needs fewer operations
(:func:`resdiff.sampling.cost.choose_sampler`), and returns a :class:`PointDraws`. Draw
``i`` depends only on ``(seed, purpose, model, sampler, i)``, never on the thread count
or the chunking (:mod:`resdiff.sampling.driver`).
"""

from dataclasses import dataclass, replace

import numpy as np

from .. import rng
from ..constraints import MODELS
from ..errors import UserError
from ..activations import activation as get_activation
from . import driver
from . import feedforward as ff
from . import resnet as rn
from .cost import choose_sampler, layer_cost

COV_POINTS = 128  # feedforward: keep the conditional covariance at up to this many points


@dataclass(frozen=True, eq=False)
class PointDraws:
    """Draws of the output at M points.

    ``y`` (draws, M), NaN rows for the ``divergent`` (draws,) ones; ``sampler``
    (``"gram"`` or ``"explicit"``). Feedforward only, the conditional law of the output
    given the last hidden layer, ``N(0, S_L)``: ``var`` (draws, M), the diagonal of
    ``S_L``; ``cov_sum`` (M x M, or None when not kept), ``S_L`` summed over the draws
    that did not diverge; ``rank`` (draws,), the mean numerical rank of the Gram factors
    (NaN with explicit weights); ``pilot_rank``, the rank measured on draw 0 when the
    sampler was chosen from it.
    """

    y: np.ndarray
    divergent: np.ndarray
    sampler: str
    var: np.ndarray = None
    cov_sum: np.ndarray = None
    rank: np.ndarray = None
    pilot_rank: float = None

    def _arrays(self):
        return {k: v for k, v in vars(self).items() if isinstance(v, np.ndarray)}

    @property
    def nbytes(self):
        return sum(v.nbytes for v in self._arrays().values())

    def copy(self):
        return replace(self, **{k: v.copy() for k, v in self._arrays().items()})


def _run(
    model, act, depth, width, sigma_w2, sigma_b2, points, draws, key, sampler, want_cov, label
):
    """Simulate; returns ``(y, var, cov_sum, rank)`` (the last three None for the
    ResNet)."""
    m = points.shape[0]
    work = layer_cost(model, sampler, m, width)
    if model == "resnet":
        kernel = rn.stepper(
            sampler,
            key,
            rn.resnet_inputs(points, width),
            depth,
            sigma_w2,
            sigma_b2,
            act.code,
            act.d1_at_0,
            act.d2_at_0,
            rn.RESNET,
        )
        chunk, layers = driver.plan_chunks(draws, depth, work, 8 * m * width)
        with np.errstate(over="ignore", invalid="ignore"):
            y = driver.run_chunked(kernel, draws, label, chunk, depth, layers)
        return y, None, None, None
    # one accumulator for all chunks, summed in draw order: the same for any chunking
    cov_sum = np.zeros((m, m) if want_cov else (0, 0))
    kernel = ff.stepper(
        sampler,
        key,
        points,
        depth,
        width,
        sigma_w2,
        sigma_b2,
        act.code,
        cov_sum,
        driver.DIVERGENCE_BOUND,
    )
    # per draw of a chunk: the hidden state (M x D) and the conditional covariance (M x M)
    chunk, layers = driver.plan_chunks(draws, depth, work, 8 * m * (width + want_cov * m))
    with np.errstate(over="ignore", invalid="ignore"):
        y, var, rank = ff.run_chunked(kernel, draws, label, chunk, depth, layers)
    return y, var, cov_sum if want_cov else None, rank


def point_draws(
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
    want_cov=False,
    purpose="samples",
    store=None,
):
    """Simulate ``draws`` draws at ``points`` ((M,) or (M, 2)); a :class:`PointDraws`.

    The feedforward conditional covariance is kept when ``want_cov`` or M <= COV_POINTS.
    With a :class:`resdiff.sampling.store.DrawStore`, draws of the same model, points,
    draws, seed and ``purpose`` already there are reused instead of simulated again.
    """
    if model not in MODELS:
        raise UserError(f"unknown model {model!r} (known: {', '.join(MODELS)})")
    act = get_activation(activation)
    points = np.ascontiguousarray(points, dtype=float)
    m = points.shape[0]
    want_cov = model == "feedforward" and (want_cov or m <= COV_POINTS)
    key = (
        purpose,
        model,
        activation,
        depth,
        width,
        float(sigma_w2),
        float(sigma_b2),
        points.shape,
        points.tobytes(),
        draws,
        seed,
    )
    hit = None if store is None else store.get(key)
    if hit is not None and (not want_cov or hit.cov_sum is not None):
        return hit
    sampler = choose_sampler(model, m, width)
    pilot = None
    if model == "feedforward" and sampler == "explicit" and m > 8 and draws > 1:
        # the worst-case rank favours explicit weights; the factor's actual rank is often
        # far smaller (deep networks at the edge of chaos): measure it on draw 0
        # chunked over layers like any run, so that a signal stops it within a chunk
        stream = rng.stream_key(seed, f"{purpose}/{model}/gram")
        kernel = ff.stepper(
            "gram",
            stream,
            points,
            depth,
            width,
            sigma_w2,
            sigma_b2,
            act.code,
            np.zeros((0, 0)),
            driver.DIVERGENCE_BOUND,
        )
        _, layers = driver.plan_chunks(1, depth, layer_cost(model, "gram", m, width), 8 * m * width)
        with np.errstate(over="ignore", invalid="ignore"):
            pilot = ff.run_chunked(kernel, 1, f"{label} (rank pilot)", 1, depth, layers)[2]
        if np.isfinite(pilot[0]):
            sampler = choose_sampler(model, m, width, rank=float(pilot[0]))
    stream = rng.stream_key(seed, f"{purpose}/{model}/{sampler}")
    y, var, cov_sum, rank = _run(
        model,
        act,
        depth,
        width,
        sigma_w2,
        sigma_b2,
        points,
        draws,
        stream,
        sampler,
        want_cov,
        label,
    )
    # the ResNet kernels mark only non-finite draws; the feedforward ones already applied
    # the bound to y and to the conditional variances (feedforward._accumulate)
    divergent = driver.mark_divergent(y)
    out = PointDraws(
        y, divergent, sampler, var, cov_sum, rank, None if pilot is None else float(pilot[0])
    )
    if store is not None:
        store.put(key, out)
    return out
