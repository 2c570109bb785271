"""Input formats layer: record validation, ingest of JSONL / JSON / CSV / LoCoMo, bundled examples."""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "ingest_file": "agentmem.formats.ingest",
    "ingest_locomo": "agentmem.formats.ingest",
    "load_locomo": "agentmem.formats.locomo",
    "example_path": "agentmem.formats.examples",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError("module {__name__!r} has no attribute {name!r}")
