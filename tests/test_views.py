"""Reference-frame selection: same pose first, greedy FOV coverage, redundancy removal, recency fallback."""

import numpy as np

from agentmem.spatial.frames import Frame, FrameSet
from agentmem.spatial.policies import Target, frustum_grid, in_view
from agentmem.story.views import ViewCandidate, select_recent_diverse, select_views, story_camera

POSE = (0.0, 0.0, 1.6, 90.0, 0.0)


def cand(key, t, pose=None, emb=None, fov=60.0):
    return ViewCandidate(key, key, 3, None, t=t, pose=pose, fov=fov, embedding=emb)


def keys(sel):
    return [s.candidate.key for s in sel]


def test_frustum_points_are_in_their_own_view_and_not_behind():
    pts = frustum_grid(Target(*story_camera(POSE, 60), 10.0))
    fs = FrameSet()
    for i, p in enumerate([POSE, (0, 0, 1.6, -90, 0)]):
        fs.add(Frame(str(i), 0.0, *story_camera(p, 60)))
    seen = in_view(fs, np.arange(2), pts, far=20.0)
    assert pts.shape == (180, 3) and seen[0].all() and not seen[1].any()


def test_same_pose_is_taken_first_even_if_older():
    sel = select_views(POSE, 60, [cand("old_same", 0, POSE), cand("new_close", 9, (0, 0, 1.6, 95, 0))], t_now=10)
    assert keys(sel)[0] == "old_same"
    assert sel[0].reason.startswith("same camera pose")


def test_greedy_coverage_prefers_new_coverage_and_drops_redundant_views():
    left, right = (0, 0, 1.6, 115, 0), (0, 0, 1.6, 65, 0)
    cands = [
        cand("left", 1, left),
        cand("left_again", 2, left),
        cand("right", 3, right),
        cand("away", 4, (0, 0, 1.6, -90, 0)),
    ]
    sel = select_views(POSE, 60, cands, t_now=10)
    # left and left_again cover the same points: only the more recent one is kept; "away" covers nothing.
    assert sorted(keys(sel)) == ["left_again", "right"]
    assert all("FOV overlap" in s.reason for s in sel)


def test_k_caps_the_number_of_frames():
    cands = [cand(f"c{i}", i, (0, 0, 1.6, 90 + 12 * (i - 3.5), 0)) for i in range(8)]
    assert len(select_views(POSE, 60, cands, t_now=10, k=2)) == 2


def test_no_overlap_still_gives_one_frame():
    sel = select_views(POSE, 60, [cand("away", 1, (0, 0, 1.6, -90, 0))], t_now=5)
    assert keys(sel) == ["away"] and sel[0].reason.startswith("no posed view overlaps")


def test_recency_and_diversity_without_poses():
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    cands = [cand("old_b", 1, emb=b), cand("mid_a", 5, emb=a), cand("new_a", 9, emb=a)]
    sel = select_views(None, 60, cands, t_now=10)
    # newest first; the identical mid_a is a duplicate; the older but different old_b is kept.
    assert keys(sel) == ["new_a", "old_b"]
    assert keys(select_recent_diverse(cands, 10, k=1)) == ["new_a"]
