"""The graph from the store: episodes of the bundled story, incremental updates, the networkx view."""

import subprocess
import sys

import networkx as nx
import pytest

from graph.build import load_graph, rebuild, update
from graph.memory import GraphMemory

STORY_EPISODES = [
    (["e01", "e02", "e03"], "start"),
    (["e04", "e05"], "location"),  # lighthouse -> harbor
    (["e06"], "location"),  # back up the lighthouse
    (["e07", "e08", "e09"], "location"),
    (["e10"], "location"),  # the cottage
    (["e11", "e12"], "group"),  # night-1 -> day-2
    (["e13", "e14"], "location"),
    (["e15", "e16"], "location"),
    (["e17", "e18"], "group"),  # day-2 -> week-2
]


def episodes(gm):
    rows = gm.store.conn.execute(
        "SELECT g.episode, e.id FROM graph_event_episode g JOIN events e ON e.rid=g.rid ORDER BY e.t_start, e.rid"
    )
    out: dict[str, list[str]] = {}
    for ep, ev in rows:
        out.setdefault(ep, []).append(ev)
    return out


def test_story_segments_into_the_documented_episodes(story):
    assert list(episodes(story).values()) == [ids for ids, _ in STORY_EPISODES]
    assert list(episodes(story)) == [f"episode:{i}" for i in range(1, 10)]
    from graph.hierarchy import segment
    from graph.tables import view_events

    evs = view_events(story.store, 0, include_archive=True, t0=None, t1=None)
    starts = segment(evs)
    assert [reason for _, reason in starts] == [reason for _, reason in STORY_EPISODES]


def test_episode_nodes_have_summaries_spans_and_one_arc(story):
    ep = story.store.conn.execute(
        "SELECT t_start, t_end, summary, parent, data FROM graph_nodes WHERE id='episode:4'"
    ).fetchone()
    assert ep[:2] == (32.0, 54.0)
    assert "Ida" in ep[2] and ep[3] == "arc:1"
    # the last episode is still open: it has no arc yet
    assert story.store.conn.execute("SELECT parent FROM graph_nodes WHERE id='episode:9'").fetchone()[0] is None
    arc = story.store.conn.execute("SELECT level, t_start, t_end FROM graph_nodes WHERE id='arc:1'").fetchone()
    assert arc == (2, 0.0, 86460.0)


def test_co_participation_edges_count_shared_events(story):
    rows = story.store.conn.execute(
        "SELECT src, dst, weight, evidence FROM graph_edges WHERE predicate='co_participates' ORDER BY src, dst"
    ).fetchall()
    by = {(s, d): (w, ev) for s, d, w, ev in rows}
    # Mara and Tomas: e07 e08 e09 e11 e17
    assert by[("entity:mara", "entity:tomas")] == (5.0, '["e07", "e08", "e09", "e11", "e17"]')
    assert by[("entity:ida", "entity:lamp")][0] == 2.0  # e12, e18
    loc = story.store.conn.execute(
        "SELECT weight FROM graph_edges WHERE src='entity:mara' AND predicate='co_located' AND dst='entity:harbor'"
    ).fetchone()
    assert loc == (4.0,)  # e07 e08 e09 e17


def test_incremental_updates_equal_a_rebuild(plain_memory, dump):
    from agentmem.formats.examples import example_path
    from agentmem.formats.ingest import read_events_file

    parsed = read_events_file(example_path())
    a, b = GraphMemory(plain_memory("a")), GraphMemory(plain_memory("b"))
    for gm in (a, b):
        for e in parsed.entities:
            gm.mem.add_entity(e["id"], kind=e["kind"], name=e["name"], aliases=e["aliases"])
    for i in range(0, len(parsed.events), 4):  # four events at a time, the graph updated after each write
        a.add_events(parsed.events[i : i + 4])
    b.mem.add_events(parsed.events)
    update(b.store)
    tables = ("graph_nodes", "graph_edges", "graph_event_episode")
    strip = lambda d: {t: [r[:-1] for r in rows] for t, rows in d.items()}  # noqa: E731 - drop the write seq
    assert strip(dump(a.store.path, tables)) == strip(dump(b.store.path, tables))
    before = strip(dump(a.store.path, tables))
    rebuild(a.store)
    assert strip(dump(a.store.path, tables)) == before


def test_view_has_every_node_and_edge_type(story):
    G = story.view()
    assert isinstance(G, nx.MultiDiGraph)
    types = {d["type"] for _, d in G.nodes(data=True)}
    assert types == {"entity", "event", "episode", "arc"}
    edge_types = {d["type"] for *_, d in G.edges(data=True)}
    assert edge_types == {"participates_in", "located_at", "relation", "next", "summarizes"}
    assert G.has_edge("entity:mara", "event:e01", "participates_in")
    assert G.has_edge("event:e01", "entity:lighthouse", "located_at")
    assert G.has_edge("event:e01", "event:e02", "next")
    assert G.has_edge("episode:1", "event:e01", "summarizes") and G.has_edge("arc:1", "episode:1", "summarizes")
    assert G.has_edge("episode:1", "episode:2", "next")
    holds = [(u, v, d["t_from"], d["t_to"]) for u, v, d in G.edges(data=True) if d.get("predicate") == "holds"]
    # one holder at a time: Ida taking the lamp closes Mara's holding it, in the store and the view
    assert sorted(holds) == [("entity:ida", "entity:lamp", 86410.0, None), ("entity:mara", "entity:lamp", 4.0, 86410.0)]
    story.compress(communities=True)
    G = story.view()
    assert any(d["type"] == "member_of" for *_, d in G.edges(data=True))


def _signature(G):
    nodes = sorted((n, tuple(sorted((k, str(v)) for k, v in d.items()))) for n, d in G.nodes(data=True))
    edges = sorted(
        (u, v, tuple(sorted((k, str(x)) for k, x in d.items() if k != "edge_id"))) for u, v, d in G.edges(data=True)
    )
    return nodes, edges


def test_view_is_refreshed_incrementally_and_equals_a_fresh_load(story):
    G = story.view()
    story.add_events(
        [
            {
                "id": "e19",
                "t_start": 604830,
                "text": "Mara lights the lamp once more.",
                "participants": ["mara", "lamp"],
                "location": "lighthouse",
                "group": "week-2",
            }
        ]
    )
    story.add_fact("mara", "lives_in", "lighthouse", t_from=0)
    H = story.view()
    assert H is G  # updated in place, not rebuilt
    assert "event:e19" in H and H.has_edge("event:e18", "event:e19", "next")
    assert _signature(H) == _signature(load_graph(story.store))


def test_importing_graph_loads_no_model_library():
    code = (
        "import sys, graph, agentmem.cli.graph, graph.memory, "
        " graph.build, graph.compress, graph.search, graph.explore; "
        "bad = [m for m in ('torch', 'chromadb', 'sentence_transformers') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("n", [1, 3])
def test_update_is_idempotent(story, n, dump):
    before = dump(story.store.path, ("graph_nodes", "graph_edges", "graph_event_episode"))
    for _ in range(n):
        rep = story.update()
        assert rep.events == 0
    assert dump(story.store.path, ("graph_nodes", "graph_edges", "graph_event_episode")) == before
