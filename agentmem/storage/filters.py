"""Row-id reads for search: filters by entity and time, admission, listing, neighbours and the fusion pool.

Each function answers one question about event row ids with bound values;
the search layer and the graph's active tier decide what to ask.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import numpy as np

from agentmem.storage.sql import marks, rows_in

_NOT_ARCHIVED = (
    " AND NOT EXISTS (SELECT 1 FROM events a INDEXED BY events_archived WHERE a.rid=ee.rid AND a.archived=1)"
)


def entity_rids(
    conn: sqlite3.Connection, entity_ids: Sequence[str], lo: float, hi: float, t_lo: float, *, include_archive: bool
) -> set[int]:
    """Events of any of ``entity_ids`` overlapping [lo, hi]; ``t_lo`` bounds their start (lo minus the longest
    event), so the (entity, t_start) index is used."""
    arch = "" if include_archive else _NOT_ARCHIVED
    rows = conn.execute(
        f"SELECT ee.rid FROM event_entities ee WHERE ee.entity_id IN ({marks(len(entity_ids))}) "
        f"AND ee.t_start>=? AND ee.t_start<=? AND ee.t_end>=?{arch}",
        [*entity_ids, t_lo, hi, lo],
    )
    return {r[0] for r in rows}


def time_rids(conn: sqlite3.Connection, lo: float, hi: float, t_lo: float, *, include_archive: bool) -> set[int]:
    """Events overlapping [lo, hi] (see :func:`entity_rids` for ``t_lo``)."""
    arch = "" if include_archive else " AND e.archived=0"
    rows = conn.execute(f"SELECT rid FROM events e WHERE t_start>=? AND t_start<=? AND t_end>=?{arch}", (t_lo, hi, lo))
    return {r[0] for r in rows}


def _state(include_archive: bool, as_of: float | None) -> tuple[str, list[float]]:
    cond = "" if include_archive else " AND archived=0"
    if as_of is None:
        return cond, []
    return cond + " AND t_start<=?", [float(as_of)]


def admitted(conn: sqlite3.Connection, rids: Sequence[int], *, include_archive: bool, as_of: float | None) -> set[int]:
    """The events among ``rids`` that are active (unless the archive is included) and started by ``as_of``."""
    cond, extra = _state(include_archive, as_of)
    return {r[0] for r in rows_in(conn, f"SELECT rid FROM events WHERE rid IN ({{in}}){cond}", list(rids), after=extra)}


def admitted_in_range(
    conn: sqlite3.Connection, lo: int, hi: int, *, include_archive: bool, as_of: float | None
) -> np.ndarray:
    """Row ids in [lo, hi] that are active (unless the archive is included) and started by ``as_of``."""
    cond, extra = _state(include_archive, as_of)
    rows = conn.execute(f"SELECT rid FROM events WHERE rid BETWEEN ? AND ?{cond}", [lo, hi, *extra])
    return np.fromiter((r[0] for r in rows), np.int64)


def first_rids(conn: sqlite3.Connection, k: int, *, include_archive: bool, as_of: float | None) -> list[int]:
    """The first ``k`` events in story order (active unless the archive is included, started by ``as_of``)."""
    cond, extra = _state(include_archive, as_of)
    return [
        r[0] for r in conn.execute(f"SELECT rid FROM events WHERE 1=1{cond} ORDER BY t_start, rid LIMIT ?", [*extra, k])
    ]


def count_from(conn: sqlite3.Connection, floor: int) -> int:
    """Events with row id ``floor`` or above."""
    return conn.execute("SELECT COUNT(*) FROM events WHERE rid >= ?", (floor,)).fetchone()[0]


def vectors_of(conn: sqlite3.Connection, rids: Sequence[int]) -> list[tuple[int, bytes]]:
    """(rid, text vector blob) of those of ``rids`` that have one."""
    return list(rows_in(conn, "SELECT rid, vec FROM events WHERE vec IS NOT NULL AND rid IN ({in})", list(rids)))


def active_vectors_after(conn: sqlite3.Connection, floor: int, after: int) -> list[tuple[int, bytes]]:
    """(rid, vector blob) of active events with a vector, row id at least ``floor`` and above ``after``."""
    return conn.execute(
        "SELECT rid, vec FROM events WHERE rid >= ? AND rid > ? AND archived=0 AND vec IS NOT NULL ORDER BY rid",
        (floor, after),
    ).fetchall()


def event_media_vectors(conn: sqlite3.Connection) -> list[tuple[int, bytes]]:
    """(event rid, media vector blob) of every embedded event picture."""
    return conn.execute(
        "SELECT e.rid, m.vec FROM media m JOIN events e ON e.id=m.owner_id WHERE m.owner='event' AND m.vec IS NOT NULL"
    ).fetchall()


def groups_of(conn: sqlite3.Connection, rids: Sequence[int]) -> dict[int, str | None]:
    """Each event's group."""
    return dict(rows_in(conn, "SELECT rid, grp FROM events WHERE rid IN ({in})", list(rids)))


def group_orders(conn: sqlite3.Connection, names: Sequence[str]) -> dict[str, list[int]]:
    """The events of each group in story order."""
    order: dict[str, list[int]] = {}
    for grp, rid in rows_in(
        conn, "SELECT grp, rid FROM events WHERE grp IN ({in}) ORDER BY grp, t_start, rid", list(names), size=200
    ):
        order.setdefault(grp, []).append(rid)
    return order


def spans_and_texts(conn: sqlite3.Connection, rids: Sequence[int]) -> list[tuple[int, float, float, str]]:
    """(rid, t_start, t_end, search text) of each event."""
    return list(rows_in(conn, "SELECT rid, t_start, t_end, search_text FROM events WHERE rid IN ({in})", list(rids)))


def entities_of(conn: sqlite3.Connection, rids: Sequence[int]) -> list[tuple[str, int]]:
    """(entity id, rid) of each event's entities."""
    return list(rows_in(conn, "SELECT entity_id, rid FROM event_entities WHERE rid IN ({in})", list(rids)))
