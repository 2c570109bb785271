"""Spatial memory at scale: ingest rate, map size, retrieval latency, memory use and compression at 1k-100k frames.

A pool of distinct views (a random walk through the town, ray-cast once at one ray per pixel: only depth and
poses matter here) is written to disk, then replayed with new ids and later times until the memory holds each
size: a walk that keeps revisiting one town, exactly (a replayed frame repeats a pose of the pool, so the map
stops growing once the pool is in). Steps:

1. **Ingest**, timed end to end through :meth:`SpatialMemory.add`: reading each frame's PNG and depth, the SQLite
   transaction, and the map update, in batches of 500.
2. **Retrieval** at each size: revisit views (pool poses moved up to 1 m and turned up to 25 degrees), the
   default policy, K = 8; p50 and p95.
3. **Resident memory**: a fresh process opens the memory and answers the same queries; its peak RSS.
4. **Compression** of the final memory: the share of frames left active, and coverage@4 of what memory holds,
   before and after, on the same views (true visibility from the pool's depth).
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from agentmem.bench.spatial import Walk, make_walk, revisit_targets, visible_in
from agentmem.spatial.camera import unproject
from agentmem.spatial.frames import Frame
from agentmem.spatial.policies import Target, choose
from agentmem.spatial.scenes import ray_cast
from agentmem.spatial.world import SpatialMemory

BATCH = 500


@dataclass(frozen=True)
class ScaleRow:
    frames: int
    map_voxels: int
    ingest_fps: float
    retrieve_p50_ms: float
    retrieve_p95_ms: float


@dataclass
class ScaleResult:
    pool: int
    rows: list[ScaleRow] = field(default_factory=list)
    rss_mb: float = 0.0
    compression: dict[str, float] = field(default_factory=dict)


def write_pool(walk: Walk, folder: Path) -> list[tuple[str, str]]:
    """Each pool view's PNG and depth (``.npy``, metres) under ``folder``; returns their paths."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, v in enumerate(walk.views):
        rgb, depth = folder / f"{i:05d}.png", folder / f"{i:05d}.depth.npy"
        Image.fromarray(v.rgb).save(rgb)
        np.save(depth, v.depth, allow_pickle=False)
        out.append((str(rgb), str(depth)))
    return out


def _read(walk: Walk, paths: list[tuple[str, str]], n: int) -> Frame:
    from PIL import Image

    i = n % len(paths)
    with Image.open(paths[i][0]) as im:
        rgb = np.asarray(im.convert("RGB"))
    depth = np.load(paths[i][1], allow_pickle=False)
    return Frame(f"replay-{n:06d}", float(n), walk.poses[i], walk.k, rgb, depth)


def ingest_replay(sm: SpatialMemory, walk: Walk, paths: list[tuple[str, str]], start: int, stop: int) -> float:
    """Frames ``start`` to ``stop`` of the replay, in batches; returns frames per second."""
    t0 = time.perf_counter()
    for b in range(start, stop, BATCH):
        frames = [_read(walk, paths, n) for n in range(b, min(stop, b + BATCH))]
        where = [(paths[int(f.t) % len(paths)][0], paths[int(f.t) % len(paths)][1], 1.0, None) for f in frames]
        sm.add(frames, paths=where)
    return (stop - start) / max(time.perf_counter() - t0, 1e-9)


def _latencies(sm: SpatialMemory, walk: Walk, views: list[np.ndarray], t: float) -> list[float]:
    out = []
    for c2w in views:
        t0 = time.perf_counter()
        sm.retrieve(c2w, walk.k, t, budget=8)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def rss_after_queries(directory: str, views_npy: str, t: float) -> float:
    """Open the memory, answer the views saved in ``views_npy`` (n, 4, 4), and return this process's peak RSS (MB)."""
    from agentmem.spatial.camera import Intrinsics

    with SpatialMemory(directory) as sm:
        k = sm.frames.cameras.intrinsics(0) if len(sm.frames) else Intrinsics.from_fov(70.0, 160, 120)
        for c2w in np.load(views_npy, allow_pickle=False):
            sm.retrieve(c2w, k, t, budget=8)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_rss_mb(directory: str, views: list[np.ndarray], t: float) -> float:
    """Peak resident memory (MB) of a fresh process that opens the memory and answers ``views``."""
    npy = Path(directory).parent / "views.npy"
    np.save(npy, np.stack(views), allow_pickle=False)
    call = f"rss_after_queries({directory!r}, {str(npy)!r}, {t!r})"
    code = f"from agentmem.bench.spatial_scale import rss_after_queries; print({call})"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def _coverage(sm: SpatialMemory, walk: Walk, targets: list[tuple[np.ndarray, np.ndarray]], t: float,
              allowed: np.ndarray | None) -> float:  # fmt: skip
    pool = len(walk.views)
    out = []
    for c2w, vis in targets:
        chosen = [c.frame % pool for c in choose(sm.frames, Target(sm.local(c2w), walk.k, t, allowed), 4)]
        held = vis.any(axis=0)
        out.append(float((vis[chosen].any(axis=0) & held).sum() / max(held.sum(), 1)))
    return float(np.mean(out))


def _truth(walk: Walk, views: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per view: which of its surface points (every 4th pixel) each pool frame sees."""
    out = []
    for c2w in views:
        v = ray_cast(walk.scene, walk.k, c2w, aa=1)
        pts = unproject(v.depth.astype(np.float64), walk.k, c2w)[::4, ::4].reshape(-1, 3)
        pts = pts[v.depth[::4, ::4].reshape(-1) > 0]
        out.append((c2w, np.stack([visible_in(pts, f, walk.k, p) for f, p in zip(walk.views, walk.poses)])))
    return out


def run_scale(directory: str | Path, sizes: Sequence[int] = (1000, 10_000, 100_000), *, pool: int = 2000,
              queries: int = 50, seed: int = 0, progress: Callable[[str], None] | None = None
              ) -> ScaleResult:  # fmt: skip
    """Grow one memory in ``directory`` (which must not exist) to each of ``sizes`` frames and measure it."""
    say = progress or (lambda _m: None)
    directory = Path(directory)
    directory.mkdir(parents=True)
    say(f"ray-casting a pool of {pool} views")
    walk = make_walk("random_walk", pool, seed=seed, aa=1)
    paths = write_pool(walk, directory / "pool")
    views = [c2w for c2w, _ in revisit_targets(walk, queries, seed)]
    res = ScaleResult(pool)
    done = 0
    with SpatialMemory(directory / "memory") as sm:
        for size in sorted(sizes):
            say(f"ingesting to {size:,} frames")
            fps = ingest_replay(sm, walk, paths, done, size)
            done = size
            lat = _latencies(sm, walk, views, float(size))
            res.rows.append(ScaleRow(size, len(sm.frames.map), fps, float(np.percentile(lat, 50)),
                                     float(np.percentile(lat, 95))))  # fmt: skip
        say("compressing")
        targets = _truth(walk, views[: min(queries, 20)])
        before = _coverage(sm, walk, targets, float(done), None)
        plan = sm.compress()
        after = _coverage(sm, walk, targets, float(done), ~sm.archived)
        res.compression = {"frames": done, "active": plan.active_after, "active_share": plan.active_after / done,
                           "coverage4_before": before, "coverage4_after": after}  # fmt: skip
        sm.restore()
    say("measuring resident memory in a fresh process")
    res.rss_mb = peak_rss_mb(str(directory / "memory"), views, float(done))
    return res


def format_scale(res: ScaleResult) -> str:
    """The scale table, resident memory and the compression line."""
    lines = [f"frames (pool of {res.pool} views replayed)  map voxels  ingest fps  retrieve p50 ms  p95 ms"]
    for r in res.rows:
        lines.append(f"{r.frames:>40,} {r.map_voxels:>11,} {r.ingest_fps:>11.0f} {r.retrieve_p50_ms:>16.2f}"
                     f" {r.retrieve_p95_ms:>7.2f}")  # fmt: skip
    lines.append(
        f"peak RSS of a fresh process opening {res.rows[-1].frames:,} frames and answering: {res.rss_mb:.0f} MB"
    )
    c = res.compression
    lines.append(f"compression: {c['active']:,} of {c['frames']:,} frames active ({c['active_share']:.1%}); coverage@4 "
                 f"{c['coverage4_before']:.3f} -> {c['coverage4_after']:.3f}")  # fmt: skip
    return "\n".join(lines)


def plot_scale(res: ScaleResult, path) -> None:
    """Map size and retrieval latency (p50, p95) against stored frames, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r.frames for r in res.rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3.2))
    a.plot(n, [r.map_voxels for r in res.rows], marker="o")
    a.set_xscale("log")
    a.set_xlabel("frames stored")
    a.set_ylabel("map voxels")
    a.set_ylim(bottom=0)
    b.plot(n, [r.retrieve_p50_ms for r in res.rows], marker="o", label="p50")
    b.plot(n, [r.retrieve_p95_ms for r in res.rows], marker="o", label="p95")
    b.axhline(15.0, color="grey", ls="--", lw=0.8, label="target p95")
    b.set_xscale("log")
    b.set_xlabel("frames stored")
    b.set_ylabel("retrieval ms (map policy, K=8)")
    b.set_ylim(bottom=0)
    b.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
