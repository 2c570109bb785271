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
place) and :func:`recent_events`.
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
    """Events for the keyframes of ``shot`` (a :class:`~agentmem.story.Shot`)."""
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


def location_frames(mem, location: str, before: float, *, limit: int = 256) -> list[Event]:
    """Frame events at ``location`` starting before ``before``, most recent first (at most ``limit``).

    The bound keeps planning time flat as memory grows; 256 frame events are
    the last ~85 shots at one place.
    """
    members = mem.store.member_ids(location)
    marks = ",".join("?" * len(members))
    rows = mem.store.conn.execute(
        "SELECT ee.rid FROM event_entities ee JOIN events e ON e.rid = ee.rid "
        f"WHERE ee.entity_id IN ({marks}) AND ee.role='location' AND ee.t_start < ? AND e.archived=0 "
        "AND e.provenance LIKE '%\"frame_index\"%' ORDER BY ee.t_start DESC LIMIT ?",
        [*members, before, limit],
    ).fetchall()
    by = mem.store.events_by_rid([r[0] for r in rows])
    return [by[r[0]] for r in rows if r[0] in by]


def recent_events(mem, before: float, *, limit: int = 32) -> list[Event]:
    """Events starting before ``before``, most recent first."""
    rows = mem.store.conn.execute(
        "SELECT rid FROM events WHERE t_start < ? AND archived=0 ORDER BY t_start DESC, rid DESC LIMIT ?",
        (before, limit),
    ).fetchall()
    by = mem.store.events_by_rid([r[0] for r in rows])
    return [by[r[0]] for r in rows if r[0] in by]


def media_vectors(mem, event_ids: Sequence[str]) -> dict[str, np.ndarray]:
    """Image embedding of each event's first media item, where there is one."""
    if not event_ids:
        return {}
    marks = ",".join("?" * len(event_ids))
    rows = mem.store.conn.execute(
        f"SELECT owner_id, vec FROM media WHERE owner='event' AND vec IS NOT NULL AND owner_id IN ({marks}) "
        "ORDER BY id", list(event_ids),
    ).fetchall()
    out: dict[str, np.ndarray] = {}
    for oid, blob in rows:
        out.setdefault(oid, np.frombuffer(blob, dtype=np.float32))
    return out


def shot_of(event: Event) -> str | None:
    """The shot an event came from, if it was written back from one."""
    shot = event.provenance.get("shot") if isinstance(event.provenance, dict) else None
    return str(shot) if shot is not None else None


def provenance_json(event: Event) -> str:
    return json.dumps(event.provenance, sort_keys=True)
