"""AnimateDiff with an IP-Adapter: entity identity through ``ip_adapter_image_embeds``.

AnimateDiff is text-to-video, so memory reaches it two ways: the prompt, and
one IP-Adapter image embedding per visible entity. An entity's embedding is
its precomputed ``EntityConditioning.embedding`` when that has the size the
IP-Adapter expects, else the mean embedding of its reference images under the
image encoder (the pipeline's own, or one passed in). Entities are stacked as
several images of one IP-Adapter, the layout diffusers documents for
multi-image IP-Adapter input: ``[(2, n_entities, dim)]`` with the negative
(unconditional) half first when classifier-free guidance is on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .base import GeneratorInputError, WeightsNotFoundError
from .conditioning import ShotPlan
from .diffusers_common import CallSpec, DiffusersGenerator, from_pretrained, require
from .references import continuity_source, existing, load_rgb, location_reference_sources

Encoder = Callable[[list[Any]], tuple[Any, Any]]


@dataclass
class EntityEmbedding:
    """IP-Adapter input for one entity.

    Attributes
    ----------
    entity_id : str
        The entity.
    source : str
        ``"plan.embedding"`` or ``"reference_images:<n>"``.
    embeds, negative : torch.Tensor
        Shape (1, dim) for a plain IP-Adapter, (1, tokens, dim) for IP-Adapter Plus.
    """

    entity_id: str
    source: str
    embeds: Any
    negative: Any


@dataclass(frozen=True)
class IPAdapterLayout:
    """What the loaded IP-Adapter expects: pooled embeddings of ``embed_dim``, or hidden states (Plus)."""

    hidden_states: bool
    embed_dim: int | None


def ip_adapter_layout(pipe: Any) -> IPAdapterLayout | None:
    """Layout of the pipeline's single IP-Adapter, or ``None`` if none is loaded.

    Raises
    ------
    GeneratorInputError
        If more than one IP-Adapter is loaded.
    """
    proj = getattr(getattr(pipe, "unet", None), "encoder_hid_proj", None)
    layers = getattr(proj, "image_projection_layers", None)
    if layers is None:
        return None
    if len(layers) != 1:
        raise GeneratorInputError(
            f"animatediff: the pipeline has {len(layers)} IP-Adapters loaded; this back end feeds one. "
            "Load a single adapter with pipe.load_ip_adapter(...)."
        )
    from diffusers.models.embeddings import ImageProjection

    layer = layers[0]
    if isinstance(layer, ImageProjection):
        return IPAdapterLayout(False, int(layer.image_embeds.in_features))
    return IPAdapterLayout(True, None)


def make_image_encoder(image_encoder: Any, feature_extractor: Any, hidden_states: bool) -> Encoder:
    """A function images -> (embeds, negative embeds), mirroring ``AnimateDiffPipeline.encode_image``."""
    torch = require("torch")

    def encode(images: list[Any]) -> tuple[Any, Any]:
        param = next(image_encoder.parameters())
        pixels = feature_extractor(images, return_tensors="pt").pixel_values.to(param.device, param.dtype)
        with torch.no_grad():
            if hidden_states:
                emb = image_encoder(pixels, output_hidden_states=True).hidden_states[-2]
                neg = image_encoder(torch.zeros_like(pixels), output_hidden_states=True).hidden_states[-2]
            else:
                emb = image_encoder(pixels).image_embeds
                neg = torch.zeros_like(emb)
        return emb.float().cpu(), neg.float().cpu()

    return encode


def entity_ip_embeds(
    plan: ShotPlan, encode: Encoder | None, layout: IPAdapterLayout
) -> tuple[list[EntityEmbedding], list[str]]:
    """One IP-Adapter embedding per entity of ``plan`` that has a usable embedding or reference image.

    Parameters
    ----------
    plan : ShotPlan
        The shot.
    encode : callable or None
        images -> (embeds, negative); ``None`` allows only precomputed embeddings.
    layout : IPAdapterLayout
        What the IP-Adapter expects; plan embeddings are used only if their size matches.

    Returns
    -------
    list of EntityEmbedding, list of str
        The embeddings, in plan order, and notes on entities that were skipped.
    """
    torch = require("torch")
    out: list[EntityEmbedding] = []
    notes: list[str] = []
    for e in plan.static.entities:
        fits = e.embedding is not None and not layout.hidden_states and len(e.embedding) == layout.embed_dim
        paths = [p for p in e.reference_images if existing(p)]
        if fits:
            emb = torch.tensor([e.embedding], dtype=torch.float32)
            out.append(EntityEmbedding(e.id, "plan.embedding", emb, torch.zeros_like(emb)))
        elif paths and encode is not None:
            emb, neg = encode([load_rgb(p) for p in paths])
            # One token set per entity: the mean over its reference images keeps the entity count fixed.
            out.append(
                EntityEmbedding(
                    e.id,
                    f"reference_images:{len(paths)}",
                    emb.mean(0, keepdim=True),
                    neg.mean(0, keepdim=True),
                )
            )
        elif e.embedding is not None:
            want = "hidden states (IP-Adapter Plus)" if layout.hidden_states else f"size {layout.embed_dim}"
            notes.append(f"entity {e.id!r}: embedding of size {len(e.embedding)} skipped, the IP-Adapter wants {want}")
        elif e.reference_images:
            notes.append(f"entity {e.id!r}: reference images missing on disk or no image encoder; not conditioned")
    return out, notes


def neutral_ip_embeds(layout: IPAdapterLayout, encode: Encoder | None) -> EntityEmbedding:
    """The "no identity" input for a shot without conditioned entities.

    A UNet with an IP-Adapter loaded requires image embeddings on every call,
    so a shot with no entity gets the unconditional embedding: zeros for a
    plain IP-Adapter, the hidden states of a black image for IP-Adapter Plus
    (what the pipeline itself uses as the negative).
    """
    torch = require("torch")
    if not layout.hidden_states:
        zeros = torch.zeros(1, layout.embed_dim)
        return EntityEmbedding("<none>", "neutral", zeros, zeros.clone())
    if encode is None:
        raise GeneratorInputError(
            "animatediff: an IP-Adapter Plus needs an image encoder to build the neutral embedding of a shot "
            "without entities; pass image_encoder= and feature_extractor=."
        )
    from PIL import Image

    _, neg = encode([Image.new("RGB", (224, 224))])
    return EntityEmbedding("<none>", "neutral", neg, neg.clone())


def stack_ip_adapter_embeds(entities: list[EntityEmbedding], do_classifier_free_guidance: bool) -> list[Any]:
    """``ip_adapter_image_embeds`` for one IP-Adapter: [(2 or 1, n_entities, ...)], negative half first."""
    torch = require("torch")
    emb = torch.cat([x.embeds for x in entities])[None]
    if not do_classifier_free_guidance:
        return [emb]
    neg = torch.cat([x.negative for x in entities])[None]
    return [torch.cat([neg, emb])]


def build_animatediff_kwargs(
    plan: ShotPlan,
    *,
    width: int = 512,
    height: int = 512,
    num_frames: int = 16,
    num_inference_steps: int = 25,
    guidance_scale: float = 7.5,
    decode_chunk_size: int = 16,
    entity_embeds: list[EntityEmbedding] | None = None,
) -> CallSpec:
    """Arguments of ``AnimateDiffPipeline.__call__`` for ``plan``.

    ``entity_embeds`` (from :func:`entity_ip_embeds`) become ``ip_adapter_image_embeds``;
    the negative half is included exactly when ``guidance_scale > 1``, as the pipeline expects.
    """
    kwargs: dict[str, Any] = {
        "prompt": plan.prompt,
        "negative_prompt": plan.negative_prompt or None,
        "height": height,
        "width": width,
        "num_frames": num_frames,
        "num_inference_steps": num_inference_steps,
        "guidance_scale": guidance_scale,
        "decode_chunk_size": decode_chunk_size,
    }
    sources: dict[str, Any] = {"prompt": "plan.prompt"}
    if entity_embeds:
        kwargs["ip_adapter_image_embeds"] = stack_ip_adapter_embeds(entity_embeds, guidance_scale > 1.0)
        sources["ip_adapter_image_embeds"] = [f"{x.entity_id}:{x.source}" for x in entity_embeds]
    notes = []
    if continuity_source(plan) is not None or location_reference_sources(plan):
        notes.append("AnimateDiff is text-to-video: continuity and location frames are not used")
    return CallSpec(kwargs, sources=sources, notes=notes)


class AnimateDiffGenerator(DiffusersGenerator):
    """AnimateDiff (SD 1.5 base + motion adapter) with one IP-Adapter for entity identity.

    Parameters
    ----------
    model : str or None
        SD 1.5 base model id or directory (default ``emilianJR/epiCRealism``).
    motion_adapter : str
        Motion adapter id or directory, loaded when ``pipe`` is not given.
    ip_adapter : tuple of (str, str, str) or None
        ``(repo or directory, subfolder, weight_name)`` for ``pipe.load_ip_adapter``;
        ``None`` loads no IP-Adapter (entities then reach the model through the prompt only).
    ip_adapter_scale : float or None
        ``pipe.set_ip_adapter_scale`` value; ``None`` keeps the pipeline's.
    image_encoder, feature_extractor : objects or None
        CLIP image encoder and processor for reference images; ``None`` uses the pipeline's.
    **kwargs
        See :class:`generators.diffusers_common.DiffusersGenerator`.
    """

    name = "animatediff"
    pipeline_class = "AnimateDiffPipeline"
    default_model = "emilianJR/epiCRealism"
    defaults = {
        "width": 512,
        "height": 512,
        "num_frames": 16,
        "fps": 8,
        "num_inference_steps": 25,
        "guidance_scale": 7.5,
    }

    def __init__(
        self,
        model: str | None = None,
        *,
        motion_adapter: str = "guoyww/animatediff-motion-adapter-v1-5-2",
        ip_adapter: tuple[str, str, str] | None = ("h94/IP-Adapter", "models", "ip-adapter_sd15.bin"),
        ip_adapter_scale: float | None = None,
        image_encoder: Any = None,
        feature_extractor: Any = None,
        decode_chunk_size: int = 16,
        **kwargs: Any,
    ) -> None:
        self.motion_adapter, self.ip_adapter = motion_adapter, ip_adapter
        self.image_encoder, self.feature_extractor = image_encoder, feature_extractor
        self.decode_chunk_size = decode_chunk_size
        super().__init__(model, **kwargs)
        self.layout = ip_adapter_layout(self.pipe)
        if ip_adapter_scale is not None and self.layout is not None:
            self.pipe.set_ip_adapter_scale(ip_adapter_scale)

    def load(self, model: str, **kwargs: Any) -> Any:
        """Load motion adapter, base pipeline, the AnimateDiff DDIM schedule and the IP-Adapter."""
        diffusers = require("diffusers")
        adapter = from_pretrained(diffusers.MotionAdapter, self.motion_adapter, dtype=kwargs.get("dtype"))
        pipe = from_pretrained(diffusers.AnimateDiffPipeline, model, motion_adapter=adapter, **kwargs)
        # The motion adapters were trained with this schedule; the base model's own one flickers.
        pipe.scheduler = diffusers.DDIMScheduler.from_config(
            pipe.scheduler.config,
            clip_sample=False,
            timestep_spacing="linspace",
            beta_schedule="linear",
            steps_offset=1,
        )
        if self.ip_adapter is not None:
            repo, subfolder, weight_name = self.ip_adapter
            try:
                pipe.load_ip_adapter(repo, subfolder=subfolder, weight_name=weight_name)
            except OSError as err:
                raise WeightsNotFoundError(f"{repo}/{subfolder}/{weight_name}", str(err).splitlines()[0][:300]) from err
        return pipe

    def build_call(self, plan: ShotPlan, width: int, height: int, num_frames: int, fps: int) -> CallSpec:
        entities: list[EntityEmbedding] = []
        notes: list[str] = []
        if self.layout is None:
            if any(e.reference_images or e.embedding for e in plan.static.entities):
                notes.append("no IP-Adapter loaded: entity references and embeddings are not used")
        else:
            encoder = self.image_encoder or getattr(self.pipe, "image_encoder", None)
            extractor = self.feature_extractor or getattr(self.pipe, "feature_extractor", None)
            encode = (
                make_image_encoder(encoder, extractor, self.layout.hidden_states) if encoder and extractor else None
            )
            entities, notes = entity_ip_embeds(plan, encode, self.layout)
            if not entities:
                entities = [neutral_ip_embeds(self.layout, encode)]
                notes.append("no entity embedding or reference image: neutral IP-Adapter embedding passed")
            device, dtype = self.pipe.unet.device, self.pipe.unet.dtype
            for x in entities:
                x.embeds, x.negative = x.embeds.to(device, dtype), x.negative.to(device, dtype)
        spec = build_animatediff_kwargs(
            plan,
            **self.sampler_args(width, height, num_frames),
            decode_chunk_size=self.decode_chunk_size,
            entity_embeds=entities,
        )
        spec.notes.extend(notes)
        return spec
