"""Compression: what it changes, that restore gives every record back, that archived events stay findable."""

import numpy as np
import pytest
from click.testing import CliRunner

from agentmem.cli.main import cli
from agentmem.model import Relation
from agentmem.search.query import Query
from graph.compress import CompressionPolicy
from graph.journal import active_counts

POLICY = CompressionPolicy(
    every=0,
    keep_events=5,
    keep_episodes=2,
    keep_arcs=1,
    half_life_s=3600.0,
    prune_below=0.5,
    prune_max_weight=2.0,
    text_cap=8,
)


@pytest.fixture
def messy(story):
    """The story plus what compression cleans up: a duplicate slot, too many vectors, a contradiction."""
    story.policy = POLICY
    story.mem.add_entity("keeper_2", kind="character", name="The Keeper", resolve=False)
    rng = np.random.default_rng(0)
    for eid, n in (("mara", 5), ("keeper_2", 6)):
        with story.store.transaction():
            for _ in range(n):
                v = rng.standard_normal(16).astype(np.float32)
                story.store.add_entity_vector(eid, "text", v / np.linalg.norm(v), "test", 0.0)
    story.mem.add_entity("oilskin", kind="object", name="the red oilskin")
    story.mem.add_entity("raincoat", kind="object", name="the yellow raincoat")
    # Written as a store from before facts were closed on write: both left open, for compression to close.
    with story.store.transaction():
        story.store.insert_relation(Relation("mara", "wears", "raincoat", 0.0), 0.0)
        story.store.insert_relation(Relation("mara", "wears", "oilskin", 48.0, evidence=["e09"]), 0.0)
    story.update()
    return story


def test_compression_reports_each_kind_of_change(messy):
    before = active_counts(messy.store)
    rep = messy.compress(communities=True)
    assert rep.run == 1 and not rep.dry_run
    assert rep.facts_closed == [(3, 48.0)]
    assert rep.merges == [("keeper_2", "mara", "compress: exact name match")]
    assert rep.vectors_archived == 3  # 11 vectors over mara and keeper_2, capped at 8
    # events of closed episodes ending before the 5th newest event (t=86430) roll up into their episodes
    assert rep.events_archived == 12
    assert rep.edges_pruned > 0 and rep.episodes_archived > 0
    after = active_counts(messy.store)
    assert after["events"] == before["events"] - 12 and after["entities"] == before["entities"] - 1
    assert rep.active_after == after
    archived = [r[0] for r in messy.store.conn.execute("SELECT id FROM events WHERE archived=1 ORDER BY t_start")]
    assert archived == ["e01", "e02", "e03", "e04", "e05", "e06", "e07", "e08", "e09", "e10", "e11", "e12"]
    assert "rolled up" in rep.format() and "keeper_2 -> mara" in rep.format()


def test_compress_then_restore_gives_back_every_record_unchanged(messy, dump):
    before = dump(messy.store.path)
    merges_before = messy.store.conn.execute("SELECT * FROM merges").fetchall()
    messy.compress(communities=True)
    messy.add_events([])  # nothing new: the graph is untouched
    changed = dump(messy.store.path)
    assert changed != before
    rep = messy.restore()
    assert rep.runs == [1] and rep.events == 12 and rep.merges_undone == 1 and rep.vectors == 3
    assert rep.facts_reopened == 1
    assert dump(messy.store.path) == before
    merges = messy.store.conn.execute("SELECT source, target, undone_at IS NOT NULL FROM merges").fetchall()
    assert merges[: len(merges_before)] == [(m[1], m[2], m[6] is not None) for m in merges_before]
    assert merges[len(merges_before) :] == [("keeper_2", "mara", 1)]  # the log keeps the merge and its undo
    assert messy.store.conn.execute("SELECT COUNT(*) FROM graph_archive").fetchone()[0] == 0


def test_several_runs_restore_newest_first(messy, dump):
    before = dump(messy.store.path)
    messy.compress()
    messy.add_events(
        [
            {
                "id": f"n{i}",
                "t_start": 700000 + i,
                "text": f"Ida writes letter {i}",
                "participants": ["ida"],
                "group": "week-3",
            }
            for i in range(8)
        ]
    )
    mid = dump(messy.store.path)
    second = messy.compress()
    assert second.run == 2 and second.events_archived > 0
    assert messy.restore(run=2).runs == [2]
    assert dump(messy.store.path) == mid
    assert messy.restore().runs == [1]
    assert {k: v for k, v in dump(messy.store.path).items()} != before  # the 8 new events are still there
    assert messy.store.conn.execute("SELECT COUNT(*) FROM events WHERE archived=1").fetchone()[0] == 0


def test_dry_run_writes_nothing_and_plans_exactly_the_run(messy, dump):
    before = dump(messy.store.path)
    plan = messy.compress(dry_run=True, communities=True)
    assert plan.run is None and plan.dry_run
    assert dump(messy.store.path) == before
    assert messy.store.conn.execute("SELECT COUNT(*) FROM graph_runs").fetchone()[0] == 0
    real = messy.compress(communities=True)
    for field in (
        "facts_closed",
        "merges",
        "vectors_archived",
        "events_archived",
        "episodes_archived",
        "arcs_archived",
        "edges_pruned",
        "communities",
        "active_after",
    ):
        assert getattr(plan, field) == getattr(real, field), field


def test_an_archived_event_is_found_by_entity_and_time_with_include_archive(messy, tmp_path):
    messy.compress()
    q = Query(entities=["the fisherman"], t0=10, t1=30)
    assert [h.id for h in messy.mem.query(q)] == []
    hits = messy.mem.query(Query(entities=["the fisherman"], t0=10, t1=30, include_archive=True))
    assert [(h.id, h.archived) for h in hits] == [("e04", True), ("e05", True)]
    db = str(messy.store.dir)
    messy.close()
    res = CliRunner().invoke(
        cli, ["query", "--db", db, "--entity", "tomas", "--from", "10", "--to", "30", "--include-archive", "--json"]
    )
    assert res.exit_code == 0, res.output
    assert '"id": "e04"' in res.output and '"archived": true' in res.output


def test_restore_chosen_events_only(messy):
    messy.compress()
    rep = messy.restore(events=["e04"])
    assert rep.events == 1
    rep = messy.restore(t0=0, t1=5)
    assert rep.events == 2  # e01 [0, 4], e02 [4, 8]
    live = [
        r[0]
        for r in messy.store.conn.execute("SELECT id FROM events WHERE archived=0 AND t_start < 86430 ORDER BY t_start")
    ]
    assert live == ["e01", "e02", "e04", "e13"]  # e13 was never archived: its episode ends after the cutoff


def test_the_working_set_stays_bounded_on_a_stream(plain_memory):
    from graph.build import GraphConfig
    from graph.hierarchy import ArcRule, SegmentationRule
    from graph.memory import GraphMemory

    mem = plain_memory("stream")
    for i in range(20):
        mem.add_entity(f"p{i}", kind="character")
    policy = CompressionPolicy(every=1000, keep_events=300, keep_episodes=20, keep_arcs=4)
    gm = GraphMemory(
        mem, config=GraphConfig(rule=SegmentationRule(max_events=25), arcs=ArcRule(fanout=4)), policy=policy
    )
    rng = np.random.default_rng(1)
    sizes = []
    for b in range(12):
        evs = [
            {
                "id": f"s{b}-{i}",
                "t_start": b * 1000 + i,
                "text": f"scene {b} beat {i}",
                "participants": [f"p{j}" for j in rng.choice(20, 2, replace=False)],
                "group": f"scene-{b}-{i // 50}",
            }
            for i in range(500)
        ]
        gm.add_events(evs)
        sizes.append(active_counts(gm.store))
    assert gm.store.conn.execute("SELECT COUNT(*) FROM graph_runs").fetchone()[0] == 6
    assert max(s["events"] for s in sizes) <= policy.keep_events + policy.every + 100
    assert sizes[-1]["nodes"] < sizes[3]["nodes"] * 1.5  # 6000 events stored, the active set does not grow with them
    assert gm.store.conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 6000


def test_a_filter_only_graph_search_on_a_compressed_memory_lists_the_active_events(messy):
    # Before the search layer's steps were shared, the active tier fused empty lists here and returned nothing.
    messy.compress()
    active = [h.id for h in messy.mem.query(Query(entities=["mara"], k=50))]
    assert active and all(not h.archived for h in messy.mem.query(Query(entities=["mara"], k=50)))
    assert [h.id for h in messy.search(Query(entities=["mara"], k=50))] == active
    assert [h.components for h in messy.search(Query(entities=["mara"], k=3))] == [{"filter": 1.0}] * 3
