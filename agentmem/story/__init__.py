"""Story layer: the story format, the planner, the director loop, frames and views, production and reports.

The names below are imported on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Story": "agentmem.story.format",
    "load_story": "agentmem.story.format",
    "bundled_stories": "agentmem.story.format",
    "parse_story": "agentmem.story.format",
    "Planner": "agentmem.story.planner",
    "PlannerConfig": "agentmem.story.planner",
    "Director": "agentmem.story.director",
    "RenderOptions": "agentmem.story.director",
    "run_story": "agentmem.story.director",
    "generate_story": "agentmem.story.produce",
    "plan_story": "agentmem.story.produce",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError("module {__name__!r} has no attribute {name!r}")
