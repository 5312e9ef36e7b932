"""resdiff: regenerate the figures of "Doubly infinite residual networks: a diffusion
process approach" (Peluchetti & Favaro).

Importing the package has no side effects: Numba is configured by :mod:`resdiff.jit`
when the first kernel module is imported.
"""
__version__ = "0.1.0"
