"""The closed loop, driven one shot at a time with shots decided at run time."""

import os

import numpy as np
import pytest

from agentmem.errors import BadInputError, UnknownEntityError
from agentmem.spatial.camera import pose_from_story
from agentmem.story.director import Director, RenderOptions
from agentmem.story.frames import frame_media
from agentmem.story.planner import Planner
from generators import StoryboardGenerator

ENTITIES = [
    {"id": "mara", "kind": "character", "name": "Mara", "appearance": "silver hair, yellow raincoat"},
    {"id": "lamp", "kind": "object", "name": "the lamp", "appearance": "gold lamp"},
    {"id": "tower", "kind": "location", "name": "The Tower", "appearance": "white tower"},
    {"id": "quay", "kind": "location", "name": "The Quay", "appearance": "grey quay"},
]


@pytest.fixture
def director(make_memory, tmp_path):
    mem = make_memory("loop")
    d = Director(mem, StoryboardGenerator(), str(tmp_path / "frames"), render=RenderOptions(96, 64, 8, 8))
    d.declare(ENTITIES)
    return d


def test_step_by_step_writes_back_what_was_shown(director):
    mem = director.mem
    pose = [0, 0, 1.6, 90, 0]
    p1, c1 = director.step(
        {
            "id": "a",
            "t": 0,
            "duration": 2,
            "location": "tower",
            "characters": ["mara"],
            "action": "Mara climbs the stairs",
            "camera": {"move": "static", "pose": pose},
        }
    )
    assert c1.frames.shape == (8, 64, 96, 3)
    assert p1.static.location.reference_frames == [] and p1.dynamic.continue_from is None
    # The keyframes are events with frames, image embeddings, pose and provenance.
    ev = mem.event("shot:a:f3")
    assert ev.provenance == {"shot": "a", "frame_index": 3, "role": "middle"}
    assert ev.camera.yaw == 90 and ev.location == "tower" and ev.participants == ["mara"]
    path, vec = frame_media(mem, ["shot:a:f3"])["shot:a:f3"]
    assert os.path.isfile(path) and path == ev.media[0].path and vec.shape == (156,)  # the descriptor
    assert 0 <= ev.t_start < 2
    # With a pose, the keyframes are also posed frames of the memory's one frame store (no depth).
    sm = director.spatial
    assert sm is not None and sm.frames.ids == ["shot:a:f0", "shot:a:f3", "shot:a:f7"]
    assert np.allclose(sm.frames.c2w[1], pose_from_story(*pose)) and not sm.frames.has_depth.any()
    got = sm.retrieve(pose_from_story(*pose), sm.frames.cameras.intrinsics(0), 10.0, budget=1)
    assert got[0].id.startswith("shot:a:")
    # A shot decided now: it continues 'a', and changes Mara's coat from its own t on.
    p2, _ = director.step(
        {
            "id": "b",
            "t": 2,
            "duration": 2,
            "location": "tower",
            "characters": ["mara"],
            "objects": ["lamp"],
            "action": "Mara takes the lamp",
            "camera": {"move": "dolly-in", "pose": pose},
            "changes": {"mara": {"appearance": "silver hair, red raincoat"}},
            "facts": [["mara", "holds", "lamp"]],
        }
    )
    assert (p2.dynamic.continue_from.shot_id, p2.dynamic.continue_from.frame_index) == ("a", 7)
    assert [(f.shot_id, f.frame_index) for f in p2.static.location.reference_frames] == [("a", 3)]
    assert p2.static.entities[0].appearance == "silver hair, red raincoat"
    assert "Mara holds the lamp" in p2.prompt
    assert mem.state_at("mara", 1.9)["appearance"] == "silver hair, yellow raincoat"
    # Elsewhere after a gap: no continuity, no location references, but recent events are remembered.
    p3, _ = director.step(
        {
            "id": "c",
            "t": 60,
            "duration": 3,
            "location": "quay",
            "characters": ["mara"],
            "action": "Mara walks to the quay with the lamp",
        }
    )
    assert p3.dynamic.continue_from is None and p3.static.location.reference_frames == []
    assert [r.split("]")[0] for r in p3.dynamic.recent] == ["[b", "[a"]
    assert {t.id for t in p3.memory_trace if t.kind == "event"} <= {f"shot:{s}:f{i}" for s in "ab" for i in (0, 3, 7)}


def test_bad_shot_is_rejected_before_any_write(director):
    mem = director.mem
    director.step({"id": "a", "t": 0, "duration": 2, "location": "tower", "characters": ["mara"]})
    before = mem.stats()["events"]
    with pytest.raises(UnknownEntityError, match="shot b: objects\\[0\\]: unknown entity 'lantern'"):
        director.step(
            {
                "id": "b",
                "t": 5,
                "duration": 2,
                "characters": ["mara"],
                "objects": ["lantern"],
                "changes": {"mara": {"appearance": "green"}},
            }
        )
    with pytest.raises(BadInputError, match="shot b: t: story time goes backwards"):
        director.step({"id": "b", "t": -1, "duration": 2, "characters": ["mara"]})
    with pytest.raises(BadInputError, match="shot a: id: this shot is already in memory"):
        director.step({"id": "a", "t": 9, "duration": 2, "characters": ["mara"]})
    assert mem.stats()["events"] == before
    assert mem.state_at("mara", 10)["appearance"] == "silver hair, yellow raincoat"


def test_a_place_revisited_after_many_shots_gets_its_old_view_from_the_spatial_memory(director):
    # 70 shots walk east along the quay, 3 m apart, looking north: the 64 most recent frames no longer hold w00.
    for i in range(70):
        director.step({"id": f"w{i:02d}", "t": 2 * i, "duration": 2, "location": "quay", "characters": ["mara"],
                       "camera": {"move": "static", "pose": [3 * i, 0, 1.6, 90, 0]}})  # fmt: skip
    back = {"id": "back", "t": 200, "duration": 2, "location": "quay", "characters": ["mara"],
            "camera": {"move": "static", "pose": [0.5, 0, 1.6, 90, 0]}}  # fmt: skip
    # Without the frame store the planner offers the most recent frames, which show other stretches of the quay.
    shot = director.check_inputs(back)
    plain = Planner(director.mem)(shot, director.history[-1].shot)
    assert [(f.shot_id, f.frame_index) for f in plain.static.location.reference_frames] == [("w69", 3)]
    # The Director's planner asks the spatial memory for the views near the pose, however old: w00, then w01.
    plan, _ = director.step(back)
    refs = [(f.shot_id, f.frame_index) for f in plan.static.location.reference_frames]
    assert refs[:2] == [("w00", 3), ("w01", 3)]
    reason = next(t.reason for t in plan.memory_trace if t.id == "quay")
    assert (
        reason == "location of the shot; references chosen among 21 views near the shot's pose, from the spatial memory"
    )
