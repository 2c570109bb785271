"""The story format: entities and shots, read from YAML or JSON and validated in full.

A story is checked completely before anything touches a memory, and every
error names the file, the shot (or entity) and the field, for example
``story.yaml: shot s03: location: unknown entity 'lighhouse'``. The errors are
:class:`~agentmem.errors.BadInputError` subclasses: unknown ids raise
:class:`~agentmem.errors.UnknownEntityError`, missing reference images
:class:`~agentmem.errors.MediaNotFoundError`, bad or backwards times
:class:`~agentmem.errors.BadTimeError`, and everything else
:class:`~agentmem.errors.FormatError`.

Examples
--------
>>> story = parse_story({
...     "title": "Two shots",
...     "entities": [{"id": "mara", "kind": "character", "name": "Mara", "appearance": "yellow raincoat"},
...                  {"id": "tower", "kind": "location"}],
...     "shots": [{"id": "s01", "t": 0, "duration": 4, "location": "tower", "characters": ["mara"],
...                "action": "Mara climbs"},
...               {"id": "s02", "t": 4, "duration": 2, "location": "tower", "characters": ["mara"],
...                "changes": {"mara": {"appearance": "red raincoat"}}}]})
>>> [s.id for s in story.shots], story.appearance_at("mara", 4)
(['s01', 's02'], 'red raincoat')
>>> parse_story({"title": "x", "entities": [], "shots": [{"id": "s1", "t": 0, "duration": 1, "location": "nowhere"}]},
...             source="x.yaml")
Traceback (most recent call last):
...
agentmem.errors.UnknownEntityError: x.yaml: shot s1: location: unknown entity 'nowhere'
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentmem.errors import BadTimeError, FormatError, MediaNotFoundError, UnknownEntityError
from agentmem.formats.documents import load_document
from agentmem.formats.records import check_image
from agentmem.story.fields import (
    attribute_changes,
    fact_triples,
    id_list,
    label,
    story_id,
    story_time,
    str_list,
    unknown_keys,
)

STORY_KINDS = ("character", "object", "location")
ENTITY_KEYS = {"id", "kind", "name", "aliases", "appearance", "reference_images", "attributes"}
SHOT_KEYS = {
    "id",
    "t",
    "duration",
    "location",
    "characters",
    "objects",
    "action",
    "camera",
    "changes",
    "facts",
    "motion",
}
CAMERA_KEYS = {"move", "pose", "fov"}
TOP_KEYS = {"title", "entities", "shots", "description", "seed"}


@dataclass(frozen=True)
class StoryEntity:
    """A character, object or location declared by the story."""

    id: str
    kind: str
    name: str
    aliases: tuple[str, ...] = ()
    appearance: str = ""
    reference_images: tuple[str, ...] = ()
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CameraSpec:
    """Camera of a shot: a named move, an optional pose (x, y, z, yaw_deg, pitch_deg) and a field of view."""

    move: str = "static"
    pose: tuple[float, float, float, float, float] | None = None
    fov: float = 60.0


@dataclass(frozen=True)
class Shot:
    """One shot of a story; ``changes`` and ``facts`` take effect at ``t``."""

    id: str
    t: float
    duration: float
    location: str | None = None
    characters: tuple[str, ...] = ()
    objects: tuple[str, ...] = ()
    action: str = ""
    camera: CameraSpec = field(default_factory=CameraSpec)
    changes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    facts: tuple[tuple[str, str, str], ...] = ()
    motion: str = ""

    @property
    def end(self) -> float:
        return self.t + self.duration

    @property
    def present(self) -> tuple[str, ...]:
        """Ids of the visible characters then objects."""
        return self.characters + self.objects

    def to_dict(self) -> dict[str, Any]:
        """The shot in the story format; :func:`parse_shot` reads it back to an equal shot."""
        cam: dict[str, Any] = {"move": self.camera.move, "fov": self.camera.fov}
        if self.camera.pose is not None:
            cam["pose"] = list(self.camera.pose)
        return {
            "id": self.id,
            "t": self.t,
            "duration": self.duration,
            "location": self.location,
            "characters": list(self.characters),
            "objects": list(self.objects),
            "action": self.action,
            "camera": cam,
            "changes": {k: dict(v) for k, v in self.changes.items()},
            "facts": [list(f) for f in self.facts],
            "motion": self.motion,
        }


@dataclass(frozen=True)
class Story:
    """A validated story: entities and shots in story order."""

    title: str
    entities: tuple[StoryEntity, ...]
    shots: tuple[Shot, ...]
    source: str = "<story>"
    seed: int = 0

    def entity(self, entity_id: str) -> StoryEntity:
        for e in self.entities:
            if e.id == entity_id:
                return e
        raise UnknownEntityError(f"{self.source}: unknown entity {entity_id!r}")

    @property
    def t_origin(self) -> float:
        """When declared attributes start to hold: 0, or the first shot's time if that is earlier."""
        return min([0.0, *[s.t for s in self.shots[:1]]])

    def attribute_at(self, entity_id: str, key: str, t: float) -> str:
        """The story's own value of an attribute at ``t``: its latest change at or before ``t``, else its initial."""
        e = self.entity(entity_id)
        value = e.appearance if key == "appearance" else e.attributes.get(key, "")
        for s in self.shots:
            if s.t <= t and key in s.changes.get(entity_id, {}):
                value = s.changes[entity_id][key]
        return value

    def appearance_at(self, entity_id: str, t: float) -> str:
        return self.attribute_at(entity_id, "appearance", t)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict in the story format (reference image paths as resolved)."""
        ents = []
        for e in self.entities:
            d: dict[str, Any] = {"id": e.id, "kind": e.kind, "name": e.name}
            if e.aliases:
                d["aliases"] = list(e.aliases)
            if e.appearance:
                d["appearance"] = e.appearance
            if e.reference_images:
                d["reference_images"] = list(e.reference_images)
            if e.attributes:
                d["attributes"] = dict(e.attributes)
            ents.append(d)
        shots = [s.to_dict() for s in self.shots]
        return {"title": self.title, "seed": self.seed, "entities": ents, "shots": shots}


# ---------------------------------------------------------------------------- reading


def load_story(path: str | os.PathLike) -> Story:
    """Read and validate a story file (``.yaml``, ``.yml`` or ``.json``).

    Reference image paths are resolved against the story file's folder.
    """
    p = Path(path)
    if not p.is_file():
        raise MediaNotFoundError(f"story file not found: {p}")
    data = load_document(p, p.name, "story")
    return parse_story(data, source=p.name, base_dir=p.parent)


def parse_story(data: Any, *, source: str = "<story>", base_dir: str | os.PathLike | None = None) -> Story:
    """Validate a story given as a dict (parsed YAML or JSON); see the module docstring."""
    if not isinstance(data, dict):
        raise FormatError(f"{source}: a story is a mapping with title, entities and shots")
    unknown_keys(data, TOP_KEYS, source)
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        raise FormatError(f"{source}: title: must be a non-empty string")
    seed = data.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise FormatError(f"{source}: seed: must be an integer, got {seed!r}")
    raw_entities = data.get("entities") or []
    if not isinstance(raw_entities, list):
        raise FormatError(f"{source}: entities: must be a list")
    entities: dict[str, StoryEntity] = {}
    for i, d in enumerate(raw_entities):
        e = parse_entity(d, f"{source}: entity {label(d, i)}", base_dir)
        if e.id in entities:
            raise FormatError(f"{source}: entity {e.id}: id: declared twice")
        entities[e.id] = e
    raw_shots = data.get("shots")
    if not isinstance(raw_shots, list) or not raw_shots:
        raise FormatError(f"{source}: shots: must be a non-empty list")
    shots: list[Shot] = []
    for i, d in enumerate(raw_shots):
        shot = parse_shot(d, entities, shots[-1] if shots else None, where=f"{source}: shot {label(d, i)}")
        if any(s.id == shot.id for s in shots):
            raise FormatError(f"{source}: shot {shot.id}: id: used by an earlier shot")
        shots.append(shot)
    return Story(title=title.strip(), entities=tuple(entities.values()), shots=tuple(shots), source=source, seed=seed)


def parse_entity(d: Any, where: str, base_dir: str | os.PathLike | None = None) -> StoryEntity:
    """One validated entity declaration; ``where`` prefixes every error."""
    if not isinstance(d, dict):
        raise FormatError(f"{where}: an entity is a mapping with id, kind, name, ...")
    unknown_keys(d, ENTITY_KEYS, where)
    eid = story_id(d.get("id"), where, "id")
    kind = d.get("kind")
    if kind not in STORY_KINDS:
        raise FormatError(f"{where}: kind: must be one of {list(STORY_KINDS)}, got {kind!r}")
    name = d.get("name", eid)
    if not isinstance(name, str) or not name.strip():
        raise FormatError(f"{where}: name: must be a non-empty string")
    aliases = str_list(d.get("aliases"), where, "aliases")
    appearance = d.get("appearance", "")
    if not isinstance(appearance, str):
        raise FormatError(f"{where}: appearance: must be a string")
    attrs = d.get("attributes") or {}
    if not isinstance(attrs, dict) or not all(isinstance(k, str) for k in attrs):
        raise FormatError(f"{where}: attributes: must be a mapping of name: value")
    refs = []
    for j, r in enumerate(str_list(d.get("reference_images"), where, "reference_images")):
        path = r if base_dir is None or os.path.isabs(r) else os.path.join(os.fspath(base_dir), r)
        if not os.path.isfile(path):
            raise MediaNotFoundError(f"{where}: reference_images[{j}]: file not found: {path}")
        check_image(path, where, f"reference_images[{j}]")
        refs.append(os.path.abspath(path))
    return StoryEntity(
        id=eid,
        kind=kind,
        name=name.strip(),
        aliases=tuple(aliases),
        appearance=appearance.strip(),
        reference_images=tuple(refs),
        attributes={k: str(v) for k, v in attrs.items()},
    )


def parse_shot(d: Any, entities: Mapping[str, StoryEntity], previous: Shot | None, *, where: str) -> Shot:
    """One validated shot, checked against the declared ``entities`` and the ``previous`` shot."""
    if not isinstance(d, dict):
        raise FormatError(f"{where}: a shot is a mapping with id, t, duration, ...")
    unknown_keys(d, SHOT_KEYS, where)
    sid = story_id(d.get("id"), where, "id")
    t = story_time(d.get("t"), where, "t")
    if previous is not None and not t > previous.t:
        raise BadTimeError(
            f"{where}: t: story time goes backwards: {t:g} is not after shot {previous.id} "
            f"(t={previous.t:g}); shots are in story order"
        )
    duration = d.get("duration")
    if (
        isinstance(duration, bool)
        or not isinstance(duration, (int, float))
        or not math.isfinite(duration)
        or duration <= 0
    ):
        raise FormatError(f"{where}: duration: must be a number of seconds > 0, got {duration!r}")

    def ref(value: Any, fld: str, kind: str) -> str:
        if not isinstance(value, str) or value not in entities:
            raise UnknownEntityError(f"{where}: {fld}: unknown entity {value!r}")
        if entities[value].kind != kind:
            have = entities[value].kind
            raise FormatError(
                f"{where}: {fld}: {value!r} is {'an' if have[0] in 'aeiou' else 'a'} {have}, not a {kind}"
            )
        return value

    location = d.get("location")
    location = None if location is None else ref(location, "location", "location")
    chars = tuple(ref(c, f"characters[{i}]", "character") for i, c in enumerate(id_list(d, "characters", where)))
    objs = tuple(ref(o, f"objects[{i}]", "object") for i, o in enumerate(id_list(d, "objects", where)))
    for fld, ids in (("characters", chars), ("objects", objs)):
        if len(set(ids)) != len(ids):
            raise FormatError(f"{where}: {fld}: lists an entity twice")
    action = d.get("action", "")
    if not isinstance(action, str):
        raise FormatError(f"{where}: action: must be a string")
    motion = d.get("motion", "")
    if not isinstance(motion, str):
        raise FormatError(f"{where}: motion: must be a string")
    return Shot(
        id=sid,
        t=t,
        duration=float(duration),
        location=location,
        characters=chars,
        objects=objs,
        action=action.strip(),
        camera=_camera(d.get("camera"), where),
        changes=attribute_changes(d.get("changes"), entities, where),
        facts=fact_triples(d.get("facts"), entities, where),
        motion=motion.strip(),
    )


def _camera(value: Any, where: str) -> CameraSpec:
    if value is None:
        return CameraSpec()
    if not isinstance(value, dict):
        raise FormatError(f"{where}: camera: must be a mapping with move, pose, fov")
    unknown_keys(value, CAMERA_KEYS, f"{where}: camera")
    move = value.get("move", "static")
    if not isinstance(move, str) or not move.strip():
        raise FormatError(f"{where}: camera.move: must be a non-empty string")
    pose = value.get("pose")
    if pose is not None:
        if (
            not isinstance(pose, list)
            or len(pose) != 5
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in pose)
        ):
            raise FormatError(f"{where}: camera.pose: must be [x, y, z, yaw_deg, pitch_deg], got {pose!r}")
        pose = tuple(float(v) for v in pose)
    fov = value.get("fov", 60.0)
    if isinstance(fov, bool) or not isinstance(fov, (int, float)) or not 1.0 <= fov <= 170.0:
        raise FormatError(f"{where}: camera.fov: must be degrees in [1, 170], got {fov!r}")
    return CameraSpec(move=move.strip(), pose=pose, fov=float(fov))


def bundled_stories() -> list[Path]:
    """Paths of the example stories shipped in ``agentmem/data/stories``."""
    from importlib.resources import files

    root = Path(str(files("agentmem") / "data" / "stories"))
    return sorted(root.glob("*.yaml"))


__all__ = [
    "CameraSpec",
    "Shot",
    "Story",
    "StoryEntity",
    "bundled_stories",
    "load_story",
    "parse_entity",
    "parse_shot",
    "parse_story",
]
