"""The core's ranking computed over the active tier only (events that compression has not archived).

Once compression archives most of a long history, the core query still reads
the whole FTS5 index and drops archived events afterwards, so its cost grows
with the history. :class:`ActiveTier` is step 4 of the core's own query
(:func:`agentmem.search.query.run_query`): the same signals (BM25 over events,
their windows and groups; dense cosine) with FTS5 reads bounded below by the
*archive floor* (the lowest row id of an active event, kept by
:mod:`graph.compress`), so the cost follows the working set. Steps 1-3 and the
fusion are the core's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from agentmem.search.query import Query, Rankings, candidate_rids, fts_query
from agentmem.storage import filters
from agentmem.storage.context import centre_of
from agentmem.storage.lexical import groups_bm25, tier_bm25
from graph.persist import get_mark

if TYPE_CHECKING:
    from agentmem.memory import Memory


def allowed_rids(mem: Memory, q: Query) -> set[int] | None:
    """Row ids the query's entity and time filters admit, or ``None`` without such filters."""
    cands = candidate_rids(mem, q)
    return None if cands is None else set(cands.tolist())


def admissible_mask(store, rids: np.ndarray, q: Query) -> np.ndarray:
    """Mask of ``rids`` the query admits (active unless the archive is included; started by ``as_of``)."""
    if not len(rids):
        return np.zeros(0, bool)
    ok = filters.admitted_in_range(
        store, int(rids.min()), int(rids.max()), include_archive=q.include_archive, as_of=q.as_of
    )
    return np.isin(rids, ok)


@dataclass
class ActiveTier:
    """Step 4 of a query over the active tier: rows at or above ``floor``, not archived.

    ``vector`` is the query's unit text vector when the caller has it (or the
    memory has no text embedder); otherwise the one the query started is used.
    """

    floor: int
    vector: np.ndarray | None = None

    def rank(self, mem: Memory, q: Query, preset, cands: np.ndarray | None, query_vector, depth: int) -> Rankings:
        store = mem.store
        allowed = None if cands is None else set(cands.tolist())

        def keep(rows: list[tuple[int, float]]) -> list[tuple[int, float]]:
            live = filters.admitted(store, [r for r, _ in rows], include_archive=False, as_of=q.as_of)
            return [(r, s) for r, s in rows if r in live and (allowed is None or r in allowed)]

        lists: dict[str, list[tuple[int, float]]] = {}
        match = fts_query(q.text) if q.text else None
        terms = match.split(" OR ") if match else []
        tier = filters.count_from(store, self.floor) if terms else 0
        if terms and preset.w_bm25 > 0:
            lists["bm25"] = keep(tier_bm25(store, "events_fts", terms, self.floor, tier))[:depth]
        if terms and preset.w_windows > 0:
            rows = tier_bm25(store, "window_fts", terms, self.floor * 4, 2 * tier)
            for radius in (1, 2):
                lists[f"bm25_w{radius}"] = keep([(centre_of(r)[0], s) for r, s in rows if centre_of(r)[1] == radius])[
                    :depth
                ]
        group_bm25 = []
        if match and preset.w_group > 0:
            group_bm25 = groups_bm25(store, match, depth, floor=int(get_mark(store, "active_group_floor")))
        cosine = None
        qv = self._query_vector(query_vector)
        if qv is not None:
            rids, mat = active_vectors(mem, self.floor)
            if len(rids) and mat.shape[1] == len(qv):
                sims = mat @ qv
                if preset.w_dense > 0:
                    lists["dense"] = _dense_top(store, rids, sims, allowed, q, depth)
                cosine = _cosine(store, rids, sims, qv)

        def admissible(rids: set[int]) -> set[int]:
            live = filters.admitted(store, sorted(rids), include_archive=False, as_of=q.as_of)
            return {r for r in live if allowed is None or r in allowed}

        return Rankings(lists, group_bm25, cosine, admissible)

    def _query_vector(self, started) -> np.ndarray | None:
        if self.vector is not None:
            return self.vector
        if started is None:
            return None
        return np.asarray(started.result() if hasattr(started, "result") else started, np.float32).reshape(-1)


def _dense_top(
    store, rids: np.ndarray, sims: np.ndarray, allowed: set[int] | None, q: Query, depth: int
) -> list[tuple[int, float]]:
    ok = np.ones(len(rids), bool) if allowed is None else np.isin(rids, np.fromiter(allowed, np.int64))
    if q.as_of is not None:
        ok &= admissible_mask(store, rids, q)
    idx = np.where(ok)[0]
    top = idx[np.argsort(-sims[idx], kind="stable")[:depth]]
    return [(int(rids[i]), float(sims[i])) for i in top]


def _cosine(store, rids: np.ndarray, sims: np.ndarray, qv: np.ndarray):
    known = dict(zip(rids.tolist(), sims.tolist(), strict=True))

    def lookup(wanted: list[int]) -> dict[int, float]:
        out = {r: known[r] for r in wanted if r in known}
        for rid, blob in filters.vectors_of(store, [r for r in wanted if r not in known]):
            v = np.frombuffer(blob, dtype=np.float32)
            if v.shape == qv.shape:
                out[rid] = float(v @ qv)
        return out

    return lookup


@dataclass
class ActiveVectors:
    """The active events' vectors, kept on the memory (``mem.cache_of``) and extended as events arrive."""

    key: tuple[int, int] | None = None
    last: int = 0
    rids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    mat: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))


def active_vectors(mem: Memory, floor: int) -> tuple[np.ndarray, np.ndarray]:
    """(rids, vectors) of the active events, cached on the memory and extended as events arrive."""
    store = mem.store
    cache = mem.cache_of(ActiveVectors)
    key = (int(get_mark(store, "archive_version")), floor)
    if cache.key != key:
        rids, mat = filters.active_vectors_after(store, floor, 0)
    else:
        rids, mat = cache.rids, cache.mat
        new_rids, new_mat = filters.active_vectors_after(store, floor, cache.last)
        if len(new_rids):
            rids = np.concatenate([rids, new_rids])
            mat = new_mat if len(mat) == 0 else np.vstack([mat, new_mat])
    cache.key, cache.last, cache.rids, cache.mat = key, (int(rids[-1]) if len(rids) else 0), rids, mat
    return rids, mat
