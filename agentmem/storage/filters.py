"""Row-id reads for search: filters by entity and time, admission, listing, neighbours and the fusion pool.

Each function answers one question about event row ids with bound values;
the search layer and the graph's active tier decide what to ask.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from agentmem.storage.sql import marks, rows_in

if TYPE_CHECKING:
    from agentmem.storage.store import Store


class RowVector(NamedTuple):
    """An event's row id and a stored vector of it (float32 bytes)."""

    rid: int
    vec: bytes


class EventSpan(NamedTuple):
    """An event's row id, time span and search text."""

    rid: int
    t_start: float
    t_end: float
    text: str


class EventEntity(NamedTuple):
    """One entity of one event."""

    entity_id: str
    rid: int


_NOT_ARCHIVED = (
    " AND NOT EXISTS (SELECT 1 FROM events a INDEXED BY events_archived WHERE a.rid=ee.rid AND a.archived=1)"
)


def entity_rids(
    store: Store, entity_ids: Sequence[str], lo: float, hi: float, t_lo: float, *, include_archive: bool
) -> set[int]:
    """Events of any of ``entity_ids`` overlapping [lo, hi]; ``t_lo`` bounds their start (lo minus the longest
    event), so the (entity, t_start) index is used."""
    arch = "" if include_archive else _NOT_ARCHIVED
    rows = store.conn.execute(
        f"SELECT ee.rid FROM event_entities ee WHERE ee.entity_id IN ({marks(len(entity_ids))}) "
        f"AND ee.t_start>=? AND ee.t_start<=? AND ee.t_end>=?{arch}",
        [*entity_ids, t_lo, hi, lo],
    )
    return {r[0] for r in rows}


def time_rids(store: Store, lo: float, hi: float, t_lo: float, *, include_archive: bool) -> set[int]:
    """Events overlapping [lo, hi] (see :func:`entity_rids` for ``t_lo``)."""
    arch = "" if include_archive else " AND e.archived=0"
    rows = store.conn.execute(
        f"SELECT rid FROM events e WHERE t_start>=? AND t_start<=? AND t_end>=?{arch}", (t_lo, hi, lo)
    )
    return {r[0] for r in rows}


def _state(include_archive: bool, as_of: float | None) -> tuple[str, list[float]]:
    cond = "" if include_archive else " AND archived=0"
    if as_of is None:
        return cond, []
    return cond + " AND t_start<=?", [float(as_of)]


def admitted(store: Store, rids: Sequence[int], *, include_archive: bool, as_of: float | None) -> set[int]:
    """The events among ``rids`` that are active (unless the archive is included) and started by ``as_of``."""
    cond, extra = _state(include_archive, as_of)
    return {
        r[0]
        for r in rows_in(store.conn, f"SELECT rid FROM events WHERE rid IN ({{in}}){cond}", list(rids), after=extra)
    }


def admitted_in_range(store: Store, lo: int, hi: int, *, include_archive: bool, as_of: float | None) -> np.ndarray:
    """Row ids in [lo, hi] that are active (unless the archive is included) and started by ``as_of``."""
    cond, extra = _state(include_archive, as_of)
    rows = store.conn.execute(f"SELECT rid FROM events WHERE rid BETWEEN ? AND ?{cond}", [lo, hi, *extra])
    return np.fromiter((r[0] for r in rows), np.int64)


def first_rids(store: Store, k: int, *, include_archive: bool, as_of: float | None) -> list[int]:
    """The first ``k`` events in story order (active unless the archive is included, started by ``as_of``)."""
    cond, extra = _state(include_archive, as_of)
    return [
        r[0]
        for r in store.conn.execute(
            f"SELECT rid FROM events WHERE 1=1{cond} ORDER BY t_start, rid LIMIT ?", [*extra, k]
        )
    ]


def count_from(store: Store, floor: int) -> int:
    """Events with row id ``floor`` or above."""
    return store.conn.execute("SELECT COUNT(*) FROM events WHERE rid >= ?", (floor,)).fetchone()[0]


def vectors_of(store: Store, rids: Sequence[int]) -> list[RowVector]:
    """The text vectors of those of ``rids`` that have one."""
    sql = "SELECT rid, vec FROM events WHERE vec IS NOT NULL AND rid IN ({in})"
    return [RowVector(*r) for r in rows_in(store.conn, sql, list(rids))]


def active_vectors_after(store: Store, floor: int, after: int) -> tuple[np.ndarray, np.ndarray]:
    """(rids, vectors) of active events with a vector, row id at least ``floor`` and above ``after``, in rid order."""
    rows = store.conn.execute(
        "SELECT rid, vec FROM events WHERE rid >= ? AND rid > ? AND archived=0 AND vec IS NOT NULL ORDER BY rid",
        (floor, after),
    ).fetchall()
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
    rids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    return rids, np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)


def event_media_vectors(store: Store) -> list[RowVector]:
    """The picture vectors of every embedded event picture (with its event's row id)."""
    rows = store.conn.execute(
        "SELECT e.rid, m.vec FROM media m JOIN events e ON e.id=m.owner_id WHERE m.owner='event' AND m.vec IS NOT NULL"
    )
    return [RowVector(*r) for r in rows]


def groups_of(store: Store, rids: Sequence[int]) -> dict[int, str | None]:
    """Each event's group."""
    return dict(rows_in(store.conn, "SELECT rid, grp FROM events WHERE rid IN ({in})", list(rids)))


def group_orders(store: Store, names: Sequence[str]) -> dict[str, list[int]]:
    """The events of each group in story order."""
    order: dict[str, list[int]] = {}
    for grp, rid in rows_in(
        store.conn, "SELECT grp, rid FROM events WHERE grp IN ({in}) ORDER BY grp, t_start, rid", list(names), size=200
    ):
        order.setdefault(grp, []).append(rid)
    return order


def spans_and_texts(store: Store, rids: Sequence[int]) -> list[EventSpan]:
    """The span and search text of each event."""
    sql = "SELECT rid, t_start, t_end, search_text FROM events WHERE rid IN ({in})"
    return [EventSpan(*r) for r in rows_in(store.conn, sql, list(rids))]


def entities_of(store: Store, rids: Sequence[int]) -> list[EventEntity]:
    """The entities of each event."""
    sql = "SELECT entity_id, rid FROM event_entities WHERE rid IN ({in})"
    return [EventEntity(*r) for r in rows_in(store.conn, sql, list(rids))]
