"""Running a walk through the world loop and writing what people look at: videos, a plot, the plans and a report.

``run_walk(walk, memory_dir, out)`` does, in numbered steps:

1. declare the walk's entities in the memory (those already there are kept as they are);
2. drive the loop one step per chunk of the walk, with memory in the loop;
3. write ``video.mp4`` (the generated frames), ``side_by_side.mp4`` (generated | memory render | covered mask |
   the chosen context frames), ``memory.png`` (memory size and step latency over the run), ``plans.jsonl`` (one
   WorldPlan JSON per step) and ``report.html``.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agentmem.errors import BadInputError
from agentmem.interactive.loop import CameraPath, LoopConfig, WorldLoop
from agentmem.interactive.walks import Walk
from agentmem.spatial.world import SpatialMemory
from generators.conditioning import Clip
from generators.media import VideoFile, write_video
from generators.world import WorldClip, WorldGenerator, WorldPlan

# The names run_walk writes in its output folder (write_video falls back to a GIF without imageio-ffmpeg).
WALK_OUTPUTS = ("video.mp4", "video.gif", "side_by_side.mp4", "side_by_side.gif", "plans.jsonl", "memory.png",
                "report.html")  # fmt: skip


@dataclass(frozen=True)
class WalkRun:
    """What a run wrote and measured."""

    steps: int
    frames: int
    video: VideoFile
    side_by_side: VideoFile
    plot: Path
    plans: Path
    report: Path
    invented_share: float


def declare_entities(spatial: SpatialMemory, walk: Walk) -> None:
    """Store the walk's entities that the memory lacks, with their appearance from the walk's start."""
    store = spatial.store
    with store.transaction():
        for e in walk.entities:
            if store.entity_exists(e.id):
                continue
            store.insert_entity(e.id, e.kind, e.name, 0.0)
            if e.appearance:
                store.set_attribute(e.id, "appearance", e.appearance, walk.keyframes[0].t, "walk")


def check_walk(walk: Walk, memory_dir: str | Path | None, where: str) -> None:
    """Refuse, before anything is written, what the loop would refuse midway through ``walk`` (read from ``where``):
    a keyframe entity that neither the walk nor the memory at ``memory_dir`` (None: a new one) declares, and a walk
    that starts before the memory's last frame."""
    from agentmem.storage.store import DB_NAME

    declared = {e.id for e in walk.entities}
    undeclared = [(i, e) for i, k in enumerate(walk.keyframes) for e in (k.entities or ()) if e not in declared]
    last = -np.inf
    if memory_dir is not None and (Path(memory_dir) / DB_NAME).exists():
        with SpatialMemory(memory_dir) as spatial:
            undeclared = [(i, e) for i, e in undeclared if not spatial.store.entity_exists(e)]
            last = float(spatial.frames.times.max()) if len(spatial.frames) else last
    if undeclared:
        i, e = undeclared[0]
        raise BadInputError(f"{where}: keyframes[{i}]: entities: unknown entity {e!r} (declare it in entities)")
    if walk.keyframes[0].t < last:
        raise BadInputError(f"{where}: keyframes[0]: t: {walk.keyframes[0].t:g} is before the last frame stored in "
                            f"{memory_dir} (t={last:g}); start the walk later")  # fmt: skip


def run_walk(walk: Walk, memory_dir: str | Path, out: str | Path, *, generator: WorldGenerator, mode: str = "memory",
             progress: Callable[[int, int], None] | None = None) -> WalkRun:  # fmt: skip
    """Drive ``walk`` through the loop with ``generator`` and write the outputs under ``out`` (see the module)."""
    out = Path(out)
    with SpatialMemory(memory_dir) as spatial:
        # 1. Entities.
        declare_entities(spatial, walk)
        # 2. The loop.
        steps = walk.steps()
        plans, clips = [], []
        with WorldLoop(spatial, generator, LoopConfig(mode=mode), seed=walk.seed) as loop:
            for i, s in enumerate(steps):
                plan, clip = loop.step(CameraPath(s.c2w, walk.k, s.times), s.action, entities=s.entities)
                plans.append(plan)
                clips.append(clip)
                if progress:
                    progress(i + 1, len(steps))
        records = loop.records
    # 3. Outputs.
    fps = int(round(walk.fps))
    frames = np.concatenate([c.frames for c in clips])
    video = write_video(Clip(frames, fps), str(out / "video.mp4"))
    side = write_video(Clip(np.concatenate([_side_by_side(p, c) for p, c in zip(plans, clips)]), fps),
                       str(out / "side_by_side.mp4"))  # fmt: skip
    plans_path = out / "plans.jsonl"
    plans_path.write_text("".join(json.dumps(p.to_dict()) + "\n" for p in plans))
    plot = out / "memory.png"
    _plot(records, plot)
    invented = float(np.mean([c.invented.mean() for c in clips]))
    report = out / "report.html"
    report.write_text(_report(walk, mode, records, video, side, invented))
    return WalkRun(len(steps), len(frames), video, side, plot, plans_path, report, invented)


def _tile(images: list[np.ndarray], h: int, w: int) -> np.ndarray:
    """Up to four images in a 2 x 2 grid of an (h, w) panel."""
    out = np.full((h, w, 3), 40, np.uint8)
    for i, im in enumerate(images[:4]):
        small = im[:: max(1, im.shape[0] // (h // 2)), :: max(1, im.shape[1] // (w // 2))][: h // 2, : w // 2]
        r, c = divmod(i, 2)
        out[r * (h // 2) : r * (h // 2) + small.shape[0], c * (w // 2) : c * (w // 2) + small.shape[1]] = small
    return out


def _side_by_side(plan: WorldPlan, clip: WorldClip) -> np.ndarray:
    """Per frame: generated | memory render | covered mask (white) | the chosen context frames."""
    n, h, w = clip.frames.shape[:3]
    context = [c.rgb for c in plan.context if c.rgb is not None] or ([] if plan.window is None else list(plan.window))
    tile = _tile(context, h, w)
    out = np.zeros((n, h, 4 * w, 3), np.uint8)
    for i in range(n):
        mask = (plan.guidance_mask[i][..., None] * 255).repeat(3, axis=2).astype(np.uint8)
        out[i] = np.concatenate([clip.frames[i], plan.guidance_rgb[i], mask, tile], axis=1)
    return out


def _plot(records, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r.step for r in records]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    a.plot(steps, np.cumsum([r.stored for r in records]), label="frames stored")
    a.set_xlabel("step")
    a.set_ylabel("frames")
    a2 = a.twinx()
    a2.plot(steps, [r.map_voxels for r in records], color="tab:orange", label="map voxels")
    a2.set_ylabel("map voxels")
    a.set_title("memory size")
    for name, key in (("plan", "plan_s"), ("generate", "generate_s"), ("write back", "write_s")):
        b.plot(steps, [1000 * getattr(r, key) for r in records], label=name)
    b.set_xlabel("step")
    b.set_ylabel("ms per step")
    b.set_title("step latency")
    b.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _report(walk: Walk, mode: str, records, video: VideoFile, side: VideoFile, invented: float) -> str:
    rows = "".join(
        f"<tr><td>{r.step}</td><td>{1000 * r.plan_s:.1f}</td><td>{1000 * r.generate_s:.1f}</td>"
        f"<td>{1000 * r.write_s:.1f}</td><td>{r.map_voxels:,}</td></tr>"
        for r in records
    )
    name = html.escape(walk.name)
    return (
        f"<!doctype html><meta charset='utf-8'><title>agentmem world run: {name}</title>"
        f"<h1>{name}</h1><p>mode: {html.escape(mode)}; {len(records)} steps; invented share "
        f"{invented:.1%} (the share of pixels the back end drew without memory)</p>"
        f"<p><a href='{Path(video.path).name}'>generated video</a> · "
        f"<a href='{Path(side.path).name}'>side by side: generated | memory render | covered | context</a></p>"
        "<img src='memory.png' alt='memory size and step latency'>"
        "<table border=1><tr><th>step</th><th>plan ms</th><th>generate ms</th><th>write ms</th>"
        f"<th>map voxels</th></tr>{rows}</table>"
    )
