"""The world loop: given camera paths that come back to a place, memory conditions the next chunk, written back."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from click.testing import CliRunner

from agentmem.cli.main import cli
from agentmem.errors import BadInputError
from agentmem.interactive import CameraPath, LoopConfig, WorldLoop
from agentmem.interactive.walks import parse_walk
from agentmem.spatial.camera import Intrinsics, look_at
from agentmem.spatial.world import SpatialMemory
from agentmem.storage.store import Store
from generators.world import WorldClip, plucker_rays
from generators.world_preview import PreviewWorldGenerator

K = Intrinsics.from_fov(70.0, 48, 36)


def _path(xs: list[float], t0: float, facing: float = 1.0) -> CameraPath:
    c2w = np.stack([look_at([x, 1.6, 0.0], [x + facing, 1.5, -0.2]) for x in xs])
    return CameraPath(c2w, K, [t0 + i for i in range(len(xs))])


def _loop(tmp_path, mode: str = "memory") -> WorldLoop:
    return WorldLoop(SpatialMemory(tmp_path / mode), PreviewWorldGenerator(), LoopConfig(mode=mode), seed=3)


def test_a_revisit_is_drawn_from_memory_and_the_first_visit_is_invented(tmp_path):
    loop = _loop(tmp_path)
    plan0, clip0 = loop.step(_path([0.0, 0.5, 1.0], 0.0), "walk east")
    assert plan0.context == [] and not plan0.guidance_mask.any() and clip0.invented.all()
    loop.step(_path([6.0, 6.5, 7.0], 3.0), "further")
    plan2, clip2 = loop.step(_path([0.0, 0.5, 1.0], 6.0), "back at the start")
    assert min(plan2.covered) > 0.9 and {c.id[:9] for c in plan2.context} >= {"step00000"}
    keep = plan2.guidance_mask
    assert np.array_equal(clip2.frames[keep], plan2.guidance_rgb[keep])  # the preview keeps memory where it covers
    assert np.array_equal(clip2.invented, ~keep)
    # Written back whole, with the back end's depth: 9 frames, ids by step and frame.
    sm = loop.spatial
    assert sm.frames.ids[:3] == ["step00000/f000", "step00000/f001", "step00000/f002"] and len(sm.frames) == 9
    assert (
        sm.frames.has_depth.all()
        and plan2.anchor_id == "step00000/f000"
        and plan2.window_ids[-1].startswith("step00001")
    )


def test_without_memory_a_revisit_is_invented_anew(tmp_path):
    loop = _loop(tmp_path, "none")
    _, first = loop.step(_path([0.0, 0.5], 0.0))
    plan, again = loop.step(_path([0.0, 0.5], 2.0))
    assert plan.context == [] and plan.window is None and not plan.guidance_mask.any()
    assert again.invented.all() and not np.array_equal(first.frames, again.frames)  # another step, another world


def test_the_window_mode_sees_only_the_last_frames(tmp_path):
    loop = WorldLoop(SpatialMemory(tmp_path), PreviewWorldGenerator(), LoopConfig(mode="window", window=2, budget=2))
    loop.step(_path([0.0, 0.5, 1.0], 0.0))
    plan, _ = loop.step(_path([1.5], 3.0))
    assert [c.id for c in plan.context] == ["step00000/f002", "step00000/f001"]
    assert plan.window_ids == ["step00000/f001", "step00000/f002"] and plan.anchor is None


@pytest.mark.parametrize(
    ("path", "entities", "message"),
    [
        (CameraPath(np.zeros((0, 4, 4)), K, []), (), "step 0: camera_path: needs at least one frame"),
        (CameraPath(np.full((1, 4, 4), np.nan), K, [0.0]), (), "step 0: frame 0: transform_matrix: has a non-finite"),
        (CameraPath(np.diag([2.0, 1, 1, 1])[None], K, [0.0]), (), "step 0: frame 0: transform_matrix: not rigid"),
        (_path([0.0, 1.0], 0.0), ("nobody",), "step 0: entities: unknown entity 'nobody'"),
        (CameraPath(_path([0.0, 1.0], 0.0).c2w, K, [1.0, 0.0]), (), "step 0: time: must be finite and must not go"),
    ],
)
def test_bad_input_names_the_step_and_the_field_and_stores_nothing(tmp_path, path, entities, message):
    loop = _loop(tmp_path)
    with pytest.raises(BadInputError, match=message.replace("(", r"\(")):
        loop.step(path, "x", entities=entities)
    assert len(loop.spatial.frames) == 0 and loop.steps == 0


def test_close_ends_the_planning_threads_once_and_a_closed_loop_refuses_to_plan(tmp_path):
    before = set(threading.enumerate())
    with WorldLoop(SpatialMemory(tmp_path), PreviewWorldGenerator()) as loop:
        loop.step(_path([0.0, 0.5], 0.0))
        loop.step(_path([0.0, 0.5], 2.0))  # memory covers it: the threads render the guidance
        workers = set(threading.enumerate()) - before
        assert workers and all(t.is_alive() for t in workers)
    assert not any(t.is_alive() for t in workers)
    loop.close()  # again: nothing to do, no error
    with pytest.raises(BadInputError, match="step 2: the loop is closed"):
        loop.step(_path([0.0, 0.5], 4.0))
    assert len(loop.spatial.frames) == 4


class _Short(PreviewWorldGenerator):
    def generate_world(self, plan):
        clip = super().generate_world(plan)
        return WorldClip(clip.frames[:-1], None, clip.invented[:-1])


def test_a_chunk_is_written_whole_or_not_at_all(tmp_path):
    loop = WorldLoop(SpatialMemory(tmp_path), _Short())
    with pytest.raises(BadInputError, match="step 0: clip: the back end returned frames"):
        loop.step(_path([0.0, 0.5, 1.0], 0.0))
    assert len(loop.spatial.frames) == 0
    assert SpatialMemory(tmp_path).stats()["frames"] == 0


def test_the_plan_names_entities_with_appearance_and_has_a_json_form(tmp_path):
    store = Store(tmp_path)
    with store.transaction():
        store.insert_entity("cart", "object", "the red cart", 0.0)
        store.set_attribute("cart", "appearance", "red wooden cart", 0.0, "test")
    store.close()
    loop = WorldLoop(SpatialMemory(tmp_path), PreviewWorldGenerator())
    plan, _ = loop.step(_path([0.0, 0.5], 0.0), "push the cart", entities=["cart"])
    assert plan.entities[0].name == "the red cart" and plan.entities[0].appearance == "appearance: red wooden cart"
    assert plan.entities[0].position is None  # never tracked
    d = json.loads(json.dumps(plan.to_dict()))
    assert set(d) == {"step", "times", "camera", "action", "prompt", "covered", "context", "window", "anchor",
                      "entities", "memory_trace", "seed"}  # fmt: skip
    assert d["covered"] == [0.0, 0.0] and d["prompt"] == "push the cart" and len(d["camera"]["c2w"]) == 2
    rays = plucker_rays(plan.c2w, plan.camera)
    assert rays.shape == (2, 6, K.h, K.w) and np.allclose(np.linalg.norm(rays[:, :3], axis=1), 1.0, atol=1e-6)


WALK = {
    "name": "tiny",
    "camera": {"fov": 70, "width": 48, "height": 36},
    "fps": 2,
    "chunk": 2,
    "keyframes": [
        {"t": 0, "eye": [0, 1.6, 0], "look_at": [1, 1.6, 0], "action": "east"},
        {"t": 2, "eye": [4, 1.6, 0], "look_at": [5, 1.6, 0]},
        {"t": 3, "eye": [0, 1.6, 0], "look_at": [1, 1.6, 0], "action": "back"},
    ],
}


def test_a_walk_is_cut_into_chunks_with_interpolated_poses():
    steps = parse_walk(WALK).steps()
    assert [s.times for s in steps] == [[0.0, 0.5], [1.0, 1.5], [2.0, 2.5], [3.0]]
    assert np.allclose(steps[0].c2w[1][:3, 3], [1.0, 1.6, 0.0]) and np.allclose(steps[2].c2w[1][:3, 3], [2, 1.6, 0])
    assert [s.action for s in steps] == ["east", "east", "east", "back"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda w: w["keyframes"][2].update(t=1), "keyframes[2]: t: 1 goes backwards (after 2)"),
        (lambda w: w["keyframes"][1].update(eye=[0, "x", 0]), "keyframes[1]: eye: must be three finite numbers"),
        (lambda w: w["keyframes"][0].update(look_at=[0, 1.6, 0]), "keyframes[0]: look_at: must differ from eye"),
        (lambda w: w.update(speed=3), "walk: speed: unknown field"),
    ],
)
def test_a_bad_walk_names_the_keyframe_and_the_field(edit, message):
    w = json.loads(json.dumps(WALK))
    edit(w)
    with pytest.raises(BadInputError) as e:
        parse_walk(w)
    assert message in str(e.value)


def test_world_run_writes_videos_plot_plans_and_report(tmp_path):
    walk = tmp_path / "tiny.json"
    walk.write_text(json.dumps(WALK))
    out = tmp_path / "run"
    res = CliRunner().invoke(cli, ["world", "run", str(walk), "--out", str(out)])
    assert res.exit_code == 0, res.output
    for name in ("video.mp4", "side_by_side.mp4", "memory.png", "plans.jsonl", "report.html"):
        assert (out / name).is_file(), name
    plans = [json.loads(line) for line in (out / "plans.jsonl").read_text().splitlines()]
    assert [p["step"] for p in plans] == [0, 1, 2, 3] and plans[3]["action"] == "back" and plans[3]["covered"][0] > 0.5
    assert "side by side:" in res.output and SpatialMemory(out / "memory").stats()["frames"] == 7


@pytest.mark.parametrize("command", [["world", "run", "street_return"], ["bench", "world", "--walk", "street_return"]])
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backend", "ltx"], "Invalid value for '--backend'"),
        (["--backend", "wan-vace"], "--backend wan-vace is a diffusers pipeline: give its weights with --model"),
        (["--backend", "svd", "--model", "/no/such/weights"], "WeightsNotFoundError: Could not load weights"),
        (["--model", "/some/weights"], "--model: the preview back end takes no weights"),
    ],
)
def test_a_world_back_end_that_cannot_be_built_is_one_line_and_writes_nothing(tmp_path, command, args, message):
    out = tmp_path / "never"
    res = CliRunner().invoke(cli, [*command, "--out", str(out), *args])
    assert res.exit_code != 0 and message in res.output and "Traceback" not in res.output, res.output
    assert not out.exists()


class _NoDepth(PreviewWorldGenerator):
    name = "no-depth"

    def generate_world(self, plan):
        clip = super().generate_world(plan)
        return WorldClip(clip.frames, None, clip.invented)


def test_bench_world_runs_on_the_back_end_it_is_given_and_needs_its_depth(tmp_path):
    from agentmem.bench.world import run_mode

    walk = parse_walk(WALK)
    given, default = (run_mode(walk, "memory", tmp_path / d, 2, **kw)
                      for d, kw in (("a", {"generator": PreviewWorldGenerator()}), ("b", {})))  # fmt: skip
    assert given.frames == default.frames == 4 and given.map_voxels == default.map_voxels > 0
    with pytest.raises(BadInputError, match="bench world: the no-depth back end returns no depth"):
        run_mode(walk, "memory", tmp_path / "c", 2, generator=_NoDepth())


def test_bench_world_prints_the_documented_json(tmp_path):
    walk = tmp_path / "tiny.json"
    walk.write_text(json.dumps(WALK))
    out = str(tmp_path / "b")
    res = CliRunner().invoke(cli, ["bench", "world", "--walk", str(walk), "--seeds", "2", "--out", out, "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    modes = report["modes"]
    assert set(modes) == {"memory", "window", "none"}
    assert all({"revisit_psnr_db", "invented_share_on_revisit"} <= set(m) for m in modes.values())
    # Two seeds: two runs per mode, pooled; the range holds each run's own revisit PSNR.
    assert set(report["walks"]) == {"tiny seed 0", "tiny seed 1"}
    runs = [report["walks"][w]["memory"]["revisit_psnr_db"] for w in sorted(report["walks"])]
    assert modes["memory"]["revisit_psnr_db_range"] == [min(runs), max(runs)]
    # --steps N drives the first N chunks only: one chunk of two frames revisits nothing.
    res = CliRunner().invoke(cli, ["bench", "world", "--walk", str(walk), "--steps", "1", "--out", out, "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert {m: (r["frames"], r["revisit_frames"]) for m, r in report["walks"]["tiny"].items()} == {
        "memory": (2, 0), "window": (2, 0), "none": (2, 0)
    }  # fmt: skip
    assert modes["none"]["invented_share_on_revisit"] == 1.0
    assert modes["memory"]["revisit_psnr_db"] > modes["none"]["revisit_psnr_db"] + 10


def test_a_depth_model_without_weights_is_a_clear_error(tmp_path):
    from agentmem.errors import ModelUnavailableError
    from agentmem.interactive.depth import DepthEstimator

    estimator = DepthEstimator(str(tmp_path / "no-such-model"))
    with pytest.raises(ModelUnavailableError, match="weights not found.*huggingface-cli download"):
        estimator(np.zeros((8, 8, 3), np.uint8))


def test_planning_is_timed_against_memory_size():
    from agentmem.bench.world import time_planning

    rows = time_planning([30, 60], pool=30, queries=2, chunk=4)
    assert [r["frames"] for r in rows] == [30, 60]
    assert all(0 < r["plan_ms_p50"] <= r["plan_ms_p95"] for r in rows)


def test_circling_one_square_stops_growing_the_map_once_it_is_seen():
    from agentmem.bench.world import circle_town

    rows = circle_town(96, every=32)  # three laps of 32 steps
    assert [r["frames"] for r in rows] == [128, 256, 384]
    assert rows[2]["map_voxels"] <= rows[1]["map_voxels"] * 1.01 < rows[0]["map_voxels"] * 1.2
