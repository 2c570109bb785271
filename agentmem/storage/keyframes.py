"""Reads of keyframe events: written-back frames by location, by shot id range, their media, recent events.

Rows are raw ``(rid, id, t_start, camera JSON, provenance JSON)``; the story
layer (:mod:`agentmem.story.frames`) turns them into frames.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from agentmem.storage.sql import marks, rows_in

_COLS = "e.rid, e.id, e.t_start, e.camera, e.provenance"
_KEYFRAME = "e.provenance LIKE '%\"frame_index\"%'"


def event_exists(conn: sqlite3.Connection, event_id: str) -> bool:
    return conn.execute("SELECT 1 FROM events WHERE id=?", (event_id,)).fetchone() is not None


def location_keyframes(conn: sqlite3.Connection, location_ids: Sequence[str], before: float, limit: int) -> list:
    """The most recent middle (or role-less) keyframes at the location, starting before ``before``."""
    sql = (
        f"SELECT {_COLS} FROM event_entities ee JOIN events e ON e.rid = ee.rid "
        f"WHERE ee.entity_id IN ({marks(len(location_ids))}) AND ee.role='location' AND ee.t_start < ? "
        f"AND e.archived=0 AND {_KEYFRAME} "
        'AND (e.provenance LIKE \'%"role": "middle"%\' OR e.provenance NOT LIKE \'%"role"%\')'
        " ORDER BY ee.t_start DESC, e.rid DESC LIMIT ?"
    )
    return conn.execute(sql, [*location_ids, before, limit]).fetchall()


def latest_keyframe_from(conn: sqlite3.Connection, camera: str, location_ids: Sequence[str], before: float) -> list:
    """The most recent keyframe at the location shot from exactly ``camera`` (a pose's stored JSON)."""
    # Through the camera index: only the few events shot from this exact pose are read.
    return conn.execute(
        f"SELECT {_COLS} FROM events e INDEXED BY events_camera JOIN event_entities ee ON ee.rid = e.rid "
        f"WHERE e.camera = ? AND e.t_start < ? AND ee.entity_id IN ({marks(len(location_ids))}) "
        f"AND ee.role='location' AND e.archived=0 AND {_KEYFRAME} ORDER BY e.t_start DESC, e.rid DESC LIMIT 1",
        [camera, before, *location_ids],
    ).fetchall()


def middle_keyframes_among(conn: sqlite3.Connection, event_ids: Sequence[str]) -> list:
    """The active middle (or role-less) keyframes among ``event_ids``."""
    return list(
        rows_in(
            conn,
            f"SELECT {_COLS} FROM events e WHERE e.id IN ({{in}}) AND e.archived=0 AND {_KEYFRAME} "
            'AND (e.provenance LIKE \'%"role": "middle"%\' OR e.provenance NOT LIKE \'%"role"%\')',
            list(event_ids),
        )
    )


def keyframes_in_id_range(conn: sqlite3.Connection, lo: str, hi: str) -> list:
    """Active events with ``lo <= id < hi`` (an index range)."""
    return conn.execute(
        f"SELECT {_COLS} FROM events e WHERE e.id >= ? AND e.id < ? AND e.archived=0", (lo, hi)
    ).fetchall()


def first_media(conn: sqlite3.Connection, event_ids: Sequence[str]) -> list[tuple[str, str, bytes | None]]:
    """(event id, path, vector blob) of every media item of the events, in insertion order."""
    return list(
        rows_in(
            conn,
            "SELECT owner_id, path, vec FROM media WHERE owner='event' AND owner_id IN ({in}) ORDER BY id",
            list(event_ids),
        )
    )


def recent_event_rows(conn: sqlite3.Connection, before: float, limit: int) -> list[tuple[str, str, str]]:
    """(id, text, provenance JSON) of active events starting before ``before``, most recent first."""
    return conn.execute(
        "SELECT id, text, provenance FROM events WHERE t_start < ? AND archived=0 ORDER BY t_start DESC, rid DESC "
        "LIMIT ?",
        (before, limit),
    ).fetchall()
