"""Cameras and their conventions, in one place: poses, batched cameras, pixel grids, projection and unprojection.

**Poses** are 4x4 camera-to-world matrices with OpenGL axes, as nerfstudio's ``transforms.json`` has them: the
camera looks down its -z axis, x to the right and y up. Other conventions convert here, and nowhere else:

- OpenCV (COLMAP, most datasets): the camera looks down +z, y down (:func:`opencv_to_opengl`,
  :func:`opengl_to_opencv`);
- story poses ``[x, y, z, yaw, pitch]`` in degrees, z up, yaw 0 looking down +x and turning towards +y, pitch up
  (:func:`pose_from_story`, :func:`story_from_pose`).

**Pixels**: pixel ``(u, v)`` has its centre at ``(u + 0.5, v + 0.5)``; ``v`` grows downwards. **Depth** is z-depth,
the distance along the viewing axis. :class:`Intrinsics` and :func:`pixel_rays` come from
:mod:`generators.camera`, where generators (which import nothing of ``agentmem``) reach them too; everything
else a camera does is here. :class:`Cameras` holds many cameras as arrays, like nerfstudio's ``Cameras``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from generators.camera import Intrinsics, pixel_rays

__all__ = [
    "VIEW_M_PER_RAD",
    "Cameras",
    "Intrinsics",
    "look_at",
    "opencv_to_opengl",
    "opengl_to_opencv",
    "pixel_rays",
    "pose_from_story",
    "project",
    "project_rows",
    "story_from_pose",
    "unproject",
    "view_distance",
]

_FLIP_YZ = np.diag([1.0, -1.0, -1.0, 1.0])


def opencv_to_opengl(c2w: np.ndarray) -> np.ndarray:
    """An OpenCV camera-to-world pose (or poses (..., 4, 4)) with OpenGL axes: the camera's y and z flip.

    Examples
    --------
    >>> cv = np.eye(4)   # an OpenCV camera at the origin looks down +z
    >>> (-opencv_to_opengl(cv)[:3, 2] + 0.0).tolist()   # the OpenGL viewing direction is -z
    [0.0, 0.0, 1.0]
    >>> bool(np.array_equal(opengl_to_opencv(opencv_to_opengl(cv)), cv))
    True
    """
    return np.asarray(c2w, np.float64) @ _FLIP_YZ


def opengl_to_opencv(c2w: np.ndarray) -> np.ndarray:
    """An OpenGL camera-to-world pose (or poses) with OpenCV axes (the same flip: it is its own inverse)."""
    return np.asarray(c2w, np.float64) @ _FLIP_YZ


def pose_from_story(x: float, y: float, z: float, yaw: float = 0.0, pitch: float = 0.0) -> np.ndarray:
    """Camera-to-world matrix of a story pose ``[x, y, z, yaw, pitch]`` (degrees), as stories and the planner use it.

    Stories put z up; yaw 0 looks down +x and turns towards +y; pitch looks up.

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
    f0, f1, f2 = cp * cy, cp * sy, sp  # forward
    r0, r1, r2 = sy, -cy, 0.0  # right; up is right x forward, written out (np.cross costs 20 times as much)
    return np.array([
        [r0, r1 * f2 - r2 * f1, -f0, x],
        [r1, r2 * f0 - r0 * f2, -f1, y],
        [r2, r0 * f1 - r1 * f0, -f2, z],
        [0.0, 0.0, 0.0, 1.0],
    ], np.float64)  # fmt: skip


def story_from_pose(c2w: np.ndarray) -> tuple[float, float, float, float, float]:
    """The story pose ``(x, y, z, yaw, pitch)`` of a camera-to-world matrix (its roll, which stories lack, is dropped).

    Examples
    --------
    >>> [round(v, 6) for v in story_from_pose(pose_from_story(1, 2, 3, yaw=120, pitch=-10))]
    [1.0, 2.0, 3.0, 120.0, -10.0]
    """
    fwd = -np.asarray(c2w, np.float64)[:3, 2]
    yaw = math.degrees(math.atan2(fwd[1], fwd[0]))
    pitch = math.degrees(math.asin(float(np.clip(fwd[2], -1.0, 1.0))))
    x, y, z = (float(v) for v in np.asarray(c2w)[:3, 3])
    return x, y, z, yaw, pitch


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


VIEW_M_PER_RAD = 5.0
"""How many metres of camera distance one radian between viewing directions counts as, in :func:`view_distance`
(a scene-scale default: the policies carry it as their ``m_per_rad``)."""


def view_distance(positions: np.ndarray, forwards: np.ndarray, c2w: np.ndarray, m_per_rad: float = VIEW_M_PER_RAD
                  ) -> np.ndarray:  # fmt: skip
    """How far each view (camera positions (n, 3), unit viewing directions (n, 3)) is from the view ``c2w``:
    camera distance in metres plus ``m_per_rad`` metres per radian between the viewing directions.

    Examples
    --------
    >>> m = look_at([0, 0, 0], [0, 0, -1])
    >>> view_distance(np.array([[3.0, 0, 0], [0.0, 0, 0]]), np.array([[0.0, 0, -1], [0.0, 0, 1]]), m).round(4).tolist()
    [3.0, 15.708]
    """
    cos = np.clip(np.asarray(forwards) @ -c2w[:3, 2], -1.0, 1.0)
    return np.linalg.norm(np.asarray(positions) - c2w[:3, 3], axis=1) + m_per_rad * np.arccos(cos)


def unproject(depth: np.ndarray, k: Intrinsics, c2w: np.ndarray) -> np.ndarray:
    """World points (h, w, 3) of a z-depth image; pixels with depth 0 give the camera centre (mask them out)."""
    cam = pixel_rays(k) * depth[..., None]
    return cam @ c2w[:3, :3].T + c2w[:3, 3]


def _pixels(x, y, z, fx, fy, cx, cy):
    """Pixel coordinates of camera-space coordinates (OpenGL axes; ``z`` the z-depth, positive in front): the
    pinhole every float64 projection uses."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return fx * x / z + cx, -fy * y / z + cy


def project(points: np.ndarray, k: Intrinsics, c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel coordinates (u, v) and z-depth of world ``points`` (n, 3) seen from ``c2w`` (4, 4), or from each pose
    of ``c2w`` (T, 4, 4) (then each result is (T, n)).

    Points behind the camera get depth <= 0. Returns float arrays ``u``, ``v``, ``z``.

    Examples
    --------
    >>> k = Intrinsics.from_fov(90.0, 4, 4)
    >>> u, v, z = project(np.array([[0.0, 0.0, -2.0]]), k, np.eye(4))
    >>> (float(u[0]), float(v[0]), float(z[0]))
    (2.0, 2.0, 2.0)
    """
    return _project(points, np.asarray(c2w), k.fx, k.fy, k.cx, k.cy)


def _project(points: np.ndarray, c2w: np.ndarray, fx, fy, cx, cy) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cam = np.matmul(points - c2w[..., None, :3, 3], c2w[..., :3, :3])  # (p - t) R: world to camera
    z = -cam[..., 2]
    u, v = _pixels(cam[..., 0], cam[..., 1], z, fx, fy, cx, cy)
    return u, v, z


def project_rows(points: np.ndarray, k: Intrinsics, c2ws: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`project` of ``points`` stored as rows of coordinates (3, n) into every pose of ``c2ws`` (T, 4, 4),
    each result (T, n), in float32: the renderer's layout, where numpy runs along long contiguous rows (a tenth
    of a millimetre at 100 m is far below a pixel)."""
    rot_t = c2ws[:, :3, :3].transpose(0, 2, 1)
    x, y, z = np.moveaxis((rot_t.astype(np.float32) @ points) - (rot_t @ c2ws[:, :3, 3, None]).astype(np.float32), 1, 0)
    z = -z
    # The same pinhole as _pixels, in the order of operations renders were measured with: float32 rounds each
    # step, so the order shows in the last bits, and those decide splat edges.
    with np.errstate(divide="ignore", invalid="ignore"):
        u = x / z * np.float32(k.fx) + np.float32(k.cx)
        v = y / z * np.float32(-k.fy) + np.float32(k.cy)
    return u, v, z


@dataclass(frozen=True)
class Cameras:
    """Many pinhole cameras as arrays, one row per camera (nerfstudio's ``Cameras``): camera-to-world poses
    ``c2w`` (n, 4, 4), OpenGL axes; focal lengths and principal points ``fx``, ``fy``, ``cx``, ``cy`` (n,) in pixels;
    image sizes ``w``, ``h`` (n,); and story ``times`` (n,).

    Examples
    --------
    >>> cams = Cameras.of([np.eye(4), look_at([0, 0, 0], [0, 0, 1])], [Intrinsics.from_fov(90.0, 4, 4)] * 2, [0, 1])
    >>> u, v, z = cams.project(np.array([[0.0, 0.0, -2.0]]))
    >>> z.tolist(), cams.intrinsics(1) == Intrinsics.from_fov(90.0, 4, 4)
    ([[2.0], [-2.0]], True)
    """

    c2w: np.ndarray
    fx: np.ndarray
    fy: np.ndarray
    cx: np.ndarray
    cy: np.ndarray
    w: np.ndarray
    h: np.ndarray
    times: np.ndarray

    @classmethod
    def of(cls, c2w: Sequence[np.ndarray] | np.ndarray, ks: Sequence[Intrinsics], times: Sequence[float] | np.ndarray
           ) -> Cameras:  # fmt: skip
        """Cameras from poses, one :class:`Intrinsics` per pose, and times."""
        k = np.array([(c.fx, c.fy, c.cx, c.cy) for c in ks], np.float64).reshape(-1, 4)
        size = np.array([(c.w, c.h) for c in ks], np.int64).reshape(-1, 2)
        poses = np.asarray(c2w, np.float64).reshape(-1, 4, 4)
        return cls(poses, k[:, 0], k[:, 1], k[:, 2], k[:, 3], size[:, 0], size[:, 1], np.asarray(times, np.float64))

    def __len__(self) -> int:
        return len(self.c2w)

    def intrinsics(self, i: int) -> Intrinsics:
        """Camera ``i``'s intrinsics."""
        return Intrinsics(float(self.fx[i]), float(self.fy[i]), float(self.cx[i]), float(self.cy[i]), int(self.w[i]),
                          int(self.h[i]))  # fmt: skip

    def take(self, idx: np.ndarray) -> Cameras:
        """The cameras numbered ``idx``, in that order."""
        return Cameras(self.c2w[idx], self.fx[idx], self.fy[idx], self.cx[idx], self.cy[idx], self.w[idx], self.h[idx],
                       self.times[idx])  # fmt: skip

    @property
    def positions(self) -> np.ndarray:
        return self.c2w[:, :3, 3]

    @property
    def forwards(self) -> np.ndarray:
        """Unit viewing directions (n, 3)."""
        return -self.c2w[:, :3, 2]

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pixel coordinates and z-depth, each (n cameras, n points), of world ``points`` (n, 3) in every camera."""
        col = (a[:, None] for a in (self.fx, self.fy, self.cx, self.cy))
        return _project(points, self.c2w, *col)
