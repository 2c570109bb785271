"""The conditioning contract of the interactive world loop: a :class:`WorldPlan` per chunk, a :class:`WorldClip` back.

A world plan holds everything a camera-controlled video model may use to draw
the next chunk of frames: the camera path (poses, intrinsics as a
:class:`~generators.camera.Intrinsics`, and Plücker ray maps from
:func:`plucker_rays`), the context frames memory chose, memory rendered into
every target pose (guidance RGB, depth and the mask of what memory covers), the
short-term window, a long-term anchor frame, the entities in view, the action
and prompt, and a memory trace. Like :class:`~generators.conditioning.ShotPlan`,
nothing here knows about the store.

Poses are camera-to-world 4x4 matrices with OpenGL axes (x right, y up, looking
down -z); depth is z-depth in metres, 0 where unknown (:mod:`generators.camera`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .camera import Intrinsics, pixel_rays
from .conditioning import TraceItem


@dataclass(frozen=True)
class ContextFrame:
    """A stored frame memory chose for the chunk, with its pose, score and reason; ``rgb`` is its image."""

    id: str
    t: float
    c2w: np.ndarray
    score: float
    reason: str
    rgb: np.ndarray | None = None


@dataclass(frozen=True)
class WorldEntity:
    """An entity in view: its appearance as of now and where it was last seen (``None``: never)."""

    id: str
    name: str
    appearance: str
    position: tuple[float, float, float] | None = None
    seen_at: float | None = None


@dataclass
class WorldPlan:
    """Conditioning for one chunk of ``len(times)`` frames (see the module docstring).

    ``guidance_rgb`` (T, H, W, 3) uint8, ``guidance_depth`` (T, H, W) float32 and ``guidance_mask`` (T, H, W) bool
    are memory rendered into each pose; ``window`` (N, H, W, 3) the last frames; ``anchor`` one early frame.
    """

    step: int
    times: list[float]
    c2w: np.ndarray
    camera: Intrinsics
    action: str
    prompt: str
    guidance_rgb: np.ndarray
    guidance_depth: np.ndarray
    guidance_mask: np.ndarray
    context: list[ContextFrame] = field(default_factory=list)
    window: np.ndarray | None = None
    window_ids: list[str] = field(default_factory=list)
    anchor: np.ndarray | None = None
    anchor_id: str | None = None
    entities: list[WorldEntity] = field(default_factory=list)
    memory_trace: list[TraceItem] = field(default_factory=list)
    seed: int = 0

    @property
    def covered(self) -> list[float]:
        """Per frame, the share of pixels memory covers (1 - the share a generator must invent)."""
        return [float(m.mean()) for m in self.guidance_mask]

    def to_dict(self) -> dict[str, Any]:
        """The documented WorldPlan JSON: everything but pixel arrays, which are summarised by ``covered``."""
        return {
            "step": self.step,
            "times": list(self.times),
            "camera": {"c2w": np.asarray(self.c2w).round(6).tolist(), "intrinsics": self.camera.__dict__},
            "action": self.action,
            "prompt": self.prompt,
            "covered": [round(c, 4) for c in self.covered],
            "context": [{"id": c.id, "t": c.t, "score": round(c.score, 4), "reason": c.reason} for c in self.context],
            "window": list(self.window_ids),
            "anchor": self.anchor_id,
            "entities": [e.__dict__ for e in self.entities],
            "memory_trace": [t.__dict__ for t in self.memory_trace],
            "seed": self.seed,
        }


@dataclass
class WorldClip:
    """A generated chunk: ``frames`` (T, H, W, 3) uint8 and, when the back end gives it, ``depth`` (T, H, W) metres."""

    frames: np.ndarray
    depth: np.ndarray | None
    invented: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class WorldGenerator(Protocol):
    """What the world loop needs from a back end: ``generate_world(plan) -> WorldClip``."""

    name: str

    def generate_world(self, plan: WorldPlan) -> WorldClip: ...


def plucker_rays(c2w: np.ndarray, camera: Intrinsics) -> np.ndarray:
    """Plücker ray maps (T, 6, H, W) of a camera path: each pixel's unit ray direction d and moment o x d (world).

    Examples
    --------
    >>> r = plucker_rays(np.eye(4)[None], Intrinsics(1.0, 1.0, 1.0, 1.0, 2, 2))
    >>> r.shape, bool(np.allclose(np.linalg.norm(r[0, :3], axis=0), 1.0)), bool(np.allclose(r[0, 3:], 0.0))
    ((1, 6, 2, 2), True, True)
    """
    cam = pixel_rays(camera)
    out = np.empty((len(c2w), 6, camera.h, camera.w), np.float32)
    for i, m in enumerate(np.asarray(c2w, np.float64)):
        d = cam @ m[:3, :3].T
        d /= np.linalg.norm(d, axis=-1, keepdims=True)
        out[i, :3] = d.transpose(2, 0, 1)
        out[i, 3:] = np.cross(m[:3, 3], d).transpose(2, 0, 1)
    return out
