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
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agentmem.errors import BadInputError
from agentmem.spatial.camera import Intrinsics, look_at

WALK_KEYS = {"name", "camera", "fps", "chunk", "seed", "entities", "keyframes"}
KEYFRAME_KEYS = {"t", "eye", "look_at", "action", "entities"}


@dataclass(frozen=True)
class Keyframe:
    t: float
    eye: np.ndarray
    target: np.ndarray
    action: str | None = None
    entities: tuple[str, ...] | None = None


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
    entities: list[dict[str, Any]] = field(default_factory=list)

    def steps(self) -> list[WalkStep]:
        """The walk cut into chunks of ``chunk`` frames."""
        kf = self.keyframes
        n = int(math.floor((kf[-1].t - kf[0].t) * self.fps + 1e-9)) + 1
        times = [kf[0].t + i / self.fps for i in range(n)]
        poses, actions, present = [], [], []
        for t in times:
            j = max(i for i, k in enumerate(kf) if k.t <= t + 1e-9)
            a, b = kf[j], kf[min(j + 1, len(kf) - 1)]
            f = 0.0 if b.t == a.t else (t - a.t) / (b.t - a.t)
            poses.append(look_at(a.eye + f * (b.eye - a.eye), a.target + f * (b.target - a.target)))
            actions.append(next((k.action for k in reversed(kf[: j + 1]) if k.action is not None), ""))
            present.append(next((k.entities for k in reversed(kf[: j + 1]) if k.entities is not None), ()))
        return [
            WalkStep(np.stack(poses[s : s + self.chunk]), times[s : s + self.chunk], actions[s], present[s])
            for s in range(0, n, self.chunk)
        ]


def _point(value: Any, where: str, name: str) -> np.ndarray:
    if not isinstance(value, list) or len(value) != 3 or not all(_finite(v) for v in value):
        raise BadInputError(f"{where}: {name}: must be three finite numbers, got {value!r}")
    return np.asarray(value, np.float64)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _keyframe(d: Any, where: str) -> Keyframe:
    if not isinstance(d, dict):
        raise BadInputError(f"{where}: must be a mapping with t, eye, look_at")
    unknown = sorted(set(d) - KEYFRAME_KEYS)
    if unknown:
        raise BadInputError(f"{where}: {unknown[0]}: unknown field (known: {', '.join(sorted(KEYFRAME_KEYS))})")
    if not _finite(d.get("t")):
        raise BadInputError(f"{where}: t: must be a finite number of seconds, got {d.get('t')!r}")
    eye, target = _point(d.get("eye"), where, "eye"), _point(d.get("look_at"), where, "look_at")
    if np.allclose(eye, target):
        raise BadInputError(f"{where}: look_at: must differ from eye")
    ents = d.get("entities")
    if ents is not None and (not isinstance(ents, list) or not all(isinstance(e, str) and e for e in ents)):
        raise BadInputError(f"{where}: entities: must be a list of entity ids")
    action = d.get("action")
    if action is not None and not isinstance(action, str):
        raise BadInputError(f"{where}: action: must be text")
    return Keyframe(float(d["t"]), eye, target, action, None if ents is None else tuple(ents))


def _positive(d: dict, key: str, default: float, where: str) -> float:
    v = d.get(key, default)
    if not _finite(v) or v <= 0:
        raise BadInputError(f"{where}: {key}: must be a positive number, got {v!r}")
    return float(v)


def parse_walk(data: Any, where: str = "walk") -> Walk:
    """A validated :class:`Walk` from a mapping (the YAML or JSON document)."""
    if not isinstance(data, dict):
        raise BadInputError(f"{where}: must be a mapping with keyframes")
    unknown = sorted(set(data) - WALK_KEYS)
    if unknown:
        raise BadInputError(f"{where}: {unknown[0]}: unknown field (known: {', '.join(sorted(WALK_KEYS))})")
    cam = data.get("camera", {})
    if not isinstance(cam, dict):
        raise BadInputError(f"{where}: camera: must be a mapping with fov, width, height")
    k = Intrinsics.from_fov(_positive(cam, "fov", 70.0, f"{where}: camera"), int(_positive(cam, "width", 160, where)),
                            int(_positive(cam, "height", 120, where)))  # fmt: skip
    raw = data.get("keyframes")
    if not isinstance(raw, list) or len(raw) < 2:
        raise BadInputError(f"{where}: keyframes: needs at least two keyframes")
    kfs = [_keyframe(d, f"{where}: keyframes[{i}]") for i, d in enumerate(raw)]
    for i in range(1, len(kfs)):
        if kfs[i].t <= kfs[i - 1].t:
            raise BadInputError(f"{where}: keyframes[{i}]: t: {kfs[i].t:g} goes backwards (after {kfs[i - 1].t:g})")
    ents = data.get("entities", [])
    if not isinstance(ents, list) or not all(isinstance(e, dict) and isinstance(e.get("id"), str) for e in ents):
        raise BadInputError(f"{where}: entities: must be a list of mappings with an id")
    return Walk(str(data.get("name", "walk")), k, _positive(data, "fps", 8, where),
                int(_positive(data, "chunk", 8, where)), int(data.get("seed", 0)), kfs, ents)  # fmt: skip


def load_walk(path: str | Path) -> Walk:
    """Read and validate a walk file (``.yaml``, ``.yml`` or ``.json``)."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise BadInputError(f"{path}: cannot read: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise BadInputError(f"{path}: not valid YAML: {str(e).splitlines()[0]}") from None
    return parse_walk(data, str(path))


def bundled_walks() -> dict[str, Path]:
    """The walks shipped with agentmem, by name."""
    folder = Path(__file__).resolve().parent.parent / "data" / "walks"
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}
