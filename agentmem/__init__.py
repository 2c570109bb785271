"""agentmem: long-term multimodal memory for narrative and interactive video generation.

Importing the package loads no model and touches no disk.
"""

from agentmem.errors import (
    AgentMemError,
    BadInputError,
    BadTimeError,
    FormatError,
    MediaNotFoundError,
    ModelUnavailableError,
    NotFoundError,
    StoreError,
    UnknownEntityError,
)
from agentmem.memory import Memory
from agentmem.model import AttributeValue, CameraPose, EntitySlot, Event, Hit, MediaRef, Merge, Relation
from agentmem.search.fusion import PRESETS, SearchPreset
from agentmem.search.query import Query
from agentmem.timeparse import parse_time

__version__ = "0.2.0"

__all__ = [
    "AgentMemError",
    "AttributeValue",
    "BadInputError",
    "BadTimeError",
    "CameraPose",
    "EntitySlot",
    "Event",
    "FormatError",
    "Hit",
    "MediaNotFoundError",
    "MediaRef",
    "Memory",
    "Merge",
    "ModelUnavailableError",
    "NotFoundError",
    "PRESETS",
    "Query",
    "Relation",
    "SearchPreset",
    "StoreError",
    "UnknownEntityError",
    "parse_time",
]
