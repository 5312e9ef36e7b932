"""One function per figure: (frames, sidecars, preset) -> matplotlib Figure; the
training figures (6, 7) also take ``left_out``, the sizes D = L a partial figure leaves
out (``resdiff fig --max-size``), and ``missing``, the datasets not computed yet
(``resdiff fig --partial``), for their caption.

Plots never compute anything beyond summaries for display (KDEs, quantile lines).
"""
