"""Frame tables: posed frames (pixels by path) and checkpoints of the static map, in the memory's SQLite file.

Frames are the source of truth; the voxel map is derived from them. A
checkpoint stores the map's arrays as raw little-endian bytes with their dtype
and shape (never pickle) together with ``map.upto``, the last frame number it
includes, in one transaction. On open, frames after the checkpoint are mapped
again, so a process killed during a map update loses nothing acknowledged.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from agentmem.storage.sql import rows_in

if TYPE_CHECKING:
    from agentmem.storage.store import Store


class Position(NamedTuple):
    """One entity seen in one frame: its id, story time, world position (metres) and the pixels it covered."""

    entity: str
    t: float
    x: float
    y: float
    z: float
    pixels: int


class Sighting(NamedTuple):
    """A stored :class:`Position` with the id of the frame it was seen in."""

    entity: str
    t: float
    x: float
    y: float
    z: float
    pixels: int
    frame: str


class FoundFrame(NamedTuple):
    """A frame found by time (and entity): its id, story time and source."""

    id: str
    t: float
    source: dict[str, Any]


# eq=False: the pose is an array, and two records are never compared.
@dataclass(frozen=True, eq=False)
class FrameRecord:
    """A posed frame as stored: pose, intrinsics, its pixel files (stored paths), source and reach.

    ``c2w`` is the 4x4 camera-to-world pose in world metres; ``intrinsics`` is ``[fx, fy, cx, cy, width,
    height]``; ``reach`` is the frame's reach grid as little-endian float16 bytes (``None`` without depth).
    """

    id: str
    t: float
    c2w: np.ndarray
    intrinsics: list[float]
    rgb_path: str
    depth_path: str | None
    depth_scale: float
    mask_path: str | None
    source: dict[str, Any]
    reach: bytes | None


@dataclass(frozen=True, eq=False)
class FrameRow(FrameRecord):
    """A stored frame as read back: the record, its frame number (``fid``, in insertion order) and whether it is
    archived."""

    fid: int = 0
    archived: bool = False


def insert_frames(store: Store, frames: Sequence[FrameRecord], positions: Sequence[Sequence[Position]]) -> list[int]:
    """Insert ``frames`` with each one's entity positions; returns their frame ids (inside the caller's
    transaction)."""
    conn = store.conn
    out = []
    for f, seen in zip(frames, positions, strict=True):
        cur = conn.execute(
            "INSERT INTO frames(id, t, c2w, intrinsics, rgb_path, depth_path, depth_scale, mask_path, source) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                f.id,
                f.t,
                np.asarray(f.c2w, "<f8").tobytes(),
                json.dumps(list(f.intrinsics)),
                f.rgb_path,
                f.depth_path,
                f.depth_scale,
                f.mask_path,
                json.dumps(f.source),
            ),
        )
        fid = int(cur.lastrowid or 0)
        if f.reach is not None:
            conn.execute("INSERT INTO frame_reach(fid, data) VALUES (?, ?)", (fid, f.reach))
        conn.executemany(
            "INSERT INTO entity_positions(fid, entity, t, x, y, z, pixels) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(fid, *p) for p in seen],
        )
        out.append(fid)
    return out


def entity_positions(
    store: Store, entities: Sequence[str], t0: float, t1: float, *, include_archive: bool = False
) -> list[Sighting]:
    """Where ``entities`` were seen between ``t0`` and ``t1``, by time."""
    archived = "" if include_archive else " AND f.archived=0"
    rows = rows_in(
        store.conn,
        "SELECT p.entity, p.t, p.x, p.y, p.z, p.pixels, f.id FROM entity_positions p JOIN frames f ON f.fid=p.fid "
        "WHERE p.entity IN ({in}) AND p.t BETWEEN ? AND ?" + archived,
        list(entities),
        after=(t0, t1),
    )
    return sorted((Sighting(*r) for r in rows), key=lambda r: (r.t, r.frame))


def has_frames(store: Store) -> bool:
    """Whether any frame is stored (archived ones included)."""
    return store.conn.execute("SELECT 1 FROM frames LIMIT 1").fetchone() is not None


def existing_frame_ids(store: Store, ids: Sequence[str]) -> set[str]:
    return {r[0] for r in rows_in(store.conn, "SELECT id FROM frames WHERE id IN ({in})", list(ids))}


def find_frames(store: Store, entities: Sequence[str] | None, t0: float, t1: float,
                include_archive: bool) -> list[FoundFrame]:  # fmt: skip
    """The frames between ``t0`` and ``t1`` (showing one of ``entities``, if given), by time."""
    archived = "" if include_archive else " AND f.archived=0"
    if entities is None:
        rows = store.conn.execute(
            "SELECT f.id, f.t, f.source FROM frames f WHERE f.t BETWEEN ? AND ?" + archived + " ORDER BY f.t, f.fid",
            (t0, t1),
        ).fetchall()
        return [FoundFrame(i, t, json.loads(src)) for i, t, src in rows]
    found = rows_in(
        store.conn,
        "SELECT DISTINCT f.id, f.t, f.source, f.fid FROM frames f JOIN entity_positions p ON p.fid=f.fid "
        "WHERE p.entity IN ({in}) AND f.t BETWEEN ? AND ?" + archived,
        list(entities),
        after=(t0, t1),
    )
    return [FoundFrame(i, t, json.loads(src)) for i, t, src, _ in sorted(set(found), key=lambda r: (r[1], r[3]))]


def frame_rows(store: Store, after_fid: int = 0) -> list[FrameRow]:
    """Every frame after ``after_fid``, in insertion order."""
    rows = store.conn.execute(
        "SELECT f.fid, f.id, f.t, f.c2w, f.intrinsics, f.rgb_path, f.depth_path, f.depth_scale, f.mask_path, "
        "f.source, f.archived, r.data FROM frames f LEFT JOIN frame_reach r ON r.fid=f.fid WHERE f.fid > ? "
        "ORDER BY f.fid",
        (after_fid,),
    ).fetchall()
    return [
        FrameRow(
            fid=fid,
            id=frame_id,
            t=t,
            c2w=np.frombuffer(c2w, dtype="<f8").reshape(4, 4).copy(),
            intrinsics=json.loads(k),
            rgb_path=rgb,
            depth_path=depth,
            depth_scale=scale,
            mask_path=mask,
            source=json.loads(source),
            archived=bool(archived),
            reach=reach,
        )
        for fid, frame_id, t, c2w, k, rgb, depth, scale, mask, source, archived, reach in rows
    ]


def set_frames_archived(store: Store, fids: Sequence[int], archived: bool) -> None:
    store.conn.executemany("UPDATE frames SET archived=? WHERE fid=?", [(int(archived), f) for f in fids])


def save_map(store: Store, arrays: dict[str, np.ndarray], upto: int) -> None:
    """Replace the map checkpoint with ``arrays``, covering frames up to number ``upto``."""
    conn = store.conn
    conn.execute("DELETE FROM map_arrays")
    conn.executemany(
        "INSERT INTO map_arrays(name, dtype, shape, data) VALUES (?, ?, ?, ?)",
        [(n, a.dtype.str, json.dumps(list(a.shape)), np.ascontiguousarray(a).tobytes()) for n, a in arrays.items()],
    )
    conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('map.upto', ?)", (str(upto),))


def load_map(store: Store) -> tuple[dict[str, np.ndarray], int]:
    """The map checkpoint's arrays and the frame number it covers up to (-1 when there is none)."""
    conn = store.conn
    row = conn.execute("SELECT value FROM meta WHERE key='map.upto'").fetchone()
    arrays = {
        name: np.frombuffer(data, dtype=np.dtype(dtype)).reshape(json.loads(shape)).copy()
        for name, dtype, shape, data in conn.execute("SELECT name, dtype, shape, data FROM map_arrays")
    }
    return arrays, (int(row[0]) if row else -1)
