"""Paths of the example files bundled with the package (events, LoCoMo sample, stories)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def example_path(name: str = "lighthouse.jsonl") -> Path:
    """Path of a bundled example file.

    Examples
    --------
    >>> example_path().name
    'lighthouse.jsonl'
    >>> example_path("locomo_sample.json").exists()
    True
    """
    return Path(str(files("agentmem") / "data" / name))
