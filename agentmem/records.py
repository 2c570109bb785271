"""Turning loose input (dicts from JSON, YAML or Python) into validated records.

Every check runs before anything is written, and every error names the field
(and, through ``where``, the line or record) so the caller can fix it.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from agentmem.errors import BadInputError, MediaNotFoundError
from agentmem.model import ENTITY_KINDS, ID_RE, CameraPose, Event, MediaRef, Relation
from agentmem.timeparse import parse_time

EVENT_FIELDS = {
    "id", "type", "t_start", "t_end", "t", "text", "participants", "location", "media", "camera",
    "provenance", "importance", "group",
}
ENTITY_FIELDS = {"id", "type", "kind", "name", "aliases", "attributes", "media", "t"}


def _fail(where: str, msg: str) -> BadInputError:
    return BadInputError(f"{where}: {msg}" if where else msg)


def check_id(value: Any, where: str, field: str = "id") -> str:
    if not isinstance(value, str) or not ID_RE.fullmatch(value):
        raise _fail(where, f"{field} must be a non-empty string of letters, digits, '_', '-', '.', ':'; got {value!r}")
    return value


def parse_media(items: Any, where: str, *, t: float | None = None, check_paths: bool = True) -> list[MediaRef]:
    """Media given as a path string or a dict with path/caption/t/kind/url."""
    if items is None:
        return []
    if not isinstance(items, list):
        raise _fail(where, f"media must be a list, got {type(items).__name__}")
    out = []
    for i, m in enumerate(items):
        if isinstance(m, str):
            m = {"path": m}
        if not isinstance(m, dict):
            raise _fail(where, f"media[{i}] must be a path or an object")
        path = m.get("path")
        if path is not None and check_paths and not os.path.exists(path):
            raise MediaNotFoundError(f"{where}: media[{i}].path does not exist: {path}")
        caption = m.get("caption")
        if path is None and not caption and not m.get("url"):
            raise _fail(where, f"media[{i}] needs a path, a url or a caption")
        mt = parse_time(m["t"], field=f"{where} media[{i}].t") if m.get("t") is not None else t
        out.append(MediaRef(path=path, t=mt, caption=caption, kind=m.get("kind", "image")))
    return out


def parse_camera(value: Any, where: str) -> CameraPose | None:
    if value is None:
        return None
    try:
        if isinstance(value, dict):
            pose = value.get("pose", value)
            if isinstance(pose, (list, tuple)):
                x, y, z, yaw, pitch = (list(pose) + [0.0, 0.0])[:5]
                return CameraPose(float(x), float(y), float(z), float(yaw), float(pitch), float(value.get("fov", 60)))
            return CameraPose(**{k: float(pose[k]) for k in ("x", "y", "z", "yaw", "pitch", "fov") if k in pose})
        if isinstance(value, (list, tuple)) and 3 <= len(value) <= 6:
            return CameraPose(*[float(v) for v in value])
    except (TypeError, ValueError, KeyError) as exc:
        raise _fail(where, f"camera is not a valid pose ({exc}); use [x, y, z, yaw, pitch] or {{pose, fov}}") from None
    raise _fail(where, "camera must be [x, y, z, yaw, pitch, fov?] or an object with pose and fov")


def event_id_for(t_start: float, text: str, participants: list[str]) -> str:
    """Content-derived id, so re-ingesting the same line is a no-op."""
    digest = hashlib.sha1(json.dumps([t_start, text, participants]).encode()).hexdigest()[:16]
    return f"ev-{digest}"


def parse_event(d: dict[str, Any], where: str = "") -> Event:
    """An :class:`Event` from a dict, with entity references still unresolved."""
    if not isinstance(d, dict):
        raise _fail(where, f"an event must be a JSON object, got {type(d).__name__}")
    unknown = set(d) - EVENT_FIELDS
    if unknown:
        raise _fail(where, f"unknown event field(s) {sorted(unknown)}; allowed: {sorted(EVENT_FIELDS)}")
    if "t_start" not in d and "t" not in d:
        raise _fail(where, "t_start is required (seconds or an ISO-8601 date)")
    t_start = parse_time(d.get("t_start", d.get("t")), field=f"{where} t_start".strip())
    t_end = parse_time(d["t_end"], field=f"{where} t_end".strip()) if d.get("t_end") is not None else t_start
    if t_end < t_start:
        raise _fail(where, f"t_end ({t_end}) is before t_start ({t_start})")
    text = d.get("text")
    if not isinstance(text, str) or not text.strip():
        raise _fail(where, "text is empty; every event needs a description")
    parts = d.get("participants") or []
    if not isinstance(parts, list) or not all(isinstance(p, str) and p.strip() for p in parts):
        raise _fail(where, "participants must be a list of entity ids, names or aliases")
    location = d.get("location")
    if location is not None and (not isinstance(location, str) or not location.strip()):
        raise _fail(where, "location must be an entity id, name or alias")
    prov = d.get("provenance") or {}
    if not isinstance(prov, dict):
        prov = {"source": prov}
    importance = d.get("importance", 0.5)
    if not isinstance(importance, (int, float)) or not 0.0 <= float(importance) <= 1.0:
        raise _fail(where, f"importance must be a number in [0, 1], got {importance!r}")
    eid = d.get("id")
    eid = check_id(eid, where) if eid is not None else event_id_for(t_start, text, parts)
    group = d.get("group")
    return Event(
        id=eid, t_start=t_start, t_end=t_end, text=text.strip(), participants=list(parts), location=location,
        media=parse_media(d.get("media"), where, t=t_start), camera=parse_camera(d.get("camera"), where),
        provenance=prov, importance=float(importance), group=str(group) if group is not None else None,
    )


def parse_entity(d: dict[str, Any], where: str = "") -> dict[str, Any]:
    """Validated fields of an entity declaration."""
    unknown = set(d) - ENTITY_FIELDS
    if unknown:
        raise _fail(where, f"unknown entity field(s) {sorted(unknown)}; allowed: {sorted(ENTITY_FIELDS)}")
    eid = check_id(d.get("id"), where)
    kind = d.get("kind")
    if kind is not None and kind not in ENTITY_KINDS:
        raise _fail(where, f"kind must be one of {list(ENTITY_KINDS)}, got {kind!r}")
    name = d.get("name")
    aliases = d.get("aliases") or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise _fail(where, "aliases must be a list of strings")
    attrs = d.get("attributes") or {}
    if not isinstance(attrs, dict):
        raise _fail(where, "attributes must be an object of key: value")
    t = parse_time(d.get("t", 0.0), field=f"{where} t".strip())
    return {
        "id": eid, "kind": kind, "name": None if name is None else str(name), "aliases": aliases,
        "attributes": {str(k): str(v) for k, v in attrs.items()}, "t": t,
        "media": parse_media(d.get("media"), where, t=t),
    }


def parse_relation(d: dict[str, Any] | list, where: str = "") -> Relation:
    if isinstance(d, list):
        if len(d) != 3:
            raise _fail(where, "a fact is [subject, predicate, object]")
        d = {"subject": d[0], "predicate": d[1], "object": d[2]}
    for f in ("subject", "predicate", "object"):
        if not isinstance(d.get(f), str) or not d[f].strip():
            raise _fail(where, f"relation {f} must be a non-empty string")
    t_from = parse_time(d.get("t_from", d.get("t", 0.0)), field=f"{where} t_from".strip())
    return Relation(d["subject"], d["predicate"], d["object"], t_from=t_from, evidence=list(d.get("evidence", [])),
                    weight=float(d.get("weight", 1.0)))
