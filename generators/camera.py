"""The pinhole camera shared by memory and generators: intrinsics and the grid of pixel rays, OpenGL axes.

A world plan hands a generator its camera as :class:`Intrinsics` (the same record the spatial memory keeps), and a
generator that draws per pixel (Plücker ray maps, the preview's invention) takes its rays from :func:`pixel_rays`.
They live here, at the bottom, because ``generators`` imports nothing of ``agentmem``; :mod:`agentmem.geometry`
builds poses, batched cameras and projection on them.

Conventions: the camera looks down its -z axis, x to the right and y up; pixel ``(u, v)`` has its centre at
``(u + 0.5, v + 0.5)`` and ``v`` grows downwards; depth is z-depth, the distance along the viewing axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


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


def pixel_rays(k: Intrinsics) -> np.ndarray:
    """(h, w, 3) camera-space directions with z = -1 (so a ray times a z-depth is the point), one per pixel centre.

    Examples
    --------
    >>> pixel_rays(Intrinsics(1.0, 1.0, 1.0, 1.0, 2, 2))[0].tolist()   # the top row: y is up
    [[-0.5, 0.5, -1.0], [0.5, 0.5, -1.0]]
    """
    u, v = np.meshgrid(np.arange(k.w) + 0.5, np.arange(k.h) + 0.5)
    return np.stack([(u - k.cx) / k.fx, -(v - k.cy) / k.fy, -np.ones_like(u)], axis=-1)
