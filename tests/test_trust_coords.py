"""Coordinates and cameras: a UTM-scale capture behaves exactly as the same capture near the origin, a point the
map cannot represent is refused, and hostile numbers in poses, intrinsics and view sizes give one line, store
nothing and allocate nothing."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from agentmem.cli.main import cli
from agentmem.errors import BadInputError
from agentmem.formats.transforms import write_transforms
from agentmem.interactive import CameraPath, LoopConfig, WorldLoop
from agentmem.spatial.camera import Intrinsics, check_fov, check_intrinsics, check_pose, look_at
from agentmem.spatial.frames import Frame
from agentmem.spatial.scenes import ray_cast, town
from agentmem.spatial.world import SpatialMemory
from generators.world_preview import PreviewWorldGenerator

K = Intrinsics.from_fov(70.0, 48, 36)
# A UTM easting and northing (the town is y-up: the ground is x-z). Whole metres, and camera positions with few
# fractional bits, so that every coordinate survives the shift exactly in float64.
UTM = np.array([600_000.0, 0.0, 4_500_000.0])
FAR = np.array([2.0**21 * 0.5, 0.0, 0.0])  # 2**21 voxels of 0.5 m: the distance at which 21-bit keys wrapped


def _poses(n: int, shift: np.ndarray = np.zeros(3)) -> list[np.ndarray]:
    return [look_at(np.array([-14.0 + 2.5 * i, 1.5, 9.0]) + shift, np.array([0.0, 2.0, 0.0]) + shift) for i in range(n)]


@pytest.fixture(scope="module")
def views() -> list[tuple[np.ndarray, np.ndarray]]:
    scene = town(0, blocks=3)
    return [(v.rgb, v.depth) for v in (ray_cast(scene, K, c2w) for c2w in _poses(12))]


def _dataset(folder: Path, views, shift: np.ndarray) -> Path:
    """The town's 12 frames, their pixels as seen near the origin, their poses moved by ``shift``."""
    frames = [Frame(f"f{i}", float(i), c2w, K, rgb, depth) for i, (c2w, (rgb, depth)) in
              enumerate(zip(_poses(12, shift), views, strict=True))]  # fmt: skip
    return write_transforms(folder, frames)


def _run(*args: str):
    return CliRunner().invoke(cli, list(args))


def _one_line_error(res, message: str) -> None:
    assert res.exit_code == 1 and res.output.count("\n") == 1, res.output
    assert message in res.output, res.output


def _ingested(tmp_path: Path, views, shift: np.ndarray, name: str) -> Path:
    db = tmp_path / name
    res = _run("world", "ingest", str(_dataset(tmp_path / f"{name}-scene", views, shift)), "--db", str(db))
    assert res.exit_code == 0, res.output
    return db


def test_a_utm_capture_maps_retrieves_and_renders_exactly_as_the_same_capture_near_the_origin(tmp_path, views):
    near, utm = _ingested(tmp_path, views, np.zeros(3), "near"), _ingested(tmp_path, views, UTM, "utm")
    with SpatialMemory(near) as a, SpatialMemory(utm) as b:
        assert a.origin.tolist() == [0.0, 0.0, 0.0] and b.origin.tolist() == UTM.tolist()
        assert len(a.frames.map) == len(b.frames.map) > 1000
        for name, array in a.frames.map.in_key_order().items():  # the same voxels, keys relative to the origin
            assert np.array_equal(array, b.frames.map.in_key_order()[name]), name
        for view in (_poses(12)[2], look_at([3.0, 1.5, 4.0], [0.0, 1.0, -6.0])):
            for policy in ("map", "fov", "pose", "overlap"):
                got_a = a.retrieve(view, K, 20.0, budget=4, policy=policy)
                got_b = b.retrieve(to_utm(view), K, 20.0, budget=4, policy=policy)
                assert [g.id for g in got_a] == [g.id for g in got_b] and got_a, policy
                assert np.allclose([g.score for g in got_a], [g.score for g in got_b], rtol=0, atol=1e-6)
            ra, rb = a.render(view, K, 20.0), b.render(to_utm(view), K, 20.0)
            assert ra.mask.mean() > 0.3
            assert np.array_equal(ra.rgb, rb.rgb) and np.array_equal(ra.depth, rb.depth)
            assert np.array_equal(a.pose(3), _poses(12)[3]) and np.array_equal(b.pose(3), _poses(12, UTM)[3])
    recorded = sqlite3.connect(utm / "memory.db").execute("SELECT value FROM meta WHERE key='spatial_origin'")
    assert json.loads(recorded.fetchone()[0]) == UTM.tolist()


def to_utm(c2w: np.ndarray) -> np.ndarray:
    out = c2w.copy()
    out[:3, 3] += UTM
    return out


def test_the_exported_point_cloud_is_in_world_coordinates(tmp_path, views):
    clouds = []
    for name, shift in (("near", np.zeros(3)), ("utm", UTM)):
        db = _ingested(tmp_path, views, shift, name)
        assert _run("world", "export", "--db", str(db), "--ply", str(tmp_path / f"{name}.ply")).exit_code == 0
        lines = (tmp_path / f"{name}.ply").read_text().splitlines()[10:]
        clouds.append(np.array([[float(v) for v in line.split()] for line in lines]))
    near, utm = clouds
    assert np.array_equal(near[:, :3] + UTM, utm[:, :3]) and np.array_equal(near[:, 3:], utm[:, 3:])


def test_a_capture_2_21_voxels_away_maps_apart_and_a_view_at_the_origin_sees_none_of_it(tmp_path, views):
    # Before, 21-bit keys wrapped: these frames landed on the voxels at the origin, and a view there, which memory
    # never saw, got a frame "covering 86% of the view's map voxels".
    with SpatialMemory(_ingested(tmp_path, views, FAR, "far")) as sm:
        assert sm.origin.tolist() == [1_049_000.0, 0.0, 0.0]
        assert sm.retrieve(_poses(12)[2], K, 20.0, policy="map") == []
        assert sm.retrieve(_poses(12, FAR)[2], K, 20.0, policy="map")
        assert not sm.render(_poses(12)[2], K, 20.0).mask.any()


def test_a_frame_the_map_cannot_represent_is_refused_with_one_line_and_nothing_is_stored(tmp_path, views):
    db = _ingested(tmp_path, views, np.zeros(3), "mem")

    def moved(name: str, shift: np.ndarray) -> Path:  # the town moved by ``shift``, its frame ids "./images/..."
        data = json.loads(_dataset(tmp_path / name, views, shift).read_text())
        for f in data["frames"]:
            f["file_path"] = "./" + f["file_path"]
        (tmp_path / name / "moved.json").write_text(json.dumps(data))
        return tmp_path / name / "moved.json"

    res = _run("world", "ingest", str(moved("far", FAR)), "--db", str(db), "--copy")
    _one_line_error(res, "frame './images/00000.png': transform_matrix: the camera at [1048562.0, 1.5, 9.0] m is too")
    assert "(the map reaches ±524,288 m along each axis from the memory's origin [0.0, 0.0, 0.0] m)" in res.output
    # A camera within the range whose depth could reach past it: refused before anything is written.
    res = _run("world", "ingest", str(moved("edge", np.array([524_270.0, 0.0, 0.0]))), "--db", str(db), "--copy")
    _one_line_error(res, "frame './images/00000.png': depth_file_path: points up to 46 m from the camera at [524256.0,")
    with SpatialMemory(db) as sm:
        assert len(sm.frames) == 12 and sm.frames.ids[-1] == "images/00011.png"
    assert not (db / "frames").exists()  # nothing copied


def test_a_memory_stored_before_origins_keeps_origin_zero(tmp_path, views):
    db = _ingested(tmp_path, views, np.array([700.0, 0.0, 0.0]), "mem")  # a new memory here gets origin 1 km
    with SpatialMemory(db) as sm:
        assert sm.origin.tolist() == [1000.0, 0.0, 0.0]
        before = sm.retrieve(_poses(12, np.array([700.0, 0.0, 0.0]))[4], K, 20.0)
    conn = sqlite3.connect(db / "memory.db")
    with conn:  # as an older agentmem left it: no origin, and (to map again) no checkpoint
        conn.execute("DELETE FROM meta WHERE key IN ('spatial_origin', 'map.upto')")
        conn.execute("DELETE FROM map_arrays")
    conn.close()
    with SpatialMemory(db) as sm:
        assert sm.origin.tolist() == [0.0, 0.0, 0.0]
        assert [r.id for r in sm.retrieve(_poses(12, np.array([700.0, 0.0, 0.0]))[4], K, 20.0)] == [
            r.id for r in before
        ]
        sm.add([Frame("late", 30.0, _poses(12, np.array([700.0, 0.0, 0.0]))[0], K, *views[0])])
        assert sm.origin.tolist() == [0.0, 0.0, 0.0]
    with SpatialMemory(db) as sm:
        assert sm.origin.tolist() == [0.0, 0.0, 0.0] and len(sm.frames) == 13


def _edit_pose(i: int, t: list[float]):
    def edit(d: dict) -> None:
        d["frames"][i]["transform_matrix"][0][3], d["frames"][i]["transform_matrix"][1][3] = t

    return edit


def _story_pose(i: int, pose: list[float]):
    def edit(d: dict) -> None:
        del d["frames"][i]["transform_matrix"]
        d["frames"][i]["pose"] = pose

    return edit


BOOL_POSE = [[True, False, False, 0], [False, True, False, 0], [False, False, True, 0], [0, 0, 0, True]]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_edit_pose(3, [1e12, 0.0]), "frame 'images/00003.png': transform_matrix: translation [1000000000000.0, 0.0"),
        (_edit_pose(4, [0.0, 1e300]), "frame 'images/00004.png': transform_matrix: translation [0.0, 1e+300"),
        (lambda d: d["frames"][1].update(transform_matrix=BOOL_POSE),
         "frame 'images/00001.png': transform_matrix: entries must be numbers, not true/false or text"),
        (lambda d: d.update(fl_x=1e-300), "frame 'images/00000.png': fl_x: focal length 1e-300 px is outside"),
        (lambda d: d.update(fl_y=1e300), "frame 'images/00000.png': fl_y: focal length 1e+300 px is outside"),
        (lambda d: d.update(cx=-1e9), "frame 'images/00000.png': cx: must lie within ±480 px"),
        (lambda d: d.update(cy=1e300), "frame 'images/00000.png': cy: must lie within ±360 px"),
        (lambda d: d.update(w=48.7), "frame 'images/00000.png': w: must be a whole number of pixels, got 48.7"),
        (lambda d: d.update(h=True), "frame 'images/00000.png': h: must be a whole number of pixels, got True"),
        (lambda d: d["frames"][2].update(w=10**400), "frame 'images/00002.png': w: must be a whole number"),
        (_story_pose(5, [0, 0, 1e12, 0, 0]),
         "frame 'images/00005.png': pose: position [0, 0, 1000000000000.0] is beyond ±1e+07 m"),
    ],
)  # fmt: skip
def test_hostile_numbers_in_a_transforms_file_give_one_line_and_store_nothing(tmp_path, views, edit, message):
    dataset = _dataset(tmp_path / "scene", views, np.zeros(3))
    data = json.loads(dataset.read_text())
    edit(data)
    bad = dataset.parent / "bad.json"
    bad.write_text(json.dumps(data))
    db = tmp_path / "mem"
    _one_line_error(_run("world", "ingest", str(bad), "--db", str(db)), message)
    assert not (db / "memory.db").exists()


def test_a_story_camera_needs_a_field_of_view_inside_the_bounds(tmp_path, views):
    dataset = _dataset(tmp_path / "scene", views, np.zeros(3))
    data = json.loads(dataset.read_text())
    for key in ("fl_x", "fl_y", "cx", "cy"):
        del data[key]
    data["frames"][6].update(pose=[0, 0, 1.5, 0, 0], fov=179.9)
    del data["frames"][6]["transform_matrix"]
    data["fov"] = 70
    bad = dataset.parent / "bad.json"
    bad.write_text(json.dumps(data))
    res = _run("world", "ingest", str(bad), "--db", str(tmp_path / "mem"))
    _one_line_error(res, "frame 'images/00006.png': fov: must be a horizontal field of view in [0.01, 179.5] degrees")
    assert not (tmp_path / "mem" / "memory.db").exists()


def test_whole_sizes_written_as_floats_are_taken_and_4k_fits_the_bounds(tmp_path, views):
    dataset = _dataset(tmp_path / "scene", views, np.zeros(3))
    data = json.loads(dataset.read_text())
    data.update(w=48.0, h=36.0)
    dataset.write_text(json.dumps(data))
    assert _run("world", "ingest", str(dataset), "--db", str(tmp_path / "mem")).exit_code == 0
    assert check_intrinsics(3000, 3000, 1920, 1080, 3840, 2160, "4K").w == 3840
    with pytest.raises(BadInputError, match="8K: w: 7680x4320 is 33,177,600 pixels, more than the 16,777,216 allowed"):
        check_intrinsics(6000, 6000, 3840, 2160, 7680, 4320, "8K")
    with pytest.raises(BadInputError, match="cam: width: must be 1 to 8192 pixels, got 0"):
        check_fov(70, 0, 120, "cam", names=("fov", "width", "height"))
    with pytest.raises(BadInputError, match="step 0: transform_matrix: entries must be numbers"):
        check_pose(np.eye(4, dtype=bool), "step 0")


def _views_file(path: Path, w: object, h: object) -> Path:
    entry = {"file_path": "v/big.png", "transform_matrix": _poses(12)[2].tolist(), "time": 20.0}
    path.write_text(json.dumps({"fl_x": 40.0, "fl_y": 40.0, "cx": 24.0, "cy": 18.0, "w": w, "h": h, "frames": [entry]}))
    return path


@pytest.mark.parametrize("command", ["render", "retrieve"])
def test_a_huge_view_gives_one_line_and_writes_no_out_folder(tmp_path, views, command):
    import tracemalloc

    db = _ingested(tmp_path, views, np.zeros(3), "mem")
    big = _views_file(tmp_path / "views.json", 100_000, 100_000)
    out = tmp_path / "out"
    args = ["world", command, "--db", str(db), "--views", str(big), *(["--out", str(out)] * (command == "render"))]
    tracemalloc.start()
    res = _run(*args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    _one_line_error(res, "view 'v/big.png': w: must be 1 to 8192 pixels, got 100000")
    assert not out.exists() and peak < 2**30  # refused before allocating 27.9 GiB


def _loop_path(xs: list[float], t0: float, shift: np.ndarray) -> CameraPath:
    c2w = np.stack([look_at(np.array([x, 1.5, 0.0]) + shift, np.array([x + 1, 1.5, -0.25]) + shift) for x in xs])
    return CameraPath(c2w, K, [t0 + i for i in range(len(xs))])


def test_the_world_loop_at_utm_scale_plans_as_it_does_near_the_origin(tmp_path):
    plans = []
    for name, shift in (("near", np.zeros(3)), ("utm", UTM)):
        loop = WorldLoop(SpatialMemory(tmp_path / name), PreviewWorldGenerator(), LoopConfig(), seed=3)
        for xs, t0 in (([0.0, 0.5, 1.0], 0.0), ([6.0, 6.5], 3.0), ([0.0, 0.5], 6.0)):
            plan, _ = loop.step(_loop_path(xs, t0, shift), "walk")
        plans.append(plan)
        assert np.array_equal(plan.context[0].c2w, loop.spatial.pose(loop.spatial.number_of(plan.context[0].id)))
        assert np.abs(plan.context[0].c2w[:3, 3] - shift).max() < 10  # the generator gets world poses
    near, utm = plans
    assert [c.id for c in near.context] == [c.id for c in utm.context] and near.guidance_mask.mean() > 0.5
    # Depth comes from the ground, which the shift leaves alone; the preview's colours follow world positions.
    assert np.array_equal(near.guidance_mask, utm.guidance_mask)
    assert np.array_equal(near.guidance_depth, utm.guidance_depth)


@pytest.mark.parametrize("x", [1e12, float("nan")])
def test_frames_added_as_arrays_are_bounded_too_even_the_first(tmp_path, views, x):
    c2w = _poses(12)[0].copy()
    c2w[0, 3] = x
    with SpatialMemory(tmp_path / "mem") as sm:
        with pytest.raises(
            BadInputError, match=r"frame 'f0': transform_matrix: the camera at \[.*\] m is beyond ±1e\+07"
        ):
            sm.add([Frame("f0", 0.0, c2w, K, *views[0])])
        assert len(sm.frames) == 0 and not (tmp_path / "mem" / "frames").exists()
    with SpatialMemory(tmp_path / "mem") as sm:
        assert len(sm.frames) == 0 and sm.store.get_meta("spatial_origin") is None


def test_a_second_writer_takes_the_origin_the_first_one_recorded(tmp_path, views):
    with SpatialMemory(tmp_path / "mem") as a, SpatialMemory(tmp_path / "mem") as b:
        b.add([Frame("b0", 0.0, to_utm(_poses(12)[0]), K, *views[0])])
        a.add([Frame("a1", 1.0, to_utm(_poses(12)[1]), K, *views[1])])  # a opened before any origin existed
        assert a.origin.tolist() == UTM.tolist() and a.frames.ids == ["b0", "a1"]
        assert np.array_equal(a.pose(0), to_utm(_poses(12)[0]))
        with pytest.raises(BadInputError, match="frame 'a2': transform_matrix: the camera at .* is too far"):
            a.add([Frame("a2", 2.0, _poses(12)[2], K, *views[2])])  # 4,500 km from the memory's origin
        assert len(a.frames) == 2
