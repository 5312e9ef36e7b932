"""Numba kernels that simulate networks at initialisation.

Every kernel takes a stream key (:func:`resdiff.rng.stream_key`) and a range of draw
indices; draw ``i`` uses only the streams ``(key, i, *)``, so results do not depend
on the thread count or on how the draws are chunked.
"""
