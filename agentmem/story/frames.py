"""Frame memory: writing rendered shots back as events, and reading their frames again.

Each rendered shot is written back as one event per *keyframe* (the first,
middle and last frame), so later shots retrieve what was actually shown:

- id ``shot:<shot_id>:f<frame_index>``; text: the shot's action;
- story time ``[t + d*i/n, t + d*(i+1)/n)`` for frame ``i`` of ``n`` (so even the
  last frame starts before a shot that begins where this one ends);
- participants (characters and objects), location and camera pose of the shot;
- media: the PNG, embedded by the memory's image embedder;
- provenance ``{"shot": id, "frame_index": i, "role": "first" | "middle" | "last"}``.

Keyframes of a shot with a camera pose also become posed frames of the spatial
memory (:class:`~agentmem.spatial.world.SpatialMemory`, same memory directory):
id = the event id, pose from the story camera, no depth, the same PNG, and
``source = {"event": id, "shot": shot_id, "location": location}``. One frame
store serves the story and the world loop.

The planner reads them back with :func:`reference_pool` (earlier frames of a
place: near the shot's pose from the spatial memory when it has one, else the
most recent), :func:`frame_media` and :func:`recent_events`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from agentmem.model import CameraPose, Event, MediaRef
from agentmem.outdir import inside
from agentmem.spatial.camera import Intrinsics, pose_from_story
from agentmem.spatial.frames import Frame
from agentmem.storage import keyframes
from agentmem.storage.paths import from_stored
from agentmem.story.views import story_camera

if TYPE_CHECKING:
    from agentmem.memory import Memory
    from agentmem.spatial.world import SpatialMemory

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
    folder = str(inside(directory, shot_id))  # a shot id is checked by the story format; this is the last guard
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
        x, y, z, yaw, pitch = shot.camera.pose
        cam = CameraPose(x, y, z, yaw, pitch, fov=shot.camera.fov)
    text = shot.action or f"shot {shot.id}"
    out = []
    for k in keyframes:
        t0 = shot.t + shot.duration * k.frame_index / n_frames
        t1 = shot.t + shot.duration * (k.frame_index + 1) / n_frames
        out.append(
            Event(
                id=k.event_id,
                t_start=t0,
                t_end=t1,
                text=text,
                participants=list(shot.present),
                location=shot.location,
                media=[MediaRef(path=k.path, t=t0, kind="image")],
                camera=cam,
                provenance={"shot": shot.id, "frame_index": k.frame_index, "role": k.role},
            )
        )
    return out


def posed_frames(shot, keyframes: Sequence[Keyframe], n_frames: int, size: tuple[int, int]) -> list[Frame]:
    """Spatial frames of the keyframes of a shot with a camera pose (none without one): no depth, pixels by path.

    ``size`` is the frames' (width, height); the field of view is the shot camera's, horizontal.
    """
    if shot.camera.pose is None:
        return []
    c2w = pose_from_story(*shot.camera.pose)
    k = Intrinsics.from_fov(shot.camera.fov, *size)
    return [
        Frame(kf.event_id, shot.t + shot.duration * kf.frame_index / n_frames, c2w, k, file_path=kf.path,
              source={"event": kf.event_id, "shot": shot.id, **({"location": shot.location} if shot.location else {})})
        for kf in keyframes
    ]  # fmt: skip


def write_back(mem: Memory, shot, frames: np.ndarray, directory: str, spatial: SpatialMemory | None = None
               ) -> list[Keyframe]:  # fmt: skip
    """Save the keyframes of a rendered shot and store them as events in ``mem`` (and, when the shot has a pose,
    as posed frames in ``spatial``)."""
    kfs = save_keyframes(frames, shot.id, directory)
    mem.add_events(keyframe_events(shot, kfs, len(frames)))
    posed = posed_frames(shot, kfs, len(frames), (frames.shape[2], frames.shape[1]))
    if spatial is not None and posed:
        spatial.add(posed, paths=[(f.file_path, None, 1.0, None) for f in posed])
    return kfs


def shot_in_memory(mem: Memory, shot_id: str) -> bool:
    """Whether frames of ``shot_id`` were already written back."""
    return keyframes.event_exists(mem.store, frame_event_id(shot_id, 0))


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


def _frame_rows(rows: Sequence[keyframes.KeyframeRow]) -> list[FrameRow]:
    out = []
    for r in rows:
        p = json.loads(r.provenance)
        c = json.loads(r.camera) if r.camera else None
        pose = (c["x"], c["y"], c["z"], c.get("yaw", 0.0), c.get("pitch", 0.0)) if c else None
        out.append(
            FrameRow(
                r.rid,
                r.id,
                r.t_start,
                str(p.get("shot")),
                int(p["frame_index"]),
                str(p.get("role", "")),
                pose,
                float(c.get("fov", 60.0)) if c else 60.0,
            )
        )
    return out


def reference_pool(mem: Memory, spatial: SpatialMemory | None, shot) -> tuple[list[FrameRow], str]:
    """Frames of earlier shots at ``shot``'s location (or a place inside it) to choose its references from, and
    where they came from.

    A shot with a camera pose, when the spatial memory holds keyframes of the location, gets the views near its
    pose among *all* of them, however old (:meth:`SpatialMemory.nearby`: facing it, within 60 m, nearest pose
    first, at most 256). Otherwise, and when none of those is near, the most recent frames at the location
    (:func:`location_frames`).
    """
    if shot.camera.pose is not None and spatial is not None:
        members = mem.store.member_ids(shot.location)
        if spatial.has_place(members):
            before = float(np.nextafter(shot.t, -np.inf))
            near = spatial.nearby(*story_camera(shot.camera.pose, shot.camera.fov), before, places=members)
            rows = frames_by_id(mem, near)
            if rows:
                return rows, f"{len(rows)} views near the shot's pose, from the spatial memory"
    pose = None
    if shot.camera.pose is not None:
        x, y, z, yaw, pitch = shot.camera.pose
        pose = CameraPose(x, y, z, yaw, pitch, fov=shot.camera.fov)
    return location_frames(mem, shot.location, before=shot.t, pose=pose), "the most recent frames at the location"


def location_frames(
    mem, location: str, before: float, *, limit: int = 64, pose: CameraPose | None = None
) -> list[FrameRow]:
    """Reference candidates at ``location`` starting before ``before``: one frame per earlier shot.

    The middle keyframe of each shot (or a frame without a role) is a
    candidate; the most recent ``limit`` are read, which keeps planning time
    flat as memory grows. With ``pose``, the most recent frame shot from
    exactly that pose is added even if it is older than the others.
    """
    members = mem.store.member_ids(location)
    rows = keyframes.location_keyframes(mem.store, members, before, limit)
    # Camera poses are stored as the JSON of CameraPose with float fields, so an exact pose is an exact string.
    cam = json.dumps({k: float(v) for k, v in pose.__dict__.items()}) if pose is not None else None
    if cam is not None and len(rows) == limit and not any(r.camera == cam for r in rows):
        # Older than the window: look further back for the most recent frame from exactly this pose.
        rows += keyframes.latest_keyframe_from(mem.store, cam, members, before)
    return _frame_rows(rows)


def frames_by_id(mem: Memory, event_ids: Sequence[str]) -> list[FrameRow]:
    """The middle (or role-less) keyframes among ``event_ids``, in the order given."""
    rank = {eid: i for i, eid in enumerate(event_ids)}
    rows = sorted(keyframes.middle_keyframes_among(mem.store, event_ids), key=lambda r: rank[r.id])
    return _frame_rows(rows)


def shot_frames(mem: Memory, shot_id: str) -> list[FrameRow]:
    """Keyframe events of one shot, by the id range ``shot:<shot_id>:f...`` (an index lookup)."""
    lo = frame_event_id(shot_id, 0)[:-1]
    rows = keyframes.keyframes_in_id_range(mem.store, lo, lo[:-1] + "g")
    return [f for f in _frame_rows(rows) if f.shot_id == shot_id]


def frame_media(mem: Memory, event_ids: Sequence[str]) -> dict[str, tuple[str | None, np.ndarray | None]]:
    """(path, image embedding) of each event's first media item."""
    if not event_ids:
        return {}
    out: dict[str, tuple[str | None, np.ndarray | None]] = {}
    for oid, path, blob in keyframes.first_media(mem.store, event_ids):
        where = None if path is None else str(from_stored(path, mem.store.root))  # owned paths are folder-relative
        out.setdefault(oid, (where, None if blob is None else np.frombuffer(blob, dtype=np.float32)))
    return out


def recent_events(mem: Memory, before: float, *, limit: int = 32) -> list[tuple[str, str, str]]:
    """(event id, text, shot id or event id) of the events starting before ``before``, most recent first."""
    rows = keyframes.recent_event_rows(mem.store, before, limit)
    out = []
    for eid, text, prov in rows:
        shot = json.loads(prov).get("shot") if prov else None
        out.append((eid, text, str(shot) if shot is not None else eid))
    return out


def shot_of(event: Event) -> str | None:
    """The shot an event came from, if it was written back from one."""
    shot = event.provenance.get("shot") if isinstance(event.provenance, dict) else None
    return str(shot) if shot is not None else None
