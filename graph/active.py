"""The core's ranking computed over the active tier only (events that compression has not archived).

Once compression archives most of a long history, the core query still reads
the whole FTS5 index and drops archived events afterwards, so its cost grows
with the history. Here the same signals (BM25 over events, their windows and
groups; dense cosine; entity and time boosts) are computed with FTS5 reads
bounded below by the *archive floor* (the lowest row id of an active event,
kept by :mod:`graph.compress`) and fused by the core's own
:func:`agentmem.fusion.fuse`, so the cost follows the working set.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from agentmem.model import Hit
from graph.persist import get_mark


def _event_hit(e) -> Hit:
    return Hit(id=e.id, kind="event", t_start=e.t_start, t_end=e.t_end, text=e.text, entities=e.entity_ids,
               score=0.0, components={}, provenance=e.provenance, location=e.location, group=e.group,
               archived=e.archived)


def _allowed(mem, q) -> set[int] | None:
    """Row ids the query's entity and time filters admit, or ``None`` without such filters."""
    from agentmem.retrieval import candidate_rids

    cands = candidate_rids(mem, q)
    return None if cands is None else set(cands.tolist())


def _admissible(conn, rids: np.ndarray, q) -> np.ndarray:
    """Mask of ``rids`` the query admits (active unless the archive is included; started by ``as_of``)."""
    if not len(rids):
        return np.zeros(0, bool)
    sql = "SELECT rid FROM events WHERE rid BETWEEN ? AND ?"
    args: list = [int(rids.min()), int(rids.max())]
    if not q.include_archive:
        sql += " AND archived=0"
    if q.as_of is not None:
        sql += " AND t_start<=?"
        args.append(q.as_of)
    ok = np.fromiter((r[0] for r in conn.execute(sql, args)), np.int64)
    return np.isin(rids, ok)


def active_core(mem, q, qv, floor: int) -> list[tuple[str, Hit]]:
    """The core's signals computed over the active tier only, fused by the core's :func:`agentmem.fusion.fuse`.

    FTS5 reads are bounded below by the archive floor (the lowest rid of an active event) and scored with
    the tier's statistics (:func:`tier_bm25`), so their cost follows the working set. The core's own query
    reads the whole index and then drops archived events.
    """
    from agentmem.context import centre_of
    from agentmem.fusion import PRESETS, TEMPORAL_QUESTION, FusionInputs, SearchPreset, fuse
    from agentmem.resolution import find_mentions
    from agentmem.retrieval import _alias_index, fts_query
    from agentmem.timeparse import resolve_temporal_expressions

    store = mem.store
    conn = store.conn
    preset = q.preset if isinstance(q.preset, SearchPreset) else PRESETS[q.preset]
    allowed = _allowed(mem, q)
    depth = max(preset.depth, q.k * 4)
    lists: dict[str, list[tuple[int, float]]] = {}
    match = fts_query(q.text) if q.text else None

    def keep(rows: list[tuple[int, float]]) -> list[tuple[int, float]]:
        live = _live(conn, [r for r, _ in rows], q.as_of)
        return [(r, s) for r, s in rows if r in live and (allowed is None or r in allowed)]

    terms = match.split(" OR ") if match else []
    tier = conn.execute("SELECT COUNT(*) FROM events WHERE rid >= ?", (floor,)).fetchone()[0] if terms else 0
    if terms and preset.w_bm25 > 0:
        lists["bm25"] = keep(tier_bm25(conn, "events_fts", terms, floor, tier))[:depth]
    if terms and preset.w_windows > 0:
        rows = tier_bm25(conn, "window_fts", terms, floor * 4, 2 * tier)
        for radius in (1, 2):
            lists[f"bm25_w{radius}"] = keep([(centre_of(r)[0], s) for r, s in rows if centre_of(r)[1] == radius])[
                :depth]
    group_bm25: list[tuple[str, float]] = []
    if match and preset.w_group > 0:
        gfloor = int(get_mark(conn, "active_group_floor"))
        group_bm25 = [(g, float(s)) for g, s in conn.execute(
            "SELECT g.name, -bm25(group_fts) FROM group_fts JOIN groups g ON g.id = group_fts.rowid "
            "WHERE group_fts MATCH ? AND group_fts.rowid >= ? ORDER BY rank LIMIT ?", (match, gfloor, depth))]
    cosine = None
    if qv is not None:
        rids, mat = active_vectors(mem, floor)
        if len(rids) and mat.shape[1] == len(qv):
            sims = mat @ qv
            ok = np.ones(len(rids), bool) if allowed is None else np.isin(rids, np.fromiter(allowed, np.int64))
            if q.as_of is not None:
                ok &= _admissible(conn, rids, q)
            idx = np.where(ok)[0]
            top = idx[np.argsort(-sims[idx], kind="stable")[:depth]]
            if preset.w_dense > 0:
                lists["dense"] = [(int(rids[i]), float(sims[i])) for i in top]
            cosine = _cosine(conn, rids, sims, qv)
    mentions = find_mentions(q.text, _alias_index(mem)) if q.text else {}
    ref = q.reference_time if q.reference_time is not None else store.latest_time()
    inputs = FusionInputs(lists=lists, group_bm25=group_bm25, cosine=cosine,
                          mention_members={e: set(store.member_ids(e)) for e in mentions},
                          windows=resolve_temporal_expressions(q.text, ref) if q.text else [],
                          temporal_question=bool(q.text and TEMPORAL_QUESTION.search(q.text)))

    def admissible(rids: set[int]) -> set[int]:
        return {r for r in _live(conn, sorted(rids), q.as_of) if allowed is None or r in allowed}

    ranked = fuse(store, inputs, preset, q.k, admissible)
    events = store.events_by_rid([rid for rid, _, _ in ranked])
    return [(events[rid].id, replace(_event_hit(events[rid]), score=score, components=comps))
            for rid, score, comps in ranked]


def tier_bm25(conn, table: str, terms: list[str], floor: int, total: int, limit: int = 2000
              ) -> list[tuple[int, float]]:
    """BM25 over the rows of an FTS5 ``table`` at or above ``floor``, with that tier's statistics.

    FTS5's own ``bm25()`` counts each term's documents over the whole index (a scan of the term's
    full doclist, so common terms cost in proportion to the history). Here each term's rows above
    the floor come from a rowid-bounded MATCH, which seeks; the score is the sum of the matched
    terms' IDF within the tier (binary term frequency, no length normalization: events and their
    windows are a sentence or a few). ``total`` is the number of documents in the tier; the best
    ``limit`` rows are returned, best first (ties by rowid).

    Examples
    --------
    >>> import sqlite3
    >>> c = sqlite3.connect(":memory:")
    >>> _ = c.execute("CREATE VIRTUAL TABLE t USING fts5(doc)")
    >>> _ = c.executemany("INSERT INTO t(rowid, doc) VALUES (?, ?)",
    ...                   [(1, "old storm"), (2, "storm at sea"), (3, "calm sea"), (4, "storm")])
    >>> [r for r, _ in tier_bm25(c, "t", ['"storm"', '"sea"'], floor=2, total=3)]
    [2, 3, 4]
    """
    hits, weights = [], []
    for term in terms:
        r = np.fromiter((row[0] for row in conn.execute(
            f"SELECT rowid FROM {table} WHERE {table} MATCH ? AND rowid >= ?", (term, floor))), np.int64)
        if len(r):
            hits.append(r)
            weights.append(np.full(len(r), np.log(1 + (max(total, len(r)) - len(r) + 0.5) / (len(r) + 0.5))))
    if not hits:
        return []
    rows, inverse = np.unique(np.concatenate(hits), return_inverse=True)
    score = np.bincount(inverse, weights=np.concatenate(weights))
    order = np.lexsort((rows, -score))[:limit]
    return [(int(rows[i]), float(score[i])) for i in order]


def _cosine(conn, rids: np.ndarray, sims: np.ndarray, qv: np.ndarray):
    known = dict(zip(rids.tolist(), sims.tolist(), strict=True))

    def lookup(wanted: list[int]) -> dict[int, float]:
        out = {r: known[r] for r in wanted if r in known}
        rest = [r for r in wanted if r not in known]
        for i in range(0, len(rest), 500):
            chunk = rest[i : i + 500]
            for rid, blob in conn.execute(f"SELECT rid, vec FROM events WHERE vec IS NOT NULL AND rid IN "
                                          f"({','.join('?' * len(chunk))})", chunk):
                v = np.frombuffer(blob, dtype=np.float32)
                if v.shape == qv.shape:
                    out[rid] = float(v @ qv)
        return out

    return lookup


def _live(conn, rids: list[int], as_of: float | None = None) -> set[int]:
    """The active events among ``rids`` (that had started by ``as_of``, if given)."""
    out: set[int] = set()
    cond = "" if as_of is None else " AND t_start <= ?"
    extra = [] if as_of is None else [float(as_of)]
    for i in range(0, len(rids), 500):
        chunk = rids[i : i + 500]
        out.update(r[0] for r in conn.execute(
            f"SELECT rid FROM events WHERE rid IN ({','.join('?' * len(chunk))}) AND archived=0{cond}",
            [*chunk, *extra]))
    return out


def active_vectors(mem, floor: int) -> tuple[np.ndarray, np.ndarray]:
    """(rids, vectors) of the active events, cached on the memory and extended as events arrive."""
    conn = mem.store.conn
    version = int(get_mark(conn, "archive_version"))
    cached = mem.cache.get("graph.active_vectors")
    if cached is None or cached[0] != (version, floor):
        rids, mat = _read_vectors(conn, floor, 0)
    else:
        _, last, rids, mat = cached
        new_rids, new_mat = _read_vectors(conn, floor, last)
        if len(new_rids):
            rids = np.concatenate([rids, new_rids])
            mat = new_mat if len(mat) == 0 else np.vstack([mat, new_mat])
    last = int(rids[-1]) if len(rids) else 0
    mem.cache["graph.active_vectors"] = ((version, floor), last, rids, mat)
    return rids, mat


def _read_vectors(conn, floor: int, after: int) -> tuple[np.ndarray, np.ndarray]:
    rows = conn.execute("SELECT rid, vec FROM events WHERE rid >= ? AND rid > ? AND archived=0 AND vec IS NOT NULL "
                        "ORDER BY rid", (floor, after)).fetchall()
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
    rids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    return rids, np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
