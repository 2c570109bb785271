"""The storyboard back end: a procedural, deterministic preview renderer.

This is **not** a learned video model. It draws the plan with flat shapes so
that a story can be previewed offline, on a CPU, in milliseconds, and so that
tests can check that memory reached the renderer:

* the location backdrop takes its colours from colour words in the location's
  appearance (see :mod:`generators.palette`), or from a SHA-256 of its id;
  earlier frames of the location (``reference_frames``) are blended in;
* each entity is a figure (or a box, for objects) coloured by the colour words
  of its conditioned appearance ("red raincoat" gives a red body), placed at a
  position derived from its id and seed;
* action verbs move the figures and the camera move pans, zooms, tilts or
  orbits the view (see :mod:`generators.motion`);
* when the shot continues from an earlier frame, the clip starts on that frame
  and cross-fades into the new drawing;
* a caption band shows the shot id, the action and the camera move.

The same plan always gives the same frames: no wall clock, no unseeded
randomness, no salted ``hash``.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .base import GeneratorInputError, check_size, frames_for_duration, pick
from .conditioning import Clip, EntityConditioning, LocationConditioning, ShotPlan
from .figures import (
    OUTLINE,
    SKIN,
    WORLD_MARGIN,
    FigureStyle,
    backdrop_colours,
    backdrop_style,
    dominant_colour,
    entity_style,
    layout,
)
from .motion import CameraPath, Motion, camera_path, figure_offset, motion_for
from .palette import RGB, colour_mentions, mix, scale, stable_int
from .references import continuity_source, load_rgb_array, reference_frame_sources


class StoryboardGenerator:
    """Procedural preview renderer; see the module docstring for what it draws and why.

    Parameters
    ----------
    width, height : int
        Default frame size in pixels.
    fps : int
        Default frame rate.
    num_frames : int or None
        Default frame count; ``None`` derives it from ``plan.duration * fps`` (at most 240).
    reference_strength : float
        Weight of the location's earlier frames in the backdrop, in [0, 1].
    continuity_fraction : float
        Fraction of the clip over which the continuity frame cross-fades into the new drawing.
    caption : bool
        Draw the caption band.
    """

    name = "storyboard"

    def __init__(
        self,
        *,
        width: int = 256,
        height: int = 160,
        fps: int = 8,
        num_frames: int | None = None,
        reference_strength: float = 0.45,
        continuity_fraction: float = 0.4,
        caption: bool = True,
    ) -> None:
        for arg, value in (
            ("reference_strength", reference_strength),
            ("continuity_fraction", continuity_fraction),
        ):
            if not 0.0 <= value <= 1.0:
                raise GeneratorInputError(f"{arg} must be in [0, 1], got {value!r}.")
        self.width, self.height, self.fps, self.num_frames = width, height, fps, num_frames
        self.reference_strength = reference_strength
        self.continuity_fraction = continuity_fraction
        self.caption = caption

    def generate(
        self,
        plan: ShotPlan,
        *,
        width: int | None = None,
        height: int | None = None,
        num_frames: int | None = None,
        fps: int | None = None,
    ) -> Clip:
        """Draw ``plan`` as a clip of uint8 frames (T, height, width, 3)."""
        # 1. Resolve and check the geometry.
        width, height, fps = pick(width, self.width), pick(height, self.height), pick(fps, self.fps)
        num_frames = pick(num_frames, self.num_frames)
        if num_frames is None:
            num_frames = frames_for_duration(plan.duration, fps, default=16)
        check_size(width, height, num_frames, fps)
        if width < 32 or height < 32:
            raise GeneratorInputError(f"width and height must be at least 32, got {width}x{height}.")
        notes: list[str] = []

        # 2. Styles, layout, motion and camera path.
        action = plan.dynamic.action or plan.prompt
        motion = motion_for(plan.dynamic.motion, action)
        entities = list(plan.static.entities)
        # Reference images are read only for entities whose appearance names no colour.
        styles = {
            e.id: entity_style(e, None if colour_mentions(e.appearance) else self._reference_colour(e))
            for e in entities
        }
        places = layout(entities, action, motion)
        cam = camera_path(plan.dynamic.camera, num_frames, stable_int("camera", plan.shot_id, plan.seed))
        if not cam.recognised:
            notes.append(f"unknown camera move {plan.dynamic.camera.move!r}; drew a static camera")

        # 3. The backdrop, with the location's earlier frames blended in.
        world, ref_paths = self._world(plan.static.location, width, height)

        # 4. Per frame: figures, camera, continuity cross-fade, caption.
        cont = continuity_source(plan)
        cont_arr = load_rgb_array(cont.path, (width, height)).astype(np.float32) if cont else None
        band = self._caption_band(plan, cam, width, height) if self.caption else None
        frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
        for i in range(num_frames):
            p = i / (num_frames - 1) if num_frames > 1 else 0.0
            canvas = world.copy()
            lead_x = self._draw_entities(canvas, entities, styles, places, p, cam.parallax[i], width, height)
            frame = self._view(canvas, cam, i, lead_x, width, height)
            if cont_arr is not None:
                alpha = self._continuity_alpha(i, num_frames)
                if alpha > 0:
                    frame = (alpha * cont_arr + (1 - alpha) * frame).round().astype(np.uint8)
            if band is not None:
                frame[height - band.shape[0] :] = band
                frame[height - 2 :, : int(round(width * (i + 1) / num_frames))] = 230
            frames[i] = frame

        # 5. Wrap up with what was used, so a preview can be audited against its plan.
        metadata = {
            "generator": self.name,
            "shot_id": plan.shot_id,
            "prompt": plan.prompt,
            "seed": plan.seed,
            "camera_move": cam.move,
            "motion": motion.kind,
            "moving_entities": sorted(k for k, v in places.items() if v.motion.kind != "still"),
            "continuity_frame": cont.path if cont else None,
            "reference_frames": ref_paths,
            "entity_colours": {
                k: {"body": s.body, "head": s.head, "legs": s.legs, "source": s.colour_source}
                for k, s in styles.items()
            },
            "notes": notes,
        }
        return Clip(frames=frames, fps=fps, metadata=metadata)

    # ----------------------------------------------------------------- helpers

    def _continuity_alpha(self, i: int, num_frames: int) -> float:
        fade = max(1, round(self.continuity_fraction * num_frames))
        return max(0.0, 1.0 - i / fade)

    @staticmethod
    def _reference_colour(entity: EntityConditioning) -> RGB | None:
        for path in entity.reference_images:
            try:
                return dominant_colour(path)
            except OSError:
                continue  # missing or unreadable reference: fall back to the hash colour
        return None

    def _world(self, location: LocationConditioning | None, width: int, height: int) -> tuple[Image.Image, list]:
        ww, wh = round(width * WORLD_MARGIN), round(height * WORLD_MARGIN)
        ox, oy = (ww - width) / 2, (wh - height) / 2
        top, ground, _ = backdrop_colours(location)
        style = backdrop_style(location) if location is not None else "none"
        horizon = oy + (0.62 if style == "interior" else 0.5) * height
        y = np.arange(wh, dtype=np.float32)[:, None, None]
        sky_t = np.clip(y / max(horizon, 1), 0, 1)
        sky = (1 - sky_t) * np.array(mix(top, (255, 255, 255), 0.3)) + sky_t * np.array(top)
        gr_t = np.clip((y - horizon) / max(wh - horizon, 1), 0, 1)
        gr = (1 - gr_t) * np.array(ground) + gr_t * np.array(scale(ground, 0.7))
        arr = np.where(y < horizon, sky, gr) * np.ones((1, ww, 1), dtype=np.float32)
        img = Image.fromarray(arr.round().astype(np.uint8))
        if location is not None:
            self._draw_landmarks(ImageDraw.Draw(img), style, location, top, ground, ww, wh, horizon, height)
        refs = reference_frame_sources(location)
        used = [r.path for r in refs[:3]]
        if used and self.reference_strength > 0:
            ref = np.zeros((wh, ww, 3), dtype=np.float32)
            for path in used:
                # The frame fills the resting view exactly; a stretched copy fills the margins.
                layer = load_rgb_array(path, (ww, wh)).astype(np.float32)
                inner = load_rgb_array(path, (width, height)).astype(np.float32)
                layer[round(oy) : round(oy) + height, round(ox) : round(ox) + width] = inner
                ref += layer / len(used)
            base = np.asarray(img, dtype=np.float32)
            blended = (1 - self.reference_strength) * base + self.reference_strength * ref
            img = Image.fromarray(blended.round().astype(np.uint8))
        return img, used

    @staticmethod
    def _draw_landmarks(draw, style, location, top, ground, ww, wh, horizon, height) -> None:
        rng = np.random.default_rng(stable_int("landmarks", location.id, location.seed))
        dark, light = scale(top, 0.6), mix(top, (255, 255, 255), 0.45)
        if style == "interior":
            draw.rectangle((0, horizon - 2, ww, horizon + 2), fill=scale(ground, 0.6))
            for _ in range(3):
                x = float(rng.uniform(0.05, 0.85)) * ww
                w, h = float(rng.uniform(0.08, 0.14)) * ww, float(rng.uniform(0.18, 0.3)) * height
                y = horizon - float(rng.uniform(0.45, 0.7)) * height
                draw.rectangle((x, y, x + w, y + h), fill=light, outline=dark, width=2)
            return
        n = int(rng.integers(5, 9))
        for k in range(n):
            x = (k + float(rng.uniform(0.1, 0.9))) * ww / n
            s = float(rng.uniform(0.6, 1.0)) * height
            if style == "trees":
                draw.rectangle((x - 0.02 * s, horizon - 0.12 * s, x + 0.02 * s, horizon + 2), fill=(90, 60, 35))
                draw.polygon(
                    [
                        (x - 0.1 * s, horizon - 0.1 * s),
                        (x + 0.1 * s, horizon - 0.1 * s),
                        (x, horizon - 0.42 * s),
                    ],
                    fill=scale(ground, 0.75),
                )
            elif style == "buildings":
                w, h = 0.22 * s, float(rng.uniform(0.25, 0.55)) * s
                draw.rectangle((x - w / 2, horizon - h, x + w / 2, horizon), fill=dark)
                for wy in np.arange(horizon - h + 0.05 * s, horizon - 0.06 * s, 0.09 * s):
                    draw.rectangle((x - w / 4, wy, x - w / 4 + 0.04 * s, wy + 0.04 * s), fill=light)
                    draw.rectangle((x + w / 4 - 0.04 * s, wy, x + w / 4, wy + 0.04 * s), fill=light)
            elif style == "mountains":
                draw.polygon([(x - 0.45 * s, horizon), (x + 0.45 * s, horizon), (x, horizon - 0.45 * s)], fill=dark)
            else:  # water: wave crests on the lower half
                y = horizon + (k + 0.5) * (wh - horizon) / n
                draw.line([(x - 0.15 * s, y), (x, y - 0.02 * s), (x + 0.15 * s, y)], fill=light, width=2)

    def _draw_entities(self, canvas, entities, styles, places, p, parallax, width, height) -> float | None:
        """Draw every entity at progress ``p``; returns the world x of the first moving one."""
        draw = ImageDraw.Draw(canvas)
        ww, wh = canvas.size
        ox, oy = (ww - width) / 2, (wh - height) / 2
        band = self._band_height(height) if self.caption else 0
        feet0 = oy + height - band - 0.05 * height
        lead: float | None = None
        for e in entities:
            pl, st = places[e.id], styles[e.id]
            dx, dy, phase = figure_offset(pl.motion, p)
            x = ox + (pl.x + pl.direction * dx + parallax) * width
            feet = feet0 + dy * height
            if lead is None and pl.motion.kind != "still":
                lead = x
            if st.shape == "object":
                h = 0.2 * height * pl.size
                draw.rectangle((x - 0.6 * h, feet - h, x + 0.6 * h, feet), fill=st.body, outline=OUTLINE)
                draw.rectangle((x - 0.6 * h, feet - 0.6 * h, x + 0.6 * h, feet - 0.4 * h), fill=st.legs)
            elif st.shape == "animal":
                self._draw_animal(draw, x, feet, 0.24 * height * pl.size, st, pl.motion, phase, pl.direction)
            else:
                self._draw_figure(draw, x, feet, 0.42 * height * pl.size, st, pl.motion, phase)
        return lead

    @staticmethod
    def _draw_animal(draw, x, feet, h, st: FigureStyle, motion: Motion, phase: float, direction: int) -> None:
        swing = 0.12 * h * math.sin(phase) if motion.steps > 0 else 0.0
        lw = max(2, round(0.1 * h))
        top, belly = feet - 0.85 * h, feet - 0.4 * h
        for k, dx in enumerate((-0.45, -0.3, 0.3, 0.45)):
            s = swing if k % 2 else -swing
            draw.line([(x + dx * h, belly), (x + dx * h + s, feet)], fill=st.legs, width=lw)
        draw.ellipse((x - 0.6 * h, top + 0.15 * h, x + 0.6 * h, belly + 0.1 * h), fill=st.body, outline=OUTLINE)
        hx = x + direction * 0.65 * h
        draw.ellipse((hx - 0.22 * h, top - 0.1 * h, hx + 0.22 * h, top + 0.3 * h), fill=st.head, outline=OUTLINE)
        tail = x - direction * 0.6 * h
        draw.line([(tail, top + 0.3 * h), (tail - direction * 0.25 * h, top)], fill=st.body, width=lw)

    @staticmethod
    def _draw_figure(draw, x, feet, h, st: FigureStyle, motion: Motion, phase: float) -> None:
        walking = motion.steps > 0 and motion.kind not in ("wave", "turn")
        swing = 0.1 * h * math.sin(phase) if walking else 0.0
        lw = max(2, round(0.09 * h))
        hip = feet - 0.36 * h
        for side in (-1, 1):
            draw.line([(x + side * 0.06 * h, hip), (x + side * (0.06 * h + swing), feet)], fill=st.legs, width=lw)
        top = feet - 0.78 * h
        draw.rounded_rectangle(
            (x - 0.16 * h, top, x + 0.16 * h, hip + 0.02 * h), radius=0.05 * h, fill=st.body, outline=OUTLINE
        )
        aw = max(2, round(0.06 * h))
        draw.line([(x - 0.16 * h, top + 0.05 * h), (x - 0.24 * h - swing, top + 0.32 * h)], fill=st.body, width=aw)
        if motion.kind == "wave":
            hand = (x + 0.3 * h, top - 0.15 * h + 0.08 * h * math.sin(phase))
        else:
            hand = (x + 0.24 * h + swing, top + 0.32 * h)
        draw.line([(x + 0.16 * h, top + 0.05 * h), hand], fill=st.body, width=aw)
        r = 0.11 * h
        cy = top - 0.95 * r
        draw.ellipse((x - r, cy - r, x + r, cy + r), fill=SKIN, outline=OUTLINE)
        draw.pieslice((x - r, cy - r, x + r, cy + r), 180, 360, fill=st.head)

    @staticmethod
    def _view(canvas: Image.Image, cam: CameraPath, i: int, lead_x: float | None, width, height) -> np.ndarray:
        ww, wh = canvas.size
        zoom = float(max(cam.zoom[i], 1.0 / WORLD_MARGIN))
        vw, vh = width / zoom, height / zoom
        cx = ww / 2 + float(cam.centre[i, 0]) * width
        cy = wh / 2 + float(cam.centre[i, 1]) * height
        if cam.follow and lead_x is not None:
            cx += lead_x - ww / 2
        cx = min(max(cx, vw / 2), ww - vw / 2)
        cy = min(max(cy, vh / 2), wh - vh / 2)
        box = (cx - vw / 2, cy - vh / 2, cx + vw / 2, cy + vh / 2)
        return np.array(canvas.resize((width, height), Image.Resampling.BILINEAR, box=box), dtype=np.uint8)

    @staticmethod
    def _band_height(height: int) -> int:
        return max(12, round(0.14 * height))

    def _caption_band(self, plan: ShotPlan, cam: CameraPath, width: int, height: int) -> np.ndarray:
        bh = self._band_height(height)
        band = Image.new("RGB", (width, bh), (16, 16, 20))
        draw = ImageDraw.Draw(band)
        font = ImageFont.load_default(size=max(8, round(bh * 0.55)))
        text = f"{plan.shot_id} | {plan.dynamic.action or plan.prompt}"
        if cam.move != "static":
            text += f" [{cam.move}]"
        draw.text(
            (4, (bh - 2) / 2),
            fit_text(draw, text, font, width - 8),
            fill=(235, 235, 235),
            font=font,
            anchor="lm",
        )
        return np.asarray(band, dtype=np.uint8)


def fit_text(draw: ImageDraw.ImageDraw, text: str, font, max_width: float) -> str:
    """``text`` cut with an ellipsis so that it fits ``max_width`` pixels."""
    if draw.textlength(text, font=font) <= max_width:
        return text
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if draw.textlength(text[:mid] + "...", font=font) <= max_width:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip() + "..."
