"""World loop benchmark: revisit consistency with full memory, a sliding window, and no memory, in one run.

Each bundled walk (they come back to places seen before) is driven through the loop with a world back end (the
offline preview unless another is given) three times: ``memory`` (context chosen by the spatial memory, memory
rendered into every pose), ``window`` (the last 8 frames only) and ``none`` (nothing: the back end invents every
view). Scores per mode:

- **revisit PSNR**: a frame *revisits* when earlier frames, from at least two steps before, cover at least 30% of
  it once reprojected through their stored depth (up to 4 of them, nearest pose first); its PSNR is taken
  against that reprojection, over the covered pixels. The judge is the same for every mode: the frames the run
  generated, with the depth the back end gave, whatever the mode let the back end see;
- **invented share on revisits**: the share of a revisiting frame's pixels the back end had to invent;
- memory size (frames, map voxels), planning latency per step, and the write-back rate (frames per second of
  :meth:`SpatialMemory.add`, the map update included).

One run is chaotic in memory mode: retrieval breaks exact ties between frames, so a change of a millionth in one
written-back depth can change later context choices, and the revisit PSNR of a walk by several dB. ``seeds``
runs each walk with several seeds (other inventions in the holes) and reports the range beside the pooled mean.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from agentmem.errors import BadInputError
from agentmem.interactive.loop import CameraPath, LoopConfig, WorldLoop
from agentmem.interactive.produce import declare_entities
from agentmem.interactive.walks import Walk
from agentmem.spatial.camera import view_distance
from agentmem.spatial.render import Source, forward_warp
from agentmem.spatial.world import SpatialMemory
from generators import get_world_generator
from generators.world import WorldGenerator

MODES = ("memory", "window", "none")
GAP_STEPS = 2
MIN_OVERLAP = 0.3


@dataclass
class ModeScores:
    revisit_psnr_db: float
    invented_share_on_revisit: float
    revisit_frames: int
    frames: int
    map_voxels: int
    plan_ms_p50: float
    plan_ms_p95: float
    write_fps: float
    memory_frames_per_step: list[int] = field(default_factory=list)


def judge(walk: Walk, frames: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]], invented: list[np.ndarray]
          ) -> tuple[list[float], list[float]]:  # fmt: skip
    """Revisit PSNRs and invented shares of the revisiting frames; ``frames`` is (step, c2w, rgb, depth) in order."""
    psnr, share = [], []
    for i, (step, c2w, rgb, _) in enumerate(frames):
        earlier = [j for j, f in enumerate(frames[:i]) if f[0] <= step - GAP_STEPS]
        if not earlier:
            continue
        gap = view_distance(np.stack([frames[j][1][:3, 3] for j in earlier]),
                            np.stack([-frames[j][1][:3, 2] for j in earlier]), c2w)  # fmt: skip
        earlier = [earlier[j] for j in np.argsort(gap, kind="stable")[:4]]
        r = forward_warp([Source(frames[j][2], frames[j][3], walk.k, frames[j][1]) for j in earlier], walk.k, c2w)
        if r.mask.mean() < MIN_OVERLAP:
            continue
        err = (r.rgb[r.mask].astype(np.float64) - rgb[r.mask].astype(np.float64)) ** 2
        psnr.append(10 * math.log10(255.0**2 / max(float(err.mean()), 1e-6)))
        share.append(float(invented[i].mean()))
    return psnr, share


def run_mode(walk: Walk, mode: str, directory: Path, steps: int | None = None, *,
             generator: WorldGenerator | None = None) -> ModeScores:  # fmt: skip
    """Drive ``walk`` (its first ``steps`` chunks, or all) in ``mode`` with ``generator`` (default: the preview)
    in a new memory under ``directory`` and score it."""
    frames: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
    invented: list[np.ndarray] = []
    gen = generator or get_world_generator("preview")
    with SpatialMemory(directory) as spatial, WorldLoop(spatial, gen, LoopConfig(mode=mode), seed=walk.seed) as loop:
        declare_entities(spatial, walk)
        for s in walk.steps()[:steps]:
            _, clip = loop.step(CameraPath(s.c2w, walk.k, s.times), s.action, entities=s.entities)
            if clip.depth is None:  # the judge reprojects the generated frames through their depth
                raise BadInputError(f"bench world: the {gen.name} back end returns no depth; use one that does")
            for j in range(len(clip.frames)):
                frames.append((loop.steps - 1, s.c2w[j], clip.frames[j], clip.depth[j]))
                invented.append(clip.invented[j])
        records = loop.records
        voxels = len(spatial.frames.map)
    psnr, share = judge(walk, frames, invented)
    plan_ms = [1000 * r.plan_s for r in records]
    return ModeScores(
        float(np.mean(psnr)) if psnr else float("nan"), float(np.mean(share)) if share else float("nan"),
        len(psnr), len(frames), voxels, float(np.percentile(plan_ms, 50)), float(np.percentile(plan_ms, 95)),
        sum(r.stored for r in records) / max(sum(r.write_s for r in records), 1e-9),
        list(np.cumsum([r.stored for r in records]).tolist()),
    )  # fmt: skip


def run_world(walks: dict[str, Walk], progress: Callable[[str], None] | None = None, *, seeds: int = 1,
              steps: int | None = None, generator: WorldGenerator | None = None) -> dict:  # fmt: skip
    """Every walk (its first ``steps`` chunks, or all), with ``seeds`` seeds (the walk's own, then the next ones),
    in every mode, on ``generator`` (default: the preview); per mode, the scores pooled over runs (weighted by
    revisiting frames), and the lowest and highest revisit PSNR of one run."""
    runs: dict[str, dict[str, ModeScores]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for w, (name, walk) in enumerate(walks.items()):
            for seed in range(walk.seed, walk.seed + seeds):
                run = name if seeds == 1 else f"{name} seed {seed}"
                runs[run] = {}
                for mode in MODES:
                    if progress:
                        progress(f"{run}: {mode}")
                    where = Path(tmp) / f"walk{w}-{seed}-{mode}"  # by position: a walk's name never is a path
                    runs[run][mode] = run_mode(replace(walk, seed=seed), mode, where, steps, generator=generator)
    modes = {}
    for mode in MODES:
        scores = [per[mode] for per in runs.values()]
        n = sum(s.revisit_frames for s in scores)
        modes[mode] = {
            "revisit_psnr_db": sum(s.revisit_psnr_db * s.revisit_frames for s in scores) / max(n, 1),
            "invented_share_on_revisit": sum(s.invented_share_on_revisit * s.revisit_frames for s in scores)
            / max(n, 1),
            "revisit_frames": n,
            "revisit_psnr_db_range": [min(s.revisit_psnr_db for s in scores), max(s.revisit_psnr_db for s in scores)],
            "plan_ms_p95": max(s.plan_ms_p95 for s in scores),
            "write_fps": min(s.write_fps for s in scores),
        }
    return {"modes": modes, "walks": {w: {m: s.__dict__ for m, s in per.items()} for w, per in runs.items()}}


def time_planning(sizes: list[int], *, pool: int = 600, chunk: int = 16, queries: int = 20,
                  progress: Callable[[str], None] | None = None, generator: WorldGenerator | None = None
                  ) -> list[dict]:  # fmt: skip
    """Planning latency (retrieval plus the guidance render of a ``chunk``-frame path at 160x120) with memories of
    ``sizes`` frames: the town pool of :mod:`agentmem.bench.spatial_scale`, replayed. Planning never calls the
    back end (``generator``, default: the preview); it only completes the loop."""
    from agentmem.bench.spatial import make_walk, revisit_targets
    from agentmem.bench.spatial_scale import ingest_replay, write_pool

    out = []
    gen = generator or get_world_generator("preview")
    with tempfile.TemporaryDirectory() as tmp:
        town = make_walk("random_walk", pool, aa=1)
        paths = write_pool(town, Path(tmp) / "pool")
        views = [c2w for c2w, _ in revisit_targets(town, queries, 0)]
        with SpatialMemory(Path(tmp) / "memory") as spatial, WorldLoop(spatial, gen) as loop:
            done = 0
            for size in sorted(sizes):
                if progress:
                    progress(f"planning with {size:,} frames stored")
                ingest_replay(spatial, town, paths, done, size)
                done = size
                ms = []
                for c2w in views:
                    path = np.stack([c2w @ _step_forward(0.25 * i) for i in range(chunk)])
                    t0 = time.perf_counter()
                    loop.plan(CameraPath(path, town.k, [done + 1.0 + i for i in range(chunk)]))
                    ms.append(1000 * (time.perf_counter() - t0))
                out.append({"frames": size, "plan_ms_p50": float(np.percentile(ms, 50)),
                            "plan_ms_p95": float(np.percentile(ms, 95))})  # fmt: skip
    return out


def _step_forward(d: float) -> np.ndarray:
    m = np.eye(4)
    m[2, 3] = -d  # the camera looks down its -z axis
    return m


def circle_town(steps: int, *, chunk: int = 4, width: int = 80, height: int = 60, every: int = 100,
                progress: Callable[[str], None] | None = None, generator: WorldGenerator | None = None
                ) -> list[dict]:  # fmt: skip
    """Map size while the loop (memory mode, on ``generator``, default: the preview) circles a 12 m square
    ``steps`` times ``chunk`` frames, 0.375 m a frame (a lap is 128 frames): frames stored and map voxels every
    ``every`` steps."""
    from agentmem.spatial.camera import Intrinsics, look_at

    k = Intrinsics.from_fov(70.0, width, height)
    corners = np.array([[0.0, 0.0], [12.0, 0.0], [12.0, 12.0], [0.0, 12.0]])

    def pose(n: int) -> np.ndarray:
        s = (n * 0.375) % 48.0
        side = int(s // 12)
        a, b = corners[side], corners[(side + 1) % 4]
        p = a + (b - a) * (s - 12 * side) / 12.0
        d = (b - a) / 12.0
        return look_at([p[0], 1.6, p[1]], [p[0] + d[0], 1.5, p[1] + d[1]])

    out = []
    gen = generator or get_world_generator("preview")
    with tempfile.TemporaryDirectory() as tmp, SpatialMemory(Path(tmp) / "memory") as spatial, \
            WorldLoop(spatial, gen) as loop:  # fmt: skip
        for step in range(steps):
            frames = range(step * chunk, (step + 1) * chunk)
            loop.step(CameraPath(np.stack([pose(n) for n in frames]), k, [float(n) for n in frames]), "circle")
            if (step + 1) % every == 0 or step + 1 == steps:
                out.append({"step": step + 1, "frames": len(spatial.frames), "map_voxels": len(spatial.frames.map)})
                if progress:
                    progress(f"step {step + 1:,}: {out[-1]['map_voxels']:,} voxels")
    return out
