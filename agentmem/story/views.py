"""Choosing reference frames of a location for a shot: the ``story`` context-frame policy, or recency and diversity.

Candidates with a camera pose are the frames, and the shot's camera the view, of the spatial memory's
``story`` policy (:func:`agentmem.spatial.policies.story`, parameters :class:`~agentmem.spatial.params.StoryConfig`),
through the one story-pose conversion (:func:`agentmem.geometry.pose_from_story`; a field of view is horizontal,
on a 16:10 image). The rule follows Context-as-Memory and WorldMem:

1. sample points in the shot's view frustum (a grid of rays at a few depths);
2. for each earlier frame with a camera pose, the points inside its view
   (within its field of view and 20 m) form its *covered set*;
   ``confidence = overlap fraction - 0.2 * age``, where age is
   ``(t_now - t_i) / (t_now - t_oldest)`` over every candidate (story-time-scale
   free, so seconds and epoch dates behave alike);
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

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from agentmem.geometry import Cameras, Intrinsics, pose_from_story
from agentmem.spatial.frames import FrameSet
from agentmem.spatial.params import StoryConfig
from agentmem.spatial.policies import Target, choose

Pose = tuple[float, float, float, float, float]
VIEW_SIZE = (64, 40)
"""The image size a story camera's field of view is taken on: 16:10, as shots are framed."""


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


def story_camera(pose: Sequence[float], fov: float) -> tuple[np.ndarray, Intrinsics]:
    """The camera-to-world pose and intrinsics of a story camera (a pose ``[x, y, z, yaw, pitch]`` and a
    horizontal field of view in degrees)."""
    return pose_from_story(*pose), Intrinsics.from_fov(fov, *VIEW_SIZE)


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
    config: StoryConfig = StoryConfig(),
) -> list[ViewSelection]:
    """Reference frames for a view; see the module docstring for the rule. Returns at least one if any candidate."""
    if not candidates or k <= 0:
        return []
    posed = [(c, c.pose) for c in candidates if c.pose is not None]
    if target_pose is None or not posed:
        return select_recent_diverse(candidates, t_now, k=k)
    cams = [story_camera(pose, c.fov) for c, pose in posed]
    fs = FrameSet.of_cameras([c.key for c, _ in posed], Cameras.of([m for m, _ in cams], [k for _, k in cams],
                                                                   [c.t for c, _ in posed]))  # fmt: skip
    if config.age_span is None:  # ages run from the oldest candidate, posed or not
        config = replace(config, age_span=t_now - min(c.t for c in candidates))
    chosen = choose(fs, Target(*story_camera(target_pose, target_fov), t_now), k, "story", config)
    if chosen:
        return [ViewSelection(posed[c.frame][0], round(c.score, 4), c.reason) for c in chosen]
    unposed = [c for c in candidates if c.pose is None]
    fallback = select_recent_diverse(unposed or candidates, t_now, k=1 if not unposed else k)
    return [ViewSelection(s.candidate, s.score, "no posed view overlaps; " + s.reason) for s in fallback]


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


__all__ = ["ViewCandidate", "ViewSelection", "select_recent_diverse", "select_views", "story_camera"]
