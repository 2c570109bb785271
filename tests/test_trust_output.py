"""What a person sees: bound SQL values, relative paths, an honest report, quiet pipes (issue 9, items 6, 20)."""

import json
import re

from click.testing import CliRunner

from agentmem.cli.main import cli
from agentmem.formats.examples import example_path
from agentmem.formats.ingest import ingest_file
from graph.build import load_graph, update


def test_graph_time_bounds_are_bound_values_so_infinity_works(make_memory):
    mem = make_memory(text_embedder=None)
    ingest_file(mem, example_path())
    update(mem.store)
    everything = load_graph(mem.store, t0=float("-inf"), t1=float("inf"))
    assert sum(1 for _, d in everything.nodes(data=True) if d.get("type") == "event") == 18
    early = load_graph(mem.store, t1=40.0)
    assert sorted(n for n, d in early.nodes(data=True) if d.get("type") == "event")[:2] == ["event:e01", "event:e02"]


def test_generated_folders_hold_relative_paths_and_an_honest_report(tmp_path):
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["generate", "lighthouse", "--out", str(out), "--text-embedder", "none"])
    assert res.exit_code == 0, res.output
    for name in ("plan.json", "run.json", "story.json"):
        assert str(tmp_path) not in (out / name).read_text(), name
    run = json.loads((out / "run.json").read_text())
    assert (out / run["shots"][0]["keyframes"][0]["path"]).is_file()
    html = (out / "report.html").read_text()
    assert "t=t=" not in html and "pose=None" not in html
    assert "storyboard back end, a procedural preview renderer, not a learned model" in html
    assert "Scores rank candidates within one shot" in html


def test_pipes_get_no_progress_bars_and_merges_show_dates(tmp_path):
    db = str(tmp_path / "m")
    res = CliRunner().invoke(cli, ["ingest", str(example_path()), "--db", db])
    assert res.exit_code == 0 and "Loading weights" not in res.stderr and "ev/s" not in res.stderr
    assert CliRunner().invoke(cli, ["merge", "tomas", "mara", "--db", db]).exit_code == 0
    merges = CliRunner().invoke(cli, ["merges", "--db", db]).output
    assert re.search(r"merged \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ, active", merges)
    assert "bm25_w1" in CliRunner().invoke(cli, ["query", "--help"]).output
