"""Exact dense search over an in-process copy of the event vectors.

Filtered queries (by entity or time) score their candidates exactly here:
Chroma's metadata filters cost ~175 ms at 100k events, a numpy dot product
over the candidates costs well under a millisecond. Events are immutable, so
the cache only ever grows by row id and refreshes by reading the new tail.
"""

from __future__ import annotations

import numpy as np

from agentmem.storage.store import Store


class VectorCache:
    def __init__(self, store: Store):
        self.store = store
        # Grown by doubling: a write-then-query loop (the director writes back every shot) must not copy the
        # whole matrix on each refresh (100k x 384 float32 is 150 MB, ~0.1 s per copy).
        self._rids = np.zeros(0, dtype=np.int64)
        self._mat: np.ndarray | None = None
        self._n = 0

    @property
    def rids(self) -> np.ndarray:
        return self._rids[: self._n]

    @property
    def mat(self) -> np.ndarray | None:
        return None if self._mat is None else self._mat[: self._n]

    def refresh(self) -> None:
        last = int(self._rids[self._n - 1]) if self._n else 0
        rids, mat = self.store.event_vectors(after_rid=last)
        if len(rids) == 0:
            return
        need = self._n + len(rids)
        if self._mat is None or need > len(self._mat):
            # A quarter of headroom: the write-backs right after the first load must not copy the whole matrix.
            cap = max(need + need // 4 + 1024, 2 * (0 if self._mat is None else len(self._mat)))
            grown = np.empty((cap, mat.shape[1]), dtype=np.float32)
            grown_rids = np.empty(cap, dtype=np.int64)
            if self._mat is not None:
                grown[: self._n] = self._mat[: self._n]
                grown_rids[: self._n] = self._rids[: self._n]
            self._mat, self._rids = grown, grown_rids
        self._mat[self._n : need] = mat
        self._rids[self._n : need] = rids
        self._n = need

    def scores(self, query: np.ndarray, rids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(rids, cosine) for ``rids`` (all events when ``None``) that have vectors."""
        self.refresh()
        if self.mat is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        if rids is None:
            return self.rids, self.mat @ query
        rids = np.asarray(rids, dtype=np.int64)
        pos = np.searchsorted(self.rids, rids)
        pos = np.minimum(pos, len(self.rids) - 1)
        ok = self.rids[pos] == rids
        pos = pos[ok]
        return self.rids[pos], self.mat[pos] @ query

    def top(self, query: np.ndarray, n: int, rids: np.ndarray | None = None) -> list[tuple[int, float]]:
        ids, sims = self.scores(query, rids)
        if len(ids) == 0:
            return []
        n = min(n, len(ids))
        part = np.argpartition(-sims, n - 1)[:n]
        order = part[np.lexsort((ids[part], -sims[part]))]
        return [(int(ids[i]), float(sims[i])) for i in order]
