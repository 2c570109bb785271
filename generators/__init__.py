"""Video back ends for agentmem: turn a :class:`ShotPlan` into a :class:`Clip`.

* ``storyboard`` (default): a procedural, deterministic CPU preview renderer.
  Not a learned model; it draws the plan so stories can be previewed and tested offline.
* ``cogvideox``, ``wan-i2v``, ``wan-vace``, ``animatediff``, ``svd``: adapters to
  diffusers pipelines; they need torch, diffusers and model weights.

World back ends (``generate_world(WorldPlan) -> WorldClip``, for the interactive
world loop) have a registry of their own: ``world_backends()``, and
``get_world_generator("preview")`` (an offline CPU preview, not a learned model)
or a diffusers kind (``"wan-vace"``, ``"cogvideox"``, ``"wan-i2v"``, ``"svd"``).

Importing this package loads neither torch nor diffusers; the diffusers back
ends import them when they are built (``get_generator("cogvideox", ...)``).
This package never imports ``agentmem``.
"""

from .base import (
    BackendUnavailableError,
    GeneratorError,
    GeneratorInputError,
    VideoGenerator,
    WeightsNotFoundError,
    available_generators,
    generator_class,
    get_generator,
    get_world_generator,
    world_backends,
)
from .conditioning import (
    CameraConditioning,
    Clip,
    DynamicConditioning,
    EntityConditioning,
    FrameRef,
    LocationConditioning,
    ShotPlan,
    StaticConditioning,
    TraceItem,
)
from .media import (
    VideoFile,
    contact_sheet,
    mp4_available,
    save_frames,
    save_last_frame,
    write_gif,
    write_mp4,
    write_story_video,
    write_video,
)
from .storyboard import StoryboardGenerator

__all__ = [
    "BackendUnavailableError",
    "CameraConditioning",
    "Clip",
    "DynamicConditioning",
    "EntityConditioning",
    "FrameRef",
    "GeneratorError",
    "GeneratorInputError",
    "LocationConditioning",
    "ShotPlan",
    "StaticConditioning",
    "StoryboardGenerator",
    "TraceItem",
    "VideoFile",
    "VideoGenerator",
    "WeightsNotFoundError",
    "available_generators",
    "contact_sheet",
    "generator_class",
    "get_generator",
    "get_world_generator",
    "mp4_available",
    "save_frames",
    "save_last_frame",
    "world_backends",
    "write_gif",
    "write_mp4",
    "write_story_video",
    "write_video",
]
