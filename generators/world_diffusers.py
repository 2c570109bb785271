"""The diffusers back ends driven by a :class:`~generators.world.WorldPlan`: what of the plan reaches which pipeline.

:class:`DiffusersWorldGenerator` wraps a built diffusers back end (its pipeline, device and sampler settings) and
gives it ``generate_world(plan) -> WorldClip``. Per back end:

- ``wan-vace``: ``video`` is memory rendered into every pose (the guidance video), ``mask`` is white where memory
  has a hole (VACE regenerates white, keeps black), ``reference_images`` are the context frames memory chose;
- ``cogvideox``, ``wan-i2v``: ``image`` is the start frame: memory rendered into the first pose when memory covers
  most of it, else the last frame of the short-term window, else the anchor;
- ``svd``: the same start frame (SVD takes no text).

All take the plan's prompt where the pipeline has one, and the noise is seeded by the plan's seed and step. The
model's frame count rule (``4k + 1`` for Wan and CogVideoX) may ask for more frames than the chunk has: the guidance
is padded with its last frame and the output trimmed. These back ends return no depth; the loop then uses its
depth estimator, if it has one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from .base import GeneratorInputError
from .diffusers_common import frames_to_uint8, seeded_generator
from .world import WorldClip, WorldPlan

KINDS = ("wan-vace", "cogvideox", "wan-i2v", "svd")


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


def build_world_kwargs(kind: str, plan: WorldPlan, settings: dict[str, Any], *, temporal: int | None = None,
                       max_reference_images: int = 4, max_sequence_length: int = 512) -> tuple[dict, dict]:  # fmt: skip
    """Pipeline arguments for ``plan`` and where each came from."""
    if kind not in KINDS:
        raise GeneratorInputError(f"world back end: {kind!r} is not one of {', '.join(KINDS)}")
    w, h = plan.camera.w, plan.camera.h
    n = frames_for(len(plan.times), temporal)
    common = {"height": h, "width": w, "num_frames": n, "num_inference_steps": settings["num_inference_steps"]}
    if kind == "wan-vace":
        refs = [Image.fromarray(c.rgb) for c in plan.context if c.rgb is not None][:max_reference_images]
        video = [Image.fromarray(f) for f in _pad(plan.guidance_rgb, n)]
        mask = [Image.fromarray(np.where(m, 0, 255).astype(np.uint8)) for m in _pad(plan.guidance_mask, n)]
        kwargs = {**common, "prompt": plan.prompt, "video": video, "mask": mask, "reference_images": refs or None,
                  "guidance_scale": settings["guidance_scale"], "max_sequence_length": max_sequence_length}  # fmt: skip
        return kwargs, {"video": "guidance", "mask": "holes", "reference_images": [c.id for c in plan.context][:4]}
    image, origin = start_frame(plan)
    if kind == "svd":
        kwargs = {**common, "image": Image.fromarray(image), "max_guidance_scale": settings["guidance_scale"],
                  "decode_chunk_size": n}  # fmt: skip
        return kwargs, {"image": origin}
    kwargs = {**common, "image": Image.fromarray(image), "prompt": plan.prompt,
              "guidance_scale": settings["guidance_scale"], "max_sequence_length": max_sequence_length}  # fmt: skip
    return kwargs, {"image": origin, "prompt": "plan.prompt"}


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
