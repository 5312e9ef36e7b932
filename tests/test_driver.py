"""resdiff.sampling.driver: chunking over draws and layers."""

import numpy as np

from resdiff.sampling import driver


def test_layer_chunks_stay_bounded_over_many_fast_chunks_of_draws():
    """Fast calls grow the layer chunk 4x each, but never past the depth: over 2,000
    chunks of draws it once grew past a float's range (an OverflowError at Fig. 4's
    paper preset)."""
    seen = []

    def kernel(start, count, lo, hi, state):
        seen.append(hi - lo)
        state["x"] = state.get("x", 0.0) + (hi - lo)
        return np.full((count, 1), state["x"]) if hi == 3 else None

    out = driver.run_chunked(kernel, 2000, "test", 1, depth=3, layers=3)
    assert out.shape == (2000, 1) and (out == 3).all()
    assert max(seen) <= 3
