"""The edge of chaos of the feedforward network (its default sigmas in Figs. 1 and 5):
one row ``activation, sigma_b2, sigma_w2, q_star, chi_1`` (:mod:`resdiff.edge_of_chaos`)."""
import pandas as pd

from ..constraints import EOC, checked, default_eoc_sigma_b2
from ..edge_of_chaos import GH_NODES, edge_of_chaos
from . import Result


@checked(EOC)
def eoc(*, activation, sigma_b2=None, seed=0):
    """``sigma_b2=None``: the default bias variance of the edge of chaos (ReLU 0,
    otherwise ``EOC_SIGMA_B2``). ``seed`` is unused: the solution is deterministic."""
    if sigma_b2 is None:
        sigma_b2 = default_eoc_sigma_b2(activation)
    sol = edge_of_chaos(activation, sigma_b2)
    frame = pd.DataFrame([{"activation": activation, "sigma_b2": sol.sigma_b2,
                           "sigma_w2": sol.sigma_w2, "q_star": sol.q_star,
                           "chi_1": sol.chi_1}])
    return Result(frame, {"gauss_hermite_nodes": GH_NODES})
