"""The offline preview back end of the world loop: memory where memory covers the view, invention in the holes.

**A preview, not a learned model.** It is deterministic, runs on the CPU in
milliseconds, and exists so the loop, its write-back and its benchmarks run
anywhere. For each frame of a :class:`~generators.world.WorldPlan`:

1. where the guidance mask says memory covers a pixel, keep memory's render (RGB and depth);
2. in the holes, invent: the ray meets the ground plane (y = 0) or, looking up, a backdrop 40 m away; the
   colour is a pattern fixed in world space whose frequencies, phases and palette are drawn from the chunk's
   seed and step. This is WonderWorld's "generate only where the render is thin".

Within a chunk the invention is consistent (one pattern, anchored in the world); a later step invents with
another pattern. So without memory conditioning, a place seen again is drawn anew, as a memoryless model would.
"""

from __future__ import annotations

import numpy as np

from .camera import Intrinsics, pixel_rays
from .world import WorldClip, WorldPlan

BACKDROP_M = 40.0


class PreviewWorldGenerator:
    """``generate_world(plan) -> WorldClip`` with depth; see the module docstring."""

    name = "preview"

    def generate_world(self, plan: WorldPlan) -> WorldClip:
        """Draw the chunk: memory's render where it covers, invention elsewhere."""
        rng = np.random.default_rng([plan.seed, plan.step])
        pattern = _Pattern(rng)
        frames, depths = [], []
        for i, c2w in enumerate(plan.c2w):
            rgb, depth = _invent(c2w, plan.camera, pattern)
            keep = plan.guidance_mask[i]
            rgb[keep] = plan.guidance_rgb[i][keep]
            depth[keep] = plan.guidance_depth[i][keep]
            frames.append(rgb)
            depths.append(depth)
        invented = ~np.asarray(plan.guidance_mask, bool)
        return WorldClip(np.stack(frames), np.stack(depths).astype(np.float32), invented, {"backend": self.name})


class _Pattern:
    """A colour field on world points: a palette mixed by three seeded sinusoids."""

    def __init__(self, rng: np.random.Generator):
        self.freq = rng.uniform(0.3, 1.6, (3, 3)) * rng.choice([-1.0, 1.0], (3, 3))
        self.phase = rng.uniform(0, 2 * np.pi, 3)
        self.palette = rng.uniform(0.15, 0.95, (3, 3))

    def __call__(self, points: np.ndarray) -> np.ndarray:
        w = 0.5 + 0.5 * np.sin(points @ self.freq.T + self.phase)
        w /= w.sum(axis=1, keepdims=True) + 1e-9
        return (w @ self.palette * 255).astype(np.uint8)


def _invent(c2w: np.ndarray, cam: Intrinsics, pattern: _Pattern) -> tuple[np.ndarray, np.ndarray]:
    dirs = pixel_rays(cam) @ c2w[:3, :3].T  # z-depth 1 along each ray
    origin = c2w[:3, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        t_ground = -origin[1] / dirs[..., 1]
    ground = np.isfinite(t_ground) & (t_ground > 0) & (t_ground < BACKDROP_M)
    depth = np.where(ground, t_ground, BACKDROP_M)
    points = origin + depth[..., None] * dirs
    rgb = pattern(points.reshape(-1, 3)).reshape(cam.h, cam.w, 3)
    return rgb, depth.astype(np.float32)
