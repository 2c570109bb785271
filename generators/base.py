"""The generator protocol, the back-end registries and the errors back ends raise.

Every back end turns one :class:`~generators.conditioning.ShotPlan` into one
:class:`~generators.conditioning.Clip`; every world back end turns one
:class:`~generators.world.WorldPlan` into one :class:`~generators.world.WorldClip`.
The registries map short names to factories by dotted path, so asking for
``"storyboard"`` or ``"preview"`` never imports torch or diffusers; a diffusers
back end imports them only when it is built.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .conditioning import Clip, ShotPlan

if TYPE_CHECKING:
    from .world import WorldGenerator


class GeneratorError(RuntimeError):
    """Base class of every error a video back end raises on purpose."""


class GeneratorInputError(GeneratorError, ValueError):
    """A plan or a call argument cannot be used; the message names the argument and the fix."""


class BackendUnavailableError(GeneratorError, ImportError):
    """A back end needs an optional package (torch, diffusers, transformers) that is not installed."""


class WeightsNotFoundError(GeneratorError):
    """Model weights could not be found locally and could not be downloaded."""

    def __init__(self, model: str, detail: str = "") -> None:
        self.model = model
        hint = (
            f"Could not load weights for {model!r}. Download them once with "
            f"`huggingface-cli download {model} --local-dir <dir>` on a machine with internet access "
            "and pass that directory as `model=<dir>`, or pass an already built pipeline with `pipe=`. "
            "With HF_HUB_OFFLINE=1 only local paths and the local Hugging Face cache are searched."
        )
        super().__init__(f"{hint} ({detail})" if detail else hint)


@runtime_checkable
class VideoGenerator(Protocol):
    """What the planner needs from a video back end.

    Attributes
    ----------
    name : str
        Registry name of the back end, e.g. ``"storyboard"``.
    """

    name: str

    def generate(
        self,
        plan: ShotPlan,
        *,
        width: int | None = None,
        height: int | None = None,
        num_frames: int | None = None,
        fps: int | None = None,
    ) -> Clip:
        """Render ``plan`` as a clip; ``None`` arguments take the back end's defaults."""
        ...


# Dotted paths, not classes, so that looking a name up imports only that back end.
_REGISTRY: dict[str, str] = {
    "storyboard": "generators.storyboard:StoryboardGenerator",
    "cogvideox": "generators.diffusers_backends:CogVideoXGenerator",
    "wan-i2v": "generators.diffusers_backends:WanI2VGenerator",
    "wan-vace": "generators.diffusers_backends:WanVACEGenerator",
    "animatediff": "generators.diffusers_backends:AnimateDiffGenerator",
    "svd": "generators.diffusers_backends:SVDGenerator",
}


def available_generators() -> list[str]:
    """Names accepted by :func:`get_generator`, sorted."""
    return sorted(_REGISTRY)


def _factory(registry: dict[str, str], name: str, what: str) -> Any:
    """Import and return the factory ``registry`` holds under ``name``; an unknown name lists the known ones."""
    key = name.strip().lower()
    if key not in registry:
        raise GeneratorInputError(f"Unknown {what} name={name!r}; pass one of {', '.join(sorted(registry))}.")
    module_name, _, attr = registry[key].partition(":")
    return getattr(importlib.import_module(module_name), attr)


def generator_class(name: str) -> type:
    """Return the class registered under ``name`` without instantiating it.

    Raises
    ------
    GeneratorInputError
        If ``name`` is not registered.
    """
    return _factory(_REGISTRY, name, "generator")


def get_generator(name: str, **options: Any) -> VideoGenerator:
    """Build the back end registered under ``name``.

    Parameters
    ----------
    name : str
        One of :func:`available_generators`.
    **options
        Passed to the back end's constructor, e.g. ``model="/weights/CogVideoX-5b-I2V"``
        or ``pipe=<pipeline>`` for a diffusers back end.

    Returns
    -------
    VideoGenerator
        The constructed back end.

    Examples
    --------
    >>> gen = get_generator("storyboard")
    >>> gen.name
    'storyboard'
    """
    return generator_class(name)(**options)


# World back ends, by the same rule: name -> "module:factory", a factory takes the back end's options as keywords.
# A diffusers kind builds the video back end of that name (``get_generator``) and drives it with world plans.
_WORLD_REGISTRY: dict[str, str] = {
    "preview": "generators.world_preview:PreviewWorldGenerator",
    "wan-vace": "generators.world_diffusers:wan_vace_world",
    "cogvideox": "generators.world_diffusers:cogvideox_world",
    "wan-i2v": "generators.world_diffusers:wan_i2v_world",
    "svd": "generators.world_diffusers:svd_world",
}


def world_backends() -> list[str]:
    """Names accepted by :func:`get_world_generator`, sorted.

    Examples
    --------
    >>> world_backends()
    ['cogvideox', 'preview', 'svd', 'wan-i2v', 'wan-vace']
    """
    return sorted(_WORLD_REGISTRY)


def get_world_generator(name: str, **options: Any) -> WorldGenerator:
    """Build the world back end registered under ``name``.

    Parameters
    ----------
    name : str
        One of :func:`world_backends`: ``"preview"`` (the offline CPU preview, no options) or a diffusers kind.
    **options
        For a diffusers kind, passed to its video back end (``model=``, ``pipe=``, ``device=``, ...), and
        ``max_reference_images`` to :class:`~generators.world_diffusers.DiffusersWorldGenerator`.

    Raises
    ------
    GeneratorInputError
        If ``name`` is not registered.
    WeightsNotFoundError
        If a diffusers kind's weights are neither local nor downloadable.

    Examples
    --------
    >>> get_world_generator("preview").name
    'preview'
    """
    return _factory(_WORLD_REGISTRY, name, "world back end")(**options)


def pick(value, default):
    """``value`` unless it is ``None`` (so that an explicit 0 reaches validation instead of the default)."""
    return default if value is None else value


def frames_for_duration(duration: float, fps: int, default: int, max_frames: int = 240) -> int:
    """Frames for ``duration`` seconds at ``fps``, or ``default`` if either is unusable."""
    usable = isinstance(fps, (int, float)) and fps > 0 and isinstance(duration, (int, float)) and duration > 0
    if not usable:
        return default
    return int(min(max_frames, max(1, round(duration * fps))))


def check_size(width: int, height: int, num_frames: int, fps: int, *, multiple: int = 1) -> None:
    """Validate output geometry, naming the argument and the fix in the error."""
    for arg, value in (("width", width), ("height", height), ("num_frames", num_frames), ("fps", fps)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise GeneratorInputError(f"{arg} must be a positive int, got {value!r}.")
    for arg, value in (("width", width), ("height", height)):
        if value % multiple:
            raise GeneratorInputError(
                f"{arg} must be divisible by {multiple} for this back end, got {value}; "
                f"use {max(multiple, value // multiple * multiple)}."
            )
