"""Colours from appearance text, for the storyboard preview renderer.

The storyboard renderer has no learned model, so it reads colour words out of
the appearance text that memory conditioned the shot on. The table below is
the whole vocabulary; a text with none of these words gets a stable colour
from a SHA-256 of its owner's id, so the same entity or location always gets
the same colour, across processes and machines (Python's ``hash`` is salted
per process and is not used).

Colour table (RGB):

=============  ===============  =============  ===============
word           RGB              word           RGB
=============  ===============  =============  ===============
red            (205, 40, 40)    crimson        (165, 20, 50)
scarlet        (225, 35, 20)    maroon         (120, 20, 30)
orange         (240, 130, 20)   amber          (255, 180, 30)
yellow         (245, 215, 30)   gold, golden   (212, 175, 55)
green          (50, 160, 60)    olive          (110, 120, 40)
emerald        (20, 150, 90)    teal           (20, 130, 130)
cyan           (40, 200, 220)   turquoise      (60, 210, 200)
blue           (40, 80, 200)    navy           (20, 30, 100)
azure          (60, 150, 240)   indigo         (75, 30, 130)
purple         (130, 50, 170)   violet         (150, 80, 210)
lavender       (180, 160, 230)  magenta        (210, 40, 160)
pink           (240, 140, 180)  rose           (225, 90, 120)
brown          (120, 75, 40)    tan            (200, 165, 115)
beige          (225, 210, 175)  khaki          (190, 175, 120)
white          (240, 240, 240)  ivory          (250, 245, 225)
grey, gray     (128, 128, 128)  silver         (192, 195, 200)
charcoal       (55, 58, 62)     black          (25, 25, 28)
copper         (190, 100, 50)   bronze         (170, 120, 50)
=============  ===============  =============  ===============

Modifiers ``dark``/``deep`` and ``light``/``pale`` right before a colour word
scale it towards black or white by 35 %.

Scene words (used for location backdrops only, after colour words):
``night`` (15, 20, 50), ``dusk``/``sunset`` (200, 100, 60), ``dawn`` (240, 180, 140),
``forest`` (35, 90, 40), ``grass``/``meadow`` (90, 160, 60), ``sea``/``ocean``/``lake``/``river``
(30, 90, 160), ``sky`` (130, 180, 235), ``sand``/``desert``/``beach`` (220, 190, 130),
``snow``/``ice`` (235, 240, 250), ``stone``/``concrete`` (130, 130, 125), ``brick`` (150, 70, 50),
``wood``/``wooden`` (140, 95, 55), ``neon`` (230, 50, 200), ``rain`` (90, 100, 115).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

RGB = tuple[int, int, int]

COLOUR_WORDS: dict[str, RGB] = {
    "red": (205, 40, 40), "crimson": (165, 20, 50), "scarlet": (225, 35, 20), "maroon": (120, 20, 30),
    "orange": (240, 130, 20), "amber": (255, 180, 30), "yellow": (245, 215, 30), "gold": (212, 175, 55),
    "golden": (212, 175, 55), "green": (50, 160, 60), "olive": (110, 120, 40), "emerald": (20, 150, 90),
    "teal": (20, 130, 130), "cyan": (40, 200, 220), "turquoise": (60, 210, 200), "blue": (40, 80, 200),
    "navy": (20, 30, 100), "azure": (60, 150, 240), "indigo": (75, 30, 130), "purple": (130, 50, 170),
    "violet": (150, 80, 210), "lavender": (180, 160, 230), "magenta": (210, 40, 160),
    "pink": (240, 140, 180), "rose": (225, 90, 120), "brown": (120, 75, 40), "tan": (200, 165, 115),
    "beige": (225, 210, 175), "khaki": (190, 175, 120), "white": (240, 240, 240),
    "ivory": (250, 245, 225), "grey": (128, 128, 128), "gray": (128, 128, 128),
    "silver": (192, 195, 200), "charcoal": (55, 58, 62), "black": (25, 25, 28),
    "copper": (190, 100, 50), "bronze": (170, 120, 50),
}  # fmt: skip

SCENE_WORDS: dict[str, RGB] = {
    "night": (15, 20, 50), "dusk": (200, 100, 60), "sunset": (200, 100, 60), "dawn": (240, 180, 140),
    "forest": (35, 90, 40), "grass": (90, 160, 60), "meadow": (90, 160, 60), "sea": (30, 90, 160),
    "ocean": (30, 90, 160), "lake": (30, 90, 160), "river": (30, 90, 160), "sky": (130, 180, 235),
    "sand": (220, 190, 130), "desert": (220, 190, 130), "beach": (220, 190, 130),
    "snow": (235, 240, 250), "ice": (235, 240, 250), "stone": (130, 130, 125),
    "concrete": (130, 130, 125), "brick": (150, 70, 50), "wood": (140, 95, 55),
    "wooden": (140, 95, 55), "neon": (230, 50, 200), "rain": (90, 100, 115),
}  # fmt: skip

_DARKER = {"dark", "deep"}
_LIGHTER = {"light", "pale"}

# Which part of a figure a colour belongs to, by the noun that follows it.
PART_NOUNS: dict[str, str] = {
    **dict.fromkeys(("hair", "beard", "hat", "cap", "hood", "helmet", "scarf", "mane", "head"), "head"),
    **dict.fromkeys(
        ("boots", "boot", "shoes", "shoe", "trousers", "pants", "jeans", "skirt", "legs", "socks",
         "shorts", "paws", "feet", "sneakers"),
        "legs",
    ),
}  # fmt: skip

_WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True)
class ColourMention:
    """One colour word found in a text, with the part of a figure it describes."""

    word: str
    rgb: RGB
    part: str  # "head", "legs" or "body"


def scale(rgb: RGB, factor: float) -> RGB:
    """Darken (``factor`` < 1) or lighten (``factor`` > 1, towards white) a colour."""
    if factor <= 1.0:
        return tuple(int(round(c * factor)) for c in rgb)  # type: ignore[return-value]
    t = min(1.0, factor - 1.0)
    return tuple(int(round(c + (255 - c) * t)) for c in rgb)  # type: ignore[return-value]


def mix(a: RGB, b: RGB, t: float) -> RGB:
    """Linear mix: ``t`` = 0 gives ``a``, 1 gives ``b``."""
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def stable_int(*parts: object) -> int:
    """A 64-bit integer that depends only on ``parts`` (SHA-256, stable across runs)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def stable_colour(*parts: object) -> RGB:
    """A saturated, mid-bright colour that depends only on ``parts``."""
    h = stable_int("colour", *parts)
    hue = (h % 360) / 360.0
    # HSV with s=0.6, v=0.75 keeps hashed colours clearly coloured and never near-black.
    i, f = int(hue * 6), hue * 6 - int(hue * 6)
    v, s = 0.75, 0.6
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    r, g, b = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i % 6]
    return (int(r * 255), int(g * 255), int(b * 255))


def colour_mentions(text: str, *, scene_words: bool = False) -> list[ColourMention]:
    """Colour words of ``text`` in order, each tagged with the figure part it describes.

    Parameters
    ----------
    text : str
        Appearance text, e.g. ``"a girl in a red raincoat with silver hair"``.
    scene_words : bool
        Also accept :data:`SCENE_WORDS` (for location backdrops).

    Examples
    --------
    >>> [(m.word, m.part) for m in colour_mentions("red raincoat and silver hair")]
    [('red', 'body'), ('silver', 'head')]
    """
    words = _WORD.findall(text.lower())
    found: list[ColourMention] = []
    for i, w in enumerate(words):
        rgb = COLOUR_WORDS.get(w) or (SCENE_WORDS.get(w) if scene_words else None)
        if rgb is None:
            continue
        prev = words[i - 1] if i else ""
        if prev in _DARKER:
            rgb = scale(rgb, 0.65)
        elif prev in _LIGHTER:
            rgb = scale(rgb, 1.35)
        # The part is named by the next noun within two words: "red rain coat", "silver hair".
        part = next((PART_NOUNS[n] for n in words[i + 1 : i + 3] if n in PART_NOUNS), "body")
        found.append(ColourMention(w, rgb, part))
    if scene_words:
        # Real colour words describe the place more precisely than scene words; list them first.
        found.sort(key=lambda m: m.word not in COLOUR_WORDS)
    return found
