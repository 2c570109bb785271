"""``agentmem graph ...``, ``agentmem compress`` and ``agentmem restore`` through click's runner."""

import json
import shutil

import networkx as nx
import pytest
from click.testing import CliRunner

from agentmem.cli.graph import compress_cmd, graph_group, restore_cmd
from agentmem.cli.main import cli
from agentmem.formats.examples import example_path
from agentmem.formats.ingest import ingest_file
from agentmem.memory import Memory


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The story stored without text vectors (the graph commands need none; MiniLM would cost seconds)."""
    d = tmp_path_factory.mktemp("cli") / "mem"
    with Memory(d, text_embedder=None, image_embedder=None, auto_sync=False) as mem:
        ingest_file(mem, example_path())
    return d


@pytest.fixture
def db(built, tmp_path):
    shutil.copytree(built, tmp_path / "mem")
    return tmp_path / "mem"


@pytest.mark.parametrize("cmd", [*graph_group.commands.values(), graph_group, compress_cmd, restore_cmd])
def test_every_command_shows_an_example(cmd):
    assert "Example: agentmem " in cmd.help


def test_stats_and_neighbors(db):
    res = run("graph", "stats", "--db", db, "--json")
    assert res.exit_code == 0, res.output
    st = json.loads(res.output)
    assert st["nodes"]["episode"] == {"active": 9, "archived": 0} and st["nodes"]["event"]["active"] == 18
    res = run("graph", "neighbors", "the keeper", "--db", db, "--json")
    ns = json.loads(res.output)
    assert (ns[0]["entity"], ns[0]["predicate"], ns[0]["weight"]) == ("ida", "co_participates", 7.0)
    # one holder at a time: Mara until Ida takes the lamp at t=86410
    res = run("graph", "neighbors", "lamp", "--db", db, "--predicate", "holds", "--as-of", "86420")
    assert res.exit_code == 0 and "<- ida" in res.output and "<- mara" not in res.output
    res = run("graph", "neighbors", "lamp", "--db", db, "--predicate", "holds", "--as-of", "30")
    assert res.exit_code == 0 and "<- mara" in res.output and "<- ida" not in res.output


def test_path_and_timeline_with_picture(db, tmp_path):
    res = run("graph", "path", "lamp", "harbor", "--db", db, "--json")
    assert res.exit_code == 0, res.output
    steps = json.loads(res.output)
    assert steps[0]["src"] == "lamp" and steps[-1]["dst"] == "harbor"
    png = tmp_path / "mara.png"
    res = run("graph", "timeline", "mara", "--db", db, "--png", png)
    assert res.exit_code == 0, res.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "e01" in res.output and "episode:1" in res.output and "fact: mara holds lamp" in res.output


def test_export_writes_files_that_parse(db, tmp_path):
    out = tmp_path / "story.graphml"
    res = run("graph", "export", "--db", db, "--out", out, "--png", tmp_path / "g.png")
    assert res.exit_code == 0, res.output
    G = nx.read_graphml(out, force_multigraph=True)
    assert G.nodes["event:e01"]["type"] == "event"
    assert (tmp_path / "g.png").stat().st_size > 1000
    res = run("graph", "export", "--db", db, "--out", tmp_path / "g.json", "--no-events")
    assert res.exit_code == 0 and not any(
        n.startswith("event:") for n in (x["id"] for x in json.loads((tmp_path / "g.json").read_text())["nodes"])
    )


def test_compress_dry_run_then_run_then_restore(db):
    res = run("compress", "--db", db, "--dry-run", "--keep-events", "5", "--json")
    assert res.exit_code == 0, res.output
    plan = json.loads(res.output)
    assert plan["dry_run"] and plan["events_archived"] == 12
    assert json.loads(run("graph", "stats", "--db", db, "--json").output)["nodes"]["event"]["archived"] == 0
    res = run("compress", "--db", db, "--keep-events", "5")
    assert res.exit_code == 0 and "events rolled up:            12" in res.output
    assert "run    1  finished" in run("compress", "--db", db, "--history").output
    res = run("restore", "--db", db, "--event", "e04")
    assert res.output.strip() == "restored 1 archived events to the active tier"
    res = run("restore", "--db", db)
    assert res.exit_code == 0 and res.output.startswith("restored runs 1: 11 events")
    assert json.loads(run("graph", "stats", "--db", db, "--json").output)["nodes"]["event"]["archived"] == 0


@pytest.mark.parametrize(
    "args,msg",
    [
        (["graph", "neighbors", "zed", "--db", "{db}"], "UnknownEntityError: unknown entity 'zed'"),
        (["graph", "path", "mara", "nobody", "--db", "{db}"], "UnknownEntityError: unknown entity 'nobody'"),
        (["restore", "--db", "{db}", "--run", "7"], "NotFoundError: no compression run 7"),
        (["restore", "--db", "{db}", "--event", "e99"], "NotFoundError: no event 'e99'"),
        (["graph", "stats", "--db", "/nonexistent/db"], "StoreError: no memory at '/nonexistent/db'"),
    ],
)
def test_errors_are_one_clean_line(db, args, msg):
    res = run(*[str(a).replace("{db}", str(db)) for a in args])
    assert res.exit_code == 1
    assert msg in res.output and "Traceback" not in res.output
