"""What the storyboard back end draws for a plan: figure and backdrop styles, and where each entity stands.

Pure functions of the plan's conditioning (appearance words, ids, seeds, the action), so the same plan always
gives the same styles and layout. :mod:`generators.storyboard` draws them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .conditioning import EntityConditioning, LocationConditioning
from .motion import MOTIONS, Motion, direction_hint
from .palette import RGB, colour_mentions, scale, stable_colour, stable_int
from .references import load_rgb

OBJECT_KINDS = frozenset({"object", "prop", "item", "thing", "artifact", "artefact", "vehicle", "building"})
ANIMAL_KINDS = frozenset({"animal", "creature", "pet", "dog", "cat", "horse", "bird", "beast"})
SKIN: RGB = (226, 188, 158)
OUTLINE: RGB = (20, 20, 24)
# The world canvas is larger than the frame so that pans and zoom-outs have something to show.
WORLD_MARGIN = 1.5
_BACKDROP_STYLES = ("trees", "buildings", "mountains", "water", "interior")
_STYLE_WORDS = {
    "trees": ("forest", "tree", "trees", "woods", "park", "garden", "jungle", "orchard"),
    "buildings": ("city", "street", "building", "buildings", "town", "alley", "station", "market", "rooftop"),
    "mountains": ("mountain", "mountains", "hill", "hills", "cliff", "valley", "canyon"),
    "water": ("sea", "ocean", "lake", "beach", "river", "harbor", "harbour", "shore", "pier"),
    "interior": (
        "room",
        "kitchen",
        "house",
        "interior",
        "bedroom",
        "hall",
        "library",
        "cafe",
        "bar",
        "shop",
        "classroom",
        "office",
        "corridor",
        "apartment",
        "lab",
        "laboratory",
        "studio",
    ),
}
_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class FigureStyle:
    """Colours and shape of one entity in the preview.

    Attributes
    ----------
    entity_id : str
        The entity drawn.
    shape : str
        ``"figure"`` (characters), ``"animal"`` (a quadruped) or ``"object"`` (a box).
    body, head, legs : RGB
        Fill colours; ``head`` is hair or hat, ``body`` the main garment.
    colour_source : str
        ``"appearance"``, ``"reference_image"`` or ``"hash"``.
    """

    entity_id: str
    shape: str
    body: RGB
    head: RGB
    legs: RGB
    colour_source: str


@dataclass(frozen=True)
class Placement:
    """Where an entity is and how it moves: ``x`` is the start position as a fraction of the width."""

    x: float
    size: float
    direction: int
    motion: Motion


def entity_style(entity: EntityConditioning, reference_colour: RGB | None = None) -> FigureStyle:
    """Colours of an entity from the colour words of its appearance.

    Falls back to the dominant colour of its reference image, then to a hash of its id.
    """
    mentions = colour_mentions(entity.appearance)
    kind = entity.kind.strip().lower()
    shape = "object" if kind in OBJECT_KINDS else "animal" if kind in ANIMAL_KINDS else "figure"
    body_m = [m.rgb for m in mentions if m.part == "body"]
    head_m = [m.rgb for m in mentions if m.part == "head"]
    legs_m = [m.rgb for m in mentions if m.part == "legs"]
    if mentions:
        body, source = (body_m or [mentions[0].rgb])[0], "appearance"
    elif reference_colour is not None:
        body, source = reference_colour, "reference_image"
    else:
        body, source = stable_colour(entity.id, entity.seed), "hash"
    head = head_m[0] if head_m else scale(stable_colour("hair", entity.id), 0.45)
    legs = legs_m[0] if legs_m else (body_m[1] if len(body_m) > 1 else scale(body, 0.5))
    return FigureStyle(entity.id, shape, body, head, legs, source)


def dominant_colour(path: str) -> RGB:
    """Median colour of an image, robust to a small subject on a large background."""
    arr = np.asarray(load_rgb(path, (16, 16)), dtype=np.uint8).reshape(-1, 3)
    return tuple(int(c) for c in np.median(arr, axis=0))  # type: ignore[return-value]


def backdrop_style(location: LocationConditioning) -> str:
    """Landmark style of a location from its words, else a stable choice from its id."""
    words = set(_WORD.findall(f"{location.name} {location.appearance}".lower()))
    for style, keys in _STYLE_WORDS.items():
        if words.intersection(keys):
            return style
    return _BACKDROP_STYLES[stable_int("style", location.id) % len(_BACKDROP_STYLES)]


def backdrop_colours(location: LocationConditioning | None) -> tuple[RGB, RGB, str]:
    """(sky or wall, ground or floor, source) of a location."""
    if location is None:
        return (96, 98, 110), (62, 62, 68), "none"
    mentions = colour_mentions(location.appearance, scene_words=True)
    if mentions:
        top = mentions[0].rgb
        ground = mentions[1].rgb if len(mentions) > 1 else scale(top, 0.55)
        return top, ground, "appearance"
    top = stable_colour(location.id, location.seed)
    return top, scale(top, 0.55), "hash"


def _is_named(entity: EntityConditioning, action_words: set[str]) -> bool:
    names = {w for w in _WORD.findall(entity.name.lower()) if len(w) >= 3}
    return bool(names & action_words) or entity.id.lower() in action_words


def layout(entities: list[EntityConditioning], action: str, motion: Motion) -> dict[str, Placement]:
    """Stable positions of the entities, and which of them the action moves.

    Each entity prefers a position hashed from its id and seed, so it stands in
    the same place whenever it appears; crowded entities are pushed apart.
    Entities named in the action move; if none is named, all figures move.
    """
    if not entities:
        return {}
    pref = {e.id: 0.15 + 0.7 * (stable_int("x", e.id, e.seed) % 1000) / 999 for e in entities}
    order = sorted(entities, key=lambda e: (pref[e.id], e.id))
    gap = min(0.2, 0.8 / len(order))
    xs: list[float] = []
    for e in order:
        xs.append(pref[e.id] if not xs else max(pref[e.id], xs[-1] + gap))
    if xs[-1] > 0.9:
        lo, hi = min(xs[0], 0.1), xs[-1]
        xs = [0.1 + (x - lo) * 0.8 / max(hi - lo, 1e-6) for x in xs]
    action_words = set(_WORD.findall(action.lower()))
    named = {e.id for e in entities if _is_named(e, action_words)}
    if not named:
        named = {e.id for e in entities if e.kind.strip().lower() not in OBJECT_KINDS} or {e.id for e in entities}
    hint = direction_hint(action)
    out: dict[str, Placement] = {}
    for e, x in zip(order, xs, strict=True):
        m = motion if e.id in named else MOTIONS["still"]
        d = hint or (-1 if x > 0.5 else 1)
        # Start far enough from the edge that the whole path stays in frame.
        x = min(x, 0.9 - m.travel_x) if d > 0 else max(x, 0.1 + m.travel_x)
        size = 0.9 + 0.2 * (stable_int("size", e.id, e.seed) % 100) / 99
        out[e.id] = Placement(float(np.clip(x, 0.1, 0.9)), size, d, m)
    return out
