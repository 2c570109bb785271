"""Schema migration from version 1 (graph tables, the archived-events index), and export files that parse back."""

import json
import sqlite3

import networkx as nx

from agentmem.storage.schema import SCHEMA_VERSION
from agentmem.storage.store import Store
from graph.persist import export_graph, read_node_link

V1_TABLES = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE events (rid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, t_start REAL NOT NULL, t_end REAL NOT NULL,
    text TEXT NOT NULL, search_text TEXT NOT NULL, location TEXT, camera TEXT, provenance TEXT NOT NULL,
    importance REAL NOT NULL, grp TEXT, ingested_at REAL NOT NULL, archived INTEGER NOT NULL DEFAULT 0, vec BLOB);
INSERT INTO meta VALUES ('schema_version', '1');
INSERT INTO events VALUES (1, 'old', 0, 1, 'an old event', 'an old event', NULL, NULL, '{}', 0.5, NULL, 0, 0, NULL);
"""


def test_a_version_1_store_upgrades_to_the_current_version_and_keeps_its_rows(tmp_path):
    d = tmp_path / "v1"
    d.mkdir()
    conn = sqlite3.connect(d / "memory.db")
    conn.executescript(V1_TABLES)
    conn.close()
    store = Store(d)
    assert store.get_meta("schema_version") == str(SCHEMA_VERSION)
    tables = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"graph_nodes", "graph_edges", "graph_event_episode", "graph_archive", "graph_runs"} <= tables  # v2
    indexes = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"events_archived", "events_camera"} <= indexes  # v3
    assert store.conn.execute("SELECT id, text FROM events").fetchall() == [("old", "an old event")]
    store.close()


def test_a_version_3_outbox_keeps_its_queued_work_and_never_reuses_a_sequence_number(tmp_path):
    d = tmp_path / "v3"
    Store(d).close()
    conn = sqlite3.connect(d / "memory.db")
    conn.executescript(
        "DROP TABLE outbox; CREATE TABLE outbox (seq INTEGER PRIMARY KEY, op TEXT NOT NULL, "
        "collection TEXT NOT NULL, ref INTEGER NOT NULL);"
        "INSERT INTO outbox VALUES (7, 'upsert', 'text', 3);"
        "UPDATE meta SET value='3' WHERE key='schema_version';"
    )
    conn.commit()
    conn.close()
    store = Store(d)
    assert store.outbox_batch(10) == [(7, "upsert", "text", 3)]
    store.ack_outbox([7])
    with store.transaction():
        store.enqueue("upsert", "text", 4)
    # Without AUTOINCREMENT an emptied outbox hands out 1 again (or 7), so a stale ack could delete the new row.
    assert [r[0] for r in store.outbox_batch(10)] == [8]
    store.close()


def test_graphml_and_node_link_exports_parse_back(story, tmp_path):
    story.compress(communities=True)
    G = story.view()
    gml = export_graph(G, tmp_path / "g.graphml")
    H = nx.read_graphml(gml, force_multigraph=True)
    assert set(H.nodes) == set(G.nodes) and H.number_of_edges() == G.number_of_edges()
    assert H.nodes["episode:4"]["type"] == "episode" and H.nodes["episode:4"]["level"] == 1
    holds = [d for u, v, d in H.edges(data=True) if d.get("predicate") == "holds" and u == "entity:mara"]
    assert holds[0]["t_from"] == 4.0 and json.loads(holds[0]["evidence"]) == ["fact:1"]
    js = export_graph(G, tmp_path / "g.json")
    J = read_node_link(js)
    assert set(J.nodes) == set(G.nodes) and J.number_of_edges() == G.number_of_edges()
    assert json.loads(js.read_text())["multigraph"] is True
    assert {d["type"] for *_, d in J.edges(data=True)} == {
        "participates_in",
        "located_at",
        "relation",
        "next",
        "summarizes",
        "member_of",
    }
