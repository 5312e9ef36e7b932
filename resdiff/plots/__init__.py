"""One function per figure: (frames, sidecars, preset) -> matplotlib Figure.

Plots never compute anything beyond summaries for display (KDEs, quantile lines).
"""
