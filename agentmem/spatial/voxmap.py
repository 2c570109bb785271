"""The static 3D map: a sparse voxel grid built from depth, each voxel keeping the frames that saw it best.

:class:`VoxelMap` is the default :class:`~agentmem.spatial.scenemap.SceneMap` (the contract every map fulfils).

Each voxel holds its mean colour, how often it was seen, and up to ``observers``
frames that saw it. **The observer rule**, deterministic: an observation scores
``cos(incidence) / (1 + distance / 10 m)`` (close and frontal views score high);
while a voxel has a free slot the frame takes it; otherwise the frame replaces
the lowest-scored observer if its score is at least that one's, so among equal
views the more recent wins. A frame is recorded once per voxel (its best pixel).

The map grows with the space explored, not with time: a revisit updates the
voxels it sees and adds none. Pixels under a dynamic mask never reach it.
Voxels live in flat numpy arrays, one row per voxel in the order voxels were
first seen, with spare capacity so that new voxels are appended, not inserted.
A sorted index of their packed integer coordinates (keys, and each key's row)
finds a frame's voxels by binary search; adding voxels inserts into that index
only, 16 bytes a voxel, so a write costs little more as the map grows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from agentmem.errors import BadInputError
from agentmem.geometry import Intrinsics, project

FIELD_RANGE = 1 << 20
"""Voxel coordinates are packed as three 21-bit fields, each in [-2**20, 2**20) (offset to be non-negative)."""


def pack(ijk: np.ndarray) -> np.ndarray:
    """Packed int64 keys of integer voxel coordinates (n, 3), each in [-2**20, 2**20); one outside has no key
    (it would wrap onto another voxel), so it is refused.

    Examples
    --------
    >>> unpack(pack(np.array([[1, -2, 3]]))).tolist()
    [[1, -2, 3]]
    >>> pack(np.array([[2**20, 0, 0]]))
    Traceback (most recent call last):
    ...
    agentmem.errors.BadInputError: map: voxel coordinate 1048576 is outside [-1048576, 1048576)
    """
    b = ijk.astype(np.int64)
    if len(b) and (b.min() < -FIELD_RANGE or b.max() >= FIELD_RANGE):
        bad = b.min() if b.min() < -FIELD_RANGE else b.max()
        raise BadInputError(f"map: voxel coordinate {bad} is outside [{-FIELD_RANGE}, {FIELD_RANGE})")
    b = b + FIELD_RANGE
    return (b[:, 0] << 42) | (b[:, 1] << 21) | b[:, 2]


def unpack(keys: np.ndarray) -> np.ndarray:
    mask = (1 << 21) - 1
    return np.stack([(keys >> 42) & mask, (keys >> 21) & mask, keys & mask], axis=1) - FIELD_RANGE


@dataclass(frozen=True)
class MapConfig:
    """Voxel edge in metres, observers kept per voxel, and the farthest depth that is mapped."""

    voxel: float = 0.5
    observers: int = 16
    max_depth: float = 80.0


ARRAYS = ("keys", "color", "hits", "obs_frame", "obs_score")


class VoxelMap:
    """Sparse voxels with colour, hit count and their best observers (frame numbers and scores).

    ``keys``, ``color``, ``hits``, ``obs_frame`` and ``obs_score`` hold one row per voxel, in the order voxels
    were first seen; :meth:`in_key_order` gives them sorted by key (the same map built in other batches gives
    the same arrays there).
    """

    def __init__(self, config: MapConfig | None = None):
        self.config = config or MapConfig()
        k = self.config.observers
        self._n = 0
        self._data: dict[str, np.ndarray] = {
            "keys": np.zeros(0, np.int64),
            "color": np.zeros((0, 3), np.float32),
            "hits": np.zeros(0, np.int64),
            "obs_frame": np.zeros((0, k), np.int64),
            "obs_score": np.zeros((0, k), np.float32),
        }
        self._sorted = np.zeros(0, np.int64)  # every key, ascending
        self._row = np.zeros(0, np.int64)  # the row of each sorted key
        self._centres: np.ndarray | None = None

    def __len__(self) -> int:
        return self._n

    keys = property(lambda self: self._data["keys"][: self._n], doc="Packed voxel coordinates (n,), int64.")
    color = property(lambda self: self._data["color"][: self._n], doc="Mean colour (n, 3) in [0, 1].")
    hits = property(lambda self: self._data["hits"][: self._n], doc="Frames that saw each voxel (n,).")
    obs_frame = property(lambda self: self._data["obs_frame"][: self._n], doc="Best observers (n, k); -1: free.")
    obs_score = property(lambda self: self._data["obs_score"][: self._n], doc="Their scores (n, k); -inf: free.")

    def arrays(self) -> dict[str, np.ndarray]:
        """The map's arrays (:data:`ARRAYS`), as a checkpoint stores them."""
        return {name: getattr(self, name) for name in ARRAYS}

    def restore(self, arrays: Mapping[str, np.ndarray]) -> bool:
        """Take the map's arrays from a checkpoint (rows in any order) and rebuild the sorted index; ``False``, and
        nothing changed, when a checkpoint lacks one of :data:`ARRAYS`."""
        if not all(name in arrays for name in ARRAYS):
            return False
        self._data = {name: np.array(arrays[name]) for name in ARRAYS}
        self._n = len(self._data["keys"])
        self._row = np.argsort(self._data["keys"], kind="stable")
        self._sorted = self._data["keys"][self._row]
        self._centres = None
        return True

    def in_key_order(self) -> dict[str, np.ndarray]:
        """The map's arrays with rows sorted by key."""
        return {name: getattr(self, name)[self._row] for name in ARRAYS}

    @property
    def centres(self) -> np.ndarray:
        """Voxel centres (n, 3), float64; cached until voxels are added."""
        if self._centres is None:
            self._centres = (unpack(self.keys).astype(np.float64) + 0.5) * self.config.voxel
        return self._centres

    def observe(self, frame: int, points: np.ndarray, colors: np.ndarray, scores: np.ndarray) -> int:
        """Add one frame's surface ``points`` (n, 3) with ``colors`` (n, 3) in [0, 1] and per-point observation
        ``scores``; returns how many voxels are new."""
        return self.observe_many([(frame, points, colors, scores)])

    def observe_many(self, observations: Sequence[tuple[int, np.ndarray, np.ndarray, np.ndarray]]) -> int:
        """:meth:`observe` for several frames, in order, with one insertion of all their new voxels; the result
        is the same as observing them one by one."""
        per_frame = [(f, *_best_per_voxel(self, p, c, sc)) for f, p, c, sc in observations if len(p)]
        if not per_frame:
            return 0
        new = self._insert_missing(np.unique(np.concatenate([k for _, k, _, _ in per_frame])))
        for frame, ukeys, ucol, uscore in per_frame:
            idx = self._row[np.searchsorted(self._sorted, ukeys)]
            n = self.hits[idx]
            self.color[idx] = (self.color[idx] * n[:, None] + ucol) / (n[:, None] + 1)
            self.hits[idx] = n + 1
            self._record(idx, frame, uscore)
        return new

    def _insert_missing(self, ukeys: np.ndarray) -> int:
        """Append rows for the keys (sorted, unique) not yet in the map and index them."""
        if self._n:
            pos = np.minimum(np.searchsorted(self._sorted, ukeys), self._n - 1)
            fresh = ukeys[self._sorted[pos] != ukeys]
        else:
            fresh = ukeys
        if not len(fresh):
            return 0
        rows = np.arange(self._n, self._n + len(fresh))
        self._grow(self._n + len(fresh))
        k = self.config.observers
        d = self._data
        d["keys"][rows], d["color"][rows], d["hits"][rows] = fresh, 0.0, 0
        d["obs_frame"][rows], d["obs_score"][rows] = np.full(k, -1), np.full(k, -np.inf, np.float32)
        at = np.searchsorted(self._sorted, fresh)
        self._sorted = np.insert(self._sorted, at, fresh)
        self._row = np.insert(self._row, at, rows)
        self._n += len(fresh)
        self._centres = None
        return len(fresh)

    def _grow(self, need: int) -> None:
        """Room for ``need`` rows: capacity doubles, so appending costs amortised constant time per voxel."""
        have = len(self._data["keys"])
        if need > have:
            cap = max(need, 2 * have, 1024)
            self._data = {name: grown(a[: self._n], cap) for name, a in self._data.items()}

    def _record(self, idx: np.ndarray, frame: int, score: np.ndarray) -> None:
        slot = np.argmin(self.obs_score[idx], axis=1)  # an empty slot scores -inf, so it is taken first
        take = score >= self.obs_score[idx, slot]
        self.obs_frame[idx[take], slot[take]] = frame
        self.obs_score[idx[take], slot[take]] = score[take]

    def visible(self, k: Intrinsics, c2w: np.ndarray, *, cell: int = 4) -> tuple[np.ndarray, np.ndarray]:
        """Indices of the voxels seen from ``c2w`` and the image area each covers (pixels, at most the cell's).

        Each voxel's image footprint, a square of side ``f * voxel / z``, is drawn into a z-buffer of ``cell``-pixel
        cells; a voxel is visible when it lies within 1.5 voxels of the nearest depth at its centre's cell
        (occlusion by the map itself). Its area is its footprint's inside the image, so near surfaces weigh as
        much as they fill the view.
        """
        none = np.zeros(0, np.int64), np.zeros(0)
        if not len(self.keys):
            return none
        u, v, z = project(self.centres, k, c2w)
        # The z-buffer: each voxel fills the cells its image footprint (half-width f * voxel / 2z, which tiles a
        # frontal surface without gaps) touches, so a near surface hides what lies behind all of it, not only
        # behind its centre, and overhangs its silhouette by no more than half a voxel. A voxel whose footprint
        # reaches into the image counts, even if its centre lies outside (a wall just ahead of the camera).
        with np.errstate(divide="ignore"):
            r = np.minimum(k.fx * self.config.voxel / np.maximum(z, 1e-3) / 2, 16 * cell)
        inside = (z > 1e-3) & (z < self.config.max_depth)
        inside &= (u + r >= 0) & (u - r < k.w) & (v + r >= 0) & (v - r < k.h)
        ids = np.nonzero(inside)[0]
        if not len(ids):
            return none
        gw, gh = (k.w + cell - 1) // cell, (k.h + cell - 1) // cell
        zs, r = z[ids], r[ids]
        x0 = np.clip((u[ids] - r) // cell, 0, gw - 1).astype(np.int64)
        x1 = np.clip((u[ids] + r) // cell, 0, gw - 1).astype(np.int64)
        y0 = np.clip((v[ids] - r) // cell, 0, gh - 1).astype(np.int64)
        y1 = np.clip((v[ids] + r) // cell, 0, gh - 1).astype(np.int64)
        zbuf = np.full(gw * gh, np.inf)
        np.minimum.at(zbuf, *_rect_cells(x0, x1, y0, y1, gw, zs))
        cu = np.clip(u[ids] // cell, 0, gw - 1).astype(np.int64)
        cv = np.clip(v[ids] // cell, 0, gh - 1).astype(np.int64)
        keep = zs <= zbuf[cv * gw + cu] + 1.5 * self.config.voxel
        uu, vv, r = u[ids][keep], v[ids][keep], r[keep]
        area = (np.minimum(uu + r, k.w) - np.maximum(uu - r, 0)) * (np.minimum(vv + r, k.h) - np.maximum(vv - r, 0))
        return ids[keep], area


def _rect_cells(x0, x1, y0, y1, gw: int, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat cell index of every cell in each rectangle [x0, x1] x [y0, y1], with its rectangle's ``value``.

    Examples
    --------
    >>> x0, x1, y0, y1 = np.array([0, 2]), np.array([1, 2]), np.array([0, 1]), np.array([0, 2])
    >>> c, z = _rect_cells(x0, x1, y0, y1, 4, np.array([5.0, 7.0]))
    >>> c.tolist(), z.tolist()
    ([0, 1, 6, 10], [5.0, 5.0, 7.0, 7.0])
    """
    nx, ny = x1 - x0 + 1, y1 - y0 + 1
    count = nx * ny
    owner = np.repeat(np.arange(len(x0)), count)
    local = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    dy, dx = np.divmod(local, nx[owner])
    return (y0[owner] + dy) * gw + x0[owner] + dx, value[owner]


def grown(a: np.ndarray, rows: int, fill: float = 0) -> np.ndarray:
    """``a`` with room for ``rows`` rows, the new ones set to ``fill`` (growing arrays by doubling their capacity
    keeps appends cheap).

    Examples
    --------
    >>> grown(np.array([[1, 2]]), 3).tolist()
    [[1, 2], [0, 0], [0, 0]]
    """
    out = np.full((rows, *a.shape[1:]), fill, a.dtype)
    out[: len(a)] = a
    return out


def _best_per_voxel(vm: VoxelMap, points: np.ndarray, colors: np.ndarray, scores: np.ndarray):
    """One observation per voxel and frame: the voxel keys, and the colour and score of each voxel's best point."""
    keys = pack(np.floor(points / vm.config.voxel).astype(np.int64))
    order = np.lexsort((-scores, keys))
    keys, colors, scores = keys[order], colors[order], scores[order]
    first = np.r_[True, keys[1:] != keys[:-1]]
    return keys[first], colors[first], scores[first]


def observation_scores(points: np.ndarray, normals: np.ndarray, cam_pos: np.ndarray) -> np.ndarray:
    """``cos(incidence) / (1 + distance / 10)`` of each surface point seen from ``cam_pos``.

    Examples
    --------
    >>> observation_scores(np.array([[0.0, 0.0, -10.0]]), np.array([[0.0, 0.0, 1.0]]), np.zeros(3)).round(3).tolist()
    [0.5]
    """
    ray = points - cam_pos
    dist = np.linalg.norm(ray, axis=1)
    cos = np.abs(np.einsum("ij,ij->i", ray, normals)) / np.maximum(dist, 1e-9)
    return (cos / (1.0 + dist / 10.0)).astype(np.float32)


def depth_normals(points: np.ndarray) -> np.ndarray:
    """Unit normals (h, w, 3) of an organised point image, from the cross product of its neighbour differences
    (the image gives every point its neighbours: no neighbour search, as Open3D's normals of a cloud need)."""
    dx = np.zeros_like(points)
    dy = np.zeros_like(points)
    dx[:, 1:-1] = points[:, 2:] - points[:, :-2]
    dy[1:-1] = points[2:] - points[:-2]
    dx[:, 0], dx[:, -1] = dx[:, 1], dx[:, -2]
    dy[0], dy[-1] = dy[1], dy[-2]
    n = np.cross(dx, dy)
    return n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)
