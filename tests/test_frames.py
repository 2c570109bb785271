"""Reference-frame candidates at a location: the recent window, plus the last frame from the same pose."""

from agentmem.model import CameraPose
from agentmem.story.frames import location_frames

SAME = [0.0, 0.0, 1.6, 90.0, 0.0]


def _frame(shot: str, t: float, pose: list[float], role: str = "middle") -> dict:
    return {
        "id": f"{shot}-f",
        "t_start": t,
        "text": f"frame of {shot}",
        "location": "pier",
        "camera": {"pose": pose, "fov": 60},
        "provenance": {"shot": shot, "frame_index": 2, "role": role},
    }


def test_the_last_frame_from_the_same_pose_joins_the_recent_window(make_memory):
    m = make_memory(image_embedder=None)
    m.add_entity("pier", kind="location", name="The Pier")
    m.add_events(
        [
            _frame("a", 1, SAME),
            _frame("b", 2, SAME),
            _frame("c", 3, [5, 0, 1.6, 0, 0]),
            _frame("d", 4, [6, 0, 1.6, 0, 0]),
            _frame("e", 5, [7, 0, 1.6, 0, 0]),
            _frame("f", 6, [8, 0, 1.6, 0, 0], role="first"),  # not a middle keyframe: never a candidate
            _frame("g", 9, SAME),  # after the shot: never a candidate
        ]
    )
    pose = CameraPose(*SAME, fov=60)  # ints match the stored floats
    assert [f.shot_id for f in location_frames(m, "pier", before=8, limit=2, pose=pose)] == ["e", "d", "b"]
    assert [f.shot_id for f in location_frames(m, "pier", before=8, limit=2)] == ["e", "d"]
    assert [f.shot_id for f in location_frames(m, "pier", before=8, limit=4, pose=pose)] == ["e", "d", "c", "b"]
    m.store.set_archived([m.store.rid_of("b-f")], True)
    assert [f.shot_id for f in location_frames(m, "pier", before=8, limit=2, pose=pose)] == ["e", "d", "a"]
