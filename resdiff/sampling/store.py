"""Simulations kept for reuse within one process.

Figures drawn by one ``resdiff fig`` process share the simulations they have in common:
Fig. 5's L = D = 500 ResNets and ReLU network are the draws of Figs. 4 and 1, at the
same points, with the same seed. The pipeline creates one :class:`DrawStore` per
process and hands it to every experiment that can use it (``draw_store=``, not a
parameter: it changes no number, only whether a simulation is run again). This module
imports nothing heavy, so the pipeline can create a store before any kernel is loaded.
"""

from collections import OrderedDict

STORE_BYTES = 512 * 2**20


class DrawStore:
    """Values (anything with ``nbytes`` and ``copy()``, e.g.
    :class:`resdiff.sampling.draws.PointDraws`) by key, least recently used dropped
    first once they hold more than ``max_bytes`` together (the newest is always kept).
    Callers get copies, so nothing they do changes what is stored."""

    def __init__(self, max_bytes=STORE_BYTES):
        self.max_bytes = max_bytes
        self._entries = OrderedDict()

    def __len__(self):
        return len(self._entries)

    def __contains__(self, key):
        return key in self._entries

    @property
    def nbytes(self):
        return sum(v.nbytes for v in self._entries.values())

    def get(self, key):
        """A copy of the value stored under ``key``, or None."""
        hit = self._entries.get(key)
        if hit is None:
            return None
        self._entries.move_to_end(key)
        return hit.copy()

    def put(self, key, value):
        """Store a copy of ``value`` under ``key`` (replacing any), then drop the least
        recently used values while over the budget."""
        self._entries[key] = value.copy()
        self._entries.move_to_end(key)
        while len(self._entries) > 1 and self.nbytes > self.max_bytes:
            self._entries.popitem(last=False)
