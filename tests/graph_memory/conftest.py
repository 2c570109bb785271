"""Fixtures for the graph tests: the bundled lighthouse story, in memories without text models (fast)."""

import sqlite3

import pytest

from agentmem.formats.examples import example_path
from agentmem.formats.ingest import ingest_file
from agentmem.memory import Memory
from graph.memory import GraphMemory

# Everything a memory stores, in the tables that hold it; the journals (graph_archive, graph_runs), the merges
# log and the counters in meta are compared separately.
RECORD_TABLES = (
    "entities",
    "aliases",
    "attributes",
    "entity_vectors",
    "media",
    "events",
    "event_entities",
    "relations",
    "graph_nodes",
    "graph_edges",
    "graph_event_episode",
    "window_fts",
    "group_fts",
    "groups",
)


def _dump(db_path, tables=RECORD_TABLES) -> dict[str, list[tuple]]:
    """Every row of every table, in rowid/primary-key order: two dumps are equal iff nothing changed."""
    conn = sqlite3.connect(db_path)
    try:
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}
    finally:
        conn.close()


@pytest.fixture
def dump():
    """``dump(db_path, tables=RECORD_TABLES)``: every row of those tables, for before/after comparisons."""
    return _dump


@pytest.fixture
def plain_memory(tmp_path):
    mems = []

    def make(name="mem"):
        mem = Memory(tmp_path / name, text_embedder=None, image_embedder=None, auto_sync=False)
        mems.append(mem)
        return mem

    yield make
    for m in mems:
        m.close()


@pytest.fixture
def story(plain_memory):
    """The lighthouse story (10 entities, 18 events, 2 facts) with its graph built."""
    mem = plain_memory("story")
    ingest_file(mem, example_path())
    gm = GraphMemory(mem)
    gm.update()
    return gm
