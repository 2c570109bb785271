"""Motion and camera vocabulary shared by the back ends.

Everything here is a small, documented vocabulary, not a model: action verbs
map to :data:`MOTIONS`, camera move names to :data:`CAMERA_MOVES`. Unknown
words fall back to no motion and a static camera, and the renderer records
that in the clip metadata so a preview never silently pretends to follow a
move it did not understand.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from .conditioning import CameraConditioning


@dataclass(frozen=True)
class Motion:
    """How a figure moves over one shot, in fractions of the frame.

    Attributes
    ----------
    kind : str
        Canonical verb, e.g. ``"walk"``.
    travel_x : float
        Horizontal distance covered over the shot (fraction of frame width).
    travel_y : float
        Vertical distance (fraction of frame height; negative is up).
    bob : float
        Amplitude of the periodic up-and-down of steps (fraction of height).
    hop : float
        Height of one parabolic jump over the shot (fraction of height).
    sway : float
        Amplitude of side-to-side swaying (fraction of width).
    steps : float
        Gait cycles over the shot; drives leg swing and bob.
    """

    kind: str
    travel_x: float = 0.0
    travel_y: float = 0.0
    bob: float = 0.0
    hop: float = 0.0
    sway: float = 0.0
    steps: float = 0.0


MOTIONS: dict[str, Motion] = {
    "still": Motion("still"),
    "walk": Motion("walk", travel_x=0.25, bob=0.012, steps=3),
    "run": Motion("run", travel_x=0.5, bob=0.03, steps=6),
    "climb": Motion("climb", travel_y=-0.3, bob=0.01, steps=3),
    "jump": Motion("jump", hop=0.2),
    "fall": Motion("fall", travel_y=0.2),
    "fly": Motion("fly", travel_x=0.4, travel_y=-0.25),
    "swim": Motion("swim", travel_x=0.3, bob=0.02, steps=2),
    "drive": Motion("drive", travel_x=0.6),
    "dance": Motion("dance", sway=0.06, bob=0.02, steps=4),
    "fight": Motion("fight", sway=0.04, steps=5),
    "wave": Motion("wave", steps=3),
    "sit": Motion("sit", travel_y=0.06),
    "turn": Motion("turn", sway=0.02, steps=1),
}

# Surface forms of each verb; explicit lists beat stemming for a vocabulary this small.
_VERB_FORMS: dict[str, tuple[str, ...]] = {
    "walk": ("walk", "walks", "walking", "walked", "stroll", "strolls", "strolling", "wander", "wanders",
             "wandering", "steps", "approaches", "approaching", "enters", "entering", "leaves", "leaving",
             "crosses", "crossing", "follows", "following"),
    "run": ("run", "runs", "running", "ran", "sprint", "sprints", "sprinting", "dash", "dashes", "dashing",
            "rush", "rushes", "rushing", "chase", "chases", "chasing", "flee", "flees", "fleeing"),
    "climb": ("climb", "climbs", "climbing", "climbed", "ascend", "ascends", "ascending", "scale", "scales"),
    "jump": ("jump", "jumps", "jumping", "jumped", "leap", "leaps", "leaping", "hop", "hops", "hopping"),
    "fall": ("fall", "falls", "falling", "fell", "trip", "trips", "tripping", "collapse", "collapses"),
    "fly": ("fly", "flies", "flying", "flew", "soar", "soars", "soaring", "glide", "glides"),
    "swim": ("swim", "swims", "swimming", "swam"),
    "drive": ("drive", "drives", "driving", "drove", "ride", "rides", "riding", "rode"),
    "dance": ("dance", "dances", "dancing", "danced", "spin", "spins", "spinning"),
    "fight": ("fight", "fights", "fighting", "fought", "punch", "punches", "struggle", "struggles"),
    "wave": ("wave", "waves", "waving", "waved", "gesture", "gestures", "points", "pointing"),
    "sit": ("sit", "sits", "sitting", "sat", "kneel", "kneels", "kneeling", "crouch", "crouches"),
    "turn": ("turn", "turns", "turning", "turned", "looks", "glances", "glancing"),
}  # fmt: skip
_FORM_TO_VERB = {form: verb for verb, forms in _VERB_FORMS.items() for form in forms}

# Camera moves: canonical name -> (dx, dy, zoom_end, parallax, follow, shake) over the shot.
# dx/dy move the view centre in fractions of the frame; zoom_end multiplies the zoom at the end;
# parallax shifts the figures against the backdrop (orbit); follow tracks the first moving figure.
CAMERA_MOVES: dict[str, tuple[float, float, float, float, bool, float]] = {
    "static": (0.0, 0.0, 1.0, 0.0, False, 0.0),
    "dolly-in": (0.0, 0.0, 1.45, 0.0, False, 0.0),
    "dolly-out": (0.0, 0.0, 0.7, 0.0, False, 0.0),
    "zoom-in": (0.0, 0.0, 1.6, 0.0, False, 0.0),
    "zoom-out": (0.0, 0.0, 0.68, 0.0, False, 0.0),
    "pan-left": (-0.22, 0.0, 1.0, 0.0, False, 0.0),
    "pan-right": (0.22, 0.0, 1.0, 0.0, False, 0.0),
    "truck-left": (-0.22, 0.0, 1.0, 0.06, False, 0.0),
    "truck-right": (0.22, 0.0, 1.0, -0.06, False, 0.0),
    "tilt-up": (0.0, -0.22, 1.0, 0.0, False, 0.0),
    "tilt-down": (0.0, 0.22, 1.0, 0.0, False, 0.0),
    "crane-up": (0.0, -0.2, 0.85, 0.0, False, 0.0),
    "crane-down": (0.0, 0.2, 1.15, 0.0, False, 0.0),
    "orbit": (0.15, 0.0, 1.1, -0.12, False, 0.0),
    "orbit-left": (-0.15, 0.0, 1.1, 0.12, False, 0.0),
    "orbit-right": (0.15, 0.0, 1.1, -0.12, False, 0.0),
    "tracking": (0.0, 0.0, 1.1, 0.0, True, 0.0),
    "handheld": (0.0, 0.0, 1.05, 0.0, False, 0.012),
}
_CAMERA_ALIASES = {
    "push-in": "dolly-in", "dolly": "dolly-in", "pull-out": "dolly-out", "pull-back": "dolly-out",
    "track": "tracking", "follow": "tracking", "follow-shot": "tracking", "arc": "orbit",
    "orbit-around": "orbit", "truck": "truck-right", "pan": "pan-right", "tilt": "tilt-up",
    "crane": "crane-up", "shake": "handheld", "hold": "static", "locked": "static", "none": "static",
    "still": "static", "": "static",
}  # fmt: skip

_WORD = re.compile(r"[a-z]+")


def motion_for(motion: str, action: str) -> Motion:
    """The motion a shot asks for: ``motion`` if it names a known verb, else the first verb of ``action``."""
    key = motion.strip().lower()
    key = _FORM_TO_VERB.get(key, key)
    if key in MOTIONS and key != "still":
        return MOTIONS[key]
    for word in _WORD.findall(action.lower()):
        if word in _FORM_TO_VERB:
            return MOTIONS[_FORM_TO_VERB[word]]
    return MOTIONS["still"]


def direction_hint(action: str) -> int:
    """+1 if the action says "right", -1 if "left", 0 if neither."""
    words = set(_WORD.findall(action.lower()))
    if "left" in words and "right" not in words:
        return -1
    if "right" in words and "left" not in words:
        return 1
    return 0


def normalise_camera_move(move: str) -> tuple[str, bool]:
    """Canonical camera move name and whether it was recognised (unknown moves become ``"static"``)."""
    key = re.sub(r"[\s_]+", "-", move.strip().lower())
    key = _CAMERA_ALIASES.get(key, key)
    if key in CAMERA_MOVES:
        return key, True
    return "static", False


def figure_offset(m: Motion, p: float) -> tuple[float, float, float]:
    """Offset (dx, dy) of a figure at progress ``p`` in [0, 1] and its gait phase in radians."""
    phase = 2 * math.pi * m.steps * p
    dx = m.travel_x * p + m.sway * math.sin(phase)
    dy = m.travel_y * p - m.bob * abs(math.sin(phase)) - m.hop * 4 * p * (1 - p)
    return dx, dy, phase


@dataclass(frozen=True)
class CameraPath:
    """Per-frame view of the world canvas.

    Attributes
    ----------
    move : str
        Canonical move name.
    recognised : bool
        False if the plan's move was unknown and ``"static"`` was used instead.
    centre : np.ndarray
        (T, 2) view centre offsets from the resting view, in fractions of the frame.
    zoom : np.ndarray
        (T,) zoom factor; 1 shows exactly one frame of the world.
    parallax : np.ndarray
        (T,) horizontal shift of figures against the backdrop, in fractions of the frame.
    follow : bool
        The view centre also tracks the first moving figure.
    """

    move: str
    recognised: bool
    centre: np.ndarray
    zoom: np.ndarray
    parallax: np.ndarray
    follow: bool


def camera_path(camera: CameraConditioning, num_frames: int, seed: int) -> CameraPath:
    """Turn a camera conditioning into per-frame view parameters.

    ``pose`` yaw/pitch offset the resting view (90 degrees of yaw = 20 % of the
    frame) and ``fov`` sets the resting zoom (60 degrees = 1); a move then
    animates from that resting view with a smooth ease-in-out.
    """
    move, recognised = normalise_camera_move(camera.move)
    dx, dy, zoom_end, parallax, follow, shake = CAMERA_MOVES[move]
    p = np.linspace(0.0, 1.0, num_frames) if num_frames > 1 else np.zeros(1)
    ease = 0.5 - 0.5 * np.cos(np.pi * p)
    base_x = base_y = 0.0
    if camera.pose is not None:
        _, _, _, yaw, pitch = camera.pose
        base_x = float(np.clip(yaw / 90.0, -1, 1)) * 0.2
        base_y = float(np.clip(-pitch / 90.0, -1, 1)) * 0.2
    base_zoom = float(np.clip(60.0 / max(camera.fov, 1.0), 0.7, 1.5))
    centre = np.stack([base_x + dx * ease, base_y + dy * ease], axis=1)
    if shake:
        rng = np.random.default_rng(seed)
        centre = centre + rng.normal(0.0, shake, size=centre.shape)
    zoom = base_zoom * (1.0 + (zoom_end - 1.0) * ease)
    return CameraPath(move, recognised, centre, zoom, parallax * ease, follow)


# Stable Video Diffusion's motion_bucket_id (1..255, 127 = the model's training median) per motion
# kind, plus a bonus per camera move: more motion in the plan asks the model for more motion.
MOTION_BUCKETS: dict[str, int] = {
    "still": 40, "turn": 70, "wave": 70, "sit": 70, "walk": 127, "swim": 127, "dance": 127,
    "fight": 127, "climb": 127, "jump": 160, "fall": 160, "fly": 160, "run": 190, "drive": 190,
}  # fmt: skip
CAMERA_BUCKET_BONUS: dict[str, int] = {
    "static": 0,
    "handheld": 25,
    "orbit": 30,
    "orbit-left": 30,
    "orbit-right": 30,
}
DEFAULT_CAMERA_BONUS = 15


def motion_bucket_id(motion: str, action: str, camera_move: str) -> int:
    """SVD ``motion_bucket_id`` for a shot: :data:`MOTION_BUCKETS` of its motion plus the camera bonus.

    Examples
    --------
    >>> motion_bucket_id("still", "", "static"), motion_bucket_id("run", "", "pan-left")
    (40, 205)
    """
    base = MOTION_BUCKETS[motion_for(motion, action).kind]
    move, _ = normalise_camera_move(camera_move)
    return int(min(255, max(1, base + CAMERA_BUCKET_BONUS.get(move, DEFAULT_CAMERA_BONUS))))
