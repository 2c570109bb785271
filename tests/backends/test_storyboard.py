"""The storyboard preview renderer draws what the plan says, deterministically and fast."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

from generators import GeneratorInputError, StoryboardGenerator, get_generator
from generators.conditioning import EntityConditioning, FrameRef, LocationConditioning, ShotPlan
from generators.palette import COLOUR_WORDS

W, H = 256, 160
BAND = round(0.14 * H)  # caption band height; compare pixels above it


def _one(appearance: str, kind: str = "character", name: str = "Mara", eid: str = "mara", seed: int = 0):
    return [EntityConditioning(id=eid, name=name, kind=kind, appearance=appearance, seed=seed)]


def _mask_of(frame: np.ndarray, rgb, tol: int = 12) -> np.ndarray:
    """Pixels of ``frame`` (above the caption) within ``tol`` of colour ``rgb``."""
    body = frame[: H - BAND].astype(int)
    return np.all(np.abs(body - np.array(rgb)) <= tol, axis=-1)


def _centroid(frame: np.ndarray, rgb) -> tuple[float, float, int]:
    ys, xs = np.nonzero(_mask_of(frame, rgb))
    assert len(xs) > 20, "entity colour not found in frame"
    return float(xs.mean()), float(ys.mean()), len(xs)


RED = COLOUR_WORDS["red"]
YELLOW = COLOUR_WORDS["yellow"]


def test_clip_shape_dtype_and_frames_from_duration(make_plan):
    clip = StoryboardGenerator().generate(make_plan(duration=2.0))
    assert clip.frames.shape == (16, H, W, 3)  # 2 s at the default 8 fps
    assert clip.frames.dtype == np.uint8
    assert clip.fps == 8
    short = StoryboardGenerator().generate(make_plan(), width=96, height=64, num_frames=5, fps=12)
    assert short.frames.shape == (5, 64, 96, 3) and short.fps == 12


def test_same_plan_gives_identical_frames(make_plan):
    plan = make_plan(action="Mara walks to the right", camera="dolly-in", seed=3)
    a = StoryboardGenerator().generate(plan)
    b = StoryboardGenerator().generate(ShotPlan.from_dict(plan.to_dict()))
    assert np.array_equal(a.frames, b.frames)
    assert a.metadata == b.metadata


def test_metadata_pins_what_was_drawn(make_plan):
    clip = get_generator("storyboard").generate(make_plan(action="Mara runs", camera="pan-left"))
    md = clip.metadata
    assert md["generator"] == "storyboard" and md["shot_id"] == "s01"
    assert md["camera_move"] == "pan-left" and md["motion"] == "run"
    assert md["moving_entities"] == ["mara"]
    assert md["entity_colours"]["mara"] == {
        "body": RED,
        "head": md["entity_colours"]["mara"]["head"],
        "legs": (102, 20, 20),
        "source": "appearance",
    }
    assert md["continuity_frame"] is None and md["reference_frames"] == [] and md["notes"] == []


def test_coat_colour_changes_entity_pixels_in_the_expected_direction(make_plan):
    red = StoryboardGenerator().generate(make_plan(entities=_one("a girl in a red raincoat"))).frames[0]
    yellow = StoryboardGenerator().generate(make_plan(entities=_one("a girl in a yellow raincoat"))).frames[0]
    changed = np.any(red != yellow, axis=-1)
    assert 100 < changed.sum() < 0.2 * W * H  # only the figure changed, not the backdrop
    red_px, yellow_px = red[changed].astype(int), yellow[changed].astype(int)
    # Red coat: red channel dominates; yellow coat: green rises to near red, blue stays low.
    assert red_px[:, 0].mean() > 150 and red_px[:, 1].mean() < 80
    assert yellow_px[:, 1].mean() - red_px[:, 1].mean() > 100
    assert abs(np.median(red_px, axis=0) - np.array(RED)).max() <= 2
    assert abs(np.median(yellow_px, axis=0) - np.array(YELLOW)).max() <= 2


def test_hair_and_boots_colour_their_own_parts(make_plan):
    ent = _one("a red raincoat, silver hair and blue boots")
    md = StoryboardGenerator().generate(make_plan(entities=ent), num_frames=1).metadata["entity_colours"]["mara"]
    assert (md["body"], md["head"], md["legs"]) == (RED, COLOUR_WORDS["silver"], COLOUR_WORDS["blue"])


def test_location_colour_words_and_hash_fallback(make_plan):
    def backdrop(appearance, loc_id="harbor"):
        loc = LocationConditioning(id=loc_id, name="Somewhere", appearance=appearance)
        return StoryboardGenerator().generate(make_plan(entities=[], location=loc), num_frames=1).frames[0]

    green = backdrop("a green meadow")
    assert green[: H // 3].mean(axis=(0, 1))[1] > green[: H // 3].mean(axis=(0, 1))[0]  # sky tinted green
    a, b = backdrop("an ordinary place", "loc_a"), backdrop("an ordinary place", "loc_b")
    assert not np.array_equal(a, b)  # no colour words: colour hashed from the id
    assert np.array_equal(a, backdrop("an ordinary place", "loc_a"))


def test_continuity_frame_starts_the_clip(make_plan, image_file):
    cont = image_file((0, 0, 0), size=(W, H), pattern=True)
    target = np.asarray(Image.open(cont).convert("RGB"))
    clip = StoryboardGenerator().generate(make_plan(continue_from=cont))
    above = slice(0, H - BAND)
    first_err = np.abs(clip.frames[0][above].astype(int) - target[above]).mean()
    last_err = np.abs(clip.frames[-1][above].astype(int) - target[above]).mean()
    assert first_err < 1.0  # the first frame is the previous shot's frame
    assert last_err > 40  # ...and the clip cross-fades into the new drawing
    assert clip.metadata["continuity_frame"] == cont
    fresh = StoryboardGenerator().generate(make_plan())
    assert np.abs(fresh.frames[0][above].astype(int) - target[above]).mean() > 40


def test_missing_continuity_file_is_ignored(make_plan):
    with_missing = StoryboardGenerator().generate(make_plan(continue_from="/no/such/frame.png"))
    without = StoryboardGenerator().generate(make_plan())
    assert np.array_equal(with_missing.frames, without.frames)


def test_location_reference_frame_carries_over(make_plan, image_file):
    magenta = image_file((255, 0, 255), size=(W, H))
    loc = LocationConditioning(
        id="harbor",
        name="The Harbor",
        appearance="a grey harbor",
        reference_frames=[FrameRef("s00", 3, magenta), FrameRef("s00", 9, "/missing.png")],
    )
    plain = make_plan(location=LocationConditioning(id="harbor", name="The Harbor", appearance="a grey harbor"))
    a = StoryboardGenerator().generate(plain, num_frames=1).frames[0].astype(int)
    b_clip = StoryboardGenerator().generate(make_plan(location=loc), num_frames=1)
    b = b_clip.frames[0].astype(int)
    sky = (slice(0, H // 4), slice(0, W))
    # Grey sky is pulled towards magenta: red and blue up, green down.
    assert (b[sky][..., 0] - a[sky][..., 0]).mean() > 30 and (b[sky][..., 2] - a[sky][..., 2]).mean() > 30
    assert (b[sky][..., 1] - a[sky][..., 1]).mean() < -20
    assert b_clip.metadata["reference_frames"] == [magenta]


def test_camera_moves_change_the_view(make_plan):
    def render(move):
        return StoryboardGenerator().generate(make_plan(camera=move, action="Mara waits")).frames

    static = render("static")
    moves = {m: render(m) for m in ("dolly-in", "pan-left", "pan-right", "tilt-up", "orbit", "dolly-out")}
    body = slice(0, H - BAND)
    assert np.array_equal(static[0][body], static[-1][body])  # nothing moves
    for move, frames in moves.items():
        assert np.abs(frames[0][body].astype(int) - static[0][body]).mean() < 1.0, move  # all start at rest
        assert np.abs(frames[-1][body].astype(int) - static[-1][body]).mean() > 3.0, move
    ends = [f[-1] for f in moves.values()]
    assert all(not np.array_equal(ends[i], ends[j]) for i in range(len(ends)) for j in range(i + 1, len(ends)))


def test_camera_directions(make_plan):
    ent = _one("a red coat")

    def track(move):
        frames = StoryboardGenerator().generate(make_plan(entities=ent, camera=move, action="Mara waits")).frames
        return _centroid(frames[0], RED), _centroid(frames[-1], RED)

    (x0, _, n0), (x1, _, n1) = track("dolly-in")
    assert n1 > 1.6 * n0  # the standing figure fills more of the frame
    (x0, _, _), (x1, _, _) = track("pan-right")
    assert x1 < x0 - 20  # the camera turns right, the world slides left
    (x0, _, _), (x1, _, _) = track("pan-left")
    assert x1 > x0 + 20
    (_, y0, _), (_, y1, _) = track("tilt-up")
    assert y1 > y0 + 10  # looking up pushes the ground down the frame


def test_action_moves_the_named_entity(make_plan):
    ents = _one("a red coat") + _one("a yellow coat", name="Tomas", eid="tomas", seed=5)
    walk = StoryboardGenerator().generate(make_plan(entities=ents, action="Mara walks to the right")).frames
    (xr0, _, _), (xr1, _, _) = _centroid(walk[0], RED), _centroid(walk[-1], RED)
    (xy0, _, _), (xy1, _, _) = _centroid(walk[0], YELLOW), _centroid(walk[-1], YELLOW)
    assert xr1 - xr0 > 0.15 * W  # Mara walks right
    assert abs(xy1 - xy0) < 2  # Tomas is not in the action and stays
    climb = StoryboardGenerator().generate(make_plan(entities=_one("a red coat"), action="Mara climbs")).frames
    assert _centroid(climb[-1], RED)[1] < _centroid(climb[0], RED)[1] - 0.15 * H


def test_unknown_camera_move_is_static_and_noted(make_plan):
    clip = StoryboardGenerator().generate(make_plan(camera="barrel-roll"))
    assert clip.metadata["camera_move"] == "static"
    assert "barrel-roll" in clip.metadata["notes"][0]


def test_shapes_for_objects_and_animals(make_plan):
    ents = [
        EntityConditioning(id="lamp", name="lamp", kind="object", appearance="a brass lamp, gold"),
        EntityConditioning(id="rex", name="Rex", kind="animal", appearance="a brown dog"),
    ]
    frame = StoryboardGenerator().generate(make_plan(entities=ents), num_frames=1).frames[0]
    assert _mask_of(frame, COLOUR_WORDS["gold"]).sum() > 50
    assert _mask_of(frame, COLOUR_WORDS["brown"]).sum() > 50


def test_entity_position_is_stable_across_shots(make_plan):
    """Mara stands in the same place whatever the shot id, prompt or location."""
    a = StoryboardGenerator().generate(make_plan(entities=_one("a red coat")), num_frames=1).frames[0]
    other = LocationConditioning(id="beach", name="Beach", appearance="a sandy beach")
    b = (
        StoryboardGenerator()
        .generate(
            make_plan(shot_id="s07", prompt="Later", entities=_one("a red coat"), location=other),
            num_frames=1,
        )
        .frames[0]
    )
    assert abs(_centroid(a, RED)[0] - _centroid(b, RED)[0]) < 1.0


def test_bad_arguments_name_the_argument(make_plan):
    with pytest.raises(GeneratorInputError, match="width"):
        StoryboardGenerator().generate(make_plan(), width=0)
    with pytest.raises(GeneratorInputError, match="reference_strength"):
        StoryboardGenerator(reference_strength=2.0)


def test_fast_enough(make_plan):
    plan = make_plan(action="Mara runs", camera="orbit")
    gen = StoryboardGenerator()
    best = min(_timed(gen, plan) for _ in range(3))
    assert best < 1.0, f"16 frames at 256x160 took {best:.3f} s"


def _timed(gen, plan) -> float:
    t = time.perf_counter()
    gen.generate(plan, width=W, height=H, num_frames=16)
    return time.perf_counter() - t


def test_reference_image_colours_an_entity_without_colour_words(make_plan, image_file):
    teal = image_file((20, 130, 130))
    ent = [
        EntityConditioning(id="mara", name="Mara", kind="character", appearance="a tall girl", reference_images=[teal])
    ]
    md = StoryboardGenerator().generate(make_plan(entities=ent), num_frames=1).metadata["entity_colours"]["mara"]
    assert (md["body"], md["source"]) == ((20, 130, 130), "reference_image")
    words = [EntityConditioning(id="mara", name="Mara", kind="character", appearance="red", reference_images=[teal])]
    md = StoryboardGenerator().generate(make_plan(entities=words), num_frames=1).metadata["entity_colours"]["mara"]
    assert (md["body"], md["source"]) == (RED, "appearance")  # the conditioned appearance wins
