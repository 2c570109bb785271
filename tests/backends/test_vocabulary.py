"""Colour, motion and camera vocabularies, reference selection, and the registry."""

from __future__ import annotations

import subprocess
import sys

import pytest

from generators import (
    GeneratorInputError,
    StoryboardGenerator,
    VideoGenerator,
    WeightsNotFoundError,
    available_generators,
    generator_class,
    get_generator,
)
from generators.conditioning import EntityConditioning, FrameRef, LocationConditioning
from generators.motion import camera_path, motion_bucket_id, motion_for, normalise_camera_move
from generators.palette import COLOUR_WORDS, colour_mentions, scale, stable_colour
from generators.references import first_frame_source


def test_colour_mentions_assign_parts_and_modifiers():
    found = colour_mentions("a dark blue coat, light pink scarf and black boots")
    assert [(m.word, m.part) for m in found] == [("blue", "body"), ("pink", "head"), ("black", "legs")]
    assert found[0].rgb == scale(COLOUR_WORDS["blue"], 0.65)
    assert found[1].rgb == scale(COLOUR_WORDS["pink"], 1.35)
    assert colour_mentions("a foggy forest") == []
    assert [m.word for m in colour_mentions("a foggy forest at night", scene_words=True)] == [
        "forest",
        "night",
    ]
    assert [m.word for m in colour_mentions("a night street, red lamps", scene_words=True)] == [
        "red",
        "night",
    ]


def test_stable_colour_is_pinned():
    # SHA-256 based: the same on every machine and in every process (no salted hash()).
    assert stable_colour("mara", 0) == (154, 191, 76)
    assert stable_colour("mara", 1) != stable_colour("mara", 0)


def test_stable_colour_does_not_depend_on_hash_seed():
    code = "from generators.palette import stable_colour; print(stable_colour('harbor', 3))"
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outs) == 1


def test_motion_vocabulary():
    assert motion_for("walk", "").kind == "walk"
    assert motion_for("still", "Mara sprints to the boat").kind == "run"
    assert motion_for("", "Tomas climbed the mast").kind == "climb"
    assert motion_for("jumping", "").kind == "jump"
    assert motion_for("", "They talk quietly").kind == "still"


def test_camera_vocabulary():
    assert normalise_camera_move("Dolly In") == ("dolly-in", True)
    assert normalise_camera_move("push_in") == ("dolly-in", True)
    assert normalise_camera_move("follow") == ("tracking", True)
    assert normalise_camera_move("barrel roll") == ("static", False)
    from generators.conditioning import CameraConditioning

    path = camera_path(CameraConditioning(move="pan-right", pose=(0, 0, 0, 45.0, 0.0), fov=30.0), 5, seed=0)
    assert path.centre[0, 0] == pytest.approx(0.1)  # 45 deg yaw = half of the 20 % offset
    assert path.centre[-1, 0] == pytest.approx(0.1 + 0.22)
    assert path.zoom[0] == pytest.approx(1.5)  # fov 30 = twice as narrow, clamped to 1.5


def test_motion_bucket_is_pinned():
    assert motion_bucket_id("still", "", "static") == 40
    assert motion_bucket_id("walk", "", "dolly-in") == 142
    assert motion_bucket_id("", "Mara runs to the door", "orbit") == 220
    assert motion_bucket_id("run", "", "handheld") == 215


def test_first_frame_priority(make_plan, image_file):
    cont, loc_ref, ent_ref = image_file((1, 1, 1)), image_file((2, 2, 2)), image_file((3, 3, 3))
    ents = [EntityConditioning(id="mara", name="Mara", kind="character", appearance="", reference_images=[ent_ref])]
    loc = LocationConditioning(id="harbor", name="Harbor", appearance="", reference_frames=[FrameRef("s0", 1, loc_ref)])
    assert first_frame_source(make_plan(entities=ents, location=loc, continue_from=cont)).role == "continuity"
    assert first_frame_source(make_plan(entities=ents, location=loc, continue_from="/gone.png")).path == loc_ref
    assert first_frame_source(make_plan(entities=ents)).path == ent_ref
    assert first_frame_source(make_plan()) is None


def test_registry():
    assert available_generators() == ["animatediff", "cogvideox", "storyboard", "svd", "wan-i2v", "wan-vace"]
    assert generator_class("SVD").__name__ == "SVDGenerator"
    assert generator_class("wan-vace").pipeline_class == "WanVACEPipeline"
    gen = get_generator("storyboard", width=64, height=48)
    assert isinstance(gen, StoryboardGenerator) and isinstance(gen, VideoGenerator)
    with pytest.raises(GeneratorInputError, match="storyboard"):
        get_generator("sora")


def test_weights_error_message_names_model_and_fix():
    msg = str(WeightsNotFoundError("THUDM/CogVideoX-5b-I2V", "offline"))
    assert "THUDM/CogVideoX-5b-I2V" in msg and "huggingface-cli download" in msg and "model=<dir>" in msg


def test_importing_generators_loads_no_heavy_module():
    code = (
        "import sys, generators, generators.diffusers_backends, generators.media; "
        "heavy = ('torch', 'diffusers', 'transformers', 'imageio', 'agentmem'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
