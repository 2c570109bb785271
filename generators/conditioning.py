"""The conditioning contract between the planner and the video back ends.

A :class:`ShotPlan` is everything a generator may use to draw one shot. The
planner (``agentmem.story.planner``) builds it from memory; a back end turns it into
a :class:`Clip`. Nothing here knows about the store, so back ends stay
independent of how memory is kept.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class FrameRef:
    """A frame of an earlier shot, used as a reference or for continuity."""

    shot_id: str
    frame_index: int
    path: str | None = None


@dataclass(frozen=True)
class EntityConditioning:
    """How one visible character or object must look in this shot."""

    id: str
    name: str
    kind: str
    appearance: str
    reference_images: list[str] = field(default_factory=list)
    seed: int = 0
    embedding: list[float] | None = None


@dataclass(frozen=True)
class LocationConditioning:
    """The place of the shot and frames of it that earlier shots showed."""

    id: str
    name: str
    appearance: str
    reference_frames: list[FrameRef] = field(default_factory=list)
    seed: int = 0


@dataclass(frozen=True)
class CameraConditioning:
    """Camera move and pose; ``pose`` is (x, y, z, yaw_deg, pitch_deg)."""

    move: str = "static"
    pose: tuple[float, float, float, float, float] | None = None
    fov: float = 60.0


@dataclass(frozen=True)
class StaticConditioning:
    entities: list[EntityConditioning] = field(default_factory=list)
    location: LocationConditioning | None = None


@dataclass(frozen=True)
class DynamicConditioning:
    action: str = ""
    motion: str = "still"
    camera: CameraConditioning = field(default_factory=CameraConditioning)
    continue_from: FrameRef | None = None
    recent: list[str] = field(default_factory=list)
    retrieved: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TraceItem:
    """One memory item the planner used, and why."""

    id: str
    kind: str
    score: float
    reason: str


@dataclass(frozen=True)
class ShotPlan:
    shot_id: str
    t: float
    duration: float
    prompt: str
    negative_prompt: str
    static: StaticConditioning
    dynamic: DynamicConditioning
    memory_trace: list[TraceItem] = field(default_factory=list)
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict; the keys are the documented ShotPlan JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ShotPlan:
        st = d["static"]
        loc = st.get("location")
        dyn = d["dynamic"]
        cam = dyn.get("camera") or {}
        cont = dyn.get("continue_from")
        return cls(
            shot_id=d["shot_id"],
            t=float(d["t"]),
            duration=float(d["duration"]),
            prompt=d["prompt"],
            negative_prompt=d["negative_prompt"],
            static=StaticConditioning(
                entities=[EntityConditioning(**e) for e in st.get("entities", [])],
                location=None
                if loc is None
                else LocationConditioning(
                    **{**loc, "reference_frames": [FrameRef(**f) for f in loc.get("reference_frames", [])]}
                ),
            ),
            dynamic=DynamicConditioning(
                action=dyn.get("action", ""),
                motion=dyn.get("motion", "still"),
                camera=CameraConditioning(
                    move=cam.get("move", "static"),
                    pose=tuple(cam["pose"]) if cam.get("pose") is not None else None,
                    fov=float(cam.get("fov", 60.0)),
                ),
                continue_from=FrameRef(**cont) if cont else None,
                recent=list(dyn.get("recent", [])),
                retrieved=list(dyn.get("retrieved", [])),
            ),
            memory_trace=[TraceItem(**m) for m in d.get("memory_trace", [])],
            seed=int(d.get("seed", 0)),
        )


@dataclass
class Clip:
    """Generated frames: ``frames`` is uint8 of shape (T, H, W, 3)."""

    frames: np.ndarray
    fps: int
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.frames.ndim != 4 or self.frames.shape[-1] != 3 or self.frames.dtype != np.uint8:
            raise ValueError(
                f"Clip.frames must be uint8 of shape (T, H, W, 3), got {self.frames.dtype} {self.frames.shape}"
            )
