"""Posed frames in memory: poses, times and intrinsics as arrays, pixels loaded only when a frame is rendered.

A :class:`Frame` is an image with optional z-depth, intrinsics, a
camera-to-world pose, story time, an optional dynamic mask, and provenance.
:class:`FrameSet` keeps what retrieval reads for every frame (its camera as a
row of :class:`~agentmem.geometry.Cameras`, whether it has depth, how far it
sees) in contiguous arrays and feeds frames with depth to its static map, any
:class:`~agentmem.spatial.scenemap.SceneMap` (a
:class:`~agentmem.spatial.voxmap.VoxelMap` by default).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agentmem.geometry import Cameras, Intrinsics, unproject
from agentmem.spatial.scenemap import Observation, SceneMap
from agentmem.spatial.voxmap import MapConfig, VoxelMap, depth_normals, grown, observation_scores


@dataclass
class Frame:
    """One posed image. ``rgb`` (h, w, 3) uint8 and ``depth`` (h, w) metres (0 = unknown) may be ``None`` once stored;
    ``dynamic`` marks pixels of moving things, ``instances`` maps pixels to entity ids (0 = none)."""

    id: str
    t: float
    c2w: np.ndarray
    k: Intrinsics
    rgb: np.ndarray | None = None
    depth: np.ndarray | None = None
    dynamic: np.ndarray | None = None
    instances: np.ndarray | None = None
    instance_ids: dict[int, str] = field(default_factory=dict)
    file_path: str = ""
    source: dict[str, Any] = field(default_factory=dict)


REACH_GRID = (15, 20)


def moving(frame: Frame) -> np.ndarray:
    """Pixels kept out of the static map: under the dynamic mask or showing an entity instance."""
    h, w = frame.k.h, frame.k.w
    out = np.zeros((h, w), bool) if frame.dynamic is None else frame.dynamic.astype(bool)
    if frame.instances is not None:
        out = out | (frame.instances > 0)
    return out


def entity_samples(frame: Frame, max_depth: float = 80.0) -> list[tuple[str, np.ndarray, int]]:
    """(entity id, 3D position, pixels) of each entity the frame's instance map shows with depth: the median of
    its pixels' world points (robust to a few pixels of background at its outline).

    Examples
    --------
    >>> k = Intrinsics(2.0, 2.0, 2.0, 2.0, 4, 4)
    >>> inst = np.zeros((4, 4), np.int32); inst[1:3, 1:3] = 7
    >>> f = Frame("f", 0.0, np.eye(4), k, depth=np.full((4, 4), 3.0), instances=inst, instance_ids={7: "bob"})
    >>> [(e, p.round(2).tolist(), n) for e, p, n in entity_samples(f)]
    [('bob', [0.0, 0.0, -3.0], 4)]
    """
    if frame.instances is None or frame.depth is None:
        return []
    pts = unproject(frame.depth.astype(np.float64), frame.k, frame.c2w)
    ok = (frame.depth > 0) & (frame.depth < max_depth)
    out = []
    for label, entity in sorted(frame.instance_ids.items()):
        sel = (frame.instances == label) & ok
        if sel.any():
            out.append((entity, np.median(pts[sel], axis=0), int(sel.sum())))
    return out


def reach_of(depth: np.ndarray) -> np.ndarray:
    """The farthest depth in each cell of a 20 x 15 grid over a depth image; inf where a pixel has none (0).

    Examples
    --------
    >>> d = np.full((30, 40), 5.0); d[0, 0] = 9.0; d[29, 39] = 0.0
    >>> r = reach_of(d); float(r[0, 0]), float(r[1, 1]), float(r[14, 19])
    (9.0, 5.0, inf)
    """
    h, w = depth.shape
    rows = np.minimum(np.arange(h) * REACH_GRID[0] // h, REACH_GRID[0] - 1)
    cols = np.minimum(np.arange(w) * REACH_GRID[1] // w, REACH_GRID[1] - 1)
    far = np.where(depth > 0, depth, np.inf).astype(np.float32)
    out = np.full(REACH_GRID, -np.inf, np.float32)
    np.maximum.at(out, (rows[:, None], cols[None, :]), far)
    return out


class FrameSet:
    """Every frame's camera (pose, intrinsics, time) as arrays (frame number = insertion order), plus the static map:
    ``scene_map`` when given, else a :class:`~agentmem.spatial.voxmap.VoxelMap` with ``config``."""

    def __init__(self, config: MapConfig | None = None, *, scene_map: SceneMap | None = None):
        self.map: SceneMap = VoxelMap(config) if scene_map is None else scene_map
        self.ids: list[str] = []
        self.paths: list[str] = []
        self._c2w = np.zeros((0, 4, 4), np.float64)
        self._t = np.zeros(0, np.float64)
        self._k = np.zeros((0, 4), np.float64)  # fx, fy, cx, cy
        self._size = np.zeros((0, 2), np.int64)  # w, h
        self._depth = np.zeros(0, bool)
        self._reach = np.zeros((0, *REACH_GRID), np.float32)
        self._n = 0
        self.pixels: Callable[[int], tuple[np.ndarray, np.ndarray | None]] | None = None

    def __len__(self) -> int:
        return self._n

    @property
    def cameras(self) -> Cameras:
        """Every frame's camera (views of the arrays: no copy)."""
        n = self._n
        k, size = self._k[:n], self._size[:n]
        return Cameras(self._c2w[:n], k[:, 0], k[:, 1], k[:, 2], k[:, 3], size[:, 0], size[:, 1], self._t[:n])

    @property
    def c2w(self) -> np.ndarray:
        return self._c2w[: self._n]

    @property
    def times(self) -> np.ndarray:
        return self._t[: self._n]

    @property
    def has_depth(self) -> np.ndarray:
        return self._depth[: self._n]

    @property
    def reach(self) -> np.ndarray:
        """(n, 15, 20): how far each frame sees through each cell of a 20 x 15 grid over its image (the farthest
        depth in the cell; inf where the frame has no depth there, or a pixel of the cell sees nothing)."""
        return self._reach[: self._n]

    def set_reach(self, i: int, reach: np.ndarray) -> None:
        """Set frame ``i``'s reach (one stored with the frame)."""
        self._reach[i] = reach

    @property
    def positions(self) -> np.ndarray:
        return self.c2w[:, :3, 3]

    @property
    def forwards(self) -> np.ndarray:
        return -self.c2w[:, :3, 2]

    def _grow(self) -> None:
        if self._n < len(self._t):
            return
        cap = max(64, 2 * len(self._t))
        self._c2w, self._t, self._depth = grown(self._c2w, cap), grown(self._t, cap), grown(self._depth, cap)
        self._k, self._size = grown(self._k, cap), grown(self._size, cap)
        self._reach = grown(self._reach, cap, np.inf)

    @classmethod
    def of_cameras(cls, ids: Sequence[str], cameras: Cameras) -> FrameSet:
        """Frames that are cameras only (no pixels, no depth, an empty map), all at once: what a policy needs to
        choose among views kept elsewhere (a story's earlier shots)."""
        fs = cls()
        n = fs._n = len(cameras)
        fs.ids, fs.paths = list(ids), [""] * n
        fs._c2w, fs._t = np.array(cameras.c2w, np.float64), np.array(cameras.times, np.float64)
        fs._k = np.stack([cameras.fx, cameras.fy, cameras.cx, cameras.cy], axis=1).astype(np.float64)
        fs._size = np.stack([cameras.w, cameras.h], axis=1).astype(np.int64)
        fs._depth, fs._reach = np.zeros(n, bool), np.full((n, *REACH_GRID), np.inf, np.float32)
        return fs

    def add(self, frame: Frame, *, has_depth: bool | None = None) -> int:
        """Append ``frame`` (validated by the caller) and map its static pixels when it carries them; returns its
        number. ``has_depth`` records depth kept elsewhere (a stored frame whose pixels stay on disk)."""
        self._grow()
        i = self._n
        self._c2w[i], self._t[i] = frame.c2w, frame.t
        k = frame.k
        self._k[i], self._size[i] = (k.fx, k.fy, k.cx, k.cy), (k.w, k.h)
        self._depth[i] = frame.depth is not None if has_depth is None else has_depth
        self.ids.append(frame.id)
        self.paths.append(frame.file_path)
        self._n += 1
        if frame.depth is not None and frame.rgb is not None:
            self.map_frame(i, frame)
        return i

    def map_frame(self, i: int, frame: Frame) -> int:
        """Put the frame's static surface points into the map; returns the number of new voxels."""
        return self.map_frames([(i, frame)])

    def map_frames(self, frames: list[tuple[int, Frame]]) -> int:
        """:meth:`map_frame` for several frames (numbers and frames, in order) with one map insertion."""
        batch = []
        for i, frame in frames:
            if frame.depth is None or frame.rgb is None:
                continue
            self._reach[i] = reach_of(frame.depth)
            pts = unproject(frame.depth.astype(np.float64), frame.k, frame.c2w)
            ok = (frame.depth > 0) & (frame.depth < self.map.config.max_depth)
            ok &= ~moving(frame)
            normals = depth_normals(pts)
            scores = observation_scores(pts[ok], normals[ok], frame.c2w[:3, 3])
            batch.append(Observation(i, pts[ok], frame.rgb[ok].astype(np.float32) / 255.0, scores))
        return self.map.observe_many(batch)
