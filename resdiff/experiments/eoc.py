"""The edge of chaos of the feedforward network (its default sigmas in Figs. 1 and 5):
one row ``activation, sigma_b2, sigma_w2, q_star, chi_1`` (:mod:`resdiff.edge_of_chaos`)."""

import pandas as pd

from ..constraints import EOC, checked, default_eoc_sigma_b2
from ..edge_of_chaos import GH_NODES, edge_of_chaos
from . import Result


@checked(EOC)
def eoc(*, activation: str = "tanh", sigma_b2: float | None = None, seed: int = 0) -> Result:
    """The edge of chaos of the feedforward network: the ``sigma_w^2`` at which the
    variance fixed point ``q* = sigma_w^2 E[phi(sqrt(q*) Z)^2] + sigma_b^2`` has
    ``chi_1 = sigma_w^2 E[phi'(sqrt(q*) Z)^2] = 1`` (Gauss-Hermite quadrature, root
    finding). It gives the feedforward networks of Figures 1 and 5 their variances.

    Parameters
    ----------
    activation : {"tanh", "swish", "relu"}
        The activation phi.
    sigma_b2 : float or None
        Bias variance. None: ReLU 0 (its only edge of chaos), otherwise 0.05.
    seed : int
        Unused (the solution is deterministic); accepted like every experiment.

    Returns
    -------
    Result
        ``.frame``: one row ``activation, sigma_b2, sigma_w2, q_star, chi_1`` (``q_star``
        NaN for ReLU, where every q is a fixed point).

    Raises
    ------
    ParameterError
        A parameter out of range, or no edge of chaos for this ``sigma_b2`` (a
        ``ValueError`` naming the parameter).

    Examples
    --------
    >>> import resdiff
    >>> row = resdiff.eoc(activation="tanh").frame.iloc[0]
    >>> print(f"sigma_w2 = {row['sigma_w2']:.5f}, q_star = {row['q_star']:.5f}")
    sigma_w2 = 1.76095, q_star = 0.57005
    """
    if sigma_b2 is None:
        sigma_b2 = default_eoc_sigma_b2(activation)
    sol = edge_of_chaos(activation, sigma_b2)
    frame = pd.DataFrame(
        [
            {
                "activation": activation,
                "sigma_b2": sol.sigma_b2,
                "sigma_w2": sol.sigma_w2,
                "q_star": sol.q_star,
                "chi_1": sol.chi_1,
            }
        ]
    )
    return Result(frame, {"gauss_hermite_nodes": GH_NODES})
