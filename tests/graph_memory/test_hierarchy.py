"""Episode segmentation, arcs and their roll-up, summaries, communities."""

import numpy as np
import pytest

from agentmem.errors import ModelUnavailableError
from graph.build import GraphConfig
from graph.hierarchy import (
    ArcRule,
    SegmentationRule,
    detect_communities,
    entity_graph,
    segment,
)
from graph.memory import GraphMemory
from graph.persist import EventRecord
from graph.summaries import ExtractiveSummarizer, TransformersSummarizer


def ev(i, t, *, loc=None, ps=("a",), group=None, vec=None):
    v = None if vec is None else np.asarray(vec, dtype=np.float32) / np.linalg.norm(vec)
    return EventRecord(i, f"e{i}", t, t + 1, f"event {i}", list(ps), loc, group, v)


def test_each_rule_of_the_segmentation():
    rule = SegmentationRule(gap_s=100, min_events=2, max_events=4, shift_threshold=0.5)
    events = [
        ev(1, 0, loc="pier", ps=("a",), vec=[1, 0]),
        ev(2, 1, loc="pier", ps=("a", "b"), vec=[1, 0.1]),
        ev(3, 2, ps=("b",), vec=[1, 0.2], group="g2"),  # new group
        ev(4, 500, ps=("b",), vec=[1, 0.2], group="g2"),  # gap
        ev(5, 501, loc="inn", ps=("b",), vec=[1, 0.2], group="g2"),
        ev(6, 502, loc="mill", ps=("b",), vec=[1, 0.2], group="g2"),  # location
        ev(7, 503, ps=("b",), vec=[1, 0.2], group="g2"),
        ev(8, 504, ps=("c",), vec=[1, 0.2], group="g2"),  # nobody in common with b, b
        ev(9, 505, ps=("c",), vec=[1, 0.2], group="g2"),
        ev(10, 506, ps=("c",), vec=[0, 1], group="g2"),  # the vector turns away
        ev(11, 507, ps=("c",), vec=[0, 1], group="g2"),
        ev(12, 508, ps=("c",), vec=[0, 1], group="g2"),
        ev(13, 509, ps=("c",), vec=[0, 1], group="g2"),
        ev(14, 510, ps=("c",), vec=[0, 1], group="g2"),  # fifth in a row: length
    ]
    assert segment(events, rule) == [
        (0, "start"),
        (2, "group"),
        (3, "gap"),
        (5, "location"),
        (7, "participants"),
        (9, "shift"),
        (13, "length"),
    ]


def test_a_batch_continues_the_open_episode():
    rule = SegmentationRule(gap_s=100)
    tail = [ev(1, 0, loc="pier"), ev(2, 1, loc="pier")]
    assert segment([ev(3, 2, loc="pier"), ev(4, 3, loc="inn")], rule, tail, tail_count=2, tail_location="pier") == [
        (1, "location")
    ]


def test_extractive_summary_keeps_the_central_sentences_in_story_order():
    texts = ["the storm rises over the sea", "tea by the fire", "waves and storm at sea", "a storm at sea"]
    vecs = np.array([[1, 0.1], [0, 1], [1, 0.2], [1, 0]], dtype=np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    assert ExtractiveSummarizer(n=2).summarize(texts, vecs) == "the storm rises over the sea waves and storm at sea"
    assert ExtractiveSummarizer(n=1).summarize(texts, None) in texts  # word-overlap centrality without vectors


def test_a_missing_abstractive_model_is_a_clear_error():
    with pytest.raises(ModelUnavailableError, match="summarizer '/no/such/model' cannot be loaded"):
        TransformersSummarizer("/no/such/model").summarize(["a", "b"], None)


def test_a_local_folder_that_is_not_a_model_is_a_clear_error(tmp_path):
    (tmp_path / "config.json").write_text("{}")  # exists, so the load is tried, and transformers refuses it
    with pytest.raises(ModelUnavailableError, match=f"summarizer '{tmp_path}' cannot be loaded: "):
        TransformersSummarizer(str(tmp_path)).summarize(["a", "b"], None)


def test_arcs_roll_up_into_higher_levels(plain_memory):
    mem = plain_memory("arcs")
    mem.add_entity("a", kind="character")
    config = GraphConfig(rule=SegmentationRule(max_events=2), arcs=ArcRule(max_episodes=2, fanout=2))
    gm = GraphMemory(mem, config=config)
    # 16 events -> 8 episodes of 2; 7 closed episodes -> arcs of 2 (4, the last open); closed arcs roll up by 2
    gm.add_events([{"id": f"x{i:02d}", "t_start": i, "text": f"step {i}", "participants": ["a"]} for i in range(16)])
    rows = gm.store.conn.execute("SELECT id, level, parent FROM graph_nodes WHERE type='arc' ORDER BY id").fetchall()
    assert rows == [
        ("arc:1", 2, "arc:5"),
        ("arc:2", 2, "arc:5"),
        ("arc:3", 2, None),
        ("arc:4", 2, None),
        ("arc:5", 3, None),
    ]
    eps = gm.store.conn.execute("SELECT id, parent FROM graph_nodes WHERE type='episode' ORDER BY t_start").fetchall()
    assert [p for _, p in eps] == ["arc:1", "arc:1", "arc:2", "arc:2", "arc:3", "arc:3", "arc:4", None]
    arc = gm.store.conn.execute("SELECT t_start, t_end, data FROM graph_nodes WHERE id='arc:5'").fetchone()
    assert arc[:2] == (0.0, 7.0) and '"n": 8' in arc[2]


def test_communities_are_louvain_with_a_fixed_seed(plain_memory):
    mem = plain_memory("c")
    for p in ("ann", "bob", "cid", "dan", "eve", "fay"):
        mem.add_entity(p, kind="character")
    gm = GraphMemory(mem)
    evs = []
    for i in range(6):
        evs.append({"id": f"k{i}", "t_start": i, "text": "kitchen", "participants": ["ann", "bob", "cid"]})
        evs.append({"id": f"g{i}", "t_start": 10 + i, "text": "garden", "participants": ["dan", "eve", "fay"]})
    evs.append({"id": "bridge", "t_start": 50, "text": "meet", "participants": ["cid", "dan"]})
    gm.add_events(evs)
    groups = detect_communities(entity_graph(gm.store, gm.store.canonical_map()), seed=0)
    assert groups == [["ann", "bob", "cid"], ["dan", "eve", "fay"]]
    rep = gm.compress(communities=True)
    assert rep.communities == 2
    nodes = gm.store.conn.execute(
        "SELECT id, label, summary FROM graph_nodes WHERE type='community' ORDER BY id"
    ).fetchall()
    assert [n[:2] for n in nodes] == [("community:1", "ann, bob, cid"), ("community:2", "dan, eve, fay")]
    assert nodes[0][2].startswith("ann, bob, cid: 3 entities, 6 recent shared events.")
    member_of = gm.store.conn.execute("SELECT src, dst FROM graph_edges WHERE type='member_of' ORDER BY src").fetchall()
    assert member_of[0] == ("entity:ann", "community:1") and len(member_of) == 6
    # the same partition again: nothing changes
    assert gm.compress(communities=True).communities is None
