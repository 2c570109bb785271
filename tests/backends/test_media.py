"""Writing clips: GIF, MP4 (or its GIF fallback), a story video, a contact sheet, PNG frames."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from generators import Clip, GeneratorInputError, StoryboardGenerator, media


def _clip(n=6, w=48, h=32, fps=8, seed=0) -> Clip:
    rng = np.random.default_rng(seed)
    return Clip(frames=rng.integers(0, 256, size=(n, h, w, 3), dtype=np.uint8), fps=fps, metadata={"shot_id": "x"})


def test_gif_round_trip(tmp_path):
    clip = _clip()
    out = media.write_video(clip, str(tmp_path / "a" / "clip.gif"))
    assert out.format == "gif" and out.note is None
    with Image.open(out.path) as im:
        assert im.n_frames == 6 and im.size == (48, 32)
        assert im.info["duration"] == 120  # 8 fps -> 12.5 cs, rounded to 12 cs


def test_mp4_or_documented_gif_fallback(tmp_path):
    clip = _clip(n=9, w=47, h=33)  # odd sizes are padded for yuv420p
    out = media.write_video(clip, str(tmp_path / "clip.mp4"))
    if media.mp4_available():
        import imageio.v2 as iio

        assert out.format == "mp4" and out.path.endswith(".mp4")
        frames = iio.mimread(out.path)
        assert len(frames) == 9 and frames[0].shape == (34, 48, 3)
    else:
        assert out.format == "gif" and "imageio-ffmpeg" in out.note


def test_mp4_fallback_when_ffmpeg_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(media, "mp4_available", lambda: False)
    out = media.write_video(_clip(), str(tmp_path / "clip.mp4"))
    assert out == media.VideoFile(
        str(tmp_path / "clip.gif"), "gif", "imageio-ffmpeg is not installed; wrote a GIF instead"
    )
    assert os.path.isfile(out.path)


def test_bad_suffix_is_rejected(tmp_path):
    with pytest.raises(GeneratorInputError, match=r"\.gif or \.mp4"):
        media.write_video(_clip(), str(tmp_path / "clip.avi"))


def test_story_frames_resize_and_retime():
    a, b = _clip(n=8, w=48, h=32, fps=8), _clip(n=16, w=96, h=64, fps=16, seed=1)
    frames, fps = media.story_frames([a, b])
    assert fps == 8 and frames.shape == (8 + 8, 32, 48, 3)  # b keeps its 1 s at 8 fps
    assert np.array_equal(frames[:8], a.frames)


def test_write_story_video(tmp_path):
    out = media.write_story_video([_clip(n=4), _clip(n=5, seed=2)], str(tmp_path / "story.gif"), fps=8)
    with Image.open(out.path) as im:
        assert im.n_frames == 9


def test_save_frames_is_lossless_and_ordered(tmp_path):
    clip = _clip(n=11)
    paths = media.save_frames(clip, str(tmp_path / "frames"), prefix="s01")
    assert [os.path.basename(p) for p in paths[:2]] == ["s01_0000.png", "s01_0001.png"] and len(paths) == 11
    assert all(np.array_equal(np.asarray(Image.open(p)), f) for p, f in zip(paths, clip.frames, strict=True))
    last = media.save_last_frame(clip, str(tmp_path / "last.png"))
    assert np.array_equal(np.asarray(Image.open(last)), clip.frames[-1])


def test_contact_sheet_layout_and_captions(tmp_path, make_plan):
    plans = [make_plan(shot_id="s01", prompt="Mara walks"), make_plan(shot_id="s02", prompt="Tomas rows out")]
    gen = StoryboardGenerator()
    clips = [gen.generate(p, width=64, height=40, num_frames=7) for p in plans]
    path = media.contact_sheet(clips, str(tmp_path / "sheet.png"), plans=plans, frames_per_row=4, thumb_width=64)
    sheet = np.asarray(Image.open(path).convert("RGB"))
    # 4 thumbnails of 64 px with 2 px gaps; each row is an 18 px caption + a 40 px thumbnail row.
    assert sheet.shape == (2 + 2 * (18 + 40 + 2), 2 + 4 * (64 + 2), 3)
    caption = sheet[2:20, :]
    assert (caption.max(axis=-1) > 200).sum() > 30  # light caption text was drawn
    # The last thumbnail of row 2 is the last frame of shot 2.
    y, x = 2 + 60 + 18, 2 + 3 * 66
    assert np.array_equal(sheet[y : y + 40, x : x + 64], clips[1].frames[-1])
    with pytest.raises(GeneratorInputError, match="plans"):
        media.contact_sheet(clips, str(tmp_path / "bad.png"), plans=plans[:1])


def test_contact_sheet_caption_falls_back_to_metadata(tmp_path, make_plan):
    clip = StoryboardGenerator().generate(make_plan(shot_id="s09", prompt="Ida drinks tea"), width=64, height=40)
    assert media._caption(clip, None) == "s09: Ida drinks tea"
    assert os.path.isfile(media.contact_sheet([clip], str(tmp_path / "one.png")))
