import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from agentmem.cli.main import cli
from agentmem.formats.examples import example_path

ROOT = Path(__file__).resolve().parents[1]


def all_commands(group=cli, prefix=""):
    for name, cmd in sorted(group.commands.items()):
        full = f"{prefix}{name}"
        if hasattr(cmd, "commands"):
            yield from all_commands(cmd, full + " ")
        yield full, cmd


GUIDES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("name,cmd", list(all_commands()))
def test_every_command_has_an_example_and_is_in_the_guides(name, cmd):
    assert "Example: agentmem" in (cmd.help or ""), f"`agentmem {name}` help shows no example"
    assert any(f"agentmem {name}" in p.read_text() for p in GUIDES), f"`agentmem {name}` is not in README or docs/"


def test_the_cli_reference_is_generated_from_every_command():
    """docs/cli.md renders the whole command tree from click (mkdocs-click), so no command can be left out of it."""
    from markdown import Markdown

    html = Markdown(extensions=["mkdocs-click"]).convert((ROOT / "docs" / "cli.md").read_text())
    for name, _ in all_commands():
        assert f"agentmem {name}" in html, f"`agentmem {name}` is missing from the CLI reference"


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli") / "mem"
    res = CliRunner().invoke(cli, ["ingest", str(example_path()), "--db", str(d)])
    assert res.exit_code == 0, res.output
    assert re.search(r"stored 10 entities, 18 events, 2 facts \(events\)", res.output)
    return str(d)


def run(*args):
    return CliRunner().invoke(cli, list(args))


def test_query_json_is_stable_and_documented_keys(db):
    res = run("query", "--db", db, "--entity", "the keeper", "--from", "0", "--to", "30", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert [h["id"] for h in out["hits"]] == ["e01", "e02", "e03", "e06"]
    assert set(out["hits"][0]) >= {
        "id",
        "kind",
        "t_start",
        "t_end",
        "text",
        "entities",
        "score",
        "provenance",
        "components",
    }
    assert out["hits"][0]["entities"] == ["mara", "lighthouse"]


def test_query_all_entities_text_and_as_of(db):
    res = run("query", "--db", db, "--entity", "Mara", "--entity", "Ida", "--match", "all", "--json", "--k", "3")
    assert [h["id"] for h in json.loads(res.output)["hits"]] == ["e08", "e09", "e11"]
    res = run("query", "--db", db, "--entity", "mara", "--as-of", "49", "--json")
    out = json.loads(res.output)
    assert out["states"]["mara"]["appearance"] == "tall woman, silver hair, red oilskin"
    assert all(h["t_start"] <= 49 for h in out["hits"])
    res = run("query", "--db", db, "--text", "brass lamp keepsake", "--k", "1")
    assert res.exit_code == 0 and "e12" in res.output


def test_show_entities_stats_merges(db):
    res = run("show", "the fisherman", "--db", db, "--json")
    assert json.loads(res.output)["id"] == "tomas"
    res = run("show", "e05", "--db", db)
    assert "flare" in res.output
    res = run("show", "mara", "--db", db, "--as-of", "10")
    assert "yellow raincoat" in res.output.split("state as of")[1]
    res = run("entities", "--db", db, "--kind", "location", "--json")
    assert [e["id"] for e in json.loads(res.output)] == ["cottage", "harbor", "lighthouse"]
    st = json.loads(run("stats", "--db", db, "--json").output)
    assert (st["events"], st["entities"], st["outbox"]) == (18, 7, 0)
    assert run("merge", "ida", "tomas", "--db", db).exit_code == 0
    assert "ida -> tomas" in run("merges", "--db", db).output
    assert run("split", "1", "--db", db).exit_code == 0
    assert "undone" in run("merges", "--db", db).output


def test_index_commands(db):
    assert "applied 0" in run("index", "sync", "--db", db).output
    assert "text_missing=0" in run("index", "reconcile", "--db", db).output
    from agentmem.memory import Memory

    def context_docs():
        with Memory(db, text_embedder=None) as mem:
            return [
                mem.store.conn.execute(f"SELECT rowid, * FROM {t} ORDER BY rowid").fetchall()
                for t in ("window_fts", "group_fts")
            ]

    before = context_docs()
    assert "the context index, and 18 vectors" in run("index", "rebuild", "--db", db).output
    assert context_docs() == before and len(before[0]) > 0


@pytest.mark.parametrize(
    "args,msg",
    [
        (["query", "--db", "{db}", "--from", "soon"], "BadTimeError: --from: cannot parse 'soon'"),
        (["query", "--db", "{db}", "--entity", "Zed"], "UnknownEntityError: unknown entity 'Zed'"),
        (["query", "--db", "{db}", "--image", "/missing.png"], "MediaNotFoundError: query image not found"),
        (["query", "--db", "/nonexistent/db"], "StoreError: no memory at '/nonexistent/db'"),
        (["show", "nothing-here", "--db", "{db}"], "NotFoundError: no entity or event 'nothing-here'"),
    ],
)
def test_errors_are_one_clean_line(db, args, msg):
    res = run(*[a.replace("{db}", db) for a in args])
    assert res.exit_code == 1
    assert res.output.startswith(f"Error: {msg}") and res.output.count("\n") == 1


def test_demo_runs(tmp_path):
    res = run("demo", "--out", str(tmp_path / "demo"))
    assert res.exit_code == 0, res.output
    assert (tmp_path / "demo" / "memory" / "memory.db").is_file()
    assert (tmp_path / "demo" / "story" / "report.html").is_file()
    assert "Ingested the bundled story" in res.output
    assert "t=    49: {'appearance': 'tall woman, silver hair, red oilskin'" in res.output
    # the lamp changes hands at t=86410: the later holder supersedes the earlier, never-closed fact
    assert "t=    30: mara\n" in res.output and "t= 90000: ida\n" in res.output and "t=     0: nobody" in res.output
