"""Output paths stay inside the folder a command claimed; failed runs can be replaced; --db hints and help (issue 18,
items 1, 9, 10, 11).

Hostile names are tried through the CLI as a person would type them; a sentinel file beside each output folder
must come through untouched, and nothing but the output folder may appear next to it.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from agentmem.cli.main import cli
from agentmem.errors import BadInputError
from agentmem.formats.transforms import write_transforms
from agentmem.outdir import MANIFEST, claim, inside
from agentmem.spatial.camera import Intrinsics, look_at
from agentmem.spatial.frames import Frame
from agentmem.spatial.scenes import ray_cast, town

K = Intrinsics.from_fov(70.0, 32, 24)
POSES = [look_at([-4.0 + 4.0 * i, 1.6, 9.0], [0.0, 2.0, 0.0]) for i in range(3)]
HOSTILE_VIEWS = ["..", "../x.png", "/abs/y.png", "a/shot.png", "b/shot.png", ".agentmem-output.json.png"]
WALK = """name: ../../evil
camera: {fov: 70, width: 32, height: 24}
fps: 4
chunk: 4
entities: [{id: cart, kind: object, name: the cart}]
keyframes:
- {t: 0, eye: [0, 1.6, 0], look_at: [1, 1.5, 0], entities: [ENTITY]}
- {t: 2, eye: [2, 1.6, 0], look_at: [3, 1.5, 0]}
"""


def run(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_line_error(res, *parts: str) -> None:
    assert res.exit_code == 1, res.output
    assert len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output, res.output
    for part in parts:
        assert part in res.output, res.output


@pytest.fixture(scope="module")
def world_db(tmp_path_factory) -> Path:
    """A world memory of three ray-cast frames, 32 x 24."""
    folder = tmp_path_factory.mktemp("world")
    scene = town(0, blocks=3)
    frames = []
    for i, c2w in enumerate(POSES):
        v = ray_cast(scene, K, c2w)
        frames.append(Frame(f"f{i}", float(i), c2w, K, v.rgb, v.depth))
    transforms = write_transforms(folder / "scene", frames)
    assert run("world", "ingest", transforms, "--db", folder / "mem").exit_code == 0
    return folder / "mem"


def views_file(path: Path, names: list[str]) -> Path:
    frames = [{"file_path": n, "transform_matrix": POSES[1].tolist()} for n in names]
    path.write_text(json.dumps({"fl_x": K.fx, "fl_y": K.fy, "cx": K.cx, "cy": K.cy, "w": K.w, "h": K.h,
                                "frames": frames}))  # fmt: skip
    return path


def parent_with_sentinel(tmp_path: Path) -> Path:
    parent = tmp_path / "parent"
    parent.mkdir()
    (parent / "sentinel.txt").write_text("a person's file")
    return parent


def assert_only_out_beside_sentinel(parent: Path) -> None:
    assert sorted(p.name for p in parent.iterdir()) == ["out", "sentinel.txt"]
    assert (parent / "sentinel.txt").read_text() == "a person's file"


# --- item 1: every path stays inside the claimed folder ---------------------------------------------------------


def test_render_keeps_hostile_view_names_inside_out_and_names_each_rename(world_db, tmp_path):
    parent = parent_with_sentinel(tmp_path)
    views = views_file(tmp_path / "views.json", HOSTILE_VIEWS)
    res = run("world", "render", "--db", world_db, "--views", views, "--out", parent / "out")
    assert res.exit_code == 0, res.output
    assert_only_out_beside_sentinel(parent)
    out = parent / "out"
    folders = {"_..", "x", "y", "shot", "shot-2", "_.agentmem-output.json"}
    assert {p.name for p in out.iterdir()} == folders | {MANIFEST}
    assert all(sorted(q.name for q in (out / f).iterdir()) == ["depth.png", "mask.png", "rgb.png"] for f in folders)
    assert res.output.splitlines() == [
        "view '..': written to _../ ('..' is not a safe folder name)",
        "view 'b/shot.png': written to shot-2/ ('shot' is taken by an earlier view)",
        "view '.agentmem-output.json.png': written to _.agentmem-output.json/ "
        "('.agentmem-output.json' is not a safe folder name)",
        f"wrote 6 renders to {out}",
    ]
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["command"] == "world render" and manifest["finished"] is True
    assert manifest["views"] == {"_..": "..", "x": "../x.png", "y": "/abs/y.png", "shot": "a/shot.png",
                                 "shot-2": "b/shot.png", "_.agentmem-output.json": HOSTILE_VIEWS[-1]}  # fmt: skip


def test_render_never_writes_through_a_symlink_out_of_the_folder(world_db, tmp_path):
    """A person's link at a name the run writes is refused before anything is written, even with --force."""
    parent = parent_with_sentinel(tmp_path)
    out = parent / "out"
    views = views_file(tmp_path / "views.json", ["a/shot.png"])
    assert run("world", "render", "--db", world_db, "--views", views, "--out", out).exit_code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "shot" / "rgb.png").unlink()
    (out / "shot" / "depth.png").unlink()
    (out / "shot" / "mask.png").unlink()
    (out / "shot").rmdir()
    (out / "shot").symlink_to(elsewhere, target_is_directory=True)
    res = run("world", "render", "--db", world_db, "--views", views, "--out", out, "--force")
    one_line_error(res, f"--out: {out / 'shot'} holds files agentmem did not write")
    assert list(elsewhere.iterdir()) == [] and (out / "shot").is_symlink()


def test_inside_follows_symlinks_before_it_allows_a_path(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "link").symlink_to(tmp_path, target_is_directory=True)
    assert inside(tmp_path / "out", "a/b.png") == tmp_path / "out" / "a" / "b.png"
    for rel in ("../x", "/abs", "link/x", ".", ""):
        with pytest.raises(BadInputError, match="would be written outside"):
            inside(tmp_path / "out", rel)


def test_world_run_writes_only_its_outputs_whatever_the_walk_is_named(tmp_path):
    parent = parent_with_sentinel(tmp_path)
    walk = tmp_path / "walk.yaml"
    walk.write_text(WALK.replace("ENTITY", "cart"))
    res = run("world", "run", walk, "--out", parent / "out")
    assert res.exit_code == 0, res.output
    assert_only_out_beside_sentinel(parent)
    names = {p.name for p in (parent / "out").iterdir()}
    assert names <= {MANIFEST, "memory", "video.mp4", "video.gif", "side_by_side.mp4", "side_by_side.gif",
                     "plans.jsonl", "memory.png", "report.html"}  # fmt: skip
    assert {"memory", "plans.jsonl", "memory.png", "report.html"} <= names


@pytest.mark.parametrize(
    ("shot_id", "message"),
    [("../x", "shot ../x: id: must match [a-z0-9_-]+, got '../x'"), ("s" * 65, "id: at most 64 characters, got 65")],
)
def test_generate_refuses_shot_ids_that_would_leave_the_folder_or_overflow_a_name(tmp_path, shot_id, message):
    parent = parent_with_sentinel(tmp_path)
    story = tmp_path / "story.yaml"
    story.write_text(f"title: t\nentities: []\nshots:\n- {{id: '{shot_id}', t: 0, duration: 1}}\n")
    res = run("generate", story, "--out", parent / "out", "--text-embedder", "none")
    one_line_error(res, message)
    assert sorted(p.name for p in parent.iterdir()) == ["sentinel.txt"]


def test_bench_world_refuses_two_walks_of_one_name_naming_both(tmp_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "x.yaml").write_text(WALK.replace("ENTITY", "cart"))
    res = run("bench", "world", "--walk", tmp_path / "a" / "x.yaml", "--walk", tmp_path / "b" / "x.yaml",
              "--out", tmp_path / "out")  # fmt: skip
    one_line_error(res, f"--walk: {tmp_path / 'a' / 'x.yaml'} and {tmp_path / 'b' / 'x.yaml'} would both be written")
    assert not (tmp_path / "out").exists()


def test_eval_consistency_refuses_two_stories_of_one_name_naming_both(tmp_path):
    from agentmem.story.format import bundled_stories

    text = bundled_stories()[0].read_text()
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "x.yaml").write_text(text)
    res = run("eval", "consistency", "--story", tmp_path / "a" / "x.yaml", "--story", tmp_path / "b" / "x.yaml",
              "--out", tmp_path / "out")  # fmt: skip
    one_line_error(res, f"--story: {tmp_path / 'a' / 'x.yaml'} and {tmp_path / 'b' / 'x.yaml'} would both be")
    assert not (tmp_path / "out").exists()


def test_bench_out_never_overwrites_a_file_agentmem_did_not_write(tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    (out / "spatial.png").write_text("a person's plot")
    bench = ["bench", "spatial", "--frames", 8, "--targets", 1, "--walk", "loop", "--out", out]
    one_line_error(run(*bench), f"--out: {out / 'spatial.png'} was not written by agentmem; choose another folder")
    assert sorted(p.name for p in out.iterdir()) == ["spatial.png"]
    assert (out / "spatial.png").read_text() == "a person's plot"
    (out / "spatial.png").unlink()
    for _ in range(2):  # its own files, listed in the folder's manifest, are replaced by the next run
        res = run(*bench)
        assert res.exit_code == 0, res.output
    assert json.loads((out / MANIFEST).read_text())["files"] == ["spatial.json", "spatial.png"]


def test_world_export_refuses_a_dangling_symlink_and_a_missing_folder(world_db, tmp_path):
    link = tmp_path / "map.ply"
    link.symlink_to(tmp_path / "elsewhere.ply")
    one_line_error(run("world", "export", "--db", world_db, "--ply", link), f"--ply: {link} already exists")
    assert not (tmp_path / "elsewhere.ply").exists()
    res = run("world", "export", "--db", world_db, "--ply", tmp_path / "no" / "map.ply")
    one_line_error(res, f"--ply: {tmp_path / 'no'} is not a folder")


# --- item 9: validate before claiming; --force replaces an unfinished run of the same command ---------------------


def test_a_walk_naming_an_unknown_entity_is_refused_before_the_folder_is_claimed(tmp_path):
    walk = tmp_path / "walk.yaml"
    walk.write_text(WALK.replace("ENTITY", "ghost"))
    res = run("world", "run", walk, "--out", tmp_path / "out")
    one_line_error(res, f"{walk}: keyframes[0]: entities: unknown entity 'ghost'")
    assert not (tmp_path / "out").exists()


def test_force_replaces_a_failed_world_run_and_keeps_what_a_person_added(tmp_path, monkeypatch):
    import agentmem.interactive.produce as produce

    walk = tmp_path / "walk.yaml"
    walk.write_text(WALK.replace("ENTITY", "cart"))
    out = tmp_path / "out"
    real = produce.run_walk

    def fails_midway(parsed, memory_dir, folder, **kwargs):
        (Path(folder) / "plans.jsonl").write_text("half")
        raise BadInputError("the back end stopped")

    monkeypatch.setattr(produce, "run_walk", fails_midway)
    one_line_error(run("world", "run", walk, "--out", out), "the back end stopped")
    monkeypatch.setattr(produce, "run_walk", real)
    (out / "notes.txt").write_text("a person's notes")
    res = run("world", "run", walk, "--out", out)
    one_line_error(res, f"--out: {out} holds an unfinished `agentmem world run` run; pass --force")
    assert "agentmem agentmem" not in res.output
    res = run("world", "run", walk, "--out", out, "--force")
    assert res.exit_code == 0, res.output
    assert (out / "notes.txt").read_text() == "a person's notes"
    assert (out / "plans.jsonl").read_text() != "half"
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["finished"] is True and "notes.txt" not in manifest["files"]


def test_force_refuses_an_unfinished_folder_another_command_started(tmp_path):
    out = claim(tmp_path / "out", command="world render", writes=["shot"])
    (out / "shot").mkdir()
    walk = tmp_path / "walk.yaml"
    walk.write_text(WALK.replace("ENTITY", "cart"))
    res = run("world", "run", walk, "--out", out, "--force")
    one_line_error(res, "holds an unfinished `agentmem world render` run; only `agentmem world render --force`")
    assert (out / "shot").is_dir()


def test_an_older_unfinished_manifest_still_names_the_command_once(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / MANIFEST).write_text(json.dumps({"command": "agentmem world run", "finished": False, "files": []}))
    walk = tmp_path / "walk.yaml"
    walk.write_text(WALK.replace("ENTITY", "cart"))
    res = run("world", "run", walk, "--out", out)
    one_line_error(res, "holds an unfinished `agentmem world run` run")
    res = run("world", "run", walk, "--out", out, "--force")
    one_line_error(res, "did not finish, so which files it wrote is unknown")


def test_force_keeps_files_a_person_left_in_a_finished_folder_across_runs(tmp_path):
    """The second forced run must not list the person's file as its own, so the third keeps it too."""
    out = claim(tmp_path / "out", command="world render", writes=["a"])
    (out / "a").mkdir()
    (out / "a" / "rgb.png").write_bytes(b"png")
    from agentmem.outdir import finish

    finish(out)
    (out / "notes.txt").write_text("mine")
    for _ in range(2):
        claim(out, command="world render", force=True, writes=["a"])
        (out / "a").mkdir()
        finish(out)
    assert (out / "notes.txt").read_text() == "mine"
    assert json.loads((out / MANIFEST).read_text())["files"] == []


# --- item 10: a missing --db names the command that makes one ---------------------------------------------------

WORLD_CALLS = {
    "retrieve": ["--views", "VIEWS"],
    "render": ["--views", "VIEWS", "--out", "OUT"],
    "stats": [],
    "export": ["--ply", "OUT.ply"],
    "compress": [],
    "restore": [],
    "track": ["cart"],
    "frames": [],
    "relink": ["/a", "/b"],
}


def test_every_world_command_suggests_world_ingest_for_a_missing_memory(tmp_path):
    from agentmem.cli.world import world_group

    needs_db = {n for n, c in world_group.commands.items() if any(p.name == "db" for p in c.params)}
    assert set(WORLD_CALLS) == needs_db - {"ingest", "run"}  # ingest makes one; run makes OUT/memory
    views = str(views_file(tmp_path / "views.json", ["v.png"]))
    db = tmp_path / "nomem"
    for name, args in WORLD_CALLS.items():
        args = [a.replace("VIEWS", views).replace("OUT", str(tmp_path / "out")) for a in args]
        res = run("world", name, *args, "--db", db)
        one_line_error(res, f"no memory at '{db}': create one with `agentmem world ingest TRANSFORMS --db {db}`")
    one_line_error(run("stats", "--db", db), f"create one with `agentmem ingest FILE --db {db}`")


# --- item 11: --help shows each default once ------------------------------------------------------------------


def _commands(cmd: click.Command, parent: click.Context | None, name: str):
    ctx = click.Context(cmd, info_name=name, parent=parent)
    yield ctx
    if isinstance(cmd, click.Group):
        for sub_name, sub in cmd.commands.items():
            yield from _commands(sub, ctx, sub_name)


def test_help_of_every_command_shows_each_default_once():
    checked = 0
    for ctx in _commands(cli, None, "agentmem"):
        for param in ctx.command.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                assert record[1].lower().count("default") <= 1, (ctx.command_path, record)
        if any(p.name == "db" for p in ctx.command.params):
            text = run(*ctx.command_path.split()[1:], "--help").output
            assert text.count("$AGENTMEM_DB") <= 1, ctx.command_path
            checked += 1
    assert checked > 20
    assert run("query", "--help").output.count("$AGENTMEM_DB or ./memory") == 1


def test_manifest_names_are_checked_before_any_file_is_touched(tmp_path):
    """A manifest is data on disk: a crafted one listing paths outside its folder removes nothing there."""
    parent = parent_with_sentinel(tmp_path)
    out = parent / "out"
    out.mkdir()
    crafted = {"command": "world run", "finished": False, "files": [], "writes": ["..", "../sentinel.txt"],
               "preexisting": []}  # fmt: skip
    (out / MANIFEST).write_text(json.dumps(crafted))
    walk = tmp_path / "walk.yaml"
    walk.write_text(WALK.replace("ENTITY", "cart"))
    res = run("world", "run", walk, "--out", out, "--force")
    assert res.exit_code == 0, res.output
    assert_only_out_beside_sentinel(parent)
