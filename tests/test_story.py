"""The story format: valid stories parse; bad ones fail naming the shot and the field, and write nothing."""

import copy
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from agentmem.cli.main import cli
from agentmem.errors import BadInputError, BadTimeError, FormatError, MediaNotFoundError, UnknownEntityError
from agentmem.story.format import bundled_stories, load_story, parse_story

GOOD = {
    "title": "Test",
    "entities": [
        {"id": "mara", "kind": "character", "name": "Mara", "appearance": "yellow raincoat"},
        {"id": "lamp", "kind": "object", "name": "the lamp"},
        {"id": "lighthouse", "kind": "location", "appearance": "white tower"},
    ],
    "shots": [
        {"id": "s01", "t": 0, "duration": 4, "location": "lighthouse", "characters": ["mara"], "action": "climbs"},
        {
            "id": "s02",
            "t": 4,
            "duration": 4,
            "location": "lighthouse",
            "characters": ["mara"],
            "objects": ["lamp"],
            "camera": {"move": "dolly-in", "pose": [0, 0, 1.6, 90, 0], "fov": 60},
            "changes": {"mara": {"appearance": "red raincoat"}},
            "facts": [["mara", "holds", "lamp"]],
        },
        {"id": "s03", "t": 10, "duration": 2, "location": "lighthouse", "characters": ["mara"]},
    ],
}


def bad(path, value):
    d = copy.deepcopy(GOOD)
    *keys, last = path
    node = d
    for k in keys:
        node = node[k]
    node[last] = value
    return d


def test_bundled_stories_are_valid_and_big_enough():
    stories = [load_story(p) for p in bundled_stories()]
    assert [p.stem for p in bundled_stories()] == ["forest_courier", "lighthouse", "night_market"]
    for s in stories:
        assert len(s.shots) >= 12
        assert any(s.changes for s in s.shots) and any(s.facts for s in s.shots)
        locs = [sh.location for sh in s.shots]
        assert len(set(locs)) < len(locs)  # revisits
        gaps = [b.t - a.end for a, b in zip(s.shots, s.shots[1:])]
        assert max(gaps) >= 3600  # a time jump
    for p in Path(bundled_stories()[0]).parent.glob("refs/*.png"):
        assert p.stat().st_size < 20_000


def test_good_story_parses_with_state_over_time():
    s = parse_story(GOOD)
    assert [sh.id for sh in s.shots] == ["s01", "s02", "s03"]
    assert s.appearance_at("mara", 3.9) == "yellow raincoat"
    assert s.appearance_at("mara", 4) == "red raincoat"
    assert s.shots[1].camera.pose == (0.0, 0.0, 1.6, 90.0, 0.0)
    assert s.shots[1].facts == (("mara", "holds", "lamp"),)


def test_iso_times_from_yaml_dates(tmp_path):
    d = copy.deepcopy(GOOD)
    d["shots"][0]["t"] = "2024-06-01T20:00:00"
    d["shots"][1]["t"] = "2024-06-01T20:00:04"
    d["shots"][2]["t"] = "2024-06-01T20:01:00"
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(d).replace("'2024-06-01T20:00:00'", "2024-06-01T20:00:00"))
    s = load_story(p)
    assert s.shots[1].t - s.shots[0].t == 4.0


@pytest.mark.parametrize(
    "path,value,error,message",
    [
        (("shots", 2, "location"), "lighhouse", UnknownEntityError, "shot s03: location: unknown entity 'lighhouse'"),
        (
            ("shots", 1, "characters"),
            ["mara", "tomas"],
            UnknownEntityError,
            "shot s02: characters[1]: unknown entity 'tomas'",
        ),
        (
            ("shots", 1, "characters"),
            ["lamp"],
            FormatError,
            "shot s02: characters[0]: 'lamp' is an object, not a character",
        ),
        (("shots", 2, "t"), 3, BadTimeError, "shot s03: t: story time goes backwards: 3 is not after shot s02"),
        (("shots", 2, "t"), "soon", BadTimeError, "shot s03: t: "),
        (("shots", 0, "duration"), 0, FormatError, "shot s01: duration: must be a number of seconds > 0"),
        (("shots", 1, "camera"), {"pose": [0, 0, 1]}, FormatError, "shot s02: camera.pose: must be [x, y, z, yaw_deg"),
        (
            ("shots", 1, "changes"),
            {"nobody": {"appearance": "x"}},
            UnknownEntityError,
            "shot s02: changes: unknown entity 'nobody'",
        ),
        (
            ("shots", 1, "facts"),
            [["mara", "holds", "lantern"]],
            UnknownEntityError,
            "shot s02: facts[0][2]: unknown entity 'lantern'",
        ),
        (("shots", 0, "charaters"), ["mara"], FormatError, "shot s01: charaters: unknown field"),
        (("shots", 2, "id"), "s01", FormatError, "shot s01: id: used by an earlier shot"),
        (("shots", 2, "id"), "S 3", FormatError, "shot S 3: id: must match [a-z0-9_-]+"),
        (
            ("entities", 0, "reference_images"),
            ["refs/missing.png"],
            MediaNotFoundError,
            "entity mara: reference_images[0]: file not found",
        ),
        (("entities", 1, "kind"), "prop", FormatError, "entity lamp: kind: must be one of"),
    ],
)
def test_bad_stories_name_the_shot_and_the_field(path, value, error, message):
    with pytest.raises(error) as exc:
        parse_story(bad(path, value), source="story.yaml")
    assert isinstance(exc.value, BadInputError)
    assert str(exc.value).startswith("story.yaml: ")
    assert message in str(exc.value), str(exc.value)


def test_bad_story_writes_nothing(tmp_path):
    p = tmp_path / "story.yaml"
    p.write_text(yaml.safe_dump(bad(("shots", 2, "location"), "lighhouse")))
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["generate", str(p), "--out", str(out), "--text-embedder", "none"])
    assert res.exit_code == 1
    assert "story.yaml: shot s03: location: unknown entity 'lighhouse'" in res.output
    assert not out.exists()


def test_broken_yaml_and_missing_file(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("title: [unclosed")
    with pytest.raises(FormatError, match="s.yaml: not valid YAML"):
        load_story(p)
    with pytest.raises(MediaNotFoundError):
        load_story(tmp_path / "nope.yaml")
