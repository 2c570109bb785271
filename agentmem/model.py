"""Typed records of the memory: entity slots, events, relations and query hits.

Story time is a float of seconds. For stories it usually starts at 0; for dated
material (LoCoMo, ISO-8601 input) it is seconds since the Unix epoch, UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

ENTITY_KINDS = ("character", "object", "location", "other")
# Matched with fullmatch: "$" would let a trailing newline through.
ID_RE = re.compile(r"[A-Za-z0-9_.:\-]+")


@dataclass(frozen=True)
class AttributeValue:
    """One value of an entity attribute, valid in story time [t_from, t_to).

    ``t_to`` is ``None`` while the value is current. A new value closes the
    previous interval; nothing is ever deleted.
    """

    key: str
    value: str
    t_from: float
    t_to: float | None = None
    source: str | None = None

    def valid_at(self, t: float) -> bool:
        return self.t_from <= t and (self.t_to is None or t < self.t_to)


@dataclass(frozen=True)
class MediaRef:
    """A picture (or clip) attached to an entity or event.

    ``embedding`` is filled on write by the image embedder when the file exists.
    ``caption`` carries text that describes the media (for example LoCoMo's
    BLIP captions), and is searchable with the event text.
    """

    path: str | None = None
    t: float | None = None
    caption: str | None = None
    kind: str = "image"
    embedding: list[float] | None = None


@dataclass(frozen=True)
class CameraPose:
    """Camera position (x, y, z), yaw and pitch in degrees, field of view in degrees."""

    x: float
    y: float
    z: float
    yaw: float = 0.0
    pitch: float = 0.0
    fov: float = 60.0


@dataclass(frozen=True)
class EntityDecl:
    """A declaration or update of an entity, as :meth:`agentmem.Memory.write` takes it.

    ``attributes`` take effect at story time ``t``. ``resolve=False`` keeps the
    id apart even when its name matches another entity.
    """

    id: str
    kind: str | None = None
    name: str | None = None
    aliases: tuple[str, ...] = ()
    attributes: dict[str, str] = field(default_factory=dict)
    media: tuple[MediaRef, ...] = ()
    t: float = 0.0
    resolve: bool = True


@dataclass
class EntitySlot:
    """One character, object or location, with its history."""

    id: str
    kind: str = "other"
    name: str = ""
    aliases: list[str] = field(default_factory=list)
    attributes: list[AttributeValue] = field(default_factory=list)
    media: list[MediaRef] = field(default_factory=list)
    created_at: float = 0.0
    updated_at: float = 0.0
    merged_ids: list[str] = field(default_factory=list)

    def state_at(self, t: float) -> dict[str, str]:
        """Attribute values valid at story time ``t``."""
        return {a.key: a.value for a in self.attributes if a.valid_at(t)}


@dataclass
class Event:
    """A time-indexed episodic memory."""

    id: str
    t_start: float
    t_end: float
    text: str
    participants: list[str] = field(default_factory=list)
    location: str | None = None
    media: list[MediaRef] = field(default_factory=list)
    camera: CameraPose | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    importance: float = 0.5
    group: str | None = None
    ingested_at: float = 0.0
    archived: bool = False

    @property
    def entity_ids(self) -> list[str]:
        ids = list(self.participants)
        if self.location and self.location not in ids:
            ids.append(self.location)
        return ids


@dataclass(frozen=True)
class Relation:
    """subject --predicate--> object, valid in story time [t_from, t_to)."""

    subject: str
    predicate: str
    object: str
    t_from: float = 0.0
    t_to: float | None = None
    evidence: list[str] = field(default_factory=list)
    weight: float = 1.0
    id: int | None = None


@dataclass(frozen=True)
class Merge:
    """A recorded entity merge: ``source`` now resolves to ``target``."""

    id: int
    source: str
    target: str
    reason: str
    score: float
    at: float
    undone_at: float | None = None


@dataclass
class Hit:
    """One query result with the evidence for its rank."""

    id: str
    kind: str
    t_start: float
    t_end: float
    text: str
    entities: list[str]
    score: float
    components: dict[str, float]
    provenance: dict[str, Any]
    location: str | None = None
    group: str | None = None
    archived: bool = False

    @classmethod
    def from_event(cls, e: Event, score: float = 0.0, components: dict[str, float] | None = None) -> Hit:
        """The hit for stored event ``e`` with this score and its evidence.

        Examples
        --------
        >>> e = Event("e1", 1.0, 2.0, "Mara lights the lamp", participants=["mara"])
        >>> h = Hit.from_event(e, 0.5, {"bm25": 0.5})
        >>> (h.id, h.kind, h.entities, h.score, h.components)
        ('e1', 'event', ['mara'], 0.5, {'bm25': 0.5})
        """
        return cls(
            id=e.id,
            kind="event",
            t_start=e.t_start,
            t_end=e.t_end,
            text=e.text,
            entities=e.entity_ids,
            score=score,
            components=dict(components or {}),
            provenance=e.provenance,
            location=e.location,
            group=e.group,
            archived=e.archived,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "t_start": self.t_start,
            "t_end": self.t_end,
            "text": self.text,
            "entities": self.entities,
            "location": self.location,
            "group": self.group,
            "score": round(self.score, 6),
            "components": {k: round(v, 6) for k, v in self.components.items()},
            "provenance": self.provenance,
            "archived": self.archived,
        }
