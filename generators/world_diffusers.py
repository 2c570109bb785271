"""The diffusers back ends driven by a :class:`~generators.world.WorldPlan`: what of the plan reaches which pipeline.

:class:`DiffusersWorldGenerator` wraps a built diffusers back end (its pipeline, device and sampler settings) and
gives it ``generate_world(plan) -> WorldClip``; ``generators.get_world_generator(kind, model=...)`` builds one by
name. What each kind takes is a table of builders (:data:`BUILDERS`), one per kind:

- ``wan-vace``: ``video`` is memory rendered into every pose (the guidance video), ``mask`` is white where memory
  has a hole (VACE regenerates white, keeps black), ``reference_images`` are the context frames memory chose that
  have pixels, at most ``max_reference_images`` of them (their ids are recorded in the clip's sources);
- ``cogvideox``, ``wan-i2v``: ``image`` is the start frame: memory rendered into the first pose when memory covers
  most of it, else the last frame of the short-term window, else the anchor;
- ``svd``: the same start frame (SVD takes no text).

All take the plan's prompt where the pipeline has one, and the noise is seeded by the plan's seed and step. The
model's frame count rule (``4k + 1`` for Wan and CogVideoX) may ask for more frames than the chunk has: the guidance
is padded with its last frame and the output trimmed. These back ends return no depth; the loop then uses its
depth estimator, if it has one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from PIL import Image

from .base import GeneratorInputError, get_generator
from .diffusers_common import frames_to_uint8, seeded_generator
from .world import WorldClip, WorldPlan


def start_frame(plan: WorldPlan, min_covered: float = 0.5) -> tuple[np.ndarray, str]:
    """The image an image-to-video model starts from, and where it came from."""
    if plan.covered and plan.covered[0] >= min_covered:
        return plan.guidance_rgb[0], "guidance:0"
    if plan.window is not None and len(plan.window):
        return plan.window[-1], f"window:{plan.window_ids[-1]}"
    if plan.anchor is not None:
        return plan.anchor, f"anchor:{plan.anchor_id}"
    return plan.guidance_rgb[0], "guidance:0"


def frames_for(n: int, temporal: int | None) -> int:
    """The fewest frames at least ``n`` that a model compressing time by ``temporal`` can make (``temporal*k + 1``).

    Examples
    --------
    >>> frames_for(8, 4), frames_for(9, 4), frames_for(8, None)
    (9, 9, 8)
    """
    if not temporal:
        return n
    return temporal * max(0, -(-(n - 1) // temporal)) + 1


def _pad(frames: np.ndarray, n: int) -> np.ndarray:
    return np.concatenate([frames, np.repeat(frames[-1:], n - len(frames), axis=0)]) if n > len(frames) else frames


@dataclass(frozen=True)
class WorldCall:
    """What a kind's builder reads: the plan, the sampler settings, the model's frame count and the limits."""

    plan: WorldPlan
    settings: dict[str, Any]
    frames: int
    max_reference_images: int
    max_sequence_length: int

    def common(self) -> dict[str, Any]:
        """The arguments every pipeline takes: size, frame count, sampler steps."""
        p = self.plan
        return {"height": p.camera.h, "width": p.camera.w, "num_frames": self.frames,
                "num_inference_steps": self.settings["num_inference_steps"]}  # fmt: skip


def _vace_kwargs(c: WorldCall) -> tuple[dict, dict]:
    """Guidance video, hole mask (white: regenerate) and the context frames with pixels as reference images."""
    sent = [(f.id, f.rgb) for f in c.plan.context if f.rgb is not None][: c.max_reference_images]
    refs = [Image.fromarray(rgb) for _, rgb in sent]
    video = [Image.fromarray(f) for f in _pad(c.plan.guidance_rgb, c.frames)]
    mask = [Image.fromarray(np.where(m, 0, 255).astype(np.uint8)) for m in _pad(c.plan.guidance_mask, c.frames)]
    kwargs = {**c.common(), "prompt": c.plan.prompt, "video": video, "mask": mask, "reference_images": refs or None,
              "guidance_scale": c.settings["guidance_scale"], "max_sequence_length": c.max_sequence_length}  # fmt: skip
    # The ids of exactly the images sent: a context frame without pixels is not sent, nor one past the limit.
    return kwargs, {"video": "guidance", "mask": "holes", "reference_images": [i for i, _ in sent]}


def _image_to_video_kwargs(c: WorldCall) -> tuple[dict, dict]:
    """The start frame and the prompt (CogVideoX, Wan image-to-video)."""
    image, origin = start_frame(c.plan)
    kwargs = {**c.common(), "image": Image.fromarray(image), "prompt": c.plan.prompt,
              "guidance_scale": c.settings["guidance_scale"], "max_sequence_length": c.max_sequence_length}  # fmt: skip
    return kwargs, {"image": origin, "prompt": "plan.prompt"}


def _svd_kwargs(c: WorldCall) -> tuple[dict, dict]:
    """The start frame only: SVD takes no text."""
    image, origin = start_frame(c.plan)
    kwargs = {**c.common(), "image": Image.fromarray(image), "max_guidance_scale": c.settings["guidance_scale"],
              "decode_chunk_size": c.frames}  # fmt: skip
    return kwargs, {"image": origin}


# Per kind, the builder of its pipeline arguments; a new kind is one more row (and one in the world registry).
BUILDERS: dict[str, Callable[[WorldCall], tuple[dict, dict]]] = {
    "wan-vace": _vace_kwargs,
    "cogvideox": _image_to_video_kwargs,
    "wan-i2v": _image_to_video_kwargs,
    "svd": _svd_kwargs,
}
KINDS = tuple(BUILDERS)


def build_world_kwargs(kind: str, plan: WorldPlan, settings: dict[str, Any], *, temporal: int | None = None,
                       max_reference_images: int = 4, max_sequence_length: int = 512) -> tuple[dict, dict]:  # fmt: skip
    """Pipeline arguments for ``plan`` and where each came from (see the module docstring for what each kind takes).

    Examples
    --------
    >>> build_world_kwargs("ltx", None, {})
    Traceback (most recent call last):
    ...
    generators.base.GeneratorInputError: world back end: 'ltx' is not one of wan-vace, cogvideox, wan-i2v, svd
    """
    if kind not in BUILDERS:
        raise GeneratorInputError(f"world back end: {kind!r} is not one of {', '.join(KINDS)}")
    n = frames_for(len(plan.times), temporal)
    return BUILDERS[kind](WorldCall(plan, settings, n, max_reference_images, max_sequence_length))


class DiffusersWorldGenerator:
    """``generate_world`` for a built diffusers back end (``generators.get_generator("wan-vace", ...)`` etc.)."""

    def __init__(self, backend: Any, *, max_reference_images: int = 4):
        if backend.name not in KINDS:
            raise GeneratorInputError(f"world back end: {backend.name!r} is not one of {', '.join(KINDS)}")
        self.backend, self.max_reference_images = backend, max_reference_images
        self.name = f"{backend.name}-world"

    def generate_world(self, plan: WorldPlan) -> WorldClip:
        """Draw the chunk with the wrapped pipeline; the frames are trimmed to the chunk's length."""
        kwargs, sources = build_world_kwargs(
            self.backend.name, plan, self.backend.settings, temporal=self.backend.temporal_compression,
            max_reference_images=self.max_reference_images,
            max_sequence_length=getattr(self.backend, "max_sequence_length", 512),
        )  # fmt: skip
        out = self.backend.pipe(**kwargs, generator=seeded_generator(plan.seed * 1_000_003 + plan.step),
                                output_type="np")  # fmt: skip
        frames = frames_to_uint8(out.frames if hasattr(out, "frames") else out[0])[: len(plan.times)]
        invented = ~np.asarray(plan.guidance_mask, bool)
        return WorldClip(frames, None, invented, {"backend": self.name, "sources": sources})


def diffusers_world(kind: str, *, max_reference_images: int = 4, **options: Any) -> DiffusersWorldGenerator:
    """The diffusers back end ``kind``, built with ``options`` (``model=``, ``pipe=``, ...), driven by world plans.

    Raises
    ------
    WeightsNotFoundError
        If the weights are neither local nor downloadable.
    """
    return DiffusersWorldGenerator(get_generator(kind, **options), max_reference_images=max_reference_images)


# The world registry's factories (``generators.base``): one per kind, each ``factory(**options)``.
wan_vace_world = partial(diffusers_world, "wan-vace")
cogvideox_world = partial(diffusers_world, "cogvideox")
wan_i2v_world = partial(diffusers_world, "wan-i2v")
svd_world = partial(diffusers_world, "svd")
