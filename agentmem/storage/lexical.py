"""Lexical reads: FTS5 BM25 over events, their +-1/+-2 windows and their groups, whole or among given rows.

The search layer and the graph's active tier rank with these; the SQL and the
FTS5 details (contentless temporary tables, rowid-bounded matches) stay here.
"""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from agentmem.storage.store import Store

# Rows as (rowid, score), best first; scores are positive (FTS5's bm25() is lower-is-better).
Ranked = list[tuple[int, float]]


def bm25_among(conn: sqlite3.Connection, source_sql: str, ids: list[int], match: str, depth: int) -> Ranked:
    """BM25 over the documents ``source_sql`` selects for ``ids`` only; the statistics are those of that set.

    ``source_sql`` selects ``(rowid, doc)`` and binds the ids as one JSON array.
    """
    # Contentless: BM25 needs only the index, and 'delete-all' empties it at once, where DELETE on a table with
    # content re-tokenized every old document (~1 ms per call at 100k events).
    conn.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.candidate_fts USING fts5(doc, content='', tokenize='porter unicode61')"
    )
    conn.execute("SAVEPOINT candidates")
    try:
        conn.execute("INSERT INTO temp.candidate_fts(candidate_fts) VALUES('delete-all')")
        conn.execute(f"INSERT INTO temp.candidate_fts(rowid, doc) {source_sql}", (json.dumps(ids),))
        rows = conn.execute(
            "SELECT rowid, -bm25(candidate_fts) FROM temp.candidate_fts WHERE candidate_fts MATCH ? "
            "ORDER BY rank, rowid LIMIT ?",
            (match, depth),
        ).fetchall()
    finally:
        conn.execute("RELEASE candidates")
    return [(int(r), float(s)) for r, s in rows]


def events_among(store: Store, rids: list[int], match: str, depth: int) -> Ranked:
    """BM25 of the events ``rids`` with the statistics of that set."""
    sql = "SELECT rid, search_text FROM events WHERE rid IN (SELECT value FROM json_each(?))"
    return bm25_among(store.conn, sql, rids, match, depth)


def windows_among(store: Store, rowids: list[int], match: str, depth: int) -> Ranked:
    """BM25 of the window documents ``rowids`` with the statistics of that set."""
    sql = "SELECT rowid, doc FROM window_fts WHERE rowid IN (SELECT value FROM json_each(?))"
    return bm25_among(store.conn, sql, rowids, match, depth)


def events_bm25(store: Store, match: str, limit: int) -> Ranked:
    """The best ``limit`` events of the whole index."""
    conn = store.conn
    rows = conn.execute(
        "SELECT rowid, -bm25(events_fts) FROM events_fts WHERE events_fts MATCH ? ORDER BY rank LIMIT ?",
        (match, limit),
    ).fetchall()
    return [(int(r), float(s)) for r, s in rows]


def windows_bm25(store: Store, match: str, limit: int) -> Ranked:
    """The best ``limit`` window documents of the whole index, by window rowid."""
    rows = store.conn.execute(
        "SELECT rowid, -bm25(window_fts) FROM window_fts WHERE window_fts MATCH ? ORDER BY rank LIMIT ?",
        (match, limit),
    ).fetchall()
    return [(int(r), float(s)) for r, s in rows]


def groups_bm25(store: Store, match: str, limit: int, *, floor: int = 0) -> list[tuple[str, float]]:
    """The best ``limit`` group documents (group name, score), those with rowid ``floor`` or above."""
    rows = store.conn.execute(
        "SELECT g.name, -bm25(group_fts) FROM group_fts JOIN groups g ON g.id = group_fts.rowid "
        "WHERE group_fts MATCH ? AND group_fts.rowid >= ? ORDER BY rank LIMIT ?",
        (match, floor, limit),
    ).fetchall()
    return [(name, float(score)) for name, score in rows]


def groups_among(store: Store, rids: list[int], match: str, depth: int) -> list[tuple[str, float]]:
    """BM25 of the groups of events ``rids``, with the statistics of those groups."""
    conn = store.conn
    gids = [
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT g.id FROM events e JOIN groups g ON g.name = e.grp "
            "WHERE e.rid IN (SELECT value FROM json_each(?))",
            (json.dumps(rids),),
        )
    ]
    sql = "SELECT rowid, doc FROM group_fts WHERE rowid IN (SELECT value FROM json_each(?))"
    ranked = bm25_among(conn, sql, gids, match, depth)
    names = dict(
        conn.execute("SELECT id, name FROM groups WHERE id IN (SELECT value FROM json_each(?))", (json.dumps(gids),))
    )
    return [(names[g], score) for g, score in ranked]


def tier_bm25(store: Store, table: str, terms: list[str], floor: int, total: int, limit: int = 2000) -> Ranked:
    """BM25 over the rows of an FTS5 ``table`` at or above ``floor``, with that tier's statistics.

    FTS5's own ``bm25()`` counts each term's documents over the whole index (a scan of the term's
    full doclist, so common terms cost in proportion to the history). Here each term's rows above
    the floor come from a rowid-bounded MATCH, which seeks; the score is the sum of the matched
    terms' IDF within the tier (binary term frequency, no length normalization: events and their
    windows are a sentence or a few). ``total`` is the number of documents in the tier; the best
    ``limit`` rows are returned, best first (ties by rowid).

    Examples
    --------
    >>> import tempfile
    >>> from agentmem.storage.store import Store
    >>> store = Store(tempfile.mkdtemp())
    >>> _ = store.conn.execute("CREATE VIRTUAL TABLE t USING fts5(doc)")
    >>> _ = store.conn.executemany("INSERT INTO t(rowid, doc) VALUES (?, ?)",
    ...                            [(1, "old storm"), (2, "storm at sea"), (3, "calm sea"), (4, "storm")])
    >>> [r for r, _ in tier_bm25(store, "t", ['"storm"', '"sea"'], floor=2, total=3)]
    [2, 3, 4]
    >>> store.close()
    """
    if not table.isidentifier():  # a table name cannot be bound; only plain identifiers pass
        raise ValueError(f"not an FTS table name: {table!r}")
    hits, weights = [], []
    for term in terms:
        r = np.fromiter(
            (
                row[0]
                for row in store.conn.execute(
                    f"SELECT rowid FROM {table} WHERE {table} MATCH ? AND rowid >= ?", (term, floor)
                )
            ),
            np.int64,
        )
        if len(r):
            hits.append(r)
            weights.append(np.full(len(r), np.log(1 + (max(total, len(r)) - len(r) + 0.5) / (len(r) + 0.5))))
    if not hits:
        return []
    rows, inverse = np.unique(np.concatenate(hits), return_inverse=True)
    score = np.bincount(inverse, weights=np.concatenate(weights))
    order = np.lexsort((rows, -score))[:limit]
    return [(int(rows[i]), float(score[i])) for i in order]
