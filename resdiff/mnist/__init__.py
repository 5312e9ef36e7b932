"""MNIST for Figures 6-7: the data layer (:mod:`.data`), kernel regression with the
completed-model kernels (:mod:`.kernel`); training lives in its own module."""

from .data import (
    FILES,
    MD5,
    Mnist,
    as_features,
    load_mnist,
    locate,
    one_hot,
    read_idx,
    training_subset,
)

__all__ = [
    "FILES",
    "MD5",
    "Mnist",
    "as_features",
    "load_mnist",
    "locate",
    "one_hot",
    "read_idx",
    "training_subset",
]
