"""Draw docs/images/overview.png: a revisit of the ray-cast town rendered from spatial memory, in labelled panels.

Run from the repository root: ``python docs/images/make_overview.py``. Ground truth is ray-cast with exact depth;
no learned model is involved.
"""

import tempfile

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from agentmem.spatial.camera import Intrinsics, look_at  # noqa: E402
from agentmem.spatial.frames import Frame  # noqa: E402
from agentmem.spatial.scenes import ray_cast, town  # noqa: E402
from agentmem.spatial.world import SpatialMemory  # noqa: E402

k, scene = Intrinsics.from_fov(80.0, 320, 200), town(0)
walk = [look_at([x, 1.6, 6.0], [x + 1.0, 1.7, 6.0]) for x in np.linspace(-24.0, 24.0, 40)]
walk += [look_at([24.0, 1.6, 6.0 - z], [24.0, 1.7, 5.0 - z]) for z in np.linspace(0.0, 12.0, 12)]
view = look_at([-20.5, 1.7, 5.6], [-19.5, 1.9, 5.2])  # back near the start, turned a little: a revisit
with tempfile.TemporaryDirectory() as tmp, SpatialMemory(tmp) as sm:
    frames = []
    for i, c2w in enumerate(walk):
        v = ray_cast(scene, k, c2w)
        frames.append(Frame(f"walk/{i:03d}.png", float(i), c2w, k, v.rgb, v.depth))
    sm.add(frames)
    chosen = sm.retrieve(view, k, t=100.0, budget=4)
    r = sm.render(view, k, t=100.0, budget=4)
    truth = ray_cast(scene, k, view).rgb
    context = [sm.pixels(sm.number_of(c.id))[0] for c in chosen]

fig = plt.figure(figsize=(12.8, 3.6), dpi=100)
grid = fig.add_gridspec(2, 5, width_ratios=[2, 2, 2, 1, 1])
panels = [(truth, "the view (ray-cast truth)"), (r.rgb, "memory rendered into the view"),
          (r.mask, f"covered by memory: {r.mask.mean():.0%}")]  # fmt: skip
for col, (img, title) in enumerate(panels):
    ax = fig.add_subplot(grid[:, col])
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
    ax.set_title(title, fontsize=11)
    ax.axis("off")
for n, (img, c) in enumerate(zip(context, chosen)):
    ax = fig.add_subplot(grid[n // 2, 3 + n % 2])
    ax.imshow(img)
    ax.set_title(f"context t={c.time:g}", fontsize=9)
    ax.axis("off")
fig.suptitle(f"Back at the street's start at t=100 s: memory rendered from the {len(chosen)} frames it chose "
             "(black: never seen; a generator invents only there)", fontsize=12)  # fmt: skip
fig.tight_layout()
fig.savefig("docs/images/overview.png")
