"""Writing clips to disk: GIF, MP4, a whole story, a contact sheet, PNG frames.

MP4 needs ``imageio`` with the ``imageio-ffmpeg`` plugin (which ships its own
ffmpeg binary). Without it, :func:`write_video` writes a GIF next to the
requested path and says so in the returned :class:`VideoFile`, so a missing
codec never loses a render.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .base import GeneratorInputError
from .conditioning import Clip, ShotPlan
from .storyboard import fit_text


@dataclass(frozen=True)
class VideoFile:
    """A written video: path, format (``"gif"`` or ``"mp4"``) and a note if it is not what was asked."""

    path: str
    format: str
    note: str | None = None


def mp4_available() -> bool:
    """Whether ``imageio`` and ``imageio-ffmpeg`` are importable."""
    return importlib.util.find_spec("imageio") is not None and importlib.util.find_spec("imageio_ffmpeg") is not None


def _parent(path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)


def write_gif(frames: np.ndarray, path: str, fps: int) -> str:
    """Write uint8 (T, H, W, 3) ``frames`` as a looping GIF and return ``path``."""
    _parent(path)
    images = [Image.fromarray(f) for f in frames]
    # GIF stores delays in 1/100 s; round so that the clip keeps its length.
    duration = max(20, int(round(100.0 / fps)) * 10)
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration, loop=0, optimize=False)
    return path


def write_mp4(frames: np.ndarray, path: str, fps: int, quality: int = 8) -> str:
    """Write uint8 (T, H, W, 3) ``frames`` as H.264 MP4 (yuv420p) and return ``path``.

    Odd sizes are padded by one edge pixel because yuv420p needs even sides.
    """
    import imageio.v2 as iio

    _parent(path)
    t, h, w, _ = frames.shape
    if h % 2 or w % 2:
        frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    writer = iio.get_writer(
        path,
        fps=fps,
        codec="libx264",
        quality=quality,
        macro_block_size=2,
        pixelformat="yuv420p",
        ffmpeg_log_level="error",
    )
    try:
        for f in frames:
            writer.append_data(f)
    finally:
        writer.close()
    return path


def write_video(clip: Clip, path: str) -> VideoFile:
    """Write ``clip`` to ``path``; the suffix (``.gif`` or ``.mp4``) picks the format.

    Returns
    -------
    VideoFile
        Where the video went. For ``.mp4`` without ``imageio-ffmpeg`` this is a
        ``.gif`` beside ``path``, with a note saying why.
    """
    return _write_frames(clip.frames, clip.fps, path)


def _write_frames(frames: np.ndarray, fps: int, path: str) -> VideoFile:
    ext = os.path.splitext(path)[1].lower()
    if ext == ".gif":
        return VideoFile(write_gif(frames, path, fps), "gif")
    if ext != ".mp4":
        raise GeneratorInputError(f"path must end in .gif or .mp4, got {path!r}.")
    if not mp4_available():
        gif = os.path.splitext(path)[0] + ".gif"
        return VideoFile(write_gif(frames, gif, fps), "gif", "imageio-ffmpeg is not installed; wrote a GIF instead")
    return VideoFile(write_mp4(frames, path, fps), "mp4")


def _fit(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if frames.shape[2] == size[0] and frames.shape[1] == size[1]:
        return frames
    return np.stack([np.asarray(Image.fromarray(f).resize(size, Image.Resampling.BILINEAR)) for f in frames])


def _retime(frames: np.ndarray, src_fps: int, dst_fps: int) -> np.ndarray:
    """Resample frames from ``src_fps`` to ``dst_fps`` by nearest frame, keeping the clip's duration."""
    if src_fps == dst_fps:
        return frames
    n = max(1, int(round(len(frames) * dst_fps / src_fps)))
    idx = np.minimum((np.arange(n) * src_fps / dst_fps).astype(int), len(frames) - 1)
    return frames[idx]


def story_frames(clips: Sequence[Clip], fps: int | None = None) -> tuple[np.ndarray, int]:
    """All clips as one frame array at one size (the first clip's) and one frame rate."""
    if not clips:
        raise GeneratorInputError("clips is empty; pass at least one Clip.")
    fps = clips[0].fps if fps is None else fps
    size = (clips[0].frames.shape[2], clips[0].frames.shape[1])
    return np.concatenate([_retime(_fit(c.frames, size), c.fps, fps) for c in clips]), fps


def write_story_video(clips: Sequence[Clip], path: str, fps: int | None = None) -> VideoFile:
    """Concatenate ``clips`` in order into one video (size of the first clip, ``fps`` or its frame rate)."""
    frames, fps = story_frames(clips, fps)
    return _write_frames(frames, fps, path)


def save_frames(clip: Clip, directory: str, prefix: str = "frame") -> list[str]:
    """Save each frame as ``<directory>/<prefix>_<index>.png`` and return the paths in order."""
    os.makedirs(directory, exist_ok=True)
    digits = max(4, len(str(len(clip.frames) - 1)))
    paths = []
    for i, f in enumerate(clip.frames):
        p = os.path.join(directory, f"{prefix}_{i:0{digits}d}.png")
        Image.fromarray(f).save(p)
        paths.append(p)
    return paths


def save_last_frame(clip: Clip, path: str) -> str:
    """Save the clip's last frame as a PNG, the usual ``continue_from`` of the next shot."""
    _parent(path)
    Image.fromarray(clip.frames[-1]).save(path)
    return path


def _caption(clip: Clip, plan: ShotPlan | None) -> str:
    shot = plan.shot_id if plan is not None else clip.metadata.get("shot_id", "?")
    prompt = plan.prompt if plan is not None else clip.metadata.get("prompt", "")
    return f"{shot}: {prompt}"


def contact_sheet(
    clips: Sequence[Clip],
    path: str,
    *,
    plans: Sequence[ShotPlan] | None = None,
    frames_per_row: int = 6,
    thumb_width: int = 128,
    caption_height: int = 18,
) -> str:
    """One row per shot: a caption (shot id and prompt excerpt) over ``frames_per_row`` evenly sampled frames.

    Parameters
    ----------
    clips : sequence of Clip
        The shots, in story order.
    path : str
        PNG to write.
    plans : sequence of ShotPlan or None
        Plans of the clips, for captions; without them the clip metadata is used.
    frames_per_row : int
        Frames sampled per shot, first and last included.
    thumb_width : int
        Width of each thumbnail in pixels; heights keep each clip's aspect ratio.
    caption_height : int
        Height of each row's caption strip.

    Returns
    -------
    str
        ``path``.
    """
    if not clips:
        raise GeneratorInputError("clips is empty; pass at least one Clip.")
    if plans is not None and len(plans) != len(clips):
        raise GeneratorInputError(f"plans has {len(plans)} items but clips has {len(clips)}; pass one plan per clip.")
    if frames_per_row < 1:
        raise GeneratorInputError(f"frames_per_row must be >= 1, got {frames_per_row}.")
    rows_h = [max(1, round(thumb_width * c.frames.shape[1] / c.frames.shape[2])) for c in clips]
    gap = 2
    width = frames_per_row * (thumb_width + gap) + gap
    height = sum(h + caption_height + gap for h in rows_h) + gap
    sheet = Image.new("RGB", (width, height), (24, 24, 28))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=max(8, caption_height - 6))
    y = gap
    for k, (clip, th) in enumerate(zip(clips, rows_h, strict=True)):
        text = _caption(clip, plans[k] if plans is not None else None)
        draw.text(
            (4, y + caption_height / 2),
            fit_text(draw, text, font, width - 8),
            fill=(235, 235, 235),
            font=font,
            anchor="lm",
        )
        y += caption_height
        idx = np.linspace(0, len(clip.frames) - 1, frames_per_row).round().astype(int)
        for j, i in enumerate(idx):
            thumb = Image.fromarray(clip.frames[i]).resize((thumb_width, th), Image.Resampling.BILINEAR)
            sheet.paste(thumb, (gap + j * (thumb_width + gap), y))
        y += th + gap
    _parent(path)
    sheet.save(path)
    return path
