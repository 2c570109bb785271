"""Adapters from a ShotPlan to real diffusers 0.42.1 video pipelines.

=============  =================================  ===============================================
name           pipeline                           what of the plan it uses
=============  =================================  ===============================================
cogvideox      CogVideoXImageToVideoPipeline      prompt, negative prompt, first frame
wan-i2v        WanImageToVideoPipeline            prompt, negative prompt, first frame
wan-vace       WanVACEPipeline                    prompt, negative prompt, entity and location
                                                  references (``reference_images``), continuity
                                                  frame (``video`` + ``mask``)
animatediff    AnimateDiffPipeline + IP-Adapter   prompt, negative prompt, entity references or
                                                  entity embeddings (``ip_adapter_image_embeds``)
svd            StableVideoDiffusionPipeline       first frame, motion and camera
                                                  (``motion_bucket_id``), fps
=============  =================================  ===============================================

The first frame is the continuity frame, else the first location reference
frame, else the first entity reference image (see
:func:`generators.references.first_frame_source`), else a storyboard frame.

Each back end has a pure ``build_*_kwargs`` function: it reads the plan (and
the image files it names) and returns the exact keyword arguments of the
pipeline call, so what reaches the model can be tested without a model.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from .animatediff_backend import AnimateDiffGenerator, build_animatediff_kwargs, entity_ip_embeds
from .base import GeneratorInputError
from .conditioning import ShotPlan
from .diffusers_common import CallSpec, DiffusersGenerator, first_frame
from .motion import motion_bucket_id
from .references import continuity_source, entity_reference_sources, load_rgb, location_reference_sources

__all__ = [
    "AnimateDiffGenerator",
    "CogVideoXGenerator",
    "SVDGenerator",
    "WanI2VGenerator",
    "WanVACEGenerator",
    "build_animatediff_kwargs",
    "build_cogvideox_kwargs",
    "build_svd_kwargs",
    "build_wan_i2v_kwargs",
    "build_wan_vace_kwargs",
    "entity_ip_embeds",
    "vace_reference_images",
]


def _text(plan: ShotPlan) -> dict[str, str | None]:
    return {"prompt": plan.prompt, "negative_prompt": plan.negative_prompt or None}


# --------------------------------------------------------------------------- CogVideoX


def build_cogvideox_kwargs(
    plan: ShotPlan,
    *,
    width: int = 720,
    height: int = 480,
    num_frames: int = 49,
    num_inference_steps: int = 50,
    guidance_scale: float = 6.0,
    use_dynamic_cfg: bool = True,
    max_sequence_length: int = 226,
    fallback_image: Image.Image | None = None,
) -> CallSpec:
    """Arguments of ``CogVideoXImageToVideoPipeline.__call__`` for ``plan``.

    ``image`` is the plan's first frame (continuity, location or entity
    reference, else ``fallback_image``) resized to ``width`` x ``height``.
    """
    return _image_to_video_call(
        plan,
        fallback_image,
        width=width,
        height=height,
        num_frames=num_frames,
        num_inference_steps=num_inference_steps,
        guidance_scale=guidance_scale,
        use_dynamic_cfg=use_dynamic_cfg,
        max_sequence_length=max_sequence_length,
    )


def _image_to_video_call(plan: ShotPlan, fallback_image: Image.Image | None, **call: Any) -> CallSpec:
    """Prompt, negative prompt and first frame, plus the pipeline-specific ``call`` arguments."""
    image, origin = first_frame(plan, (call["width"], call["height"]), fallback_image)
    kwargs = {"image": image, **_text(plan), **call}
    return CallSpec(kwargs, sources={"image": origin, "prompt": "plan.prompt"}, notes=_unused_refs(plan, origin))


def _unused_refs(plan: ShotPlan, origin: str) -> list[str]:
    n_refs = len(entity_reference_sources(plan)) + len(location_reference_sources(plan))
    used = 0 if origin.startswith(("continuity", "fallback")) else 1
    if n_refs > used:
        return [f"{n_refs - used} reference image(s) not used: this pipeline takes a single first frame"]
    return []


class CogVideoXGenerator(DiffusersGenerator):
    """CogVideoX image-to-video (default ``THUDM/CogVideoX-5b-I2V``, 720x480, 49 frames at 8 fps).

    Parameters
    ----------
    model : str or None
        Model id or local directory.
    max_sequence_length : int
        T5 token budget of the prompt (226 for the released models).
    use_dynamic_cfg : bool
        Cosine guidance schedule, recommended for image-to-video.
    **kwargs
        See :class:`generators.diffusers_common.DiffusersGenerator`.
    """

    name = "cogvideox"
    pipeline_class = "CogVideoXImageToVideoPipeline"
    default_model = "THUDM/CogVideoX-5b-I2V"
    size_multiple, temporal_compression = 16, 4
    defaults = {
        "width": 720,
        "height": 480,
        "num_frames": 49,
        "fps": 8,
        "num_inference_steps": 50,
        "guidance_scale": 6.0,
    }

    def __init__(
        self,
        model: str | None = None,
        *,
        max_sequence_length: int = 226,
        use_dynamic_cfg: bool = True,
        **kwargs: Any,
    ) -> None:
        self.max_sequence_length, self.use_dynamic_cfg = max_sequence_length, use_dynamic_cfg
        super().__init__(model, **kwargs)

    def build_call(self, plan: ShotPlan, width: int, height: int, num_frames: int, fps: int) -> CallSpec:
        return build_cogvideox_kwargs(
            plan,
            **self.sampler_args(width, height, num_frames),
            use_dynamic_cfg=self.use_dynamic_cfg,
            max_sequence_length=self.max_sequence_length,
            fallback_image=self.fallback_image(plan, width, height),
        )


# --------------------------------------------------------------------------- Wan 2.1 image-to-video


def build_wan_i2v_kwargs(
    plan: ShotPlan,
    *,
    width: int = 832,
    height: int = 480,
    num_frames: int = 81,
    num_inference_steps: int = 50,
    guidance_scale: float = 5.0,
    max_sequence_length: int = 512,
    fallback_image: Image.Image | None = None,
) -> CallSpec:
    """Arguments of ``WanImageToVideoPipeline.__call__`` for ``plan``.

    ``image`` is the first frame from continuity or scene memory; the pipeline
    computes ``image_embeds`` from it with its own CLIP image encoder.
    """
    return _image_to_video_call(
        plan,
        fallback_image,
        width=width,
        height=height,
        num_frames=num_frames,
        num_inference_steps=num_inference_steps,
        guidance_scale=guidance_scale,
        max_sequence_length=max_sequence_length,
    )


class _WanBase(DiffusersGenerator):
    size_multiple, temporal_compression = 16, 4
    defaults = {
        "width": 832,
        "height": 480,
        "num_frames": 81,
        "fps": 16,
        "num_inference_steps": 50,
        "guidance_scale": 5.0,
    }

    def __init__(self, model: str | None = None, *, max_sequence_length: int = 512, **kwargs: Any) -> None:
        self.max_sequence_length = max_sequence_length
        super().__init__(model, **kwargs)


class WanI2VGenerator(_WanBase):
    """Wan 2.1 image-to-video (default ``Wan-AI/Wan2.1-I2V-14B-480P-Diffusers``, 832x480, 81 frames, 16 fps).

    Parameters
    ----------
    model : str or None
        Model id or local directory.
    max_sequence_length : int
        UMT5 token budget of the prompt.
    **kwargs
        See :class:`generators.diffusers_common.DiffusersGenerator`.
    """

    name = "wan-i2v"
    pipeline_class = "WanImageToVideoPipeline"
    default_model = "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers"

    def build_call(self, plan: ShotPlan, width: int, height: int, num_frames: int, fps: int) -> CallSpec:
        return build_wan_i2v_kwargs(
            plan,
            **self.sampler_args(width, height, num_frames),
            max_sequence_length=self.max_sequence_length,
            fallback_image=self.fallback_image(plan, width, height),
        )


# --------------------------------------------------------------------------- Wan VACE


def vace_reference_images(plan: ShotPlan, max_images: int = 4) -> tuple[list[Image.Image], list[str]]:
    """Reference images for VACE: one per entity (its first existing image), then one location frame.

    Returns the images and their origins, at most ``max_images`` of them.
    """
    chosen: list[tuple[str, str]] = []
    seen: set[str] = set()
    for src in entity_reference_sources(plan):
        if src.owner not in seen:
            seen.add(src.owner)
            chosen.append((src.path, f"entity:{src.owner}:{src.path}"))
    loc = location_reference_sources(plan)
    if loc:
        chosen.append((loc[0].path, f"location:{loc[0].owner}:{loc[0].path}"))
    chosen = chosen[:max_images]
    return [load_rgb(p) for p, _ in chosen], [o for _, o in chosen]


def build_wan_vace_kwargs(
    plan: ShotPlan,
    *,
    width: int = 832,
    height: int = 480,
    num_frames: int = 81,
    num_inference_steps: int = 50,
    guidance_scale: float = 5.0,
    conditioning_scale: float = 1.0,
    max_sequence_length: int = 512,
    max_reference_images: int = 4,
) -> CallSpec:
    """Arguments of ``WanVACEPipeline.__call__`` for ``plan``.

    * ``reference_images``: entity reference images, then a location reference frame.
    * ``video`` / ``mask``: with a continuity frame, the first frame is given and kept
      (mask black) and the others are generated (grey frames, mask white); VACE then
      extends the previous shot. Without one, both are left to the pipeline's defaults
      (generate everything).
    """
    refs, ref_origins = vace_reference_images(plan, max_reference_images)
    kwargs: dict[str, Any] = {
        **_text(plan),
        "reference_images": refs or None,
        "conditioning_scale": conditioning_scale,
        "height": height,
        "width": width,
        "num_frames": num_frames,
        "num_inference_steps": num_inference_steps,
        "guidance_scale": guidance_scale,
        "max_sequence_length": max_sequence_length,
    }
    sources: dict[str, Any] = {"prompt": "plan.prompt", "reference_images": ref_origins}
    notes: list[str] = []
    cont = continuity_source(plan)
    if cont is not None:
        grey = Image.new("RGB", (width, height), (127, 127, 127))
        kwargs["video"] = [load_rgb(cont.path, (width, height))] + [grey] * (num_frames - 1)
        kwargs["mask"] = [Image.new("L", (width, height), 0)] + [Image.new("L", (width, height), 255)] * (
            num_frames - 1
        )
        sources["video"] = f"continuity:{cont.path}"
    n_all = len({s.owner for s in entity_reference_sources(plan)}) + bool(location_reference_sources(plan))
    if n_all > len(refs):
        notes.append(f"{n_all - len(refs)} reference image(s) dropped: max_reference_images={max_reference_images}")
    return CallSpec(kwargs, sources=sources, notes=notes)


class WanVACEGenerator(_WanBase):
    """Wan VACE reference-to-video (default ``Wan-AI/Wan2.1-VACE-1.3B-diffusers``).

    Parameters
    ----------
    model : str or None
        Model id or local directory.
    conditioning_scale : float
        Strength of the VACE conditioning.
    max_reference_images : int
        Cap on reference images per shot (each adds latent frames).
    **kwargs
        See :class:`generators.diffusers_common.DiffusersGenerator`.
    """

    name = "wan-vace"
    pipeline_class = "WanVACEPipeline"
    default_model = "Wan-AI/Wan2.1-VACE-1.3B-diffusers"

    def __init__(
        self,
        model: str | None = None,
        *,
        conditioning_scale: float = 1.0,
        max_reference_images: int = 4,
        **kwargs: Any,
    ) -> None:
        self.conditioning_scale, self.max_reference_images = conditioning_scale, max_reference_images
        super().__init__(model, **kwargs)

    def build_call(self, plan: ShotPlan, width: int, height: int, num_frames: int, fps: int) -> CallSpec:
        return build_wan_vace_kwargs(
            plan,
            **self.sampler_args(width, height, num_frames),
            conditioning_scale=self.conditioning_scale,
            max_sequence_length=self.max_sequence_length,
            max_reference_images=self.max_reference_images,
        )


# --------------------------------------------------------------------------- Stable Video Diffusion


def build_svd_kwargs(
    plan: ShotPlan,
    *,
    width: int = 1024,
    height: int = 576,
    num_frames: int = 25,
    fps: int = 7,
    num_inference_steps: int = 25,
    min_guidance_scale: float = 1.0,
    max_guidance_scale: float = 3.0,
    noise_aug_strength: float = 0.02,
    decode_chunk_size: int | None = None,
    fallback_image: Image.Image | None = None,
) -> CallSpec:
    """Arguments of ``StableVideoDiffusionPipeline.__call__`` for ``plan``.

    ``motion_bucket_id`` comes from the plan's motion and camera move
    (:func:`generators.motion.motion_bucket_id`); ``fps`` is passed as the
    conditioning frame rate. SVD takes no text, so the prompt is not used.
    """
    image, origin = first_frame(plan, (width, height), fallback_image)
    bucket = motion_bucket_id(plan.dynamic.motion, plan.dynamic.action or plan.prompt, plan.dynamic.camera.move)
    kwargs = {
        "image": image,
        "height": height,
        "width": width,
        "num_frames": num_frames,
        "num_inference_steps": num_inference_steps,
        "min_guidance_scale": min_guidance_scale,
        "max_guidance_scale": max_guidance_scale,
        "fps": fps,
        "motion_bucket_id": bucket,
        "noise_aug_strength": noise_aug_strength,
        "decode_chunk_size": decode_chunk_size or num_frames,
    }
    sources = {
        "image": origin,
        "motion_bucket_id": f"motion={plan.dynamic.motion!r}, camera={plan.dynamic.camera.move!r}",
    }
    notes = ["SVD is image-only: prompt and negative prompt are not used", *_unused_refs(plan, origin)]
    return CallSpec(kwargs, sources=sources, notes=notes)


class SVDGenerator(DiffusersGenerator):
    """Stable Video Diffusion (default ``stabilityai/stable-video-diffusion-img2vid-xt``, 1024x576).

    Parameters
    ----------
    model : str or None
        Model id or local directory.
    min_guidance_scale, max_guidance_scale : float
        SVD's per-frame guidance ramp.
    noise_aug_strength : float
        Noise added to the conditioning image; higher frees the video from it.
    decode_chunk_size : int or None
        Frames decoded at once; lower saves memory.
    **kwargs
        See :class:`generators.diffusers_common.DiffusersGenerator`.
    """

    name = "svd"
    pipeline_class = "StableVideoDiffusionPipeline"
    default_model = "stabilityai/stable-video-diffusion-img2vid-xt"
    defaults = {
        "width": 1024,
        "height": 576,
        "num_frames": 25,
        "fps": 7,
        "num_inference_steps": 25,
        "guidance_scale": 3.0,
    }

    def __init__(
        self,
        model: str | None = None,
        *,
        min_guidance_scale: float = 1.0,
        max_guidance_scale: float | None = None,
        noise_aug_strength: float = 0.02,
        decode_chunk_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        self.min_guidance_scale, self.noise_aug_strength = min_guidance_scale, noise_aug_strength
        self.decode_chunk_size = decode_chunk_size
        if max_guidance_scale is not None:
            kwargs.setdefault("guidance_scale", max_guidance_scale)
        super().__init__(model, **kwargs)

    def check_inputs(self, plan: ShotPlan, width: int, height: int, num_frames: int, fps: int) -> None:
        super().check_inputs(plan, width, height, num_frames, fps)
        if fps < 2:
            raise GeneratorInputError(f"svd: fps must be >= 2 (SVD conditions on fps - 1), got {fps}.")

    def build_call(self, plan: ShotPlan, width: int, height: int, num_frames: int, fps: int) -> CallSpec:
        return build_svd_kwargs(
            plan,
            width=width,
            height=height,
            num_frames=num_frames,
            fps=fps,
            num_inference_steps=self.settings["num_inference_steps"],
            min_guidance_scale=self.min_guidance_scale,
            max_guidance_scale=self.settings["guidance_scale"],
            noise_aug_strength=self.noise_aug_strength,
            decode_chunk_size=self.decode_chunk_size,
            fallback_image=self.fallback_image(plan, width, height),
        )
