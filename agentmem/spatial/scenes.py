"""Ground-truth scenes: a procedural town of textured boxes on a ground plane, ray-cast to exact RGB and depth.

These stand in for depth models offline: every frame has exact z-depth and an
exact pose, so what a spatial memory gives back can be scored against the
truth. Surfaces are Lambertian (colour depends on the surface point only), so a
perfect reprojection of a remembered frame reproduces the new view exactly.
The world is y-up; the ground is the plane y = 0 inside ``extent``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agentmem.geometry import Intrinsics, pixel_rays

SKY = np.array([0.0, 0.0, 0.0])


@dataclass(frozen=True)
class Scene:
    """Axis-aligned boxes ``lo``/``hi`` (n, 3), base colours (n, 3) in [0, 1], a ground of half-size ``extent``."""

    lo: np.ndarray
    hi: np.ndarray
    colors: np.ndarray
    extent: float = 60.0
    seed: int = 0


@dataclass(frozen=True)
class View:
    """One ground-truth frame: RGB (h, w, 3) uint8, z-depth (h, w) float32 with 0 where nothing is hit, and which
    surface each pixel shows (-1 sky, 0 ground, 1 + i box i)."""

    rgb: np.ndarray
    depth: np.ndarray
    surface: np.ndarray


def town(seed: int = 0, *, blocks: int = 5, spacing: float = 12.0, extent: float = 60.0) -> Scene:
    """A grid of ``blocks`` x ``blocks`` buildings of random size and colour, streets between them.

    Examples
    --------
    >>> s = town(0, blocks=3)
    >>> s.lo.shape, bool((s.hi > s.lo).all()), bool((s.lo[:, 1] == 0).all())
    ((9, 3), True, True)
    """
    rng = np.random.default_rng(seed)
    lo, hi = [], []
    half = (blocks - 1) * spacing / 2
    for i in range(blocks):
        for j in range(blocks):
            cx, cz = i * spacing - half, j * spacing - half
            sx, sz = rng.uniform(2.5, 4.5, 2)
            height = rng.uniform(3.0, 12.0)
            cx += rng.uniform(-1.0, 1.0)
            cz += rng.uniform(-1.0, 1.0)
            lo.append([cx - sx, 0.0, cz - sz])
            hi.append([cx + sx, height, cz + sz])
    colors = rng.uniform(0.25, 0.95, (blocks * blocks, 3))
    return Scene(np.array(lo), np.array(hi), colors, extent, seed)


def with_box(scene: Scene, lo: list[float] | np.ndarray, hi: list[float] | np.ndarray, color: tuple = (0.9, 0.2, 0.2)
             ) -> Scene:  # fmt: skip
    """``scene`` plus one box (a moving thing drawn at one instant): it is surface ``len(scene.lo) + 1`` in a view.

    Examples
    --------
    >>> s = with_box(town(0, blocks=2), [0, 0, 0], [1, 1, 1])
    >>> len(s.lo), s.hi[-1].tolist()
    (5, [1.0, 1.0, 1.0])
    """
    return Scene(np.vstack([scene.lo, np.asarray(lo, float)]), np.vstack([scene.hi, np.asarray(hi, float)]),
                 np.vstack([scene.colors, np.asarray(color, float)]), scene.extent, scene.seed)  # fmt: skip


def _texture(points: np.ndarray, surface: np.ndarray, scene: Scene) -> np.ndarray:
    """Colour of surface points: the surface's base colour times a pattern fixed in world space."""
    x, y, z = points[:, 0], points[:, 1], points[:, 2]
    ground = surface == 0
    base = np.empty((len(points), 3))
    base[ground] = (0.45, 0.45, 0.42)
    idx = surface[~ground] - 1
    base[~ground] = scene.colors[idx]
    # Windows on walls, paving on the ground: high enough frequency that a misplaced pixel shows.
    wall = 0.55 + 0.45 * ((np.floor(y * 1.5) + np.floor((x + z) * 1.5)) % 2)
    paving = 0.6 + 0.4 * (np.sin(x * 2.1) * np.sin(z * 1.7) > 0)
    shade = np.where(ground, paving, wall)
    return np.clip(base * shade[:, None], 0.0, 1.0)


def ray_cast(scene: Scene, k: Intrinsics, c2w: np.ndarray, *, aa: int = 2) -> View:
    """The exact view of ``scene`` from camera-to-world ``c2w``.

    Depth and surface are those of the ray through each pixel's centre. Colour averages ``aa`` x ``aa`` rays
    spread over the pixel, as a sensor integrates light over its area: an image point-sampled from a texture
    finer than its pixels aliases, and no camera sees that.

    Examples
    --------
    >>> from agentmem.spatial.camera import look_at
    >>> k = Intrinsics.from_fov(60.0, 32, 24)
    >>> v = ray_cast(town(0, blocks=2), k, look_at([0, 1.6, 25], [0, 1.6, 0]))
    >>> v.rgb.shape, v.depth.dtype.name, bool((v.depth > 0).any())
    ((24, 32, 3), 'float32', True)
    """
    rays = pixel_rays(k).reshape(-1, 3)
    t_best, surface = _first_hits(scene, c2w[:3, 3], rays @ c2w[:3, :3].T)
    depth = np.where(np.isfinite(t_best), t_best, 0.0)  # z-depth: the camera-space ray has z = -1
    rgb = np.zeros((len(rays), 3))
    offsets = (np.arange(aa) + 0.5) / aa - 0.5
    for dv in offsets:
        for du in offsets:
            sub = rays + np.array([du / k.fx, -dv / k.fy, 0.0])
            rgb += _shade(scene, c2w[:3, 3], sub @ c2w[:3, :3].T)
    rgb /= aa * aa
    return View(
        (rgb.reshape(k.h, k.w, 3) * 255 + 0.5).astype(np.uint8),
        depth.reshape(k.h, k.w).astype(np.float32),
        surface.reshape(k.h, k.w),
    )


def _shade(scene: Scene, origin: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """Colour (n, 3) in [0, 1] seen along each ray (the sky is black)."""
    t_best, surface = _first_hits(scene, origin, dirs)
    seen = np.isfinite(t_best)
    rgb = np.zeros((len(dirs), 3))
    rgb[seen] = _texture(origin + t_best[seen, None] * dirs[seen], surface[seen], scene)
    return rgb


def _first_hits(scene: Scene, origin: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ray parameter of the first hit (inf for none) and the surface hit (-1 sky, 0 ground, 1 + i box i)."""
    t_best = np.full(len(dirs), np.inf)
    surface = np.full(len(dirs), -1, dtype=np.int32)
    # Ground plane y = 0, inside the extent.
    with np.errstate(divide="ignore", invalid="ignore"):
        tg = -origin[1] / dirs[:, 1]
    hit = (tg > 1e-6) & np.isfinite(tg)
    gp = origin + tg[:, None] * dirs
    hit &= (np.abs(gp[:, 0]) <= scene.extent) & (np.abs(gp[:, 2]) <= scene.extent)
    t_best[hit] = tg[hit]
    surface[hit] = 0
    # Boxes: the slab test, every ray against every box at once, one axis at a time.
    t_near = np.full((len(dirs), len(scene.lo)), -np.inf)
    t_far = np.full((len(dirs), len(scene.lo)), np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        for a in range(3):
            inv = 1.0 / dirs[:, a, None]
            t1 = (scene.lo[None, :, a] - origin[a]) * inv
            t2 = (scene.hi[None, :, a] - origin[a]) * inv
            undefined = np.isnan(t1)  # a ray in the slab's plane: this axis does not bound it
            t_near = np.maximum(t_near, np.where(undefined, -np.inf, np.minimum(t1, t2)))
            t_far = np.minimum(t_far, np.where(undefined, np.inf, np.maximum(t1, t2)))
    t_near = np.where((t_far >= t_near) & (t_near > 1e-6), t_near, np.inf)
    box = np.argmin(t_near, axis=1)
    t_box = t_near[np.arange(len(dirs)), box]
    closer = t_box < t_best
    t_best[closer] = t_box[closer]
    surface[closer] = box[closer] + 1
    return t_best, surface
