"""The walk format: camera keyframes interpolated into chunks of camera paths, with actions and entities present.

A walk (YAML or JSON)::

    name: plaza_loop
    camera: {fov: 70, width: 160, height: 120}   # horizontal field of view in degrees, image size
    fps: 8                                      # frames per second of story time
    chunk: 8                                    # frames per step of the loop
    seed: 0
    entities:                                   # declared in memory when absent
      - {id: cart, kind: object, name: the red cart, appearance: red wooden cart}
    keyframes:                                  # story time t (seconds), eye and look_at (metres, y up)
      - {t: 0, eye: [0, 1.6, 0], look_at: [1, 1.6, 0], action: walk east, entities: [cart]}
      - {t: 4, eye: [8, 1.6, 0], look_at: [9, 1.6, 0]}

Between keyframes the eye and the point looked at move linearly; frames are sampled at ``fps`` from the first
keyframe's time to the last one's and cut into steps of ``chunk`` frames. A step's action and entities are
those of the last keyframe at or before its first frame (``action`` and ``entities`` carry over until a
keyframe changes them). Every problem is one :class:`~agentmem.errors.BadInputError` naming the file, the
keyframe and the field: times must increase, points must be three finite numbers, eye and look_at must differ.

A walk is bounded before anything is computed from it: the file by the story file's limits (size, and expansion
through YAML aliases); the camera by ingest's rules (:func:`~agentmem.spatial.camera.check_fov`), with ``width``
and ``height`` integers of at least 16; ``fps`` in (0, 120]; ``chunk`` an integer in [1, 100,000]; ``seed`` an
integer in [0, 2**32 - 1]; points within ingest's bound on camera positions; at most 10,000 keyframes within 24
hours; at most 100,000 frames and 200,000,000 pixels (frames x width x height) in all. Entities are checked as
``agentmem ingest`` checks entities (id, kind, name), plus ``appearance`` (text).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agentmem.errors import BadInputError
from agentmem.formats.documents import load_document
from agentmem.formats.records import check_id, parse_entity
from agentmem.spatial.camera import MAX_TRANSLATION_M, Intrinsics, check_fov, look_at

WALK_KEYS = {"name", "camera", "fps", "chunk", "seed", "entities", "keyframes"}
KEYFRAME_KEYS = {"t", "eye", "look_at", "action", "entities"}
CAMERA_KEYS = {"fov", "width", "height"}
ENTITY_KEYS = {"id", "kind", "name", "appearance"}
# The run keeps every generated frame (for the videos) and stores each in the memory, so these bound its time and
# memory before anything is computed; they are generous for the CPU preview (the bundled walks use 160x120 at 8 fps).
MIN_SIDE = 16  # a 1-pixel image breaks the side-by-side panels; below 16 there is nothing to see
MAX_FPS = 120.0
MAX_SECONDS = 86_400.0  # from the first keyframe to the last
MAX_KEYFRAMES = 10_000
MAX_FRAMES = 100_000
MAX_PIXELS = 200_000_000  # frames x width x height: 10,416 frames at 160x120, 651 at 640x480
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class Keyframe:
    t: float
    eye: np.ndarray
    target: np.ndarray
    action: str | None = None
    entities: tuple[str, ...] | None = None


@dataclass(frozen=True)
class WalkEntity:
    """An entity the walk declares in memory when the memory lacks it."""

    id: str
    kind: str
    name: str
    appearance: str = ""


@dataclass(frozen=True)
class WalkStep:
    """One chunk of a walk: poses (T, 4, 4), times, the action and the entities present."""

    c2w: np.ndarray
    times: list[float]
    action: str
    entities: tuple[str, ...]


@dataclass(frozen=True)
class Walk:
    name: str
    k: Intrinsics
    fps: float
    chunk: int
    seed: int
    keyframes: list[Keyframe]
    entities: list[WalkEntity] = field(default_factory=list)

    def steps(self) -> list[WalkStep]:
        """The walk cut into chunks of ``chunk`` frames."""
        kf = self.keyframes
        n = frame_count(kf[-1].t - kf[0].t, self.fps)
        times = [kf[0].t + i / self.fps for i in range(n)]
        # The action and entities in force from each keyframe on: its own, else the last one given before it.
        actions: list[str] = []
        present: list[tuple[str, ...]] = []
        for k in kf:
            actions.append(k.action if k.action is not None else (actions[-1] if actions else ""))
            present.append(k.entities if k.entities is not None else (present[-1] if present else ()))
        starts = [k.t for k in kf]
        poses, at = [], []
        for t in times:
            j = bisect.bisect_right(starts, t + 1e-9) - 1  # the last keyframe at or before t
            a, b = kf[j], kf[min(j + 1, len(kf) - 1)]
            f = 0.0 if b.t == a.t else (t - a.t) / (b.t - a.t)
            poses.append(look_at(a.eye + f * (b.eye - a.eye), a.target + f * (b.target - a.target)))
            at.append(j)
        return [
            WalkStep(np.stack(poses[s : s + self.chunk]), times[s : s + self.chunk], actions[at[s]], present[at[s]])
            for s in range(0, n, self.chunk)
        ]


def frame_count(duration: float, fps: float) -> int:
    """Frames sampled at ``fps`` over ``duration`` seconds, both ends included."""
    return int(math.floor(duration * fps + 1e-9)) + 1


def _point(value: Any, where: str, name: str) -> np.ndarray:
    if not isinstance(value, list) or len(value) != 3 or not all(_finite(v) for v in value):
        raise BadInputError(f"{where}: {name}: must be three finite numbers, got {_shown(value)}")
    if any(abs(v) > MAX_TRANSLATION_M for v in value):  # the bound ingest puts on camera positions
        raise BadInputError(f"{where}: {name}: coordinates must lie within ±{MAX_TRANSLATION_M:g} m, got {value!r}")
    return np.asarray(value, np.float64)


def _shown(value: Any) -> str:
    """``repr`` cut to one short line: a refused value may be huge."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _keyframe(d: Any, where: str) -> Keyframe:
    if not isinstance(d, dict):
        raise BadInputError(f"{where}: must be a mapping with t, eye, look_at")
    _known(d, KEYFRAME_KEYS, where)
    if not _finite(d.get("t")):
        raise BadInputError(f"{where}: t: must be a finite number of seconds, got {_shown(d.get('t'))}")
    eye, target = _point(d.get("eye"), where, "eye"), _point(d.get("look_at"), where, "look_at")
    if np.linalg.norm(eye - target) < 1e-6:  # an absolute test: far from the origin a relative one passes metres
        raise BadInputError(f"{where}: look_at: must differ from eye")
    ents = d.get("entities")
    if ents is not None and not isinstance(ents, list):
        raise BadInputError(f"{where}: entities: must be a list of entity ids")
    for i, e in enumerate(ents or []):
        check_id(e, where, f"entities[{i}]")
    action = d.get("action")
    if action is not None and not isinstance(action, str):
        raise BadInputError(f"{where}: action: must be text")
    return Keyframe(float(d["t"]), eye, target, action, None if ents is None else tuple(ents))


def _known(d: dict, keys: set[str], where: str) -> None:
    unknown = sorted(map(str, set(d) - keys))
    if unknown:
        key = unknown[0] if unknown[0].isprintable() and len(unknown[0]) <= 60 else _shown(unknown[0])
        raise BadInputError(f"{where}: {key}: unknown field (known: {', '.join(sorted(keys))})")


def _number(d: dict, key: str, default: float, where: str, lo: float, hi: float) -> float:
    """``d[key]`` as a number in (lo, hi]."""
    v = d.get(key, default)
    if not _finite(v) or not lo < v <= hi:
        raise BadInputError(f"{where}: {key}: must be a number in ({lo:g}, {hi:g}], got {_shown(v)}")
    return float(v)


def _integer(d: dict, key: str, default: int, where: str, lo: int, hi: int) -> int:
    """``d[key]`` as an integer (not a bool, not a float) in [lo, hi]."""
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise BadInputError(f"{where}: {key}: must be an integer in [{lo:,}, {hi:,}], got {_shown(v)}")
    return v


def _camera(cam: Any, where: str) -> Intrinsics:
    if not isinstance(cam, dict):
        raise BadInputError(f"{where}: camera: must be a mapping with fov, width, height")
    where = f"{where}: camera"
    _known(cam, CAMERA_KEYS, where)
    w, h = cam.get("width", 160), cam.get("height", 120)
    k = check_fov(cam.get("fov", 70.0), w, h, where, names=("fov", "width", "height"))  # ingest's rules
    for name, v in (("width", w), ("height", h)):
        if not isinstance(v, int) or v < MIN_SIDE:
            raise BadInputError(f"{where}: {name}: must be an integer of at least {MIN_SIDE} pixels, got {v!r}")
    return k


def _keyframes(raw: Any, where: str) -> list[Keyframe]:
    """At least two keyframes, at most :data:`MAX_KEYFRAMES`, times increasing and within :data:`MAX_SECONDS`."""
    if not isinstance(raw, list) or not 2 <= len(raw) <= MAX_KEYFRAMES:
        raise BadInputError(f"{where}: keyframes: needs from 2 to {MAX_KEYFRAMES:,} keyframes")
    kfs = [_keyframe(d, f"{where}: keyframes[{i}]") for i, d in enumerate(raw)]
    for i in range(1, len(kfs)):
        if kfs[i].t <= kfs[i - 1].t:
            raise BadInputError(f"{where}: keyframes[{i}]: t: {kfs[i].t:g} goes backwards (after {kfs[i - 1].t:g})")
        if kfs[i].t - kfs[0].t > MAX_SECONDS:
            raise BadInputError(f"{where}: keyframes[{i}]: t: {kfs[i].t:g} is more than {MAX_SECONDS:,.0f} s (24 h) "
                                f"after the first keyframe; split the walk")  # fmt: skip
    return kfs


def _entities(raw: Any, where: str) -> list[WalkEntity]:
    """Entities checked by ingest's rules (id, kind, name), plus an ``appearance`` text; no id twice."""
    if not isinstance(raw, list):
        raise BadInputError(f"{where}: entities: must be a list of mappings with an id")
    out: dict[str, WalkEntity] = {}
    for i, d in enumerate(raw):
        at = f"{where}: entities[{i}]"
        if not isinstance(d, dict):
            raise BadInputError(f"{at}: must be a mapping with an id")
        _known(d, ENTITY_KEYS, at)
        e = parse_entity({k: v for k, v in d.items() if k != "appearance"}, at)
        appearance = d.get("appearance", "")
        if not isinstance(appearance, str):
            raise BadInputError(f"{at}: appearance: must be text")
        if e["id"] in out:
            raise BadInputError(f"{at}: id: {e['id']!r} is declared twice")
        out[e["id"]] = WalkEntity(e["id"], e["kind"] or "object", e["name"] or e["id"], appearance.strip())
    return list(out.values())


def parse_walk(data: Any, where: str = "walk") -> Walk:
    """A validated :class:`Walk` from a mapping (the YAML or JSON document); see the module for the bounds."""
    if not isinstance(data, dict):
        raise BadInputError(f"{where}: must be a mapping with keyframes")
    _known(data, WALK_KEYS, where)
    name = data.get("name", "walk")
    if not isinstance(name, str) or not name.strip():
        raise BadInputError(f"{where}: name: must be a non-empty text, got {_shown(name)}")
    k = _camera(data.get("camera", {}), where)
    fps = _number(data, "fps", 8, where, 0.0, MAX_FPS)
    chunk = _integer(data, "chunk", 8, where, 1, MAX_FRAMES)
    seed = _integer(data, "seed", 0, where, 0, MAX_SEED)
    kfs = _keyframes(data.get("keyframes"), where)
    n = frame_count(kfs[-1].t - kfs[0].t, fps)
    if n > MAX_FRAMES:
        raise BadInputError(f"{where}: fps: {fps:g} frames per second over {kfs[-1].t - kfs[0].t:g} s make {n:,} "
                            f"frames; a walk may have at most {MAX_FRAMES:,}")  # fmt: skip
    if n * k.w * k.h > MAX_PIXELS:
        raise BadInputError(f"{where}: camera: {n:,} frames of {k.w}x{k.h} make {n * k.w * k.h:,} pixels; a walk may "
                            f"have at most {MAX_PIXELS:,} (lower the size, fps or duration)")  # fmt: skip
    return Walk(name.strip(), k, fps, chunk, seed, kfs, _entities(data.get("entities", []), where))


def load_walk(path: str | Path) -> Walk:
    """Read and validate a walk file (``.yaml``, ``.yml`` or ``.json``) within the story file's limits."""
    path = Path(path)
    return parse_walk(load_document(path, str(path), "walk"), str(path))


def bundled_walks() -> dict[str, Path]:
    """The walks shipped with agentmem, by name."""
    folder = Path(__file__).resolve().parent.parent / "data" / "walks"
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}
