"""``agentmem world``: a nerfstudio dataset of a ray-cast town in, context frames and renders out, bad input refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from agentmem.cli.main import cli
from agentmem.errors import BadInputError
from agentmem.formats.transforms import write_transforms
from agentmem.spatial.camera import Intrinsics, look_at
from agentmem.spatial.frames import Frame
from agentmem.spatial.scenes import ray_cast, town

K = Intrinsics.from_fov(70.0, 48, 36)


def _poses(n: int) -> list[np.ndarray]:
    return [look_at([-14.0 + 28.0 * i / (n - 1), 1.6, 9.0], [0.0, 2.0, 0.0]) for i in range(n)]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("scene")
    scene = town(0, blocks=3)
    frames = []
    for i, c2w in enumerate(_poses(12)):
        v = ray_cast(scene, K, c2w)
        frames.append(Frame(f"f{i}", float(i), c2w, K, v.rgb, v.depth))
    return write_transforms(folder, frames)


def _views(path: Path, entries: list[dict]) -> Path:
    data = {"fl_x": K.fx, "fl_y": K.fy, "cx": K.cx, "cy": K.cy, "w": K.w, "h": K.h, "frames": entries}
    path.write_text(json.dumps(data))
    return path


def _run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_ingest_then_retrieve_prints_the_documented_json(dataset, tmp_path):
    db = str(tmp_path / "mem")
    res = _run("world", "ingest", str(dataset), "--db", db)
    assert res.exit_code == 0, res.output
    assert res.output.startswith("stored 12 frames")
    poses = _poses(12)
    views = _views(tmp_path / "views.json", [
        {"file_path": "v/early.png", "transform_matrix": poses[1].tolist(), "time": 10.5},
        {"file_path": "v/before.png", "transform_matrix": poses[1].tolist(), "time": -1.0},
    ])  # fmt: skip
    res = _run("world", "retrieve", "--db", db, "--views", str(views), "--k", "3", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["policy"] == "map" and [r["view"] for r in out["results"]] == ["v/early.png", "v/before.png"]
    first = out["results"][0]["frames"]
    assert 1 <= len(first) <= 3 and set(first[0]) == {"id", "file_path", "time", "score", "reason"}
    assert all(f["time"] <= 10.5 and f["file_path"].startswith("images/") for f in first)
    assert out["results"][1]["frames"] == []  # a view earlier than every frame gets none
    assert isinstance(out["results"][0]["latency_ms"], float)


def test_policy_parameters_are_set_from_the_command_line(dataset, tmp_path):
    db = str(tmp_path / "mem")
    assert _run("world", "ingest", str(dataset), "--db", db).exit_code == 0
    views = _views(tmp_path / "views.json", [{"file_path": "v.png", "transform_matrix": _poses(12)[5].tolist()}])
    ids = {}
    for suppress in ("1.0", "6.0"):
        res = _run("world", "retrieve", "--db", db, "--views", str(views), "--k", "3", "--policy", "pose",
                   "--policy-param", f"suppress={suppress}", "--json")  # fmt: skip
        assert res.exit_code == 0, res.output
        ids[suppress] = [f["id"] for f in json.loads(res.output)["results"][0]["frames"]]
    assert ids["1.0"][0] == ids["6.0"][0] and ids["1.0"] != ids["6.0"]  # near-duplicates suppressed further apart
    res = _run("world", "retrieve", "--db", db, "--views", str(views), "--policy", "pose", "--policy-param", "far=x")
    assert res.exit_code == 1 and res.output.count("\n") == 1
    assert "--policy-param (policy 'pose'): far: must be a number, got 'x'" in res.output


def test_render_writes_rgb_depth_and_mask_per_view(dataset, tmp_path):
    db = str(tmp_path / "mem")
    assert _run("world", "ingest", str(dataset), "--db", db).exit_code == 0
    views = _views(tmp_path / "views.json", [{"file_path": "a/view3.png", "transform_matrix": _poses(12)[3].tolist()}])
    res = _run("world", "render", "--db", db, "--views", str(views), "--out", str(tmp_path / "out"))
    assert res.exit_code == 0, res.output
    d = tmp_path / "out" / "view3"
    depth = np.asarray(Image.open(d / "depth.png"))
    mask = np.asarray(Image.open(d / "mask.png"))
    assert depth.dtype == np.uint16 and set(np.unique(mask)) <= {0, 255}
    assert ((depth > 0) == (mask == 255)).all() and (mask == 255).mean() > 0.5


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: d["frames"][1].update(transform_matrix=[[2, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]),
            "frame 'images/00001.png': transform_matrix: not rigid (the rotation is not orthonormal)",
        ),
        (lambda d: d.pop("fl_x"), "frame 'images/00000.png': fl_x: missing intrinsics"),
        (
            lambda d: d["frames"][2].update(file_path="../outside.png"),
            "frame '../outside.png': file_path: '../outside.png' is outside the dataset folder",
        ),
        (lambda d: d.update(frames=[]), "frames: must be a non-empty list"),
    ],
)
def test_bad_transforms_store_nothing_and_say_where(dataset, tmp_path, edit, message):
    data = json.loads(dataset.read_text())
    edit(data)
    bad = dataset.parent / "bad.json"
    bad.write_text(json.dumps(data))
    (dataset.parent.parent / "outside.png").write_bytes(b"")
    db = tmp_path / "mem"
    res = _run("world", "ingest", str(bad), "--db", str(db))
    assert res.exit_code == 1 and res.output.count("\n") == 1, res.output
    assert message in res.output
    assert not (db / "memory.db").exists()


def test_depth_of_the_wrong_size_or_unit_is_refused(dataset, tmp_path):
    data = json.loads(dataset.read_text())
    Image.fromarray(np.zeros((10, 10), np.uint16)).save(dataset.parent / "small.png")
    Image.fromarray(np.zeros((K.h, K.w), np.uint8)).save(dataset.parent / "eight.png")
    for name, message in (("small.png", "depth is 10x10, the image is 48x36"), ("eight.png", "must be 16-bit")):
        data["frames"][0]["depth_file_path"] = name
        bad = dataset.parent / "bad.json"
        bad.write_text(json.dumps(data))
        res = _run("world", "ingest", str(bad), "--db", str(tmp_path / "mem"))
        assert res.exit_code == 1 and message in res.output, res.output
    assert not (tmp_path / "mem" / "memory.db").exists()


def test_a_reopened_memory_has_the_same_map_and_answers(dataset, tmp_path):
    from agentmem.spatial.world import SpatialMemory

    db = tmp_path / "mem"
    assert _run("world", "ingest", str(dataset), "--db", str(db)).exit_code == 0
    with SpatialMemory(db) as a:
        keys, got = a.frames.map.keys.copy(), a.retrieve(_poses(12)[2], K, 20.0, budget=3)
    with SpatialMemory(db) as b:
        assert np.array_equal(b.frames.map.keys, keys) and b.retrieve(_poses(12)[2], K, 20.0, budget=3) == got


def test_export_writes_a_ply_and_never_overwrites(dataset, tmp_path):
    db = str(tmp_path / "mem")
    assert _run("world", "ingest", str(dataset), "--db", db).exit_code == 0
    ply = tmp_path / "map.ply"
    res = _run("world", "export", "--db", db, "--ply", str(ply))
    assert res.exit_code == 0, res.output
    head = ply.read_text().splitlines()
    n = int(head[2].split()[-1])
    assert head[0] == "ply" and len(head) == n + 10 and n > 100
    res = _run("world", "export", "--db", db, "--ply", str(ply))
    assert res.exit_code == 1 and "already exists" in res.output


def _cart_dataset(folder: Path) -> tuple[Path, list[np.ndarray]]:
    """A walk down the street while a red cart (a 1 m box) rolls along it; instance 1 is the cart."""
    from agentmem.spatial.scenes import with_box

    base, frames, carts = town(0, blocks=3), [], []
    for i, c2w in enumerate(_poses(10)):
        cart = np.array([-8.0 + 1.5 * i, 0.0, 5.0])
        carts.append(cart + 0.5)
        scene = with_box(base, cart, cart + 1.0)
        v = ray_cast(scene, K, c2w)
        inst = (v.surface == len(scene.lo)).astype(np.int32)
        frames.append(Frame(f"f{i}", float(i), c2w, K, v.rgb, v.depth, instances=inst, instance_ids={1: "cart"}))
    return write_transforms(folder, frames), carts


def test_track_compress_and_restore_from_the_cli(tmp_path):
    dataset, carts = _cart_dataset(tmp_path / "scene")
    db = tmp_path / "mem"
    people = tmp_path / "people.jsonl"
    people.write_text('{"type": "entity", "id": "cart", "kind": "object", "name": "Cart"}\n')
    res = _run("world", "ingest", str(dataset), "--db", str(db))
    assert res.exit_code == 1 and "instance_ids: unknown entity 'cart'" in res.output  # nothing stored
    assert _run("ingest", str(people), "--db", str(db)).exit_code == 0
    assert _run("world", "ingest", str(dataset), "--db", str(db)).exit_code == 0
    res = _run("world", "track", "cart", "--db", str(db), "--from", "2", "--to", "4", "--json")
    assert res.exit_code == 0, res.output
    got = json.loads(res.output)["samples"]
    assert [s["t"] for s in got] == [2.0, 3.0, 4.0]
    for s in got:  # the visible surface's median lies on the cart, within its half-size of the centre
        assert np.abs(np.array(s["position"]) - carts[int(s["t"])]).max() <= 0.5 + 1e-6
    res = _run("world", "track", "cart", "--db", str(db), "--at", "6.5", "--json")
    assert [s["frame"] for s in json.loads(res.output)["samples"]] == ["images/00006.png"]
    res = _run("world", "compress", "--db", str(db), "--dry-run", "--json")
    report = json.loads(res.output)
    assert res.exit_code == 0 and report["dry_run"] and report["frames"] == 10
    assert report["archived_now"] + report["active_after"] == 10
    res = _run("world", "compress", "--db", str(db))
    assert res.exit_code == 0 and res.output.startswith(f"archived {report['archived_now']} of 10 frames")
    res = _run("world", "restore", "--db", str(db))
    assert res.output == f"restored {report['archived_now']} frames\n"


def test_copy_stores_byte_copies_inside_the_memory(dataset, tmp_path):
    from agentmem.spatial.world import SpatialMemory

    db = tmp_path / "mem"
    assert _run("world", "ingest", str(dataset), "--db", str(db), "--copy").exit_code == 0
    with SpatialMemory(db) as sm:
        rgb, depth = sm.pixels(3)
    stored = sorted((db / "frames").iterdir())
    assert len(stored) == 24 and sum(".depth." in p.name for p in stored) == 12
    source = dataset.parent / "images" / "00003.png"
    assert np.array_equal(rgb, np.asarray(Image.open(source).convert("RGB")))
    assert any(p.read_bytes() == source.read_bytes() for p in stored)
    assert depth is not None and depth.shape == (K.h, K.w)


def test_views_may_give_story_poses_and_a_field_of_view(dataset, tmp_path):
    from agentmem.formats.transforms import load_views
    from agentmem.spatial.camera import pose_from_story

    path = tmp_path / "story_views.json"
    path.write_text(json.dumps({"w": 48, "h": 36, "fov": 70, "frames": [
        {"file_path": "a.png", "pose": [1.0, 2.0, 1.6, 90.0, 0.0], "time": 3.0},
        {"file_path": "b.png", "pose": [1.0, 2.0], "time": 3.0},
    ]}))  # fmt: skip
    with pytest.raises(BadInputError, match=r"view 'b.png': pose: must be \[x, y, z, yaw_deg, pitch_deg\]"):
        load_views(path)
    data = json.loads(path.read_text())
    data["frames"].pop()
    path.write_text(json.dumps(data))
    (view,) = load_views(path)
    assert np.allclose(view.c2w, pose_from_story(1.0, 2.0, 1.6, 90.0, 0.0)) and view.k == K


def test_frames_are_listed_by_entity_and_time_from_the_cli(tmp_path):
    dataset, _ = _cart_dataset(tmp_path / "scene")
    db = tmp_path / "mem"
    people = tmp_path / "people.jsonl"
    people.write_text('{"type": "entity", "id": "cart", "kind": "object", "name": "Cart"}\n')
    assert _run("ingest", str(people), "--db", str(db)).exit_code == 0
    assert _run("world", "ingest", str(dataset), "--db", str(db)).exit_code == 0
    res = _run("world", "frames", "--db", str(db), "--entity", "cart", "--from", "3", "--to", "5", "--json")
    assert res.exit_code == 0, res.output
    assert [f["id"] for f in json.loads(res.output)["frames"]] == [f"images/0000{i}.png" for i in (3, 4, 5)]
    res = _run("world", "frames", "--db", str(db), "--entity", "nobody")
    assert res.exit_code == 1 and "frames: entity: unknown entity 'nobody'" in res.output


def test_track_and_frames_take_names_and_aliases_like_the_narrative_commands(tmp_path):
    dataset, _ = _cart_dataset(tmp_path / "scene")
    db = tmp_path / "mem"
    people = tmp_path / "people.jsonl"
    people.write_text(
        '{"type": "entity", "id": "cart", "kind": "object", "name": "Cart", "aliases": ["the red cart"]}\n'
    )
    assert _run("ingest", str(people), "--db", str(db)).exit_code == 0
    assert _run("world", "ingest", str(dataset), "--db", str(db)).exit_code == 0
    by_id = json.loads(_run("world", "track", "cart", "--db", str(db), "--json").output)
    for ref in ("Cart", "the red cart", "RED CART"):
        res = _run("world", "track", ref, "--db", str(db), "--json")
        assert res.exit_code == 0, res.output
        assert json.loads(res.output) == by_id and by_id["entity"] == "cart" and len(by_id["samples"]) == 10
    res = _run("world", "frames", "--db", str(db), "--entity", "the red cart", "--from", "2", "--to", "3", "--json")
    assert [f["id"] for f in json.loads(res.output)["frames"]] == ["images/00002.png", "images/00003.png"]
    res = _run("world", "track", "wheelbarrow", "--db", str(db))
    assert res.exit_code == 1 and res.output.count("\n") == 1 and "track: entity: unknown entity" in res.output
    res = _run("world", "frames", "--db", str(db), "--entity", "wheelbarrow")
    assert res.exit_code == 1 and "frames: entity: unknown entity 'wheelbarrow'" in res.output
