"""Reading files into a memory: the ``events`` JSON Lines format and LoCoMo.

``events`` format: one JSON object per line. A line with ``"type": "entity"``
declares an entity (``id``, ``kind``, ``name``, ``aliases``, ``attributes``,
``media``, ``t``); a line with ``"type": "relation"`` states a fact
(``subject``, ``predicate``, ``object``, ``t_from``); any other line is an
event (``t_start``, ``t_end``, ``text``, ``participants``, ``location``,
``media``, ``camera``, ``provenance``, ``importance``, ``group``, ``id``).
Blank lines and lines starting with ``#`` are skipped.

The whole file is parsed and checked before anything is written, so a bad
line stores nothing (or, with ``skip_bad``, is reported and skipped).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentmem.errors import AgentMemError, BadInputError, FormatError, UnknownEntityError
from agentmem.formats.documents import parse_json
from agentmem.formats.locomo import LocomoConversation, LocomoFormatError, load_locomo
from agentmem.formats.records import parse_entity, parse_event, parse_relation
from agentmem.model import EntityDecl, Event, MediaRef, Relation
from agentmem.search.resolution import normalize_name

FORMATS = ("events", "locomo")


@dataclass
class IngestReport:
    """What an ingest stored and what it skipped, with reasons."""

    entities: int = 0
    events: int = 0
    relations: int = 0
    skipped: list[str] = field(default_factory=list)
    format: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "entities": self.entities,
            "events": self.events,
            "relations": self.relations,
            "skipped": self.skipped,
        }


def detect_format(path: str | Path) -> str:
    """``locomo`` for a JSON list of records with ``conversation`` and ``qa``; ``events`` for JSON Lines."""
    p = Path(path)
    if not p.exists():
        raise BadInputError(f"file not found: {p}")
    with p.open("rb") as fh:
        head = fh.read(4096).lstrip()
    if head.startswith(b"["):
        if b'"conversation"' in head or b'"qa"' in head or b'"sample_id"' in head:
            return "locomo"
        raise FormatError(f"{p}: a JSON array that is not LoCoMo; use --format events with one object per line")
    if head.startswith(b"{") or head.startswith(b"#") or not head:
        return "events"
    raise FormatError(f"{p}: cannot tell the format; pass --format {'|'.join(FORMATS)}")


@dataclass
class ParsedEvents:
    entities: list[dict[str, Any]]
    events: list[Event]
    relations: list[Relation]
    skipped: list[str]
    event_where: list[str] = field(default_factory=list)
    relation_where: list[str] = field(default_factory=list)


def read_events_file(path: str | Path, *, skip_bad: bool = False) -> ParsedEvents:
    """Parse an ``events`` JSON Lines file; errors name the line."""
    p = Path(path)
    out = ParsedEvents([], [], [], [])
    with p.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            where = f"{p.name} line {n}"
            try:
                d = parse_json(line, where)
                if not isinstance(d, dict):
                    raise FormatError(f"{where}: expected a JSON object, got {type(d).__name__}")
                kind = d.get("type", "event")
                if kind == "entity":
                    out.entities.append(parse_entity(d, where))
                elif kind == "relation":
                    out.relations.append(parse_relation(d, where))
                    out.relation_where.append(where)
                elif kind == "event":
                    out.events.append(parse_event({k: v for k, v in d.items() if k != "type"}, where))
                    out.event_where.append(where)
                else:
                    raise BadInputError(f"{where}: unknown type {kind!r}; use entity, relation or event")
            except BadInputError as exc:
                if not skip_bad:
                    raise
                out.skipped.append(str(exc))
    return out


def ingest_events_file(
    mem, path: str | Path, *, skip_bad: bool = False, progress: Callable[[int], None] | None = None
) -> IngestReport:
    """Validate the whole file, then store it in one transaction (nothing, if any line is refused)."""
    parsed = read_events_file(path, skip_bad=skip_bad)
    report = IngestReport(format="events", skipped=parsed.skipped)
    declared = {e["id"] for e in parsed.entities}
    declared |= {normalize_name(n) for e in parsed.entities for n in [e["name"] or "", *e["aliases"]] if n}
    _check_references(mem, parsed, declared, skip_bad, report)
    _check_duplicates(parsed, skip_bad, report)
    entities = [
        EntityDecl(e["id"], e["kind"], e["name"], tuple(e["aliases"]), e["attributes"], tuple(e["media"]), e["t"])
        for e in parsed.entities
    ]
    report.events = len(
        mem.write(entities=entities, events=parsed.events, relations=parsed.relations, progress=progress)
    )
    report.entities, report.relations = len(entities), len(parsed.relations)
    return report


def _check_references(mem, parsed: ParsedEvents, declared: set[str], skip_bad: bool, report: IngestReport) -> None:
    """Fail (or skip) events and facts naming entities that neither the file nor the memory declares."""
    known_norms = {norm for _, _, norm in mem.store.alias_rows()}

    def known(ref: str) -> bool:
        norm = normalize_name(ref)
        return ref in declared or norm in declared or mem.store.entity_exists(ref) or norm in known_norms

    def unknown_of(refs: list[str], where: str) -> bool:
        bad = [r for r in refs if not known(r)]
        if not bad:
            return False
        msg = f'{where}: unknown entity {bad[0]!r}; declare it first with a line {{"type": "entity", "id": ...}}'
        if not skip_bad:
            raise UnknownEntityError(msg)
        report.skipped.append(msg)
        return True

    keep = [
        not unknown_of([*e.participants, *([e.location] if e.location else [])], w)
        for e, w in zip(parsed.events, parsed.event_where)
    ]
    parsed.events[:] = [e for e, k in zip(parsed.events, keep) if k]
    parsed.event_where[:] = [w for w, k in zip(parsed.event_where, keep) if k]
    keep = [not unknown_of([r.subject, r.object], w) for r, w in zip(parsed.relations, parsed.relation_where)]
    parsed.relations[:] = [r for r, k in zip(parsed.relations, keep) if k]


def _check_duplicates(parsed: ParsedEvents, skip_bad: bool, report: IngestReport) -> None:
    """One event id, one line: a later line with the same id is refused (or skipped)."""
    first: dict[str, str] = {}
    keep = []
    for e, where in zip(parsed.events, parsed.event_where):
        if e.id in first:
            msg = f"{where}: id {e.id!r} is already used by {first[e.id]}"
            if not skip_bad:
                raise BadInputError(msg)
            report.skipped.append(msg)
            continue
        first[e.id] = where
        keep.append((e, where))
    parsed.events[:] = [e for e, _ in keep]
    parsed.event_where[:] = [w for _, w in keep]


_SLUG = re.compile(r"[^a-z0-9]+")


def locomo_entity_id(sample_id: str, speaker: str) -> str:
    """Entity id of a LoCoMo speaker, scoped by conversation (``conv-26.caroline``)."""
    return f"{sample_id}.{_SLUG.sub('_', speaker.lower()).strip('_')}"


def locomo_events(conv: LocomoConversation) -> tuple[list[tuple[str, str]], list[Event]]:
    """Speakers (id, name) and one event per turn of a LoCoMo conversation.

    Each turn happens at its session's date-time (plus its index in seconds,
    which keeps the order); the speaker is the participant and the listener
    is kept in provenance; the session is the event's group; a shared photo's
    BLIP caption becomes the event's media caption.
    """
    speakers = [(locomo_entity_id(conv.sample_id, s), s) for s in conv.speakers]
    ids = dict((name, eid) for eid, name in speakers)
    events = []
    for turn in conv.turns:
        listener = next((s for s in conv.speakers if s != turn.speaker), None)
        if turn.speaker not in ids:
            ids[turn.speaker] = locomo_entity_id(conv.sample_id, turn.speaker)
            speakers.append((ids[turn.speaker], turn.speaker))
        media = [MediaRef(caption=turn.caption, t=turn.time)] if turn.caption else []
        events.append(
            Event(
                id=f"{conv.sample_id}:{turn.dia_id}",
                t_start=float(turn.time or 0.0),
                t_end=float(turn.time or 0.0),
                text=f"{turn.speaker}: {turn.text}",
                participants=[ids[turn.speaker]],
                media=media,
                provenance={
                    "dataset": "locomo",
                    "sample_id": conv.sample_id,
                    "dia_id": turn.dia_id,
                    "session": turn.session,
                    "listener": listener,
                },
                group=f"{conv.sample_id}:session_{turn.session}",
            )
        )
    return speakers, events


def ingest_locomo(
    mem, source: str | Path | list[LocomoConversation], *, progress: Callable[[int], None] | None = None
) -> IngestReport:
    """Ingest LoCoMo conversations; each conversation's speakers are separate entities."""
    try:
        convs = load_locomo(source) if isinstance(source, (str, Path)) else source
    except LocomoFormatError as exc:
        raise FormatError(str(exc)) from None
    report = IngestReport(format="locomo")
    for conv in convs:
        speakers, events = locomo_events(conv)
        for eid, name in speakers:
            # Different conversations are different worlds: never merge their speakers by name.
            mem.add_entity(eid, kind="character", name=name, resolve=False)
            report.entities += 1
        report.events += len(mem.add_events(events, progress=progress))
    return report


def ingest_file(
    mem,
    path: str | Path,
    *,
    format: str | None = None,
    skip_bad: bool = False,
    progress: Callable[[int], None] | None = None,
) -> IngestReport:
    """Ingest ``path`` into ``mem``; the format is detected unless given."""
    fmt = format or detect_format(path)
    if fmt not in FORMATS:
        raise BadInputError(f"unknown format {fmt!r}; use one of {list(FORMATS)}")
    if not Path(path).exists():
        raise BadInputError(f"file not found: {path}")
    try:
        if fmt == "locomo":
            return ingest_locomo(mem, path, progress=progress)
        return ingest_events_file(mem, path, skip_bad=skip_bad, progress=progress)
    except UnicodeDecodeError as exc:
        raise FormatError(f"{path}: not UTF-8 text ({exc.reason})") from None


__all__ = [
    "AgentMemError",
    "IngestReport",
    "detect_format",
    "ingest_file",
    "ingest_locomo",
    "locomo_events",
    "read_events_file",
]
