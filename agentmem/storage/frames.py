"""Frame tables: posed frames (pixels by path) and checkpoints of the static map, in the memory's SQLite file.

Frames are the source of truth; the voxel map is derived from them. A
checkpoint stores the map's arrays as raw little-endian bytes with their dtype
and shape (never pickle) together with ``map.upto``, the last frame number it
includes, in one transaction. On open, frames after the checkpoint are mapped
again, so a process killed during a map update loses nothing acknowledged.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

import numpy as np

from agentmem.storage.sql import rows_in

FrameRow = tuple[int, str, float, bytes, str, str, str | None, float, str | None, str, int, bytes | None]
# (entity id, t, x, y, z, pixels) of one entity seen in one frame.
Position = tuple[str, float, float, float, float, int]


def insert_frames(
    conn: sqlite3.Connection,
    rows: Sequence[tuple],
    reach: Sequence[bytes | None],
    positions: Sequence[Sequence[Position]],
) -> list[int]:
    """Insert (id, t, c2w bytes, intrinsics JSON, rgb_path, depth_path, depth_scale, mask_path, source JSON) rows,
    each frame's reach bytes and entity positions; returns their frame ids (inside the caller's transaction)."""
    out = []
    for r, data, seen in zip(rows, reach, positions, strict=True):
        cur = conn.execute(
            "INSERT INTO frames(id, t, c2w, intrinsics, rgb_path, depth_path, depth_scale, mask_path, source) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            r,
        )
        fid = int(cur.lastrowid or 0)
        if data is not None:
            conn.execute("INSERT INTO frame_reach(fid, data) VALUES (?, ?)", (fid, data))
        conn.executemany(
            "INSERT INTO entity_positions(fid, entity, t, x, y, z, pixels) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(fid, *p) for p in seen],
        )
        out.append(fid)
    return out


def entity_positions(
    conn: sqlite3.Connection, entities: Sequence[str], t0: float, t1: float, *, include_archive: bool = False
) -> list[tuple[str, float, float, float, float, int, str]]:
    """(entity, t, x, y, z, pixels, frame id) of ``entities`` seen between ``t0`` and ``t1``, by time."""
    archived = "" if include_archive else " AND f.archived=0"
    rows = rows_in(
        conn,
        "SELECT p.entity, p.t, p.x, p.y, p.z, p.pixels, f.id FROM entity_positions p JOIN frames f ON f.fid=p.fid "
        "WHERE p.entity IN ({in}) AND p.t BETWEEN ? AND ?" + archived,
        list(entities),
        after=(t0, t1),
    )
    return sorted(rows, key=lambda r: (r[1], r[6]))


def has_frames(conn: sqlite3.Connection) -> bool:
    """Whether any frame is stored (archived ones included)."""
    return conn.execute("SELECT 1 FROM frames LIMIT 1").fetchone() is not None


def existing_frame_ids(conn: sqlite3.Connection, ids: Sequence[str]) -> set[str]:
    return {r[0] for r in rows_in(conn, "SELECT id FROM frames WHERE id IN ({in})", list(ids))}


def find_frames(conn: sqlite3.Connection, entities: Sequence[str] | None, t0: float, t1: float,
                include_archive: bool) -> list[tuple[str, float, str]]:  # fmt: skip
    """(id, t, source JSON) of the frames between ``t0`` and ``t1`` (showing one of ``entities``, if given), by time."""
    archived = "" if include_archive else " AND f.archived=0"
    if entities is None:
        return conn.execute(
            "SELECT f.id, f.t, f.source FROM frames f WHERE f.t BETWEEN ? AND ?" + archived + " ORDER BY f.t, f.fid",
            (t0, t1),
        ).fetchall()
    rows = rows_in(
        conn,
        "SELECT DISTINCT f.id, f.t, f.source, f.fid FROM frames f JOIN entity_positions p ON p.fid=f.fid "
        "WHERE p.entity IN ({in}) AND f.t BETWEEN ? AND ?" + archived,
        list(entities),
        after=(t0, t1),
    )
    return [r[:3] for r in sorted(set(rows), key=lambda r: (r[1], r[3]))]


def frame_rows(conn: sqlite3.Connection, after_fid: int = 0) -> list[FrameRow]:
    """Every frame after ``after_fid``, in insertion order."""
    return conn.execute(
        "SELECT f.fid, f.id, f.t, f.c2w, f.intrinsics, f.rgb_path, f.depth_path, f.depth_scale, f.mask_path, "
        "f.source, f.archived, r.data FROM frames f LEFT JOIN frame_reach r ON r.fid=f.fid WHERE f.fid > ? "
        "ORDER BY f.fid",
        (after_fid,),
    ).fetchall()


def set_frames_archived(conn: sqlite3.Connection, fids: Sequence[int], archived: bool) -> None:
    conn.executemany("UPDATE frames SET archived=? WHERE fid=?", [(int(archived), f) for f in fids])


def save_map(conn: sqlite3.Connection, arrays: dict[str, np.ndarray], upto: int) -> None:
    """Replace the map checkpoint with ``arrays``, covering frames up to number ``upto``."""
    conn.execute("DELETE FROM map_arrays")
    conn.executemany(
        "INSERT INTO map_arrays(name, dtype, shape, data) VALUES (?, ?, ?, ?)",
        [(n, a.dtype.str, json.dumps(list(a.shape)), np.ascontiguousarray(a).tobytes()) for n, a in arrays.items()],
    )
    conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('map.upto', ?)", (str(upto),))


def load_map(conn: sqlite3.Connection) -> tuple[dict[str, np.ndarray], int]:
    """The map checkpoint's arrays and the frame number it covers up to (-1 when there is none)."""
    row = conn.execute("SELECT value FROM meta WHERE key='map.upto'").fetchone()
    arrays = {
        name: np.frombuffer(data, dtype=np.dtype(dtype)).reshape(json.loads(shape)).copy()
        for name, dtype, shape, data in conn.execute("SELECT name, dtype, shape, data FROM map_arrays")
    }
    return arrays, (int(row[0]) if row else -1)
