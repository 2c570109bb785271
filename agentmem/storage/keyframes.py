"""Reads of keyframe events: written-back frames by location, by shot id range, their media, recent events.

Rows are :class:`KeyframeRow` (the camera and provenance as their stored JSON text: a pose is matched by its
exact text); the story layer (:mod:`agentmem.story.frames`) turns them into frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from agentmem.storage.sql import marks, rows_in

if TYPE_CHECKING:
    from agentmem.storage.store import Store


class KeyframeRow(NamedTuple):
    """A keyframe event: row id, id, start, camera JSON (``None`` without a pose) and provenance JSON."""

    rid: int
    id: str
    t_start: float
    camera: str | None
    provenance: str


class EventMedia(NamedTuple):
    """A media item of an event: the event id, the stored path and the image vector blob (``None`` unembedded)."""

    event_id: str
    path: str | None
    vec: bytes | None


class RecentEvent(NamedTuple):
    """An event as the planner's recent context reads it: id, text and provenance JSON."""

    id: str
    text: str
    provenance: str


_COLS = "e.rid, e.id, e.t_start, e.camera, e.provenance"
_KEYFRAME = "e.provenance LIKE '%\"frame_index\"%'"


def event_exists(store: Store, event_id: str) -> bool:
    return store.conn.execute("SELECT 1 FROM events WHERE id=?", (event_id,)).fetchone() is not None


def location_keyframes(store: Store, location_ids: Sequence[str], before: float, limit: int) -> list[KeyframeRow]:
    """The most recent middle (or role-less) keyframes at the location, starting before ``before``."""
    sql = (
        f"SELECT {_COLS} FROM event_entities ee JOIN events e ON e.rid = ee.rid "
        f"WHERE ee.entity_id IN ({marks(len(location_ids))}) AND ee.role='location' AND ee.t_start < ? "
        f"AND e.archived=0 AND {_KEYFRAME} "
        'AND (e.provenance LIKE \'%"role": "middle"%\' OR e.provenance NOT LIKE \'%"role"%\')'
        " ORDER BY ee.t_start DESC, e.rid DESC LIMIT ?"
    )
    return [KeyframeRow(*r) for r in store.conn.execute(sql, [*location_ids, before, limit])]


def latest_keyframe_from(store: Store, camera: str, location_ids: Sequence[str], before: float) -> list[KeyframeRow]:
    """The most recent keyframe at the location shot from exactly ``camera`` (a pose's stored JSON)."""
    # Through the camera index: only the few events shot from this exact pose are read.
    rows = store.conn.execute(
        f"SELECT {_COLS} FROM events e INDEXED BY events_camera JOIN event_entities ee ON ee.rid = e.rid "
        f"WHERE e.camera = ? AND e.t_start < ? AND ee.entity_id IN ({marks(len(location_ids))}) "
        f"AND ee.role='location' AND e.archived=0 AND {_KEYFRAME} ORDER BY e.t_start DESC, e.rid DESC LIMIT 1",
        [camera, before, *location_ids],
    )
    return [KeyframeRow(*r) for r in rows]


def middle_keyframes_among(store: Store, event_ids: Sequence[str]) -> list[KeyframeRow]:
    """The active middle (or role-less) keyframes among ``event_ids``."""
    return [
        KeyframeRow(*r)
        for r in rows_in(
            store.conn,
            f"SELECT {_COLS} FROM events e WHERE e.id IN ({{in}}) AND e.archived=0 AND {_KEYFRAME} "
            'AND (e.provenance LIKE \'%"role": "middle"%\' OR e.provenance NOT LIKE \'%"role"%\')',
            list(event_ids),
        )
    ]


def keyframes_in_id_range(store: Store, lo: str, hi: str) -> list[KeyframeRow]:
    """Active events with ``lo <= id < hi`` (an index range)."""
    sql = f"SELECT {_COLS} FROM events e WHERE e.id >= ? AND e.id < ? AND e.archived=0"
    return [KeyframeRow(*r) for r in store.conn.execute(sql, (lo, hi))]


def first_media(store: Store, event_ids: Sequence[str]) -> list[EventMedia]:
    """Every media item of the events, in insertion order."""
    return [
        EventMedia(*r)
        for r in rows_in(
            store.conn,
            "SELECT owner_id, path, vec FROM media WHERE owner='event' AND owner_id IN ({in}) ORDER BY id",
            list(event_ids),
        )
    ]


def recent_event_rows(store: Store, before: float, limit: int) -> list[RecentEvent]:
    """Active events starting before ``before``, most recent first."""
    rows = store.conn.execute(
        "SELECT id, text, provenance FROM events WHERE t_start < ? AND archived=0 ORDER BY t_start DESC, rid DESC "
        "LIMIT ?",
        (before, limit),
    )
    return [RecentEvent(*r) for r in rows]
