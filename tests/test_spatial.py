"""Spatial memory: cameras, ground-truth scenes, the voxel map, context-frame policies and rendering into a view."""

from __future__ import annotations

import numpy as np
import pytest

from agentmem.errors import BadInputError
from agentmem.geometry import Intrinsics, look_at, pixel_rays, project, unproject
from agentmem.spatial.camera import check_pose
from agentmem.spatial.frames import Frame, FrameSet
from agentmem.spatial.policies import POLICIES, Target, choose
from agentmem.spatial.render import Source, forward_warp
from agentmem.spatial.scenes import ray_cast, town
from agentmem.spatial.voxmap import MapConfig, VoxelMap

K = Intrinsics.from_fov(70.0, 64, 48)


def test_projecting_unprojected_pixels_gives_back_the_pixel_centres():
    c2w = look_at([3.0, 2.0, 9.0], [0.0, 1.0, 0.0])
    depth = np.linspace(1.0, 30.0, K.w * K.h).reshape(K.h, K.w)
    u, v, z = project(unproject(depth, K, c2w).reshape(-1, 3), K, c2w)
    uu, vv = np.meshgrid(np.arange(K.w) + 0.5, np.arange(K.h) + 0.5)
    assert np.allclose(u, uu.reshape(-1)) and np.allclose(v, vv.reshape(-1)) and np.allclose(z, depth.reshape(-1))


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        ([[1, 0, 0, float("nan")], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], "has a non-finite value"),
        ([[1, 0.5, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], "not rigid (the rotation is not orthonormal)"),
        ([[-1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], "not rigid (a reflection, determinant -1)"),
        ([[1, 0, 0], [0, 1, 0]], "must be 4x4 (or 3x4), got shape [2, 3]"),
        ("pose", "must be a 4x4 matrix of numbers"),
    ],
)
def test_a_bad_pose_is_one_error_naming_the_frame_and_field(matrix, message):
    with pytest.raises(BadInputError) as err:
        check_pose(matrix, "frame img/7.png")
    assert str(err.value) == f"frame img/7.png: transform_matrix: {message}"


def test_ray_cast_depth_is_exact_on_the_ground():
    # Straight down from 2 m: every ray hits the ground plane, at z-depth exactly 2 everywhere.
    c2w = look_at([40.0, 2.0, 40.0], [40.0, 0.0, 40.0], up=(0.0, 0.0, -1.0))
    view = ray_cast(town(0, blocks=2), K, c2w)
    assert np.allclose(view.depth, 2.0, atol=1e-5) and (view.surface == 0).all()
    assert np.allclose(pixel_rays(K)[..., 2], -1.0)


def test_a_revisit_updates_voxels_and_adds_none():
    vm = VoxelMap(MapConfig(voxel=0.5))
    pts = np.array([[0.1, 0.1, 0.1], [0.2, 0.2, 0.2], [3.0, 0.0, 0.0]])
    cols = np.full((3, 3), 0.5, np.float32)
    assert vm.observe(0, pts, cols, np.array([0.3, 0.9, 0.5], np.float32)) == 2
    assert vm.observe(1, pts, cols, np.array([0.3, 0.4, 0.5], np.float32)) == 0
    assert len(vm) == 2 and vm.hits.tolist() == [2, 2]


def test_each_voxel_keeps_its_best_observers_and_equal_scores_go_to_the_newer_frame():
    vm = VoxelMap(MapConfig(voxel=1.0, observers=2))
    p, c = np.zeros((1, 3)), np.zeros((1, 3), np.float32)
    for frame, score in [(0, 0.1), (1, 0.5), (2, 0.3), (3, 0.05), (4, 0.3)]:
        vm.observe(frame, p, c, np.array([score], np.float32))
    assert sorted(vm.obs_frame[0].tolist()) == [1, 4]


def _walk(n: int = 24) -> tuple[FrameSet, list, list]:
    scene = town(0, blocks=3)
    poses = [look_at([-14.0 + 28.0 * i / (n - 1), 1.6, 9.0], [0.0, 2.0, 0.0]) for i in range(n)]
    views = [ray_cast(scene, K, p) for p in poses]
    fs = FrameSet()
    for i, (p, v) in enumerate(zip(poses, views, strict=True)):
        fs.add(Frame(f"f{i}", float(i), p, K, v.rgb, v.depth))
    return fs, poses, views


def test_no_policy_chooses_a_frame_later_than_the_view():
    fs, poses, _ = _walk()
    target = Target(poses[5], K, 7.5)
    for name in POLICIES:
        chosen = choose(fs, target, 4, name)
        assert chosen and all(fs.times[c.frame] <= 7.5 for c in chosen) and len(chosen) <= 4, name
        assert all(c.reason for c in chosen)


def test_recent_is_the_sliding_window_and_map_is_the_default_with_depth():
    fs, poses, _ = _walk()
    target = Target(poses[2], K, 20.0)
    assert [c.frame for c in choose(fs, target, 3, "recent")] == [20, 19, 18]
    assert choose(fs, target, 3) == choose(fs, target, 3, "map")


def test_the_map_policy_gives_back_an_early_view_that_the_window_has_lost():
    fs, poses, _ = _walk()
    # The view repeats frame 2's pose at time 23.5: the last 3 frames look from the far end of the street.
    chosen = choose(fs, Target(poses[2], K, 23.5), 3, "map")
    assert chosen[0].frame in (1, 2, 3)


def test_warping_a_frame_into_its_own_pose_gives_back_its_pixels():
    _, poses, views = _walk(4)
    r = forward_warp([Source(views[1].rgb, views[1].depth, K, poses[1])], K, poses[1])
    seen = views[1].depth > 0
    assert not (r.mask & ~seen).any() and (r.mask & seen).sum() > 0.85 * seen.sum()  # all but depth edges
    assert np.array_equal(r.rgb[r.mask], views[1].rgb[r.mask])
    assert np.allclose(r.depth[r.mask], views[1].depth[r.mask], rtol=1e-5)
