"""Hostile walk files through `agentmem world run`: one line naming the file and the field, fast, nothing written
(issue 18, item 5)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from agentmem.cli.main import cli

GOOD = """\
name: tiny
camera: {fov: 70, width: 48, height: 36}
fps: 2
chunk: 2
seed: 0
entities:
  - {id: cart, kind: object, name: the red cart, appearance: red wooden cart}
keyframes:
  - {t: 0, eye: [0, 1.6, 0], look_at: [1, 1.6, 0], action: walk east, entities: [cart]}
  - {t: 2, eye: [4, 1.6, 0], look_at: [5, 1.6, 0]}
"""


def _bomb(levels: int = 9) -> str:
    """A YAML flow list whose anchors expand 9**levels times: a few hundred bytes, hundreds of millions of values."""
    parts = ["&a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        parts.append(f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "[" + ", ".join(parts) + "]"


@pytest.fixture(scope="module", autouse=True)
def _warm_imports():
    """`world run` imports the loop and the preview back end before reading the walk; time only the refusal."""
    import agentmem.interactive.produce  # noqa: F401
    import generators.world_preview  # noqa: F401


def _refused(tmp_path: Path, text: str, field: str, *, suffix: str = ".yaml") -> str:
    walk = tmp_path / f"walk{suffix}"
    walk.write_text(text)
    out = tmp_path / "run"
    t0 = time.perf_counter()
    res = CliRunner().invoke(cli, ["world", "run", str(walk), "--out", str(out)])
    took = time.perf_counter() - t0
    lines = res.output.strip().splitlines()
    assert res.exit_code == 1 and len(lines) == 1, res.output
    assert lines[0].startswith("Error: ") and str(walk) in lines[0] and field in lines[0], lines[0]
    assert "Traceback" not in res.output and res.exception is None or isinstance(res.exception, SystemExit)
    assert took < 2.0, f"took {took:.1f} s"
    assert not out.exists()  # refused before --out is claimed: no folder, no memory
    return lines[0]


def test_the_good_walk_runs(tmp_path):
    walk = tmp_path / "walk.yaml"
    walk.write_text(GOOD)
    res = CliRunner().invoke(cli, ["world", "run", str(walk), "--out", str(tmp_path / "run")])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("3 steps, 5 frames")


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("name: tiny", f"name: {_bomb()}", "expands past 200,000 values"),
        ("appearance: red wooden cart", f"appearance: {_bomb()}", "expands past 200,000 values"),
        ("name: tiny", "name: &s " + "x" * 1_000_000 + "\nextra: [*s, *s, *s, *s, *s]", "expands past 4,000,000 char"),
        ("name: tiny", "name: 1" + "0" * 5000, "not valid YAML"),
        ("name: tiny", "name: [a, b]", "name: must be a non-empty text"),
        ("fps: 2", "fps: 1000000000", "fps: must be a number in (0, 120]"),
        ("fps: 2", "fps: 0", "fps: must be a number in (0, 120]"),
        ("fps: 2", "fps: .nan", "fps: must be a number"),
        ("{t: 2,", "{t: 100000000,", "keyframes[1]: t: 1e+08 is more than 86,400 s (24 h) after the first"),
        ("{t: 2,", "{t: 86400,", "fps: 2 frames per second over 86400 s make 172,801 frames; a walk may have at most"),
        ("width: 48", "width: 1000000", "camera: width: must be 1 to 8192 pixels"),
        ("height: 36", "height: 1000000", "camera: height: must be 1 to 8192 pixels"),
        ("width: 48", "width: 48.5", "camera: width: must be a whole number of pixels"),
        ("width: 48", "width: 48.0", "camera: width: must be an integer of at least 16 pixels"),
        ("width: 48", "width: 1", "camera: width: must be an integer of at least 16 pixels"),
        ("width: 48", "width: '48'", "camera: width: must be a whole number of pixels"),
        ("fov: 70", "fov: 180", "camera: fov: must be a horizontal field of view"),
        ("fov: 70", "fov: 0", "camera: fov: must be a horizontal field of view"),
        ("fov: 70", "zoom: 2", "camera: zoom: unknown field"),
        ("chunk: 2", "chunk: 0", "chunk: must be an integer in [1, 100,000]"),
        ("chunk: 2", "chunk: 2.5", "chunk: must be an integer"),
        ("chunk: 2", "chunk: true", "chunk: must be an integer"),
        ("seed: 0", "seed: true", "seed: must be an integer in [0, 4,294,967,295]"),
        ("seed: 0", "seed: -1", "seed: must be an integer"),
        ("seed: 0", "seed: 'x'", "seed: must be an integer"),
        ("id: cart, kind: object", "id: 'the cart', kind: object", "entities[0]: id must be a non-empty string"),
        ("kind: object", "kind: dragon", "entities[0]: kind must be one of"),
        ("appearance: red wooden cart", "appearance: 5", "entities[0]: appearance: must be text"),
        ("appearance: red wooden cart", "colour: red", "entities[0]: colour: unknown field"),
        ("entities: [cart]", "entities: ['a cart']", "keyframes[0]: entities[0] must be a non-empty string"),
        ("eye: [0, 1.6, 0]", "eye: [1.0e+300, 1.6, 0]", "keyframes[0]: eye: coordinates must lie within"),
    ],
)
def test_a_hostile_walk_is_one_line_fast_and_writes_nothing(tmp_path, old, new, field):
    assert old in GOOD
    _refused(tmp_path, GOOD.replace(old, new, 1), field)


def test_the_pixels_of_the_whole_walk_are_bounded(tmp_path):
    big = GOOD.replace("width: 48, height: 36", "width: 4096, height: 4096").replace("fps: 2", "fps: 6")
    _refused(
        tmp_path, big, "camera: 13 frames of 4096x4096 make 218,103,808 pixels; a walk may have at most 200,000,000"
    )


def test_two_entities_of_one_id_are_refused(tmp_path):
    twice = GOOD.replace("entities:\n", "entities:\n  - {id: cart, kind: object}\n", 1)
    _refused(tmp_path, twice, "entities[1]: id: 'cart' is declared twice")


def test_too_many_keyframes_are_refused_before_any_is_read(tmp_path):
    many = [{"t": i, "eye": [i, 1.6, 0], "look_at": [i + 1, 1.6, 0]} for i in range(10_001)]
    _refused(tmp_path, json.dumps({"keyframes": many}), "keyframes: needs from 2 to 10,000", suffix=".json")


def test_json_walks_refuse_huge_integers_and_deep_nesting(tmp_path):
    walk = {"camera": {"fov": 70, "width": 48, "height": 36}, "fps": 2, "keyframes": []}
    text = json.dumps(walk).replace('"fps": 2', '"fps": 1' + "0" * 5000)
    _refused(tmp_path, text, "unreadable JSON value", suffix=".json")
    _refused(tmp_path, "[" * 100_000 + "]" * 100_000, "JSON nested too deeply", suffix=".json")


def test_yaml_nested_absurdly_deep_is_refused_whatever_its_size(tmp_path):
    for depth in (5_000, 1_000_000):
        line = _refused(tmp_path, "name: " + "[" * depth + "]" * depth, "not valid YAML: ")
        assert "nest" in line  # libyaml's "exceeded maximum nesting depth", or "nested too deeply" without it


def test_an_endless_file_is_read_only_to_the_size_limit(tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(cli, ["world", "run", "/dev/zero", "--out", str(out)])
    assert res.exit_code == 1 and res.output.strip() == (
        "Error: FormatError: /dev/zero: over 10,000,000 bytes; a walk file may have at most 10,000,000"
    )
    assert not out.exists()
