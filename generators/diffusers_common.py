"""What every diffusers back end shares: loading, seeding, calling, converting.

torch and diffusers are imported inside functions only, so that importing
:mod:`generators` stays free of them. A back end is either given a model id
or local directory (loaded with ``from_pretrained``) or an already built
pipeline object (``pipe=``), which is how tests inject tiny random pipelines.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from .base import BackendUnavailableError, GeneratorInputError, WeightsNotFoundError, check_size, pick
from .conditioning import Clip, ShotPlan
from .references import ImageSource, first_frame_source, load_rgb

_DTYPES = {
    "bf16": "bfloat16",
    "bfloat16": "bfloat16",
    "fp16": "float16",
    "float16": "float16",
    "half": "float16",
    "fp32": "float32",
    "float32": "float32",
    "float": "float32",
}


@dataclass
class CallSpec:
    """Keyword arguments for one pipeline call and where each piece of conditioning came from.

    Attributes
    ----------
    kwargs : dict
        Arguments for ``pipe(**kwargs)``, without ``generator`` and ``output_type``.
    sources : dict
        Conditioning argument -> human-readable origin, e.g. ``{"image": "continuity:/f/s01_last.png"}``.
    notes : list of str
        Parts of the plan this back end could not use, and why.
    """

    kwargs: dict[str, Any]
    sources: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def require(module: str, purpose: str = "diffusers back ends"):
    """Import ``module`` or raise :class:`BackendUnavailableError` saying what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise BackendUnavailableError(
            f"{module} is needed for {purpose} but could not be imported ({err}); "
            "install torch, diffusers and transformers, or use the 'storyboard' back end."
        ) from err


def resolve_dtype(dtype: Any, device: str):
    """A torch dtype from a dtype, a name like ``"bf16"``, or ``None`` (bf16 on CUDA, fp32 elsewhere)."""
    torch = require("torch")
    if dtype is None:
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if isinstance(dtype, str):
        name = _DTYPES.get(dtype.lower())
        if name is None:
            raise GeneratorInputError(f"dtype={dtype!r} is not known; pass one of {sorted(_DTYPES)}.")
        return getattr(torch, name)
    return dtype


def default_device() -> str:
    """``"cuda"`` when a GPU is visible, else ``"cpu"``."""
    torch = require("torch")
    return "cuda" if torch.cuda.is_available() else "cpu"


def _looks_local(model: str) -> bool:
    # Hub ids are exactly "org/name"; anything rooted or deeper is a directory.
    return model.startswith(("/", "./", "../", "~", "\\")) or model.count("/") > 1 or os.path.splitdrive(model)[0] != ""


def from_pretrained(cls: Any, model: str, **kwargs: Any) -> Any:
    """``cls.from_pretrained(model, **kwargs)``; missing weights raise :class:`WeightsNotFoundError`."""
    if _looks_local(model) and not os.path.isdir(os.path.expanduser(model)):
        raise WeightsNotFoundError(model, "no such local directory")
    hub_errors: tuple[type[BaseException], ...] = ()
    try:
        from huggingface_hub.errors import HFValidationError

        hub_errors = (HFValidationError,)
    except ImportError:  # older huggingface_hub: validation errors are plain ValueErrors below
        pass
    missing: tuple[type[BaseException], ...] = (OSError, *hub_errors)
    try:
        return cls.from_pretrained(os.path.expanduser(model), **kwargs)
    except missing as err:
        raise WeightsNotFoundError(model, f"{type(err).__name__}: {str(err).splitlines()[0][:300]}") from err
    except ValueError as err:
        if "valid local path" in str(err) or "repo id" in str(err):
            raise WeightsNotFoundError(model, str(err).splitlines()[0][:300]) from err
        raise


def load_pipeline(class_name: str, model: str, **kwargs: Any) -> Any:
    """Load ``diffusers.<class_name>`` from a model id or local directory."""
    diffusers = require("diffusers")
    return from_pretrained(getattr(diffusers, class_name), model, **kwargs)


def seeded_generator(seed: int):
    """A CPU ``torch.Generator`` seeded with ``seed``.

    diffusers draws initial noise on the generator's device and moves it, so a
    CPU generator gives the same noise whatever device the pipeline runs on.
    """
    torch = require("torch")
    return torch.Generator(device="cpu").manual_seed(int(seed) % (2**63))


def frames_to_uint8(frames: Any) -> np.ndarray:
    """First video of a pipeline output as uint8 (T, H, W, 3).

    Accepts what diffusers returns for ``output_type`` ``"np"`` (float in [0, 1],
    (B, T, H, W, C)), ``"pt"`` ((B, T, C, H, W)) or ``"pil"`` (list of lists of images).
    """
    if isinstance(frames, (list, tuple)):
        video = frames[0]
        if isinstance(video, (list, tuple)) and video and isinstance(video[0], Image.Image):
            return np.stack([np.asarray(im.convert("RGB"), dtype=np.uint8) for im in video])
        arr = np.asarray(video)
    elif hasattr(frames, "detach"):
        arr = frames.detach().float().cpu().numpy()[0]
        if arr.ndim == 4 and arr.shape[1] in (1, 3) and arr.shape[-1] not in (1, 3):
            arr = arr.transpose(0, 2, 3, 1)
    else:
        arr = np.asarray(frames)[0]
    if arr.dtype != np.uint8:
        arr = np.clip(np.round(arr.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return np.ascontiguousarray(arr)


def check_video_inputs(
    backend: str,
    width: int,
    height: int,
    num_frames: int,
    fps: int,
    *,
    multiple: int,
    temporal: int | None = None,
    num_inference_steps: int = 1,
    guidance_scale: float = 0.0,
) -> None:
    """Validate a call, naming the argument and the fix.

    ``temporal`` = k requires ``num_frames`` = k * n + 1 (CogVideoX and Wan compress time by k).
    """
    check_size(width, height, num_frames, fps, multiple=multiple)
    if temporal and (num_frames - 1) % temporal:
        fixed = (num_frames - 1) // temporal * temporal + 1
        raise GeneratorInputError(
            f"{backend}: num_frames must be {temporal}*k+1 (e.g. {fixed} or {fixed + temporal}), got {num_frames}."
        )
    if not isinstance(num_inference_steps, int) or num_inference_steps < 1:
        raise GeneratorInputError(f"{backend}: num_inference_steps must be an int >= 1, got {num_inference_steps!r}.")
    if guidance_scale < 0:
        raise GeneratorInputError(f"{backend}: guidance_scale must be >= 0, got {guidance_scale!r}.")


def first_frame(plan: ShotPlan, size: tuple[int, int], fallback: Image.Image | None) -> tuple[Image.Image, str]:
    """The image an image-to-video call starts from, resized to ``size``, and its origin.

    Uses :func:`generators.references.first_frame_source`; if the plan has no
    usable image, ``fallback`` (e.g. a storyboard frame) is used.

    Raises
    ------
    GeneratorInputError
        If the plan has no usable image and no fallback was given.
    """
    src: ImageSource | None = first_frame_source(plan)
    if src is not None:
        return load_rgb(src.path, size), f"{src.role}:{src.path}"
    if fallback is not None:
        return fallback.convert("RGB").resize(size, Image.Resampling.BICUBIC), "fallback"
    raise GeneratorInputError(
        f"shot {plan.shot_id!r} has no image to start from: dynamic.continue_from, location reference_frames "
        "and entity reference_images have no existing file. Pass fallback_first_frame='storyboard' to start "
        "from a storyboard frame, or add a reference image to the plan."
    )


class DiffusersGenerator:
    """Shared machinery of the diffusers back ends; subclasses define the call.

    Parameters
    ----------
    model : str or None
        Hugging Face model id or local directory; ``None`` uses the back end's default id.
    pipe : object or None
        An already built pipeline; when given, nothing is loaded and ``model`` only labels the clips.
    device : str or None
        Where to run a loaded pipeline; ``None`` picks CUDA when available. An injected ``pipe``
        is moved only if ``device`` is given.
    dtype : torch.dtype, str or None
        Weights dtype for loading; ``None`` is bf16 on CUDA and fp32 on CPU.
    cpu_offload : bool
        Use ``enable_model_cpu_offload()`` instead of moving the whole pipeline to the GPU.
    num_inference_steps, guidance_scale : int, float or None
        Sampler settings; ``None`` takes the back end's defaults.
    width, height, num_frames, fps : int or None
        Defaults for :meth:`generate`.
    fallback_first_frame : {"storyboard", "error"}
        What an image-to-video back end starts from when the plan has no image.
    call_kwargs : dict or None
        Extra keyword arguments for every pipeline call (they override the built ones).
    progress : bool
        Show the pipeline's progress bar.
    **load_kwargs
        Passed to ``from_pretrained`` (e.g. ``variant="fp16"``, ``local_files_only=True``).
    """

    name = "diffusers"
    pipeline_class = ""
    default_model = ""
    defaults: dict[str, Any] = {}
    # Output geometry rules of the model family: sides divisible by size_multiple (VAE x patch size);
    # num_frames = temporal_compression * k + 1 when the VAE compresses time.
    size_multiple = 8
    temporal_compression: int | None = None

    def __init__(
        self,
        model: str | None = None,
        *,
        pipe: Any = None,
        device: str | None = None,
        dtype: Any = None,
        cpu_offload: bool = False,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        width: int | None = None,
        height: int | None = None,
        num_frames: int | None = None,
        fps: int | None = None,
        fallback_first_frame: str = "storyboard",
        call_kwargs: dict[str, Any] | None = None,
        progress: bool = False,
        **load_kwargs: Any,
    ) -> None:
        if fallback_first_frame not in ("storyboard", "error"):
            raise GeneratorInputError(
                f"fallback_first_frame must be 'storyboard' or 'error', got {fallback_first_frame!r}."
            )
        self.model = model or self.default_model
        overrides = {
            "num_inference_steps": num_inference_steps,
            "guidance_scale": guidance_scale,
            "width": width,
            "height": height,
            "num_frames": num_frames,
            "fps": fps,
        }
        self.settings = {**self.defaults, **{k: v for k, v in overrides.items() if v is not None}}
        self.fallback_first_frame = fallback_first_frame
        self.call_kwargs = dict(call_kwargs or {})
        self.device: str | None
        if pipe is None:
            self.device = device or default_device()
            pipe = self.load(self.model, dtype=resolve_dtype(dtype, self.device), **load_kwargs)
            if cpu_offload:
                pipe.enable_model_cpu_offload()
            else:
                pipe.to(self.device)
        else:
            self.device = device
            if device is not None:
                pipe.to(device)
        if hasattr(pipe, "set_progress_bar_config"):
            pipe.set_progress_bar_config(disable=not progress)
        self.pipe = pipe

    def load(self, model: str, **kwargs: Any) -> Any:
        """Load the pipeline; back ends needing extra parts (adapters) override this."""
        return load_pipeline(self.pipeline_class, model, **kwargs)

    def check_inputs(self, plan: ShotPlan, width: int, height: int, num_frames: int, fps: int) -> None:
        """Validate a call before anything runs; the error names the argument and the fix."""
        check_video_inputs(
            self.name,
            width,
            height,
            num_frames,
            fps,
            multiple=self.size_multiple,
            temporal=self.temporal_compression,
            num_inference_steps=self.settings["num_inference_steps"],
            guidance_scale=self.settings["guidance_scale"],
        )

    def sampler_args(self, width: int, height: int, num_frames: int) -> dict[str, Any]:
        """Geometry and sampler settings every ``build_*_kwargs`` function takes."""
        return {
            "width": width,
            "height": height,
            "num_frames": num_frames,
            "num_inference_steps": self.settings["num_inference_steps"],
            "guidance_scale": self.settings["guidance_scale"],
        }

    # The hook every back end defines.
    def build_call(self, plan: ShotPlan, width: int, height: int, num_frames: int, fps: int) -> CallSpec:
        raise NotImplementedError

    def fallback_image(self, plan: ShotPlan, width: int, height: int) -> Image.Image | None:
        """A storyboard frame of ``plan`` when the plan has no image and the fallback is enabled."""
        if self.fallback_first_frame != "storyboard" or first_frame_source(plan) is not None:
            return None
        from .storyboard import StoryboardGenerator

        # Draw at least 64 px on the short side so the figures stay legible, then let first_frame resize.
        k = max(1.0, 64 / min(width, height))
        frame = StoryboardGenerator(caption=False).generate(
            plan, width=round(width * k), height=round(height * k), num_frames=1
        )
        return Image.fromarray(frame.frames[0])

    def generate(
        self,
        plan: ShotPlan,
        *,
        width: int | None = None,
        height: int | None = None,
        num_frames: int | None = None,
        fps: int | None = None,
    ) -> Clip:
        """Generate one shot with the wrapped diffusers pipeline."""
        # 1. Resolve and check the call geometry.
        s = self.settings
        width, height = pick(width, s["width"]), pick(height, s["height"])
        num_frames, fps = pick(num_frames, s["num_frames"]), pick(fps, s["fps"])
        self.check_inputs(plan, width, height, num_frames, fps)

        # 2. Turn the plan into pipeline arguments.
        spec = self.build_call(plan, width, height, num_frames, fps)

        # 3. Seed the noise with the plan's seed, so a shot re-renders identically.
        kwargs = {
            **spec.kwargs,
            **self.call_kwargs,
            "generator": seeded_generator(plan.seed),
            "output_type": "np",
        }

        # 4. Run the pipeline.
        output = self.pipe(**kwargs)

        # 5. Convert the frames and record what conditioned them.
        frames = frames_to_uint8(output.frames if hasattr(output, "frames") else output[0])
        metadata = {
            "generator": self.name,
            "model": self.model,
            "shot_id": plan.shot_id,
            "prompt": plan.prompt,
            "seed": plan.seed,
            "sources": spec.sources,
            "notes": spec.notes,
            "settings": {k: v for k, v in kwargs.items() if isinstance(v, (int, float, str, bool))},
        }
        return Clip(frames=frames, fps=fps, metadata=metadata)
