"""Which images of a plan a back end may condition on, and loading them.

Memory hands images over as paths. A path may be missing (the store may keep
a frame reference whose file was cleaned up), so every helper here skips
paths that do not exist instead of failing: a missing reference weakens
conditioning, it must not stop a shot from being drawn.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .conditioning import LocationConditioning, ShotPlan


@dataclass(frozen=True)
class ImageSource:
    """An image chosen for conditioning and the reason it was chosen.

    Attributes
    ----------
    path : str
        Existing file.
    role : str
        ``"continuity"`` (last frame of the previous shot), ``"location_reference"``
        or ``"entity_reference"``.
    owner : str
        Shot id, location id or entity id the image belongs to.
    """

    path: str
    role: str
    owner: str


def existing(path: str | None) -> str | None:
    """``path`` if it names an existing file, else ``None``."""
    return path if path and os.path.isfile(path) else None


def continuity_source(plan: ShotPlan) -> ImageSource | None:
    """The frame this shot must continue from, if the plan gives one that exists."""
    ref = plan.dynamic.continue_from
    if ref is not None and ref.path is not None and existing(ref.path):
        return ImageSource(ref.path, "continuity", ref.shot_id)
    return None


def location_reference_sources(plan: ShotPlan) -> list[ImageSource]:
    """Existing frames of the shot's location that earlier shots showed, in plan order."""
    return reference_frame_sources(plan.static.location)


def reference_frame_sources(location: LocationConditioning | None) -> list[ImageSource]:
    """Existing reference frames of ``location`` (none if ``location`` is ``None``)."""
    if location is None:
        return []
    return [ImageSource(f.path, "location_reference", location.id) for f in location.reference_frames
            if f.path is not None and existing(f.path)]  # fmt: skip


def entity_reference_sources(plan: ShotPlan) -> list[ImageSource]:
    """Existing reference images of the visible entities, entity by entity in plan order."""
    return [
        ImageSource(p, "entity_reference", e.id)
        for e in plan.static.entities
        for p in e.reference_images
        if existing(p)
    ]


def first_frame_source(plan: ShotPlan) -> ImageSource | None:
    """The image an image-to-video model should start from.

    Priority: continuity frame, then the first location reference frame, then
    the first entity reference image. Continuity wins because a cut that
    continues an action must start where the previous shot ended.
    """
    cont = continuity_source(plan)
    if cont is not None:
        return cont
    for sources in (location_reference_sources(plan), entity_reference_sources(plan)):
        if sources:
            return sources[0]
    return None


def load_rgb(path: str, size: tuple[int, int] | None = None) -> Image.Image:
    """Open ``path`` as RGB, resized to ``size`` = (width, height) if given."""
    with Image.open(path) as im:
        img = im.convert("RGB")
    if size is not None and img.size != size:
        img = img.resize(size, Image.Resampling.BICUBIC)
    return img


def load_rgb_array(path: str, size: tuple[int, int]) -> np.ndarray:
    """Open ``path`` as a uint8 array of shape (height, width, 3)."""
    return np.asarray(load_rgb(path, size), dtype=np.uint8)
