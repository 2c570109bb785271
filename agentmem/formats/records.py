"""Turning loose input (dicts from JSON, YAML or Python) into validated records.

Every check runs before anything is written, and every error names the field
(and, through ``where``, the line or record) so the caller can fix it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from typing import Any

from agentmem.errors import BadInputError, MediaNotFoundError
from agentmem.model import ENTITY_KINDS, ID_RE, CameraPose, Event, MediaRef, Relation
from agentmem.timeparse import parse_time

EVENT_FIELDS = {
    "id",
    "type",
    "t_start",
    "t_end",
    "t",
    "text",
    "participants",
    "location",
    "media",
    "camera",
    "provenance",
    "importance",
    "group",
}
ENTITY_FIELDS = {"id", "type", "kind", "name", "aliases", "attributes", "media", "t"}


RELATION_FIELDS = {"type", "subject", "predicate", "object", "t_from", "t", "t_to", "evidence", "weight"}
MAX_TEXT_BYTES = 1_000_000
"""Largest event text (UTF-8 bytes): a memory holds descriptions, not documents."""


def _fail(where: str, msg: str) -> BadInputError:
    return BadInputError(f"{where}: {msg}" if where else msg)


def finite_number(value: Any, where: str, field: str, *, lo: float = -math.inf, hi: float = math.inf) -> float:
    """``value`` as a finite float in [lo, hi], or a :class:`BadInputError` naming the field.

    Examples
    --------
    >>> finite_number(2, "x.jsonl line 3", "weight")
    2.0
    >>> finite_number(float("nan"), "x.jsonl line 3", "weight")
    Traceback (most recent call last):
    ...
    agentmem.errors.BadInputError: x.jsonl line 3: weight must be a finite number, got nan
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(where, f"{field} must be a number, got {_short(value)}")
    try:
        x = float(value)
    except OverflowError:
        raise _fail(where, f"{field} is too large: {_short(value)}") from None
    if not math.isfinite(x):
        raise _fail(where, f"{field} must be a finite number, got {_short(value)}")
    if not lo <= x <= hi:
        raise _fail(where, f"{field} must be in [{lo:g}, {hi:g}], got {x:g}")
    return x


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


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
        if path is not None and not isinstance(path, str):
            raise _fail(where, f"media[{i}].path must be a string")
        if path is not None and check_paths and not os.path.exists(path):
            raise MediaNotFoundError(f"{where}: media[{i}].path does not exist: {path}")
        if path is not None and check_paths and m.get("kind", "image") == "image":
            check_image(path, where, f"media[{i}].path")
        caption = m.get("caption")
        if path is None and not caption and not m.get("url"):
            raise _fail(where, f"media[{i}] needs a path, a url or a caption")
        mt = parse_time(m["t"], field=f"{where} media[{i}].t") if m.get("t") is not None else t
        out.append(MediaRef(path=path, t=mt, caption=caption, kind=m.get("kind", "image")))
    return out


def check_image(path: str, where: str, field: str) -> None:
    """Fail with the field named unless ``path`` is an image Pillow can read."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.verify()
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types (and DecompressionBombError) for bad files
        raise _fail(where, f"{field} is not a readable image ({type(exc).__name__}): {path}") from None


def parse_camera(value: Any, where: str) -> CameraPose | None:
    """A camera pose from ``[x, y, z, yaw, pitch, fov?]`` or ``{pose: [...], fov}``; every number finite."""
    if value is None:
        return None
    fov: Any = 60.0
    if isinstance(value, dict):
        pose = value.get("pose", value)
        fov = value.get("fov", 60.0)
        if isinstance(pose, dict):
            keys = ("x", "y", "z", "yaw", "pitch", "fov")
            fov = pose.get("fov", fov)
            pose = [pose.get(k, 0.0) for k in keys[:5]]
    else:
        pose = value
    if not isinstance(pose, (list, tuple)) or not 3 <= len(pose) <= 6:
        raise _fail(where, "camera must be [x, y, z, yaw, pitch, fov?] or an object with pose and fov")
    pose = list(pose)
    if len(pose) == 6:
        fov = pose.pop()
    nums = [finite_number(v, where, f"camera.{k}") for k, v in zip(("x", "y", "z", "yaw", "pitch"), pose)]
    nums += [0.0] * (5 - len(nums))
    x, y, z, yaw, pitch = nums
    return CameraPose(x, y, z, yaw, pitch, fov=finite_number(fov, where, "camera.fov", lo=1e-3, hi=179.0))


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
    if len(text) > MAX_TEXT_BYTES // 4 and len(text.encode("utf-8")) > MAX_TEXT_BYTES:
        raise _fail(where, f"text is {len(text.encode('utf-8')):,} bytes; the limit is {MAX_TEXT_BYTES:,} per event")
    parts = d.get("participants") or []
    if not isinstance(parts, list) or not all(isinstance(p, str) and p.strip() for p in parts):
        raise _fail(where, "participants must be a list of entity ids, names or aliases")
    location = d.get("location")
    if location is not None and (not isinstance(location, str) or not location.strip()):
        raise _fail(where, "location must be an entity id, name or alias")
    prov = d.get("provenance") or {}
    if not isinstance(prov, dict):
        prov = {"source": prov}
    importance = finite_number(d.get("importance", 0.5), where, "importance", lo=0.0, hi=1.0)
    eid = d.get("id")
    eid = check_id(eid, where) if eid is not None else event_id_for(t_start, text, parts)
    group = d.get("group")
    return Event(
        id=eid,
        t_start=t_start,
        t_end=t_end,
        text=text.strip(),
        participants=list(parts),
        location=location,
        media=parse_media(d.get("media"), where, t=t_start),
        camera=parse_camera(d.get("camera"), where),
        provenance=prov,
        importance=importance,
        group=str(group) if group is not None else None,
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
        "id": eid,
        "kind": kind,
        "name": None if name is None else str(name),
        "aliases": aliases,
        "attributes": {str(k): str(v) for k, v in attrs.items()},
        "t": t,
        "media": parse_media(d.get("media"), where, t=t),
    }


def parse_relation(d: dict[str, Any] | list, where: str = "") -> Relation:
    """A :class:`Relation` from ``[subject, predicate, object]`` or an object of :data:`RELATION_FIELDS`."""
    if isinstance(d, list):
        if len(d) != 3:
            raise _fail(where, "a fact is [subject, predicate, object]")
        d = {"subject": d[0], "predicate": d[1], "object": d[2]}
    if not isinstance(d, dict):
        raise _fail(where, "a fact is [subject, predicate, object] or an object with subject, predicate, object")
    unknown = set(d) - RELATION_FIELDS
    if unknown:
        raise _fail(where, f"unknown relation field(s) {sorted(unknown)}; allowed: {sorted(RELATION_FIELDS)}")
    for f in ("subject", "predicate", "object"):
        if not isinstance(d.get(f), str) or not d[f].strip():
            raise _fail(where, f"relation {f} must be a non-empty string")
    t_from = parse_time(d.get("t_from", d.get("t", 0.0)), field=f"{where} t_from".strip())
    t_to = parse_time(d["t_to"], field=f"{where} t_to".strip()) if d.get("t_to") is not None else None
    if t_to is not None and t_to <= t_from:
        raise _fail(where, f"t_to ({t_to:g}) must be after t_from ({t_from:g})")
    evidence = d.get("evidence", [])
    if not isinstance(evidence, list) or not all(isinstance(e, str) for e in evidence):
        raise _fail(where, "evidence must be a list of event ids")
    weight = finite_number(d.get("weight", 1.0), where, "weight", lo=0.0)
    return Relation(
        d["subject"], d["predicate"], d["object"], t_from=t_from, t_to=t_to, evidence=list(evidence), weight=weight
    )


def search_text(e: Event) -> str:
    """What lexical and dense search see of an event: its text plus media captions."""
    captions = [m.caption for m in e.media if m.caption]
    return e.text if not captions else e.text + " [media: " + "; ".join(captions) + "]"
