"""Frame memory: writing rendered shots back as events, and reading their frames again.

Each rendered shot is written back as one event per *keyframe* (the first,
middle and last frame), so later shots retrieve what was actually shown:

- id ``shot:<shot_id>:f<frame_index>``; text: the shot's action;
- story time ``[t + d*i/n, t + d*(i+1)/n)`` for frame ``i`` of ``n`` (so even the
  last frame starts before a shot that begins where this one ends);
- participants (characters and objects), location and camera pose of the shot;
- media: the PNG, embedded by the memory's image embedder;
- provenance ``{"shot": id, "frame_index": i, "role": "first" | "middle" | "last"}``.

The planner reads them back with :func:`location_frames` (earlier frames of a
place), :func:`frame_media` and :func:`recent_events`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agentmem.model import CameraPose, Event, MediaRef

FRAME_ROLES = ("first", "middle", "last")


@dataclass(frozen=True)
class Keyframe:
    """A saved keyframe of a shot."""

    shot_id: str
    frame_index: int
    role: str
    path: str
    event_id: str


def frame_event_id(shot_id: str, frame_index: int) -> str:
    """Id of the event of a keyframe.

    >>> frame_event_id("s03", 15)
    'shot:s03:f15'
    """
    return f"shot:{shot_id}:f{frame_index}"


def keyframe_indices(n_frames: int) -> dict[str, int]:
    """Frame index of each role.

    >>> keyframe_indices(16)
    {'first': 0, 'middle': 7, 'last': 15}
    """
    return {"first": 0, "middle": (n_frames - 1) // 2, "last": n_frames - 1}


def save_keyframes(frames: np.ndarray, shot_id: str, directory: str) -> list[Keyframe]:
    """Write the keyframes of ``frames`` (T, H, W, 3) as PNGs under ``directory/<shot_id>/``."""
    from PIL import Image

    out, seen = [], set()
    folder = os.path.join(directory, shot_id)
    os.makedirs(folder, exist_ok=True)
    for role, i in keyframe_indices(len(frames)).items():
        if i in seen:
            continue
        seen.add(i)
        path = os.path.abspath(os.path.join(folder, f"frame_{i:04d}.png"))
        Image.fromarray(frames[i]).save(path)
        out.append(Keyframe(shot_id, i, role, path, frame_event_id(shot_id, i)))
    return out


def keyframe_events(shot, keyframes: Sequence[Keyframe], n_frames: int) -> list[Event]:
    """Events for the keyframes of ``shot`` (a :class:`~agentmem.story.format.Shot`)."""
    cam = None
    if shot.camera.pose is not None:
        cam = CameraPose(*shot.camera.pose, fov=shot.camera.fov)
    text = shot.action or f"shot {shot.id}"
    out = []
    for k in keyframes:
        t0 = shot.t + shot.duration * k.frame_index / n_frames
        t1 = shot.t + shot.duration * (k.frame_index + 1) / n_frames
        out.append(Event(
            id=k.event_id, t_start=t0, t_end=t1, text=text, participants=list(shot.present), location=shot.location,
            media=[MediaRef(path=k.path, t=t0, kind="image")], camera=cam,
            provenance={"shot": shot.id, "frame_index": k.frame_index, "role": k.role},
        ))
    return out


def write_back(mem, shot, frames: np.ndarray, directory: str) -> list[Keyframe]:
    """Save the keyframes of a rendered shot and store them as events in ``mem``."""
    kfs = save_keyframes(frames, shot.id, directory)
    mem.add_events(keyframe_events(shot, kfs, len(frames)))
    return kfs


def shot_in_memory(mem, shot_id: str) -> bool:
    """Whether frames of ``shot_id`` were already written back."""
    row = mem.store.conn.execute("SELECT 1 FROM events WHERE id=?", (frame_event_id(shot_id, 0),)).fetchone()
    return row is not None


@dataclass(frozen=True)
class FrameRow:
    """A frame event as the planner needs it: no participants, media read later for the chosen few."""

    rid: int
    event_id: str
    t: float
    shot_id: str
    frame_index: int
    role: str
    pose: tuple[float, float, float, float, float] | None
    fov: float


_FRAME_COLS = "e.rid, e.id, e.t_start, e.camera, e.provenance"


def _frame_rows(rows) -> list[FrameRow]:
    out = []
    for rid, eid, t, cam, prov in rows:
        p = json.loads(prov)
        c = json.loads(cam) if cam else None
        pose = (c["x"], c["y"], c["z"], c.get("yaw", 0.0), c.get("pitch", 0.0)) if c else None
        out.append(FrameRow(rid, eid, t, str(p.get("shot")), int(p["frame_index"]), str(p.get("role", "")), pose,
                            float(c.get("fov", 60.0)) if c else 60.0))
    return out


def location_frames(mem, location: str, before: float, *, limit: int = 64,
                    pose: CameraPose | None = None) -> list[FrameRow]:
    """Reference candidates at ``location`` starting before ``before``: one frame per earlier shot.

    The middle keyframe of each shot (or a frame without a role) is a
    candidate; the most recent ``limit`` are read, which keeps planning time
    flat as memory grows. With ``pose``, the most recent frame shot from
    exactly that pose is added even if it is older than the others.
    """
    members = mem.store.member_ids(location)
    marks = ",".join("?" * len(members))
    base = (f"SELECT {_FRAME_COLS} FROM event_entities ee JOIN events e ON e.rid = ee.rid "
            f"WHERE ee.entity_id IN ({marks}) AND ee.role='location' AND ee.t_start < ? AND e.archived=0 "
            "AND e.provenance LIKE '%\"frame_index\"%' "
            "AND (e.provenance LIKE '%\"role\": \"middle\"%' OR e.provenance NOT LIKE '%\"role\"%')")
    order = " ORDER BY ee.t_start DESC, e.rid DESC LIMIT ?"
    rows = mem.store.conn.execute(base + order, [*members, before, limit]).fetchall()
    # Camera poses are stored as the JSON of CameraPose with float fields, so an exact pose is an exact string.
    cam = json.dumps({k: float(v) for k, v in pose.__dict__.items()}) if pose is not None else None
    if cam is not None and len(rows) == limit and not any(r[3] == cam for r in rows):
        # Older than the window: look further back for the most recent frame from exactly this pose.
        # Through the camera index: only the few events shot from this exact pose are read.
        same = mem.store.conn.execute(
            f"SELECT {_FRAME_COLS} FROM events e INDEXED BY events_camera JOIN event_entities ee ON ee.rid = e.rid "
            f"WHERE e.camera = ? AND e.t_start < ? AND ee.entity_id IN ({marks}) AND ee.role='location' "
            "AND e.archived=0 AND e.provenance LIKE '%\"frame_index\"%' ORDER BY e.t_start DESC, e.rid DESC LIMIT 1",
            [cam, before, *members]).fetchall()
        rows += same
    return _frame_rows(rows)


def shot_frames(mem, shot_id: str) -> list[FrameRow]:
    """Keyframe events of one shot, by the id range ``shot:<shot_id>:f...`` (an index lookup)."""
    lo = frame_event_id(shot_id, 0)[:-1]
    rows = mem.store.conn.execute(
        f"SELECT {_FRAME_COLS} FROM events e WHERE e.id >= ? AND e.id < ? AND e.archived=0", (lo, lo[:-1] + "g"),
    ).fetchall()
    return [f for f in _frame_rows(rows) if f.shot_id == shot_id]


def frame_media(mem, event_ids: Sequence[str]) -> dict[str, tuple[str | None, np.ndarray | None]]:
    """(path, image embedding) of each event's first media item."""
    if not event_ids:
        return {}
    out: dict[str, tuple[str | None, np.ndarray | None]] = {}
    for i in range(0, len(event_ids), 500):
        chunk = list(event_ids[i : i + 500])
        marks = ",".join("?" * len(chunk))
        rows = mem.store.conn.execute(
            f"SELECT owner_id, path, vec FROM media WHERE owner='event' AND owner_id IN ({marks}) ORDER BY id", chunk,
        ).fetchall()
        for oid, path, blob in rows:
            out.setdefault(oid, (path, None if blob is None else np.frombuffer(blob, dtype=np.float32)))
    return out


def recent_events(mem, before: float, *, limit: int = 32) -> list[tuple[str, str, str]]:
    """(event id, text, shot id or event id) of the events starting before ``before``, most recent first."""
    rows = mem.store.conn.execute(
        "SELECT id, text, provenance FROM events WHERE t_start < ? AND archived=0 ORDER BY t_start DESC, rid DESC "
        "LIMIT ?", (before, limit),
    ).fetchall()
    out = []
    for eid, text, prov in rows:
        shot = json.loads(prov).get("shot") if prov else None
        out.append((eid, text, str(shot) if shot is not None else eid))
    return out


def shot_of(event: Event) -> str | None:
    """The shot an event came from, if it was written back from one."""
    shot = event.provenance.get("shot") if isinstance(event.provenance, dict) else None
    return str(shot) if shot is not None else None
