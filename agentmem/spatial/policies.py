"""Choosing context frames for a target view: retrieval policies as data, each answer with its score and reason.

Policies (:data:`POLICIES`, name -> :class:`Policy`), all given the target pose, intrinsics, time, a budget ``k``
and their parameters (a frozen config of :mod:`agentmem.spatial.params`, whose scale fields every policy shares):

- ``recent``: the sliding window, the ``k`` latest frames;
- ``pose``: nearest camera poses (position, plus viewing angle at ``m_per_rad`` metres per radian), with
  non-maximum suppression of near-duplicates (``suppress``);
- ``fov`` (WorldMem): ``samples`` points in the target's view frustum; each frame covers those inside its own
  frustum; greedy coverage, with a small penalty on age (``age_penalty`` per hour); needs no depth;
- ``overlap`` (Context-as-Memory): frames whose frustum overlap with the target's passes ``threshold``, best
  first, dropping frames within ``dedup_s`` of one already chosen;
- ``map`` (VMem-like): the static map rendered from the target pose with occlusion; each visible element votes
  for the frames that saw it best, weighted by the image area it covers; greedy cover of that area;
- ``story``: the story planner's rule for a shot's reference frames: a frame from the view's own camera first,
  then greedy coverage of a grid of rays at a few depths less a normalised age (:func:`story`).

A frame later than the view's time is never chosen. The default is ``map`` when frames have depth, else
``fov``. ``fov``, ``overlap`` look only at :func:`nearby` frames (within ``reach`` metres, at most ``keep``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agentmem.errors import BadInputError
from agentmem.geometry import Intrinsics, view_distance
from agentmem.spatial.frames import FrameSet
from agentmem.spatial.params import (
    FovConfig,
    OverlapConfig,
    PolicyConfig,
    PoseConfig,
    StoryConfig,
    VotesConfig,
    parse_params,
)

MIN_DEPTH = 0.1
"""The near plane of every frustum test, in metres."""
FACING_COS = -0.2
"""``nearby`` keeps a frame facing within about 100 degrees of the view (the cosine between viewing directions)."""


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


Rule = Callable[[FrameSet, Target, int, Any], list[Choice]]


@dataclass(frozen=True)
class Policy:
    """A registered policy: its rule, whether it needs depth, a line describing it, and its default parameters
    (a frozen config of :mod:`agentmem.spatial.params`; the rule takes one of that type)."""

    name: str
    rule: Rule
    needs_depth: bool
    description: str
    config: PolicyConfig

    def configure(self, pairs: Sequence[str]) -> PolicyConfig:
        """The policy's default config with ``NAME=VALUE`` pairs set (:func:`~agentmem.spatial.params.parse_params`)."""
        return parse_params(self.config, pairs, f"--policy-param (policy {self.name!r})")


def _eligible(fs: FrameSet, target: Target) -> np.ndarray:
    return np.nonzero(target.eligible(fs.times))[0]


def recent(fs: FrameSet, target: Target, k: int, config: PolicyConfig = PolicyConfig()) -> list[Choice]:
    """The ``k`` latest frames at or before the view's time."""
    idx = _eligible(fs, target)
    last = idx[np.argsort(-fs.times[idx], kind="stable")[:k]]
    return [Choice(int(i), float(fs.times[i]), f"{r + 1} most recent") for r, i in enumerate(last)]


def _pose_distance(fs: FrameSet, idx: np.ndarray, c2w: np.ndarray, config: PolicyConfig) -> np.ndarray:
    return view_distance(fs.positions[idx], fs.forwards[idx], c2w, config.m_per_rad)


def pose(fs: FrameSet, target: Target, k: int, config: PoseConfig = PoseConfig()) -> list[Choice]:
    """Nearest poses; a frame within ``config.suppress`` (same units) of a chosen one is skipped."""
    idx = _eligible(fs, target)
    dist = _pose_distance(fs, idx, target.c2w, config)
    out: list[Choice] = []
    for j in np.argsort(dist, kind="stable"):
        i = int(idx[j])
        if any(_pose_distance(fs, np.array([c.frame]), fs.c2w[i], config)[0] < config.suppress for c in out):
            continue
        out.append(Choice(i, -float(dist[j]), f"pose distance {dist[j]:.2f}"))
        if len(out) == k:
            break
    return out


def frustum_samples(target: Target, config: PolicyConfig = PolicyConfig(), seed: int = 0) -> np.ndarray:
    """``config.samples`` points spread through the target's view frustum from ``near`` to ``far`` (fixed seed:
    the same target gives the same points)."""
    rng = np.random.default_rng(seed)
    n, near, far = config.samples, config.near, config.far
    u = rng.uniform(0, target.k.w, n)
    v = rng.uniform(0, target.k.h, n)
    z = near + (far - near) * rng.uniform(0, 1, n) ** 2  # denser near the camera, as surfaces are
    cam = np.stack([(u - target.k.cx) / target.k.fx * z, -(v - target.k.cy) / target.k.fy * z, -z], axis=1)
    return cam @ target.c2w[:3, :3].T + target.c2w[:3, 3]


def _inside(u: np.ndarray, v: np.ndarray, z: np.ndarray, w: np.ndarray, h: np.ndarray, far: float) -> np.ndarray:
    return (z > MIN_DEPTH) & (z < far) & (u >= 0) & (u < w) & (v >= 0) & (v < h)


def _in_frustum(fs: FrameSet, idx: np.ndarray, pts: np.ndarray, far: float) -> np.ndarray:
    """(len(idx), n) whether each sample lies inside each frame's frustum (no occlusion test: no depth needed)."""
    if not len(idx):
        return np.zeros((0, len(pts)), bool)
    cams = fs.cameras.take(idx)
    return _inside(*cams.project(pts), cams.w[:, None], cams.h[:, None], far)


def _sees(fs: FrameSet, idx: np.ndarray, pts: np.ndarray, far: float) -> np.ndarray:
    """(len(idx), n) whether each point is inside each frame's frustum and not behind the surface the frame saw
    there (its :attr:`~agentmem.spatial.frames.FrameSet.reach`, with a margin of one voxel)."""
    if not len(idx):
        return np.zeros((0, len(pts)), bool)
    cams = fs.cameras.take(idx)
    u, v, z = cams.project(pts)
    w, h = cams.w[:, None], cams.h[:, None]
    inside = _inside(u, v, z, w, h, far)
    gh, gw = fs.reach.shape[1:]
    cu = np.clip(np.nan_to_num(u * gw / w), 0, gw - 1).astype(np.int64)
    cv = np.clip(np.nan_to_num(v * gh / h), 0, gh - 1).astype(np.int64)
    rows = np.broadcast_to(idx[:, None], u.shape)
    return inside & (z <= fs.reach[rows, cv, cu] + fs.map.config.voxel)


def nearby(fs: FrameSet, target: Target, config: PolicyConfig = PolicyConfig()) -> np.ndarray:
    """Numbers of the eligible frames (at or before the view's time, allowed) whose camera can see near the
    target at all: facing within about 100 degrees of it (:data:`FACING_COS`) and within ``config.reach`` metres,
    nearest pose first (the latest first among equals), at most ``config.keep`` (this bounds every policy's
    per-frame work).

    Examples
    --------
    >>> from agentmem.geometry import look_at
    >>> from agentmem.spatial.frames import Frame
    >>> fs = FrameSet()
    >>> k = Intrinsics.from_fov(60.0, 8, 6)
    >>> for i, x in enumerate((0.0, 5.0, 100.0)):  # two near, one 100 m away
    ...     _ = fs.add(Frame(f"f{i}", float(i), look_at([x, 1, 0], [x, 1, -1]), k))
    >>> nearby(fs, Target(look_at([4, 1, 0], [4, 1, -1]), k, 10.0)).tolist()
    [1, 0]
    """
    # One vectorised pass, not a kd-tree (scipy's): frames arrive one batch at a time, so a tree would be rebuilt
    # per query, and the ranking is by pose distance, which adds the viewing angle to the metres.
    idx = _eligible(fs, target)
    fwd = fs.forwards[idx]
    facing = fwd @ -target.c2w[:3, 2] > FACING_COS
    near = np.linalg.norm(fs.positions[idx] - target.c2w[:3, 3], axis=1) < config.reach
    cand = idx[facing & near]
    order = np.lexsort((-fs.times[cand], _pose_distance(fs, cand, target.c2w, config)))  # ties: the latest
    return cand[order[: config.keep]]


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


def fov(fs: FrameSet, target: Target, k: int, config: FovConfig = FovConfig()) -> list[Choice]:
    """WorldMem: greedy coverage of frustum samples; a frame's gain is discounted by ``config.age_penalty`` per
    hour."""
    idx = nearby(fs, target, config)
    pts = frustum_samples(target, config)
    cover = _in_frustum(fs, idx, pts, config.far)
    age_h = (target.t - fs.times[idx]) / 3600.0
    weights = 1.0 / (1.0 + config.age_penalty * age_h)
    picks = _greedy(cover, weights, k)
    return [Choice(int(idx[r]), n / len(pts), f"covers {n} new of {len(pts)} frustum samples") for r, n in picks]


def overlap(fs: FrameSet, target: Target, k: int, config: OverlapConfig = OverlapConfig()) -> list[Choice]:
    """Context-as-Memory: frustum overlap at least ``config.threshold``, best first, skipping frames within
    ``config.dedup_s`` seconds of a chosen one."""
    idx = nearby(fs, target, config)
    pts = frustum_samples(target, config)
    share = _in_frustum(fs, idx, pts, config.far).mean(axis=1) if len(idx) else np.zeros(0)
    out: list[Choice] = []
    for j in np.argsort(-share, kind="stable"):
        if share[j] < config.threshold:
            break
        i = int(idx[j])
        if any(abs(fs.times[i] - fs.times[c.frame]) < config.dedup_s for c in out):
            continue
        out.append(Choice(i, float(share[j]), f"frustum overlap {share[j]:.2f}"))
        if len(out) == k:
            break
    return out


def _distinct(fs: FrameSet, ranked: np.ndarray, config: VotesConfig) -> np.ndarray:
    """The first ``config.shortlist`` of ``ranked`` frames, skipping any within ``config.apart`` (pose distance) of
    one already kept: a place walked a hundred times must not fill the shortlist with copies of one view."""
    pos, fwd = fs.positions[ranked], fs.forwards[ranked]
    cos = np.clip(fwd @ fwd.T, -1.0, 1.0)
    near = np.linalg.norm(pos[:, None] - pos[None], axis=2) + config.m_per_rad * np.arccos(cos)  # pairwise
    near = near < config.apart
    blocked = np.zeros(len(ranked), bool)
    out: list[int] = []
    for j in range(len(ranked)):
        if blocked[j]:
            continue
        out.append(int(ranked[j]))
        if len(out) == config.shortlist:
            break
        blocked |= near[j]
    return np.array(out, np.int64)


def map_votes(fs: FrameSet, target: Target, k: int, config: VotesConfig = VotesConfig()) -> list[Choice]:
    """VMem-like: the map's voxels visible from the target vote for the frames that observed them (weighted by
    the image area they cover); the ``config.shortlist`` best-voted distinct views are then scored on every visible
    voxel in their view frustum, and a greedy cover picks ``k``. The votes keep out frames that never saw this part
    of the world (behind an occluder, say); the frustum test credits a frame for voxels its capped observer lists
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
    cand = _distinct(fs, cand[np.argsort(-votes[cand], kind="stable")[: 4 * config.shortlist]], config)
    if not len(cand):
        return []
    cover = _sees(fs, cand, fs.map.centres[vis].astype(np.float64), config.far)
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
    pts = frustum_samples(target, config)
    chosen = np.array([c.frame for c in out], np.int64)
    fill = _in_frustum(fs, rest, pts, config.far) & ~_in_frustum(fs, chosen, pts, config.far).any(axis=0)
    for r, n in _greedy(fill, np.ones(len(rest)), k - len(out)):
        out.append(Choice(int(rest[r]), 0.0, f"fills the budget: covers {n} new of {len(pts)} frustum samples"))
    return out


GRID_SPAN = 0.9
"""The story rule's sample rays span the central 90% of the view's frustum, across and down."""


def frustum_grid(target: Target, config: StoryConfig = StoryConfig()) -> np.ndarray:
    """Points on a ``config.grid`` (across, down) of rays through the target's frustum, at each of
    ``config.depths``; shape (n, 3).

    Examples
    --------
    >>> from agentmem.geometry import pose_from_story
    >>> frustum_grid(Target(pose_from_story(0, 0, 0), Intrinsics.from_fov(60.0, 64, 40), 0.0)).shape
    (180, 3)
    """
    c2w, k = target.c2w, target.k
    fwd, right, up = -c2w[:3, 2], c2w[:3, 0], c2w[:3, 1]
    th, tv = k.w / (2 * k.fx), k.h / (2 * k.fy)  # the tangents of half the field of view, across and down
    u = np.linspace(-GRID_SPAN, GRID_SPAN, config.grid[0])[:, None]
    v = np.linspace(-GRID_SPAN, GRID_SPAN, config.grid[1])[None, :]
    dirs = (fwd[None, None] + (u * th)[..., None] * right + (v * tv)[..., None] * up).reshape(-1, 3)
    return np.concatenate([c2w[:3, 3] + d * dirs for d in config.depths])


def in_view(fs: FrameSet, idx: np.ndarray, pts: np.ndarray, far: float) -> np.ndarray:
    """(len(idx), n) whether each point lies in each frame's view: within its field of view (to 1e-9 m, so points
    on an edge count) and between :data:`MIN_DEPTH` and ``far`` (inclusive); no occlusion test."""
    cams = fs.cameras.take(idx)
    rel = pts[None, :, :] - cams.positions[:, None, :]
    z = np.einsum("mnk,mk->mn", rel, cams.forwards)
    th, tv = (cams.w / (2 * cams.fx))[:, None], (cams.h / (2 * cams.fy))[:, None]
    across = np.abs(np.einsum("mnk,mk->mn", rel, cams.c2w[:, :3, 0]))
    down = np.abs(np.einsum("mnk,mk->mn", rel, cams.c2w[:, :3, 1]))
    return (z > MIN_DEPTH) & (z <= far) & (across <= th * z + 1e-9) & (down <= tv * z + 1e-9)


def _same_camera(fs: FrameSet, idx: np.ndarray, target: Target, tol: float) -> np.ndarray:
    """Per frame of ``idx``: within ``tol`` metres and ``tol`` degrees of the target's camera, and of its field
    of view."""
    cams = fs.cameras.take(idx)
    place = np.abs(cams.positions - target.c2w[:3, 3]).max(axis=1) <= tol
    turn = np.abs(cams.c2w[:, :3, :3] - target.c2w[:3, :3]).max(axis=(1, 2)) <= np.radians(tol)
    hfov = np.degrees(2 * np.arctan(cams.w / (2 * cams.fx)))
    return place & turn & (np.abs(hfov - target.k.hfov_deg) < tol)


def story(fs: FrameSet, target: Target, k: int, config: StoryConfig = StoryConfig()) -> list[Choice]:
    """The story planner's rule (Context-as-Memory, WorldMem): the latest frame shot from the target's own camera
    first (it shows precisely what the view shows); then greedy coverage of :func:`frustum_grid`'s points, a
    pick's value its share of new coverage less ``config.age_weight`` times its age, ties to the latest; until
    ``k`` frames, or until the best adds less than ``config.min_gain``. A frame that adds at most
    ``config.subset_tolerance`` of its coverage to a chosen one is skipped as redundant."""
    idx = _eligible(fs, target)
    if k <= 0 or not len(idx):
        return []
    times = fs.times[idx]
    span = target.t - times.min() if config.age_span is None else config.age_span
    age = (target.t - times) / span if span > 0 else np.zeros(len(idx))
    pts = frustum_grid(target, config)
    cov = in_view(fs, idx, pts, config.far)
    share = cov.mean(axis=1)
    out: list[tuple[int, float, str]] = []
    alive = np.ones(len(idx), bool)
    own = np.nonzero(_same_camera(fs, idx, target, config.same_pose))[0]
    if len(own):
        r = int(own[np.argmax(times[own])])  # the latest; among equals, the first
        out.append((r, share[r] - config.age_weight * age[r], f"same camera pose; overlap {share[r]:.2f}"))
        alive[r] = False
    covered = cov[own[:1]].any(axis=0) if len(own) else np.zeros(len(pts), bool)
    while len(out) < k and alive.any():
        gains = (cov & ~covered).sum(axis=1) / len(pts)
        r = int(np.lexsort((times, np.where(alive, gains - config.age_weight * age, -np.inf)))[-1])
        alive[r] = False
        if gains[r] < config.min_gain:
            break
        mine = cov[r]
        if any((mine & ~cov[c]).sum() <= config.subset_tolerance * mine.sum() for c, _, _ in out):
            continue  # nearly a subset of a chosen view: temporally redundant
        value = share[r] - config.age_weight * age[r]
        out.append((r, value, f"FOV overlap {share[r]:.2f}, adds {gains[r]:.2f} new coverage, age {age[r]:.2f}"))
        covered |= mine
    return [Choice(int(idx[r]), float(score), reason) for r, score, reason in out]


POLICIES: dict[str, Policy] = {
    p.name: p
    for p in (
        Policy("recent", recent, False, "sliding window: the latest frames", PolicyConfig()),
        Policy("pose", pose, False, "nearest camera poses, near-duplicates suppressed", PoseConfig()),
        Policy("fov", fov, False, "WorldMem: greedy frustum coverage with an age penalty", FovConfig()),
        Policy(
            "overlap", overlap, False, "Context-as-Memory: frustum overlap, temporal de-duplication", OverlapConfig()
        ),  # fmt: skip
        Policy("map", map_votes, True, "VMem-like: visible map voxels vote, greedy cover (needs depth)", VotesConfig()),
        Policy("story", story, False, "the story planner's: same pose first, grid coverage less age", StoryConfig()),
    )
}


def default_policy(fs: FrameSet) -> str:
    """``map`` when any frame has depth, else ``fov``."""
    return "map" if fs.has_depth.any() else "fov"


def policy_named(name: str) -> Policy:
    """The registered policy ``name``, or one line listing them."""
    if name not in POLICIES:
        raise BadInputError(f"unknown policy {name!r}; choose one of {sorted(POLICIES)}")
    return POLICIES[name]


def choose(fs: FrameSet, target: Target, k: int, policy: str | None = None, config: PolicyConfig | None = None
           ) -> list[Choice]:  # fmt: skip
    """The context frames for ``target``: at most ``k``, none later than ``target.t``, each with score and reason;
    ``config`` (the policy's config type) sets its parameters, else its defaults."""
    entry = policy_named(policy or default_policy(fs))
    if config is not None and not isinstance(config, type(entry.config)):
        raise BadInputError(f"policy {entry.name!r} takes a {type(entry.config).__name__}, not a "
                            f"{type(config).__name__}")  # fmt: skip
    return entry.rule(fs, target, k, entry.config if config is None else config)
