"""Bad input gets one line naming the line and the field, and stores nothing (issue 9, items 1, 3-5, 11, 15)."""

import json

import pytest
from click.testing import CliRunner

from agentmem.cli.main import cli
from agentmem.errors import BadInputError, FormatError, UnknownEntityError
from agentmem.formats.ingest import ingest_file
from agentmem.formats.records import MAX_TEXT_BYTES
from agentmem.model import Relation
from agentmem.names import normalize_name
from agentmem.story.format import load_story

ENTITY = {"type": "entity", "id": "mara", "kind": "character", "name": "Mara"}


def write_lines(path, *lines):
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return path


def counts(mem):
    c = mem.store.counts()
    return c["entities"], c["events"], c["relations"]


def test_text_queries_work_when_no_event_has_a_group(make_memory):
    mem = make_memory()
    mem.add_entity("mara", kind="character", name="Mara")
    mem.add_events(
        [
            {"id": "a", "t_start": 0, "text": "Mara lights the lamp", "participants": ["mara"]},
            {"id": "b", "t_start": 5, "text": "Mara climbs the stairs", "participants": ["mara"]},
        ]
    )
    assert [h.id for h in mem.query(text="lamp", k=2)][0] == "a"
    assert [h.id for h in mem.query(text="stairs", entities=["Mara"], k=1)] == ["b"]


@pytest.mark.parametrize(
    "line,field",
    [
        ('{"id": "e1", "t_start": 1' + "0" * 400 + ', "text": "x"}', "t_start"),
        ('{"id": "e1", "t_start": 1' + "0" * 5000 + ', "text": "x"}', "unreadable JSON value"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        (
            '{"type": "relation", "subject": "mara", "predicate": "holds", "object": "mara", "weight": "heavy"}',
            "weight",
        ),
        (
            '{"type": "relation", "subject": "mara", "predicate": "holds", "object": "mara", "colour": "red"}',
            "unknown relation field",
        ),
        ('{"id": "e1", "t_start": 0, "text": "x", "camera": {"pose": [0, 0, NaN, 0, 0]}}', "camera.z"),
        ('{"id": "e1", "t_start": 0, "text": "x", "camera": [0, 0, 1, 0, 0, -1e308]}', "camera.fov"),
        ('{"id": "e1", "t_start": 0, "text": "x", "camera": [0, 0, Infinity]}', "camera.z"),
        ('{"id": "e1\\n", "t_start": 0, "text": "x"}', "id must be"),
        ('{"id": "e1", "t_start": 0, "text": "' + "a" * (MAX_TEXT_BYTES + 1) + '"}', "the limit is 1,000,000"),
    ],
)
def test_bad_lines_get_one_clear_line_and_store_nothing(tmp_path, line, field):
    f = write_lines(tmp_path / "bad.jsonl", ENTITY, {"id": "ok", "t_start": 0, "text": "fine"}, line)
    res = CliRunner().invoke(cli, ["ingest", str(f), "--db", str(tmp_path / "m")])
    assert res.exit_code == 1
    out = res.output.strip()
    assert out.startswith("Error: ") and "bad.jsonl line 3" in out and field in out and "Traceback" not in out
    assert len(out.splitlines()) == 1
    from agentmem.memory import Memory

    with Memory(tmp_path / "m", text_embedder=None) as mem:
        assert counts(mem) == (0, 0, 0)


def test_a_media_file_that_is_not_an_image_is_refused_before_anything_is_stored(tmp_path, make_memory):
    fake = tmp_path / "shot.png"
    fake.write_text("not a picture")
    f = write_lines(tmp_path / "m.jsonl", ENTITY, {"id": "e1", "t_start": 0, "text": "x", "media": [str(fake)]})
    mem = make_memory()
    with pytest.raises(BadInputError, match=r"m.jsonl line 2: media\[0\].path is not a readable image"):
        ingest_file(mem, f)
    assert counts(mem) == (0, 0, 0)


def test_a_story_reference_image_that_is_not_an_image_is_a_clear_error(tmp_path):
    (tmp_path / "mara.png").write_text("not a picture")
    (tmp_path / "s.yaml").write_text(
        "title: T\nentities:\n  - {id: mara, kind: character, reference_images: [mara.png]}\n"
        "shots:\n  - {id: s1, t: 0, duration: 1, characters: [mara], action: waves}\n"
    )
    with pytest.raises(BadInputError, match=r"entity mara: reference_images\[0\] is not a readable image"):
        load_story(tmp_path / "s.yaml")


def test_a_shot_id_with_a_newline_is_refused(tmp_path):
    (tmp_path / "s.json").write_text(
        json.dumps({"title": "T", "shots": [{"id": "s1\n", "t": 0, "duration": 1, "action": "waves"}]})
    )
    with pytest.raises(FormatError, match="id"):
        load_story(tmp_path / "s.json")


@pytest.mark.parametrize(
    "name,alias", [("李雷", "李雷"), ("Анна-Мария", "анна мария"), ("דוד", "דוד"), ("مريم", "مريم"), ("Zoë", "zoe")]
)
def test_names_of_every_script_resolve(make_memory, name, alias):
    mem = make_memory()
    mem.add_entity("p1", kind="character", name=name)
    assert normalize_name(name) == alias
    assert mem.resolve_entity(name) == "p1" and mem.resolve_entity(name.upper()) == "p1"


@pytest.mark.parametrize(
    "bad",
    [
        [ENTITY, {"type": "relation", "subject": "mara", "predicate": "holds", "object": "ghost"}],
        [ENTITY, {"id": "e1", "t_start": 0, "text": "a"}, {"id": "e1", "t_start": 1, "text": "b"}],
    ],
)
def test_a_bad_line_anywhere_stores_nothing_not_even_the_lines_before_it(tmp_path, make_memory, bad):
    mem = make_memory()
    with pytest.raises((UnknownEntityError, BadInputError), match="line 2|line 3"):
        ingest_file(mem, write_lines(tmp_path / "f.jsonl", *bad))
    assert counts(mem) == (0, 0, 0)


def test_memory_writes_are_all_or_nothing(make_memory):
    mem = make_memory()
    mem.add_events([{"id": "old", "t_start": 0, "text": "kept"}])
    with pytest.raises(BadInputError, match="immutable"):
        mem.add_events(
            [{"id": "new", "t_start": 1, "text": "would be stored"}, {"id": "old", "t_start": 0, "text": "changed"}]
        )
    with pytest.raises(UnknownEntityError):
        mem.write(events=[{"id": "new2", "t_start": 1, "text": "x"}], relations=[Relation("mara", "holds", "x")])
    assert [e.id for e in mem.get_events(["old"])] == ["old"] and counts(mem) == (0, 1, 0)
    assert mem.store.existing_event_ids(["new", "new2"]) == set()


def test_a_yaml_alias_bomb_is_refused_quickly(tmp_path):
    lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, 9):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]")
    bomb = "\n".join(lines)
    (tmp_path / "bomb.yaml").write_text(
        f"title: T\nextra:\n  {bomb.replace(chr(10), chr(10) + '  ')}\nentities:\n"
        "  - {id: mara, kind: character, attributes: {coat: *i}}\nshots: [{id: s1, t: 0, duration: 1, action: x}]\n"
    )
    with pytest.raises(FormatError, match="expands past"):
        load_story(tmp_path / "bomb.yaml")


def test_non_finite_values_never_reach_the_store(make_memory):
    mem = make_memory()
    for cam in ([0, 0, float("nan"), 0, 0], {"pose": [0, 0, 1, 0, 0], "fov": float("inf")}):
        with pytest.raises(BadInputError, match="camera"):
            mem.add_events([{"id": "c", "t_start": 0, "text": "x", "camera": cam}])
    with pytest.raises(BadInputError, match="importance"):
        mem.add_events([{"id": "c", "t_start": 0, "text": "x", "importance": float("nan")}])
    assert counts(mem) == (0, 0, 0)
