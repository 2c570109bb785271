"""What to keep: which frames compression moves to the archive, and which stay active.

The rule, deterministic:

1. **Keyframes stay.** In time order, a frame whose pose differs from every keyframe before it by more than
   ``key_change`` (metres of camera distance plus 5 m per radian of viewing angle, the ``pose`` policy's
   measure) is a keyframe: the first view of a new place or direction.
2. **Covered frames go.** Every other frame with depth is archived when the map voxels it is a recorded
   observer of keep at least ``enough`` other active observers that saw them at least as well (a score at least
   its own), except voxels holding at most ``tolerance`` of its observation scores (5%: the odd far voxel only
   it glimpsed does not pin a frame). Frames are tried from the least useful (the smallest sum of observation
   scores) up, so the best views of every voxel stay.
3. Frames without depth stay: the map knows nothing of what they saw.

Nothing is deleted: archived frames keep their rows and pixels, retrieval skips them unless asked, and a restore
makes them active again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agentmem.spatial.camera import view_distance
from agentmem.spatial.frames import FrameSet


@dataclass(frozen=True)
class CompressionPlan:
    """Frame numbers to archive, the keyframes found, and how many frames stay active."""

    archive: np.ndarray
    keyframes: np.ndarray
    active_after: int


def keyframes(fs: FrameSet, key_change: float = 10.0) -> np.ndarray:
    """Frame numbers of the keyframes, in time order: each differs from every earlier keyframe by more than
    ``key_change``.

    Examples
    --------
    >>> from agentmem.spatial.camera import Intrinsics, look_at
    >>> from agentmem.spatial.frames import Frame
    >>> fs = FrameSet()
    >>> for i, x in enumerate([0.0, 1.0, 20.0, 0.5]):
    ...     _ = fs.add(Frame(str(i), float(i), look_at([x, 0, 0], [x, 0, -1]), Intrinsics.from_fov(60, 8, 6)))
    >>> keyframes(fs).tolist()
    [0, 2]
    """
    order = np.argsort(fs.times, kind="stable")
    pos, fwd = fs.positions, fs.forwards
    keys: list[int] = []
    for i in order:
        if keys:
            k = np.array(keys)
            if view_distance(pos[k], fwd[k], fs.c2w[i]).min() <= key_change:
                continue
        keys.append(int(i))
    return np.array(keys, np.int64)


def plan_compression(fs: FrameSet, active: np.ndarray, *, enough: int = 2, key_change: float = 10.0,
                     tolerance: float = 0.05) -> CompressionPlan:  # fmt: skip
    """The frames to archive now among the ``active`` ones (see the module's rule)."""
    active = active.copy()
    keys = keyframes(fs, key_change)
    obs, score = fs.map.obs_frame, fs.map.obs_score
    flat = obs.reshape(-1)
    recorded = np.nonzero(flat >= 0)[0]
    by_frame = recorded[np.argsort(flat[recorded], kind="stable")]
    starts = np.searchsorted(flat[by_frame], np.arange(len(fs) + 1))
    value = np.bincount(flat[recorded], weights=score.reshape(-1)[recorded], minlength=len(fs))
    candidate = active & fs.has_depth
    candidate[keys] = False
    archive = []
    for f in np.nonzero(candidate)[0][np.argsort(value[candidate], kind="stable")]:
        cells = by_frame[starts[f] : starts[f + 1]]
        rows, slots = np.divmod(cells, obs.shape[1])
        others, their = obs[rows], score[rows]
        mine = score[rows, slots][:, None]
        better = (others >= 0) & (others != f) & active[np.maximum(others, 0)] & (their >= mine)
        lacking = better.sum(axis=1) < enough
        if mine[lacking].sum() <= tolerance * mine.sum():
            active[f] = False
            archive.append(int(f))
    return CompressionPlan(np.array(archive, np.int64), keys, int(active.sum()))
