"""Choosing context frames for a target view: retrieval policies as data, each answer with its score and reason.

Policies (:data:`POLICIES`), all given the target pose, intrinsics, time and a budget ``k``:

- ``recent``: the sliding window, the ``k`` latest frames;
- ``pose``: nearest camera poses (position, plus viewing angle at 5 m per radian), with non-maximum suppression
  of near-duplicates;
- ``fov`` (WorldMem): points sampled in the target's view frustum; each frame covers those inside its own
  frustum; greedy coverage, with a small penalty on age; needs no depth;
- ``overlap`` (Context-as-Memory): frames whose frustum overlap with the target's passes a threshold, best
  first, dropping frames within ``dedup_s`` of one already chosen;
- ``map`` (VMem-like): the voxel map rendered from the target pose with occlusion; each visible voxel votes
  for the frames that saw it best, weighted by the image area it covers; greedy cover of that area.

A frame later than the view's time is never chosen. The default is ``map`` when frames have depth, else
``fov``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from agentmem.spatial.camera import VIEW_M_PER_RAD, Intrinsics, view_distance
from agentmem.spatial.frames import FrameSet


@dataclass(frozen=True)
class Choice:
    """One chosen frame (its number in the frame set), the policy's score for it, and why."""

    frame: int
    score: float
    reason: str


@dataclass(frozen=True)
class Target:
    """The view to fill: its pose, camera and story time; ``allowed`` (one flag per frame) leaves frames out."""

    c2w: np.ndarray
    k: Intrinsics
    t: float
    allowed: np.ndarray | None = None

    def eligible(self, times: np.ndarray) -> np.ndarray:
        """Per frame: at or before the view's time, and allowed."""
        ok = times <= self.t
        return ok if self.allowed is None else ok & self.allowed


Rule = Callable[[FrameSet, Target, int], list[Choice]]


@dataclass(frozen=True)
class Policy:
    name: str
    rule: Rule
    needs_depth: bool
    description: str


def _eligible(fs: FrameSet, target: Target) -> np.ndarray:
    return np.nonzero(target.eligible(fs.times))[0]


def recent(fs: FrameSet, target: Target, k: int) -> list[Choice]:
    """The ``k`` latest frames at or before the view's time."""
    idx = _eligible(fs, target)
    last = idx[np.argsort(-fs.times[idx], kind="stable")[:k]]
    return [Choice(int(i), float(fs.times[i]), f"{r + 1} most recent") for r, i in enumerate(last)]


def _pose_distance(fs: FrameSet, idx: np.ndarray, c2w: np.ndarray) -> np.ndarray:
    return view_distance(fs.positions[idx], fs.forwards[idx], c2w)


def pose(fs: FrameSet, target: Target, k: int, *, suppress: float = 1.0) -> list[Choice]:
    """Nearest poses; a frame within ``suppress`` (same units) of a chosen one is skipped."""
    idx = _eligible(fs, target)
    dist = _pose_distance(fs, idx, target.c2w)
    out: list[Choice] = []
    for j in np.argsort(dist, kind="stable"):
        i = int(idx[j])
        if any(_pose_distance(fs, np.array([c.frame]), fs.c2w[i])[0] < suppress for c in out):
            continue
        out.append(Choice(i, -float(dist[j]), f"pose distance {dist[j]:.2f}"))
        if len(out) == k:
            break
    return out


def frustum_samples(target: Target, n: int = 400, near: float = 0.5, far: float = 40.0, seed: int = 0) -> np.ndarray:
    """``n`` points spread through the target's view frustum (fixed seed: the same target gives the same points)."""
    rng = np.random.default_rng(seed)
    u = rng.uniform(0, target.k.w, n)
    v = rng.uniform(0, target.k.h, n)
    z = near + (far - near) * rng.uniform(0, 1, n) ** 2  # denser near the camera, as surfaces are
    cam = np.stack([(u - target.k.cx) / target.k.fx * z, -(v - target.k.cy) / target.k.fy * z, -z], axis=1)
    return cam @ target.c2w[:3, :3].T + target.c2w[:3, 3]


def _project_many(fs: FrameSet, idx: np.ndarray, pts: np.ndarray) -> tuple[np.ndarray, ...]:
    """Pixel coordinates, z-depth (each (len(idx), n)) of world ``pts`` in each frame, and each frame's size."""
    c2w = fs.c2w[idx]
    cam = np.matmul(pts[None, :, :] - c2w[:, None, :3, 3], c2w[:, :3, :3])  # (p - t) R: world to camera
    ks = [fs.intrinsics[i] for i in idx]
    fx, fy, cx, cy, w, h = (
        np.array([getattr(k, a) for k in ks], np.float64)[:, None] for a in "fx fy cx cy w h".split()
    )
    z = -cam[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = fx * cam[..., 0] / z + cx
        v = -fy * cam[..., 1] / z + cy
    return u, v, z, w, h


def _inside(u: np.ndarray, v: np.ndarray, z: np.ndarray, w: np.ndarray, h: np.ndarray, far: float) -> np.ndarray:
    return (z > 0.1) & (z < far) & (u >= 0) & (u < w) & (v >= 0) & (v < h)


def _in_frustum(fs: FrameSet, idx: np.ndarray, pts: np.ndarray, far: float = 40.0) -> np.ndarray:
    """(len(idx), n) whether each sample lies inside each frame's frustum (no occlusion test: no depth needed)."""
    if not len(idx):
        return np.zeros((0, len(pts)), bool)
    u, v, z, w, h = _project_many(fs, idx, pts)
    return _inside(u, v, z, w, h, far)


def _sees(fs: FrameSet, idx: np.ndarray, pts: np.ndarray, far: float = 40.0) -> np.ndarray:
    """(len(idx), n) whether each point is inside each frame's frustum and not behind the surface the frame saw
    there (its :attr:`~agentmem.spatial.frames.FrameSet.reach`, with a margin of one voxel)."""
    if not len(idx):
        return np.zeros((0, len(pts)), bool)
    u, v, z, w, h = _project_many(fs, idx, pts)
    inside = _inside(u, v, z, w, h, far)
    gh, gw = fs.reach.shape[1:]
    cu = np.clip(np.nan_to_num(u * gw / w), 0, gw - 1).astype(np.int64)
    cv = np.clip(np.nan_to_num(v * gh / h), 0, gh - 1).astype(np.int64)
    rows = np.broadcast_to(idx[:, None], u.shape)
    return inside & (z <= fs.reach[rows, cv, cu] + fs.map.config.voxel)


def nearby(fs: FrameSet, target: Target, keep: int = 256) -> np.ndarray:
    """Numbers of the eligible frames (at or before the view's time, allowed) whose camera can see near the
    target at all: facing within about 100 degrees of it and within 60 m, nearest pose first (the latest first
    among equals), at most ``keep`` (this bounds every policy's per-frame work).

    Examples
    --------
    >>> from agentmem.spatial.camera import look_at
    >>> from agentmem.spatial.frames import Frame
    >>> fs = FrameSet()
    >>> k = Intrinsics.from_fov(60.0, 8, 6)
    >>> for i, x in enumerate((0.0, 5.0, 100.0)):  # two near, one 100 m away
    ...     _ = fs.add(Frame(f"f{i}", float(i), look_at([x, 1, 0], [x, 1, -1]), k))
    >>> nearby(fs, Target(look_at([4, 1, 0], [4, 1, -1]), k, 10.0)).tolist()
    [1, 0]
    """
    idx = _eligible(fs, target)
    fwd = fs.forwards[idx]
    facing = fwd @ -target.c2w[:3, 2] > -0.2
    near = np.linalg.norm(fs.positions[idx] - target.c2w[:3, 3], axis=1) < 60.0
    cand = idx[facing & near]
    return cand[np.lexsort((-fs.times[cand], _pose_distance(fs, cand, target.c2w)))[:keep]]  # ties: the latest


def _greedy(cover: np.ndarray, weights: np.ndarray, k: int) -> list[tuple[int, int]]:
    """Greedy set cover: (row, newly covered) picks, at most ``k``, while a pick covers something new."""
    covered = np.zeros(cover.shape[1], bool)
    out = []
    for _ in range(k):
        gain = (cover & ~covered).sum(axis=1) * weights
        r = int(np.argmax(gain)) if len(gain) else -1
        if r < 0 or gain[r] <= 0:
            break
        out.append((r, int((cover[r] & ~covered).sum())))
        covered |= cover[r]
    return out


def fov(fs: FrameSet, target: Target, k: int, *, age_penalty: float = 0.02) -> list[Choice]:
    """WorldMem: greedy coverage of frustum samples; a frame's gain is discounted by ``age_penalty`` per hour."""
    idx = nearby(fs, target)
    pts = frustum_samples(target)
    cover = _in_frustum(fs, idx, pts)
    age_h = (target.t - fs.times[idx]) / 3600.0
    weights = 1.0 / (1.0 + age_penalty * age_h)
    picks = _greedy(cover, weights, k)
    return [Choice(int(idx[r]), n / len(pts), f"covers {n} new of {len(pts)} frustum samples") for r, n in picks]


def overlap(fs: FrameSet, target: Target, k: int, *, threshold: float = 0.2, dedup_s: float = 2.0) -> list[Choice]:
    """Context-as-Memory: frustum overlap at least ``threshold``, best first, skipping frames near a chosen one
    in time."""
    idx = nearby(fs, target)
    pts = frustum_samples(target)
    share = _in_frustum(fs, idx, pts).mean(axis=1) if len(idx) else np.zeros(0)
    out: list[Choice] = []
    for j in np.argsort(-share, kind="stable"):
        if share[j] < threshold:
            break
        i = int(idx[j])
        if any(abs(fs.times[i] - fs.times[c.frame]) < dedup_s for c in out):
            continue
        out.append(Choice(i, float(share[j]), f"frustum overlap {share[j]:.2f}"))
        if len(out) == k:
            break
    return out


def _distinct(fs: FrameSet, ranked: np.ndarray, keep: int, *, apart: float = 0.25) -> np.ndarray:
    """The first ``keep`` of ``ranked`` frames, skipping any within ``apart`` (metres plus 5 m per radian) of one
    already kept: a place walked a hundred times must not fill the shortlist with copies of one view."""
    pos, fwd = fs.positions[ranked], fs.forwards[ranked]
    cos = np.clip(fwd @ fwd.T, -1.0, 1.0)
    near = np.linalg.norm(pos[:, None] - pos[None], axis=2) + VIEW_M_PER_RAD * np.arccos(cos)  # view_distance, pairwise
    near = near < apart
    blocked = np.zeros(len(ranked), bool)
    out: list[int] = []
    for j in range(len(ranked)):
        if blocked[j]:
            continue
        out.append(int(ranked[j]))
        if len(out) == keep:
            break
        blocked |= near[j]
    return np.array(out, np.int64)


def map_votes(fs: FrameSet, target: Target, k: int, *, shortlist: int = 48) -> list[Choice]:
    """VMem-like: the map's voxels visible from the target vote for the frames that observed them (weighted by
    the image area they cover); the ``shortlist`` best-voted distinct views are then scored on every visible voxel in
    their view frustum, and a greedy cover picks ``k``. The votes keep out frames that never saw this part of the
    world (behind an occluder, say); the frustum test credits a frame for voxels its capped observer lists
    omit."""
    vis, area = fs.map.visible(target.k, target.c2w)
    if not len(vis):
        return []
    obs = fs.map.obs_frame[vis]
    frames = obs.reshape(-1)
    rows = np.repeat(np.arange(len(vis)), obs.shape[1])
    ok = frames >= 0
    ok[ok] = target.eligible(fs.times)[frames[ok]]
    votes = np.bincount(frames[ok], weights=area[rows[ok]], minlength=len(fs))
    cand = np.nonzero(votes > 0)[0]
    cand = _distinct(fs, cand[np.argsort(-votes[cand], kind="stable")[: 4 * shortlist]], shortlist)
    if not len(cand):
        return []
    cover = _sees(fs, cand, fs.map.centres[vis].astype(np.float64))
    slot = np.full(len(fs), -1)
    slot[cand] = np.arange(len(cand))
    mine = slot[frames[ok]]
    hit = mine >= 0
    cover[mine[hit], rows[ok][hit]] = True  # a frame covers every voxel it observed, in its frustum or not
    total = float(area.sum())
    out: list[Choice] = []
    covered = np.zeros(len(vis), bool)
    for _ in range(k):
        gains = (cover & ~covered) @ area
        r = int(np.argmax(gains))
        if gains[r] <= 0:
            break
        covered |= cover[r]
        share, voted = float(gains[r]) / total, float(votes[cand[r]]) / total
        out.append(
            Choice(int(cand[r]), share, f"covers {share:.0%} more of the view's map voxels ({voted:.0%} by votes)")
        )
    # The map holds only what depth reached; the rest of the budget goes to frustum coverage (WorldMem's rule)
    # among the voted frames, which bounds the work however many frames memory holds.
    rest = np.array([i for i in cand if i not in {c.frame for c in out}], np.int64)
    if len(out) == k or not len(rest):
        return out
    pts = frustum_samples(target)
    fill = _in_frustum(fs, rest, pts) & ~_in_frustum(fs, np.array([c.frame for c in out], np.int64), pts).any(axis=0)
    for r, n in _greedy(fill, np.ones(len(rest)), k - len(out)):
        out.append(Choice(int(rest[r]), 0.0, f"fills the budget: covers {n} new of {len(pts)} frustum samples"))
    return out


POLICIES: dict[str, Policy] = {
    p.name: p
    for p in (
        Policy("recent", recent, False, "sliding window: the latest frames"),
        Policy("pose", pose, False, "nearest camera poses, near-duplicates suppressed"),
        Policy("fov", fov, False, "WorldMem: greedy frustum coverage with an age penalty"),
        Policy("overlap", overlap, False, "Context-as-Memory: frustum overlap, temporal de-duplication"),
        Policy("map", map_votes, True, "VMem-like: visible map voxels vote, greedy cover (needs depth)"),
    )
}


def default_policy(fs: FrameSet) -> str:
    """``map`` when any frame has depth, else ``fov``."""
    return "map" if fs.has_depth.any() else "fov"


def choose(fs: FrameSet, target: Target, k: int, policy: str | None = None) -> list[Choice]:
    """The context frames for ``target``: at most ``k``, none later than ``target.t``, each with score and reason."""
    name = policy or default_policy(fs)
    return POLICIES[name].rule(fs, target, k)
