"""Field checks of the story format: each returns the clean value or raises one error naming the place and field.

``where`` is the place in the file ("shot s3", "entity mara"); messages read
``<where>: <field>: <what is wrong>``.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Mapping
from typing import Any

from agentmem.errors import BadInputError, BadTimeError, FormatError, UnknownEntityError
from agentmem.timeparse import parse_time

STORY_ID_RE = re.compile(r"[a-z0-9_-]+")
MAX_ID_CHARS = 64  # shot ids name files (shots/<id>.mp4, frames/<id>/); file systems allow 255 bytes a name


def label(d: Any, i: int) -> str:
    return str(d["id"]) if isinstance(d, dict) and isinstance(d.get("id"), (str, int)) else f"#{i + 1}"


def unknown_keys(d: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(str(k) for k in d if k not in allowed)
    if unknown:
        raise FormatError(f"{where}: {unknown[0]}: unknown field; allowed: {', '.join(sorted(allowed))}")


def story_id(value: Any, where: str, fld: str) -> str:
    if not isinstance(value, str) or not STORY_ID_RE.fullmatch(value):
        raise FormatError(f"{where}: {fld}: must match [a-z0-9_-]+, got {value!r:.80}")
    if len(value) > MAX_ID_CHARS:
        raise FormatError(f"{where}: {fld}: at most {MAX_ID_CHARS} characters, got {len(value):,}")
    return value


def str_list(value: Any, where: str, fld: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise FormatError(f"{where}: {fld}: must be a list of strings")
    return list(value)


def id_list(d: dict, fld: str, where: str) -> list:
    value = d.get(fld) or []
    if not isinstance(value, list):
        raise FormatError(f"{where}: {fld}: must be a list of entity ids")
    return value


def story_time(value: Any, where: str, fld: str) -> float:
    if value is None:
        raise BadTimeError(f"{where}: {fld}: is required (seconds or ISO-8601)")
    if isinstance(value, (_dt.datetime, _dt.date)):  # YAML reads unquoted ISO dates as dates
        value = value.isoformat()
    try:
        return parse_time(value, field=fld)
    except BadInputError as exc:
        raise BadTimeError(f"{where}: {fld}: {exc}") from None


def attribute_changes(value: Any, entities: Mapping[str, Any], where: str) -> dict[str, dict[str, str]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise FormatError(f"{where}: changes: must map entity ids to {{attribute: value}}")
    out: dict[str, dict[str, str]] = {}
    for eid, attrs in value.items():
        if eid not in entities:
            raise UnknownEntityError(f"{where}: changes: unknown entity {eid!r}")
        if (
            not isinstance(attrs, dict)
            or not attrs
            or not all(isinstance(k, str) and isinstance(v, (str, int, float)) for k, v in attrs.items())
        ):
            raise FormatError(f"{where}: changes.{eid}: must be a non-empty mapping of attribute: value")
        out[eid] = {k: str(v).strip() for k, v in attrs.items()}
    return out


def fact_triples(value: Any, entities: Mapping[str, Any], where: str) -> tuple[tuple[str, str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise FormatError(f"{where}: facts: must be a list of [subject, predicate, object]")
    out = []
    for i, f in enumerate(value):
        if not isinstance(f, list) or len(f) != 3 or not all(isinstance(x, str) and x.strip() for x in f):
            raise FormatError(f"{where}: facts[{i}]: must be [subject, predicate, object], got {f!r}")
        for pos, x in ((0, f[0]), (2, f[2])):
            if x not in entities:
                raise UnknownEntityError(f"{where}: facts[{i}][{pos}]: unknown entity {x!r}")
        out.append((f[0], f[1].strip(), f[2]))
    return tuple(out)
