"""The interactive world loop: a camera path and an action in, memory-conditioned frames out, written back.

``WorldLoop.step(path, action)`` runs one chunk, in numbered steps:

1. **check** the camera path: at least one frame, every pose finite and rigid, times not going backwards, every
   entity known; an error names the step and the field, and nothing is written;
2. **plan** (:meth:`WorldLoop.plan`): context frames chosen by the spatial memory for the chunk, memory rendered
   into every pose (guidance RGB, depth, hole mask), the short-term window, the long-term anchor, the entities
   in view with their appearance as of now and their last known positions, and a memory trace;
3. **generate** with the back end (``generate_world(plan) -> WorldClip``);
4. **write back** the chunk, whole or not at all (one transaction), with the back end's depth, or a depth
   estimator's, or none (then the ``fov`` policy serves later views).

Modes, for measuring what memory is worth: ``memory`` (all of the above), ``window`` (context and guidance from
the last frames only, a sliding window), ``none`` (no context, no guidance: the back end invents everything).

A loop plans on two threads of its own: use it in a ``with`` block, or call :meth:`WorldLoop.close` when done.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np

from agentmem.errors import BadInputError
from agentmem.spatial.camera import Intrinsics, check_pose
from agentmem.spatial.frames import Frame
from agentmem.spatial.render import Prepared, Rendered, Source, forward_warp_path, prepare
from agentmem.spatial.world import SpatialMemory
from generators.conditioning import TraceItem
from generators.world import ContextFrame, WorldClip, WorldEntity, WorldGenerator, WorldPlan

MODES = ("memory", "window", "none")


@dataclass(frozen=True)
class CameraPath:
    """The next chunk: camera-to-world poses (T, 4, 4), one camera, and each frame's story time."""

    c2w: np.ndarray
    k: Intrinsics
    times: Sequence[float]


@dataclass(frozen=True)
class LoopConfig:
    """Context frames per chunk, frames in the short-term window, and the mode (one of :data:`MODES`)."""

    budget: int = 4
    window: int = 8
    mode: str = "memory"


@dataclass
class StepRecord:
    """What one step cost and wrote: planning and generation seconds, frames stored."""

    step: int
    plan_s: float
    generate_s: float
    write_s: float
    stored: int
    map_voxels: int


@dataclass
class WorldLoop:
    """Drive a back end chunk by chunk with a :class:`SpatialMemory` in the loop (see the module docstring)."""

    spatial: SpatialMemory
    generator: WorldGenerator
    config: LoopConfig = field(default_factory=LoopConfig)
    seed: int = 0
    depth_estimator: Callable[[np.ndarray], np.ndarray] | None = None
    steps: int = 0
    records: list[StepRecord] = field(default_factory=list)
    _anchor: tuple[str, np.ndarray] | None = None  # the loop's first frame (id, pixels), kept in memory
    # Planning is numpy, which leaves the GIL in its loops: two threads use both cores of a small machine. The
    # loop keeps them for its life rather than starting threads at every step; close() ends them.
    _workers: ThreadPoolExecutor = field(
        init=False, repr=False, compare=False, default_factory=lambda: ThreadPoolExecutor(max_workers=2)
    )
    _closed: bool = field(init=False, repr=False, compare=False, default=False)

    def __post_init__(self) -> None:
        if self.config.mode not in MODES:
            raise BadInputError(f"loop: mode: {self.config.mode!r} is not one of {', '.join(MODES)}")

    def close(self) -> None:
        """End the planning threads (after a plan in progress); a second call does nothing. The spatial memory
        stays open: it belongs to the caller."""
        self._closed = True
        self._workers.shutdown(wait=True)

    def __enter__(self) -> WorldLoop:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def step(self, path: CameraPath, action: str = "", *, prompt: str = "", entities: Sequence[str] = ()
             ) -> tuple[WorldPlan, WorldClip]:  # fmt: skip
        """Run one chunk: plan from memory, generate, write back; returns the plan and the generated clip."""
        where = f"step {self.steps}"
        # 1. Check everything before anything is written.
        self.check(path, entities, where)
        # 2. Plan from memory as of the chunk's first frame.
        t0 = time.perf_counter()
        plan = self.plan(path, action, prompt=prompt, entities=entities)
        t1 = time.perf_counter()
        # 3. Generate.
        clip = self.generator.generate_world(plan)
        t2 = time.perf_counter()
        # 4. Write the chunk back, whole or not at all.
        stored = self._write_back(path, plan, clip, action)
        t3 = time.perf_counter()
        self.records.append(StepRecord(self.steps, t1 - t0, t2 - t1, t3 - t2, stored, len(self.spatial.frames.map)))
        self.steps += 1
        return plan, clip

    def check(self, path: CameraPath, entities: Sequence[str], where: str) -> None:
        """Refuse a path of zero frames, a non-finite or non-rigid pose, times going backwards or before the
        memory's last frame, and an unknown entity; the message names the step and the field."""
        if len(path.c2w) == 0 or len(path.c2w) != len(path.times):
            raise BadInputError(f"{where}: camera_path: needs at least one frame, with one time per pose")
        for i, m in enumerate(path.c2w):
            check_pose(m, f"{where}: frame {i}")
        times = np.asarray(path.times, np.float64)
        if not np.isfinite(times).all() or (np.diff(times) < 0).any():
            raise BadInputError(f"{where}: time: must be finite and must not go backwards within the chunk")
        if len(self.spatial.frames) and times[0] < self.spatial.frames.times.max():
            raise BadInputError(f"{where}: time: {times[0]:g} is before the last stored frame")
        for e in entities:
            if not self.spatial.store.entity_exists(e):
                raise BadInputError(f"{where}: entities: unknown entity {e!r}")

    def plan(self, path: CameraPath, action: str = "", *, prompt: str = "", entities: Sequence[str] = ()
             ) -> WorldPlan:  # fmt: skip
        """The :class:`WorldPlan` of a chunk (step 2 of :meth:`step`); writes nothing."""
        if self._closed:
            raise BadInputError(f"step {self.steps}: the loop is closed; make a new WorldLoop")
        t = float(path.times[0]) - 1e-9  # memory as of the chunk: nothing from the chunk itself
        chosen, sources = self._with_pixels(self._context(path, t))
        # The sources' poses are relative to the memory's origin (float32 render passes need small coordinates).
        local = replace(path, c2w=self.spatial.local(np.asarray(path.c2w)))
        renders = _render_all(self._workers, prepare(sources), local) if sources else []
        guidance = _stack(renders, path)
        window = self._window(t)
        anchor = self._anchor_frame()
        trace = [TraceItem(c.id, "frame", c.score, c.reason) for c in chosen]
        return WorldPlan(
            step=self.steps, times=[float(x) for x in path.times], c2w=np.asarray(path.c2w, np.float64),
            camera=path.k, action=action,
            prompt=prompt or action, guidance_rgb=guidance[0], guidance_depth=guidance[1], guidance_mask=guidance[2],
            context=chosen, window=window[0], window_ids=window[1], anchor=anchor[0], anchor_id=anchor[1],
            entities=[self._entity(e, float(path.times[0])) for e in entities], memory_trace=trace, seed=self.seed,
        )  # fmt: skip

    # -- planning helpers -------------------------------------------------------------------
    def _context(self, path: CameraPath, t: float) -> list[ContextFrame]:
        """Frames for the whole chunk: those chosen for its first, middle and last pose, best first, up to the
        budget (the sliding window's latest frames in ``window`` mode; none in ``none`` mode)."""
        mode, budget = self.config.mode, self.config.budget
        if mode == "none" or not len(self.spatial.frames):
            return []
        policy = "recent" if mode == "window" else None
        picks: dict[str, ContextFrame] = {}
        n = len(path.c2w)
        found = self._workers.map(lambda i: self.spatial.retrieve(path.c2w[i], path.k, t, budget=budget, policy=policy),
                                  dict.fromkeys((0, n // 2, n - 1)))  # fmt: skip
        for results in found:
            for r in results:
                if r.id not in picks or picks[r.id].score < r.score:
                    c2w = self.spatial.pose(self.spatial.number_of(r.id))
                    picks[r.id] = ContextFrame(r.id, r.time, c2w, r.score, r.reason)
        return sorted(picks.values(), key=lambda c: -c.score)[:budget]

    def _with_pixels(self, chosen: list[ContextFrame]) -> tuple[list[ContextFrame], list[Source]]:
        """The chosen frames with their images, and those with depth as warp sources."""
        frames, sources = [], []
        for c in chosen:
            i = self.spatial.number_of(c.id)
            rgb, depth = self.spatial.pixels(i)
            frames.append(replace(c, rgb=rgb))
            if depth is not None:
                sources.append(
                    Source(rgb, depth, self.spatial.frames.cameras.intrinsics(i), self.spatial.frames.c2w[i])
                )
        return frames, sources

    def _window(self, t: float) -> tuple[np.ndarray | None, list[str]]:
        fs = self.spatial.frames
        if not len(fs):
            return None, []
        last = np.nonzero(fs.times <= t)[0][-self.config.window :]
        if self.config.mode == "none" or not len(last):
            return None, []
        return np.stack([self.spatial.pixels(int(i))[0] for i in last]), [fs.ids[int(i)] for i in last]

    def _anchor_frame(self) -> tuple[np.ndarray | None, str | None]:
        """StreamingT2V's anchor: the first frame of the loop, kept for every later chunk."""
        if self.config.mode != "memory" or self._anchor is None:
            return None, None
        return self._anchor[1], self._anchor[0]

    def _entity(self, entity: str, t: float) -> WorldEntity:
        slot = self.spatial.store.entity_slot(entity)
        appearance = "; ".join(f"{key}: {value}" for key, value in slot.state_at(t).items())
        seen = self.spatial.position_at(entity, t)
        return WorldEntity(entity, slot.name, appearance,
                           None if seen is None else seen.position, None if seen is None else seen.t)  # fmt: skip

    # -- write-back -------------------------------------------------------------------------
    def _write_back(self, path: CameraPath, plan: WorldPlan, clip: WorldClip, action: str) -> int:
        n, size = len(path.c2w), (path.k.h, path.k.w)
        if clip.frames.shape != (n, *size, 3) or (clip.depth is not None and clip.depth.shape != (n, *size)):
            raise BadInputError(
                f"step {plan.step}: clip: the back end returned frames {list(clip.frames.shape)} (depth "
                f"{None if clip.depth is None else list(clip.depth.shape)}) for {n} poses at {size[1]}x{size[0]}"
            )
        depth = clip.depth
        if depth is None and self.depth_estimator is not None:
            depth = np.stack([self.depth_estimator(f) for f in clip.frames]).astype(np.float32)
        frames = [
            Frame(f"step{plan.step:05d}/f{i:03d}", float(t), np.asarray(m), path.k, clip.frames[i],
                  None if depth is None else depth[i], source={"step": plan.step, "action": action})
            for i, (m, t) in enumerate(zip(path.c2w, path.times, strict=True))
        ]  # fmt: skip
        self.spatial.add(frames)
        if self._anchor is None:
            self._anchor = (frames[0].id, clip.frames[0])
        return len(frames)


def _render_all(workers: ThreadPoolExecutor, prepared: Prepared, path: CameraPath) -> list[Rendered]:
    """Memory rendered into every pose of the path, four poses to a pass and two passes at a time (numpy leaves
    the GIL in its loops, so two threads use both cores of a small machine; four poses keep a pass's arrays in
    cache)."""
    batches = [path.c2w[i : i + 4] for i in range(0, len(path.c2w), 4)]
    return [r for rs in workers.map(lambda m: forward_warp_path(prepared, path.k, m), batches) for r in rs]


def _stack(renders: list[Rendered], path: CameraPath) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n, h, w = len(path.c2w), path.k.h, path.k.w
    if not renders:
        return np.zeros((n, h, w, 3), np.uint8), np.zeros((n, h, w), np.float32), np.zeros((n, h, w), bool)
    return (np.stack([r.rgb for r in renders]), np.stack([r.depth for r in renders]),
            np.stack([r.mask for r in renders]))  # fmt: skip
