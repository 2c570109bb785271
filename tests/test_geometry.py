"""One geometry layer, one policy system: camera conventions, batched cameras, policy parameters, the map contract."""

from __future__ import annotations

import numpy as np
import pytest

from agentmem.errors import BadInputError
from agentmem.geometry import (
    Cameras,
    Intrinsics,
    look_at,
    opencv_to_opengl,
    opengl_to_opencv,
    pose_from_story,
    project,
    project_rows,
    story_from_pose,
)
from agentmem.spatial.compress import plan_compression
from agentmem.spatial.frames import Frame, FrameSet
from agentmem.spatial.params import PoseConfig, StoryConfig
from agentmem.spatial.policies import POLICIES, Target, choose
from agentmem.spatial.scenemap import SceneMap, write_ply
from agentmem.spatial.scenes import ray_cast, town
from agentmem.spatial.voxmap import VoxelMap
from agentmem.spatial.world import SpatialMemory

K = Intrinsics.from_fov(70.0, 48, 36)


def test_story_poses_round_trip_and_opencv_flips_y_and_z():
    rng = np.random.default_rng(0)
    for x, y, z, yaw, pitch in rng.uniform([-50, -50, 0, -179, -80], [50, 50, 5, 179, 80], (20, 5)):
        back = story_from_pose(pose_from_story(x, y, z, yaw, pitch))
        assert np.allclose(back, (x, y, z, yaw, pitch), atol=1e-9)
    gl = look_at([1.0, 2.0, 3.0], [4.0, 2.0, -1.0])
    cv = opengl_to_opencv(gl)
    assert np.array_equal(cv[:3, 1:3], -gl[:3, 1:3]) and np.array_equal(cv[:3, [0, 3]], gl[:3, [0, 3]])
    assert np.array_equal(opencv_to_opengl(cv), gl)


def test_batched_cameras_project_as_each_camera_alone():
    poses = [look_at([float(i), 1.0, 5.0], [0.0, 0.0, 0.0]) for i in range(3)]
    ks = [K, K.scaled(96, 72), Intrinsics(30.0, 40.0, 20.0, 15.0, 40, 30)]
    cams = Cameras.of(poses, ks, [0.0, 1.0, 2.0])
    pts = np.random.default_rng(1).normal(size=(50, 3))
    u, v, z = cams.project(pts)
    for i in range(3):
        assert cams.intrinsics(i) == ks[i]
        assert all(np.array_equal(a[i], b) for a, b in zip((u, v, z), project(pts, ks[i], poses[i]), strict=True))
    # the renderer's float32 rows agree with the float64 projection to far below a pixel
    ur, vr, zr = project_rows(pts.T.astype(np.float32), K, np.stack(poses))
    u0, v0, z0 = project(pts, K, np.stack(poses))
    assert np.allclose(ur, u0, atol=1e-3) and np.allclose(vr, v0, atol=1e-3) and np.allclose(zr, z0, atol=1e-4)


def test_the_frame_set_keeps_cameras_as_arrays():
    fs = FrameSet()
    for i, k in enumerate((K, K.scaled(24, 18))):
        fs.add(Frame(f"f{i}", float(i), look_at([i, 0, 0], [i, 0, -1]), k))
    cams = fs.cameras
    assert len(cams) == 2 and cams.intrinsics(1) == K.scaled(24, 18) and np.array_equal(cams.times, [0.0, 1.0])
    assert np.array_equal(cams.c2w, fs.c2w) and np.array_equal(cams.forwards, fs.forwards)


def _walk(fs: FrameSet, n: int = 12) -> list[np.ndarray]:
    scene = town(0, blocks=3)
    poses = [look_at([-10.0 + 2.0 * i, 1.6, 8.0], [0.0, 2.0, 0.0]) for i in range(n)]
    for i, c2w in enumerate(poses):
        v = ray_cast(scene, K, c2w)
        fs.add(Frame(f"f{i}", float(i), c2w, K, v.rgb, v.depth))
    return poses


def test_policy_parameters_reach_the_rules_and_a_wrong_config_is_refused():
    fs = FrameSet()
    poses = _walk(fs)
    target = Target(poses[5], K, 20.0)
    default = [c.frame for c in choose(fs, target, 4, "pose")]
    spread = [c.frame for c in choose(fs, target, 4, "pose", PoseConfig(suppress=5.0))]
    assert default == [5, 4, 6, 3] and spread != default and spread[0] == 5
    assert POLICIES["pose"].configure(["suppress=5"]) == PoseConfig(suppress=5.0)
    assert choose(fs, target, 4, "fov", POLICIES["fov"].configure(["far=0.2"])) == []  # nothing seen that close
    with pytest.raises(BadInputError, match="policy 'pose' takes a PoseConfig, not a StoryConfig"):
        choose(fs, target, 4, "pose", StoryConfig())
    with pytest.raises(BadInputError, match="unknown policy 'nope'"):
        choose(fs, target, 4, "nope")


class CountingMap:
    """A map of our own through the protocol: a voxel map that counts how often it is asked what a view sees."""

    def __init__(self) -> None:
        self.inner = VoxelMap()
        self.config = self.inner.config
        self.asked = 0

    def __len__(self) -> int:
        return len(self.inner)

    centres = property(lambda self: self.inner.centres)
    color = property(lambda self: self.inner.color)
    obs_frame = property(lambda self: self.inner.obs_frame)
    obs_score = property(lambda self: self.inner.obs_score)

    def observe_many(self, observations):
        return self.inner.observe_many(observations)

    def visible(self, k, c2w):
        self.asked += 1
        return self.inner.visible(k, c2w)

    def arrays(self):
        return {"counting." + n: a for n, a in self.inner.arrays().items()}

    def restore(self, arrays):
        return False  # never takes a checkpoint: the frames are mapped again


def test_a_scene_map_of_our_own_serves_the_map_policy_compression_export_and_checkpoints(tmp_path):
    mine: SceneMap = CountingMap()
    fs = FrameSet(scene_map=mine)
    poses = _walk(fs)
    plain = FrameSet()
    _walk(plain)
    target = Target(poses[3], K, 20.0)
    assert choose(fs, target, 3, "map") == choose(plain, target, 3, "map") and mine.asked == 1
    active = np.ones(len(fs), bool)
    assert np.array_equal(plan_compression(fs, active).archive, plan_compression(plain, active).archive)
    assert write_ply(mine, str(tmp_path / "a.ply"), np.zeros(3)) == len(plain.map) > 0
    with SpatialMemory(tmp_path / "mem") as sm:
        sm.add([Frame(f"g{i}", float(i), p, K, *_pixels(p)) for i, p in enumerate(poses[:3])])
        voxels = len(sm.frames.map)
    with SpatialMemory(tmp_path / "mem", scene_map=CountingMap()) as sm:  # the checkpoint is not its: maps again
        assert len(sm.frames.map) == voxels


def _pixels(c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    v = ray_cast(town(0, blocks=3), K, c2w)
    return v.rgb, v.depth
