"""Choosing reference frames of a location: camera-FOV overlap with greedy coverage, or recency and diversity.

The rule follows Context-as-Memory and WorldMem:

1. sample points in the target view's frustum (a grid of rays at a few depths);
2. for each earlier frame with a camera pose, the points inside its view
   (within its field of view and depth range) form its *covered set*;
   ``confidence = overlap fraction - 0.2 * age``, where age is
   ``(t_now - t_i) / (t_now - t_oldest)`` (story-time-scale free, so seconds
   and epoch dates behave alike);
3. an earlier frame shot from exactly the same pose is taken first (it shows
   precisely what the new shot shows);
4. greedy set cover: repeatedly take the frame with the largest
   ``new coverage - 0.2 * age``, until ``k`` frames (default 4) or no frame adds
   at least ``min_gain`` of the points; a frame whose covered set is nearly a
   subset of one already taken (at most ``subset_tolerance`` of it is new) is
   dropped as temporally redundant.

Without poses (or when no posed frame overlaps), frames are chosen by recency
and diversity: the most recent first, then repeatedly the frame that
maximises ``recency - max cosine similarity to the chosen`` (image
embeddings), skipping near-duplicates.

Examples
--------
>>> a = ViewCandidate("a", "s01", 7, None, t=0.0, pose=(0, 0, 1.6, 90, 0), fov=60)
>>> b = ViewCandidate("b", "s02", 7, None, t=4.0, pose=(0, 0, 1.6, -90, 0), fov=60)
>>> [(s.candidate.key, s.reason.split(";")[0]) for s in select_views((0, 0, 1.6, 90, 0), 60, [a, b], t_now=8)]
[('a', 'same camera pose')]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Pose = tuple[float, float, float, float, float]
ASPECT = 16 / 10
DEPTHS = (1.5, 3.0, 6.0, 12.0)
MAX_DEPTH = 20.0
AGE_WEIGHT = 0.2


@dataclass(frozen=True)
class ViewCandidate:
    """An earlier frame that could serve as a reference."""

    key: str
    shot_id: str
    frame_index: int
    path: str | None
    t: float
    pose: Pose | None = None
    fov: float = 60.0
    embedding: np.ndarray | None = None


@dataclass(frozen=True)
class ViewSelection:
    candidate: ViewCandidate
    score: float
    reason: str


def _basis(pose: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x, y, z, yaw, pitch = (float(v) for v in pose)
    cy, sy, cp, sp = (
        math.cos(math.radians(yaw)),
        math.sin(math.radians(yaw)),
        math.cos(math.radians(pitch)),
        math.sin(math.radians(pitch)),
    )
    fwd = np.array([cp * cy, cp * sy, sp])
    right = np.array([sy, -cy, 0.0])
    up = np.cross(right, fwd)
    return np.array([x, y, z]), fwd, right, up


def _half_tans(fov: float) -> tuple[float, float]:
    th = math.tan(math.radians(fov) / 2)
    return th, th / ASPECT


def frustum_points(pose: Pose, fov: float, n_u: int = 9, n_v: int = 5, depths: Sequence[float] = DEPTHS) -> np.ndarray:
    """Points sampled in the view frustum of ``pose``: a ``n_u`` x ``n_v`` ray grid at each depth; shape (N, 3).

    >>> frustum_points((0, 0, 0, 0, 0), 60).shape
    (180, 3)
    """
    c, fwd, right, up = _basis(pose)
    th, tv = _half_tans(fov)
    u = np.linspace(-0.9, 0.9, n_u)[:, None]
    v = np.linspace(-0.9, 0.9, n_v)[None, :]
    dirs = (fwd[None, None] + (u * th)[..., None] * right + (v * tv)[..., None] * up).reshape(-1, 3)
    return np.concatenate([c + d * dirs for d in depths])


def in_view(points: np.ndarray, pose: Pose, fov: float, max_depth: float = MAX_DEPTH) -> np.ndarray:
    """Boolean mask of ``points`` inside the view of ``pose`` (no occlusion test)."""
    c, fwd, right, up = _basis(pose)
    rel = points - c
    z = rel @ fwd
    th, tv = _half_tans(fov)
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = (z > 0.1) & (z <= max_depth) & (np.abs(rel @ right) <= th * z + 1e-9) & (np.abs(rel @ up) <= tv * z + 1e-9)
    return ok


def coverage(
    points: np.ndarray, poses: Sequence[Pose], fovs: Sequence[float], max_depth: float = MAX_DEPTH
) -> np.ndarray:
    """In-view masks of ``points`` for many poses at once; shape (len(poses), len(points)).

    Same test as :func:`in_view`, vectorised over poses (hundreds of candidates cost about a millisecond).
    """
    if len(poses) == 0:
        return np.zeros((0, len(points)), dtype=bool)
    p = np.asarray(poses, dtype=np.float64)
    yaw, pitch = np.radians(p[:, 3]), np.radians(p[:, 4])
    fwd = np.stack([np.cos(pitch) * np.cos(yaw), np.cos(pitch) * np.sin(yaw), np.sin(pitch)], axis=1)
    right = np.stack([np.sin(yaw), -np.cos(yaw), np.zeros_like(yaw)], axis=1)
    up = np.cross(right, fwd)
    rel = points[None, :, :] - p[:, None, :3]
    z = np.einsum("mnk,mk->mn", rel, fwd)
    th = np.tan(np.radians(np.asarray(fovs, dtype=np.float64)) / 2)[:, None]
    tv = th / ASPECT
    return (
        (z > 0.1)
        & (z <= max_depth)
        & (np.abs(np.einsum("mnk,mk->mn", rel, right)) <= th * z + 1e-9)
        & (np.abs(np.einsum("mnk,mk->mn", rel, up)) <= tv * z + 1e-9)
    )


def same_pose(a: Pose | None, b: Pose | None, tol: float = 1e-6) -> bool:
    return a is not None and b is not None and all(abs(float(x) - float(y)) <= tol for x, y in zip(a, b))


def _ages(cands: Sequence[ViewCandidate], t_now: float) -> dict[str, float]:
    oldest = min(c.t for c in cands)
    span = t_now - oldest
    return {c.key: (t_now - c.t) / span if span > 0 else 0.0 for c in cands}


def select_views(
    target_pose: Pose | None,
    target_fov: float,
    candidates: Sequence[ViewCandidate],
    t_now: float,
    *,
    k: int = 4,
    min_gain: float = 0.02,
    subset_tolerance: float = 0.1,
) -> list[ViewSelection]:
    """Reference frames for a view; see the module docstring for the rule. Returns at least one if any candidate."""
    if not candidates or k <= 0:
        return []
    posed = [c for c in candidates if c.pose is not None]
    if target_pose is None or not posed:
        return select_recent_diverse(candidates, t_now, k=k)
    ages = _ages(candidates, t_now)
    pts = frustum_points(target_pose, target_fov)
    cov = coverage(pts, [c.pose for c in posed if c.pose is not None], [c.fov for c in posed])
    idx = {c.key: i for i, c in enumerate(posed)}
    age = np.array([ages[c.key] for c in posed])
    n = len(pts)
    chosen: list[ViewSelection] = []
    covered = np.zeros(n, dtype=bool)
    # Same pose first: it shows exactly what this view shows; the most recent such frame wins.
    exact = sorted(
        (c for c in posed if same_pose(c.pose, target_pose) and abs(c.fov - target_fov) < 1e-6),
        key=lambda c: (-c.t, c.key),
    )
    if exact:
        c = exact[0]
        mine = cov[idx[c.key]]
        chosen.append(
            ViewSelection(
                c,
                round(float(mine.mean() - AGE_WEIGHT * ages[c.key]), 4),
                f"same camera pose; overlap {mine.mean():.2f}",
            )
        )
        covered |= mine
    alive = np.array([not (exact and c.key == exact[0].key) for c in posed])
    t_arr = np.array([c.t for c in posed])
    while len(chosen) < k and alive.any():
        gains = (cov & ~covered).sum(axis=1) / n
        value = np.where(alive, gains - AGE_WEIGHT * age, -np.inf)
        # Ties go to the more recent frame.
        order = np.lexsort((t_arr, value))
        i = int(order[-1])
        alive[i] = False
        if gains[i] < min_gain:
            break
        mine = cov[i]
        if any((mine & ~cov[idx[s.candidate.key]]).sum() <= subset_tolerance * mine.sum() for s in chosen):
            continue  # nearly a subset of a chosen view: temporally redundant
        best = posed[i]
        chosen.append(
            ViewSelection(
                best,
                round(float(mine.mean() - AGE_WEIGHT * age[i]), 4),
                f"FOV overlap {mine.mean():.2f}, adds {gains[i]:.2f} new coverage, age {age[i]:.2f}",
            )
        )
        covered |= mine
    if not chosen:
        unposed = [c for c in candidates if c.pose is None]
        fallback = select_recent_diverse(unposed or candidates, t_now, k=1 if not unposed else k)
        return [ViewSelection(s.candidate, s.score, "no posed view overlaps; " + s.reason) for s in fallback]
    return chosen


def select_recent_diverse(
    candidates: Sequence[ViewCandidate], t_now: float, *, k: int = 4, duplicate_cos: float = 0.995
) -> list[ViewSelection]:
    """The most recent frame, then frames that are recent and unlike those already chosen."""
    if not candidates:
        return []
    ages = _ages(candidates, t_now)
    order = sorted(candidates, key=lambda c: (-c.t, c.key))
    chosen = [ViewSelection(order[0], round(1.0 - ages[order[0].key], 4), "most recent frame of the location")]
    rest = order[1:]
    while len(chosen) < k and rest:

        def value(c: ViewCandidate) -> tuple[float, float]:
            sim = max((_cos(c, s.candidate) for s in chosen), default=0.0)
            return (1.0 - ages[c.key]) - sim, sim

        best = max(rest, key=lambda c: (value(c)[0], c.t, c.key))
        rest.remove(best)
        score, sim = value(best)
        if sim >= duplicate_cos:
            continue
        chosen.append(ViewSelection(best, round(score, 4), f"recent and diverse (max similarity {sim:.2f})"))
    return chosen


def _cos(a: ViewCandidate, b: ViewCandidate) -> float:
    if a.embedding is None or b.embedding is None or len(a.embedding) != len(b.embedding):
        return 0.0
    return float(np.dot(a.embedding, b.embedding))


__all__ = [
    "ViewCandidate",
    "ViewSelection",
    "coverage",
    "frustum_points",
    "in_view",
    "same_pose",
    "select_recent_diverse",
    "select_views",
]
