"""resdiff: regenerate the figures of "Doubly infinite residual networks: a diffusion
process approach" (Peluchetti & Favaro)."""
__version__ = "0.1.0"
