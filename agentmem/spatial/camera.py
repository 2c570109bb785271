"""Pinhole cameras with nerfstudio conventions: intrinsics, camera-to-world poses (OpenGL axes), projection.

A pose is a 4x4 camera-to-world matrix whose camera looks down its -z axis,
with x to the right and y up (the ``transform_matrix`` of nerfstudio's
``transforms.json``). Depth is z-depth: the distance along the viewing axis.
Pixel ``(u, v)`` has its centre at ``(u + 0.5, v + 0.5)``; ``v`` grows downwards.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from agentmem.errors import BadInputError


@dataclass(frozen=True)
class Intrinsics:
    """Focal lengths and principal point in pixels, and the image size."""

    fx: float
    fy: float
    cx: float
    cy: float
    w: int
    h: int

    @classmethod
    def from_fov(cls, fov_deg: float, w: int, h: int) -> Intrinsics:
        """A centred camera whose horizontal field of view is ``fov_deg``.

        Examples
        --------
        >>> round(Intrinsics.from_fov(90.0, 160, 120).fx, 9)
        80.0
        """
        f = 0.5 * w / math.tan(math.radians(fov_deg) / 2)
        return cls(f, f, w / 2, h / 2, w, h)

    @property
    def hfov_deg(self) -> float:
        return math.degrees(2 * math.atan(self.w / (2 * self.fx)))

    def scaled(self, w: int, h: int) -> Intrinsics:
        """The same camera at another resolution."""
        sx, sy = w / self.w, h / self.h
        return Intrinsics(self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, w, h)


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
    except (TypeError, ValueError):
        raise BadInputError(f"{where}: transform_matrix: must be a 4x4 matrix of numbers") from None
    if m.shape == (3, 4):
        m = np.vstack([m, [0.0, 0.0, 0.0, 1.0]])
    if m.shape != (4, 4):
        raise BadInputError(f"{where}: transform_matrix: must be 4x4 (or 3x4), got shape {list(m.shape)}")
    if not np.isfinite(m).all():
        raise BadInputError(f"{where}: transform_matrix: has a non-finite value")
    if not np.allclose(m[3], [0, 0, 0, 1], atol=1e-6):
        raise BadInputError(f"{where}: transform_matrix: last row must be 0 0 0 1")
    r = m[:3, :3]
    if not np.allclose(r.T @ r, np.eye(3), atol=1e-4):
        raise BadInputError(f"{where}: transform_matrix: not rigid (the rotation is not orthonormal)")
    if np.linalg.det(r) < 0:
        raise BadInputError(f"{where}: transform_matrix: not rigid (a reflection, determinant -1)")
    return m


def look_at(eye: np.ndarray | list[float], target: np.ndarray | list[float], up: tuple = (0.0, 1.0, 0.0)) -> np.ndarray:
    """Camera-to-world matrix of a camera at ``eye`` looking at ``target`` (OpenGL axes, y up).

    Examples
    --------
    >>> m = look_at([0, 0, 5], [0, 0, 0])
    >>> np.allclose(m[:3, 2], [0, 0, 1]) and np.allclose(m[:3, 3], [0, 0, 5])
    True
    """
    eye, target = np.asarray(eye, float), np.asarray(target, float)
    back = eye - target
    back /= np.linalg.norm(back)
    right = np.cross(np.asarray(up, float), back)
    if np.linalg.norm(right) < 1e-9:
        right = np.cross([0.0, 0.0, 1.0], back)
    right /= np.linalg.norm(right)
    upv = np.cross(back, right)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, upv, back, eye
    return m


def pose_from_story(x: float, y: float, z: float, yaw: float = 0.0, pitch: float = 0.0) -> np.ndarray:
    """Camera-to-world matrix of a story pose ``[x, y, z, yaw, pitch]`` (degrees), as stories and the planner use it.

    Stories put z up; yaw 0 looks down +x and turns towards +y; pitch looks up (the convention of
    :mod:`agentmem.story.views`).

    Examples
    --------
    >>> m = pose_from_story(1, 2, 3, yaw=90)
    >>> (np.round(-m[:3, 2], 6) + 0.0).tolist()   # the viewing direction
    [0.0, 1.0, 0.0]
    >>> (np.round(m[:3, 1], 6) + 0.0).tolist()    # the camera's up
    [0.0, 0.0, 1.0]
    """
    cy, sy = math.cos(math.radians(yaw)), math.sin(math.radians(yaw))
    cp, sp = math.cos(math.radians(pitch)), math.sin(math.radians(pitch))
    fwd = np.array([cp * cy, cp * sy, sp])
    right = np.array([sy, -cy, 0.0])
    up = np.cross(right, fwd)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, up, -fwd, (x, y, z)
    return m


VIEW_M_PER_RAD = 5.0
"""How many metres of camera distance one radian between viewing directions counts as, in :func:`view_distance`."""


def view_distance(positions: np.ndarray, forwards: np.ndarray, c2w: np.ndarray) -> np.ndarray:
    """How far each view (camera positions (n, 3), unit viewing directions (n, 3)) is from the view ``c2w``:
    camera distance in metres plus :data:`VIEW_M_PER_RAD` metres per radian between the viewing directions.

    Examples
    --------
    >>> m = look_at([0, 0, 0], [0, 0, -1])
    >>> view_distance(np.array([[3.0, 0, 0], [0.0, 0, 0]]), np.array([[0.0, 0, -1], [0.0, 0, 1]]), m).round(4).tolist()
    [3.0, 15.708]
    """
    cos = np.clip(np.asarray(forwards) @ -c2w[:3, 2], -1.0, 1.0)
    return np.linalg.norm(np.asarray(positions) - c2w[:3, 3], axis=1) + VIEW_M_PER_RAD * np.arccos(cos)


def pixel_rays(k: Intrinsics) -> np.ndarray:
    """(h, w, 3) camera-space directions with z = -1, one per pixel centre."""
    u, v = np.meshgrid(np.arange(k.w) + 0.5, np.arange(k.h) + 0.5)
    return np.stack([(u - k.cx) / k.fx, -(v - k.cy) / k.fy, -np.ones_like(u)], axis=-1)


def unproject(depth: np.ndarray, k: Intrinsics, c2w: np.ndarray) -> np.ndarray:
    """World points (h, w, 3) of a z-depth image; pixels with depth 0 give the camera centre (mask them out)."""
    cam = pixel_rays(k) * depth[..., None]
    return cam @ c2w[:3, :3].T + c2w[:3, 3]


def project(points: np.ndarray, k: Intrinsics, c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel coordinates (u, v) and z-depth of world ``points`` (n, 3) seen from ``c2w``.

    Points behind the camera get depth <= 0. Returns float arrays ``u``, ``v``, ``z``.

    Examples
    --------
    >>> k = Intrinsics.from_fov(90.0, 4, 4)
    >>> u, v, z = project(np.array([[0.0, 0.0, -2.0]]), k, np.eye(4))
    >>> (float(u[0]), float(v[0]), float(z[0]))
    (2.0, 2.0, 2.0)
    """
    w2c_r = c2w[:3, :3].T
    cam = (points - c2w[:3, 3]) @ w2c_r.T
    z = -cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = k.fx * cam[:, 0] / z + k.cx
        v = -k.fy * cam[:, 1] / z + k.cy
    return u, v, z
