"""Work per layer and draw of each sampler, in multiply-adds: it steers the choice
between the Gram and the explicit-weight sampler (:func:`choose_sampler`) and the size
of the chunks of work (:func:`resdiff.sampling.driver.plan_chunks`)."""

# Cost of one Gaussian variate and one activation, in multiply-adds (measured on the
# development machine); they only steer the Gram-versus-explicit choice.
RNG_COST, PHI_COST = 8.0, 10.0


def layer_cost(model, sampler, n_points, width, rank=None):
    """Multiply-adds per layer and draw; ``rank`` is the Gram factor's (default
    ``min(n_points, width + 1)``, its largest possible value)."""
    m, d = n_points, width
    k = min(m, d + 1) if rank is None else rank
    phi_cost = PHI_COST * m * d
    if sampler == "explicit":
        return d * d * m + RNG_COST * d * d + phi_cost
    if model == "resnet":  # full Gram matrix, then F Z with a dense loop
        return d * m * (m + 1) / 2.0 + d * m * k + RNG_COST * k * d + phi_cost + m * k * k
    # feedforward: lazy pivoted Cholesky (k columns of S) and F Z
    return 2.0 * d * m * k + RNG_COST * k * d + phi_cost + m * k * k


def choose_sampler(model, n_points, width, rank=None):
    """``"gram"`` or ``"explicit"``: the one with fewer operations per layer."""
    gram = layer_cost(model, "gram", n_points, width, rank)
    explicit = layer_cost(model, "explicit", n_points, width)
    return "gram" if gram <= explicit else "explicit"
