"""Reading small YAML or JSON documents (stories, walks, transforms and views files) within fixed limits.

A document is read at most to its size limit, must be UTF-8, and may not expand (through YAML aliases) past
:data:`MAX_DOCUMENT_NODES` values or :data:`MAX_DOCUMENT_CHARS` characters of text; JSON nested absurdly deep and
integers of thousands of digits are refused too. Every refusal is one :class:`~agentmem.errors.FormatError` naming
the file, so a hostile file costs a bounded amount of time and memory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agentmem.errors import FormatError

MAX_DOCUMENT_BYTES = 10_000_000
MAX_DOCUMENT_NODES = 200_000
MAX_DOCUMENT_CHARS = 4_000_000


def read_text(path: Path, source: str, what: str, *, max_bytes: int = MAX_DOCUMENT_BYTES) -> str:
    """The UTF-8 text of ``path``; reading stops one byte past ``max_bytes``, so a huge or endless file costs little."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(max_bytes + 1)
    except OSError as exc:
        raise FormatError(f"{source}: cannot read: {exc.strerror or type(exc).__name__}") from None
    if len(raw) > max_bytes:
        raise FormatError(f"{source}: over {max_bytes:,} bytes; a {what} file may have at most {max_bytes:,}")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{source}: not UTF-8 text ({exc.reason})") from None


def parse_json(text: str, where: str) -> Any:
    """One JSON value, or a :class:`FormatError` naming ``where`` (also for absurd nesting and huge numbers)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        at = f"line {exc.lineno} column {exc.colno}" if "\n" in text else f"column {exc.colno}"
        raise FormatError(f"{where}: broken JSON ({exc.msg} at {at})") from None
    except RecursionError:
        raise FormatError(f"{where}: JSON nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise FormatError(f"{where}: unreadable JSON value ({str(exc).splitlines()[0][:80]})") from None


def load_document(path: Path, source: str, what: str) -> Any:
    """The parsed document: JSON for a ``.json`` file, else YAML; ``what`` ("story", "walk") words the errors."""
    text = read_text(path, source, what)
    if path.suffix.lower() == ".json":
        data = parse_json(text, source)
    else:
        data = _parse_yaml(text, source)
    check_expanded_size(data, source, what)
    return data


def _parse_yaml(text: str, source: str) -> Any:
    import yaml

    # libyaml's loader is many times faster and stops at 1,000 levels of nesting at once; pure Python PyYAML needs
    # seconds to reach the recursion limit (its scanner's work grows with the square of the depth).
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)
    except RecursionError:
        raise FormatError(f"{source}: not valid YAML: nested too deeply") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = "" if mark is None else f"line {mark.line + 1}: "
        raise FormatError(f"{source}: not valid YAML: {where}{exc.problem or exc.context}") from None
    except Exception as exc:  # noqa: BLE001 - the parser's other errors (and int()'s digit limit) become one line
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise FormatError(f"{source}: not valid YAML: {first[:200]}") from None


def check_expanded_size(
    data: Any, source: str, what: str = "story", *, max_nodes: int = MAX_DOCUMENT_NODES,
    max_chars: int = MAX_DOCUMENT_CHARS
) -> None:  # fmt: skip
    """Refuse values that expand past the limits: YAML aliases can make 1 KB mean gigabytes.

    The walk counts a value each time it is reached (as the document would be read), and counts a container's
    members before taking them on, so checking costs at most ``max_nodes`` steps and as many stack entries.

    Examples
    --------
    >>> shared = ["x"] * 9
    >>> for _ in range(12):  # what 13 YAML anchors of 4 aliases each load as
    ...     shared = [shared, shared, shared, shared]
    >>> check_expanded_size({"a": shared}, "bomb.yaml")
    Traceback (most recent call last):
    ...
    agentmem.errors.FormatError: bomb.yaml: the story expands past 200,000 values (YAML aliases?); ...
    """
    nodes, chars, stack = 1, 0, [data]
    while stack:
        v = stack.pop()
        if isinstance(v, (dict, list, tuple)):
            nodes += 2 * len(v) if isinstance(v, dict) else len(v)
            if nodes > max_nodes:
                raise FormatError(
                    f"{source}: the {what} expands past {max_nodes:,} values (YAML aliases?); "
                    f"write the values out, or split the {what}"
                )
            stack.extend([*v.keys(), *v.values()] if isinstance(v, dict) else v)
        elif isinstance(v, str):
            chars += len(v)
        if chars > max_chars:
            raise FormatError(f"{source}: the {what}'s text expands past {max_chars:,} characters (YAML aliases?)")
