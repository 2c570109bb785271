"""Cameras as the spatial memory takes them in: validated poses, intrinsics, fields of view and image sizes.

Every check names where the value came from and the field, in one line. The geometry itself (conventions, poses,
projection) is :mod:`agentmem.geometry`'s; the names the spatial layer's callers use with these checks
(``Intrinsics``, ``look_at``, ``pose_from_story``, ``project``, ``unproject``, ``view_distance``) are re-exported
here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from agentmem.errors import BadInputError
from agentmem.geometry import Intrinsics, look_at, pose_from_story, project, unproject, view_distance

__all__ = [
    "CENTRE_RANGE",
    "FOCAL_RANGE",
    "FOV_RANGE",
    "INTRINSIC_NAMES",
    "MAX_PIXELS",
    "MAX_SIDE",
    "MAX_TRANSLATION_M",
    "Intrinsics",
    "check_fov",
    "check_intrinsics",
    "check_pose",
    "check_size",
    "look_at",
    "pose_from_story",
    "project",
    "unproject",
    "view_distance",
]

MAX_TRANSLATION_M = 1e7
"""The largest camera coordinate accepted, in metres: Earth-centred (ECEF) coordinates reach 6.4e6 m, so anything
beyond is a unit mistake or garbage."""
MAX_SIDE = 8192
"""The largest image width or height accepted, in pixels."""
MAX_PIXELS = 4096 * 4096
"""The most pixels an image (a frame or a view) may have: 4K (3840x2160) fits, 8K does not; a render allocates
tens of bytes per pixel of the view and of each source."""
FOCAL_RANGE = (1e-3, 1e4)
"""Focal lengths allowed, as multiples of the image's longer side (a field of view of about 179.8 to 0.006 degrees)."""
CENTRE_RANGE = 10.0
"""How far the principal point may lie from the image's origin: ``|cx| <= 10 w`` and ``|cy| <= 10 h``."""
FOV_RANGE = (0.01, 179.5)
"""Horizontal fields of view allowed, in degrees (inside the focal range)."""


def check_pose(matrix: object, where: str) -> np.ndarray:
    """A validated 4x4 camera-to-world matrix: finite, rigid (orthonormal rotation, det +1), last row 0 0 0 1.

    Examples
    --------
    >>> check_pose(np.eye(4).tolist(), "frame 1").shape
    (4, 4)
    >>> check_pose([[2, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], "frame 2")
    Traceback (most recent call last):
    ...
    agentmem.errors.BadInputError: frame 2: transform_matrix: not rigid (the rotation is not orthonormal)
    """
    try:
        m = np.asarray(matrix, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise BadInputError(f"{where}: transform_matrix: must be a 4x4 matrix of numbers") from None
    if m.shape not in ((3, 4), (4, 4)):
        raise BadInputError(f"{where}: transform_matrix: must be 4x4 (or 3x4), got shape {list(m.shape)}")
    # numpy turns JSON true/false and numeric text into numbers; a pose of those is a mistake, not a pose.
    if not _all_numbers(matrix):
        raise BadInputError(f"{where}: transform_matrix: entries must be numbers, not true/false or text")
    if m.shape == (3, 4):
        m = np.vstack([m, [0.0, 0.0, 0.0, 1.0]])
    if not np.isfinite(m).all():
        raise BadInputError(f"{where}: transform_matrix: has a non-finite value")
    if np.abs(m[:3, 3]).max() > MAX_TRANSLATION_M:
        raise BadInputError(
            f"{where}: transform_matrix: translation {m[:3, 3].tolist()} is beyond ±{MAX_TRANSLATION_M:g} m "
            "(Earth-centred coordinates stay within 6.4e6 m: wrong unit?)"
        )
    if not np.allclose(m[3], [0, 0, 0, 1], atol=1e-6):
        raise BadInputError(f"{where}: transform_matrix: last row must be 0 0 0 1")
    r = m[:3, :3]
    if not np.allclose(r.T @ r, np.eye(3), atol=1e-4):
        raise BadInputError(f"{where}: transform_matrix: not rigid (the rotation is not orthonormal)")
    if np.linalg.det(r) < 0:
        raise BadInputError(f"{where}: transform_matrix: not rigid (a reflection, determinant -1)")
    return m


def _finite(v: object) -> float | None:
    """``v`` as a float if it is a finite real number (a JSON number, a numpy integer or float; never a boolean)."""
    if not isinstance(v, (int, float, np.integer, np.floating)) or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except OverflowError:  # a JSON integer of 400 digits
        return None
    return f if math.isfinite(f) else None


def _all_numbers(matrix: object) -> bool:
    """Whether every entry of a (validly shaped) matrix is a number, finite or not; an array's dtype says it."""
    if isinstance(matrix, np.ndarray):
        return matrix.dtype.kind in "iuf"
    if isinstance(matrix, (list, tuple)):
        return all(_all_numbers(row) for row in matrix)
    return isinstance(matrix, (int, float, np.integer, np.floating)) and not isinstance(matrix, bool)


def check_size(w: object, h: object, where: str, names: Sequence[str] = ("w", "h")) -> tuple[int, int]:
    """An image size: whole numbers of pixels (``160`` or ``160.0``, never ``160.7``), each at most
    :data:`MAX_SIDE`, at most :data:`MAX_PIXELS` in all; ``names`` are the fields as the input calls them.

    Examples
    --------
    >>> check_size(160.0, 120, "view a")
    (160, 120)
    >>> check_size(100000, 100000, "view a")
    Traceback (most recent call last):
    ...
    agentmem.errors.BadInputError: view a: w: must be 1 to 8192 pixels, got 100000
    """
    out = []
    for v, name in zip((w, h), names, strict=True):
        f = _finite(v)
        if f is None or not f.is_integer():
            raise BadInputError(f"{where}: {name}: must be a whole number of pixels, got {v!r}")
        if not 1 <= f <= MAX_SIDE:
            raise BadInputError(f"{where}: {name}: must be 1 to {MAX_SIDE} pixels, got {v!r}")
        out.append(int(f))
    if out[0] * out[1] > MAX_PIXELS:
        raise BadInputError(f"{where}: {names[0]}: {out[0]}x{out[1]} is {out[0] * out[1]:,} pixels, more than "
                            f"the {MAX_PIXELS:,} allowed")  # fmt: skip
    return out[0], out[1]


def _check_focal(f: float, name: str, where: str, w: int, h: int) -> None:
    lo, hi = (r * max(w, h) for r in FOCAL_RANGE)
    if not lo <= f <= hi:
        raise BadInputError(f"{where}: {name}: focal length {f:.6g} px is outside [{lo:g}, {hi:g}] "
                            f"({FOCAL_RANGE[0]:g} to {FOCAL_RANGE[1]:g} times the image's longer side)")  # fmt: skip


INTRINSIC_NAMES = ("fl_x", "fl_y", "cx", "cy", "w", "h")


def check_intrinsics(fx: object, fy: object, cx: object, cy: object, w: object, h: object, where: str, *,
                     names: Sequence[str] = INTRINSIC_NAMES) -> Intrinsics:  # fmt: skip
    """Validated intrinsics from input values: the size as :func:`check_size` says, finite focal lengths within
    :data:`FOCAL_RANGE` times the longer side, the principal point within :data:`CENTRE_RANGE` image widths
    (heights) of the origin. Every problem is one line naming ``where`` and the field (``names``).

    Examples
    --------
    >>> check_intrinsics(80, 80, 80, 60, 160, 120, "frame 'a.png'").fx
    80.0
    >>> check_intrinsics(80, 80, -1e9, 60, 160, 120, "frame 'a.png'")
    Traceback (most recent call last):
    ...
    agentmem.errors.BadInputError: frame 'a.png': cx: must lie within ±1600 px (10 times the image's size), got -1e+09
    """
    width, height = check_size(w, h, where, names[4:])
    vals = []
    for v, name in zip((fx, fy, cx, cy), names[:4], strict=True):
        f = _finite(v)
        if f is None:
            raise BadInputError(f"{where}: {name}: must be a finite number, got {v!r}")
        vals.append(f)
    _check_focal(vals[0], names[0], where, width, height)
    _check_focal(vals[1], names[1], where, width, height)
    for c, side, name in ((vals[2], width, names[2]), (vals[3], height, names[3])):
        if abs(c) > CENTRE_RANGE * side:
            raise BadInputError(f"{where}: {name}: must lie within ±{CENTRE_RANGE * side:g} px ({CENTRE_RANGE:g} "
                                f"times the image's size), got {c:g}")  # fmt: skip
    return Intrinsics(vals[0], vals[1], vals[2], vals[3], width, height)


def check_fov(fov: object, w: object, h: object, where: str, *, names: Sequence[str] = ("fov", "w", "h")
              ) -> Intrinsics:  # fmt: skip
    """A centred camera from a horizontal field of view in degrees (:data:`FOV_RANGE`) and an image size
    (:func:`check_size`); ``names`` are the fields as the input calls them.

    Examples
    --------
    >>> round(check_fov(90, 160, 120, "camera").fx, 9)
    80.0
    >>> check_fov(180, 160, 120, "camera")
    Traceback (most recent call last):
    ...
    agentmem.errors.BadInputError: camera: fov: must be a horizontal field of view in [0.01, 179.5] degrees, got 180
    """
    f = _finite(fov)
    if f is None or not FOV_RANGE[0] <= f <= FOV_RANGE[1]:
        raise BadInputError(f"{where}: {names[0]}: must be a horizontal field of view in [{FOV_RANGE[0]:g}, "
                            f"{FOV_RANGE[1]:g}] degrees, got {fov!r}")  # fmt: skip
    k = Intrinsics.from_fov(f, *check_size(w, h, where, names[1:]))
    _check_focal(k.fx, names[0], where, k.w, k.h)  # a wide view on a tall image still needs a sane focal length
    return k
