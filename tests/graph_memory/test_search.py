"""Search through the hierarchy and the graph, fused with the core ranking (real MiniLM)."""

import shutil

import numpy as np
import pytest

from agentmem.formats.examples import example_path
from agentmem.formats.ingest import ingest_file
from agentmem.memory import Memory
from agentmem.search.query import Query
from graph.compress import CompressionPolicy
from graph.memory import GraphMemory
from graph.search import GraphSearchParams, search


@pytest.fixture(scope="module")
def story_dir(tmp_path_factory, minilm):
    """The story embedded once with MiniLM (embedding is the slow part); each test gets a copy."""
    d = tmp_path_factory.mktemp("search") / "s"
    mem = Memory(d, text_embedder=minilm, image_embedder=None, auto_sync=False)
    ingest_file(mem, example_path())
    GraphMemory(mem).update()
    mem.close()
    return d


@pytest.fixture
def story_minilm(story_dir, tmp_path, minilm):
    shutil.copytree(story_dir, tmp_path / "s")
    mem = Memory(tmp_path / "s", text_embedder=minilm, image_embedder=None, auto_sync=False)
    gm = GraphMemory(mem, policy=CompressionPolicy(every=0, keep_events=5, keep_episodes=2, keep_arcs=1))
    yield gm
    gm.close()


def test_hits_carry_each_lists_contribution(story_minilm):
    hits = story_minilm.search(Query(text="What did Tomas find on the rocks?", k=3))
    assert {h.id for h in hits[:2]} == {"e13", "e14"}  # he searches the rocks; he finds a nameboard
    assert set(hits[0].components) == {"core", "entity", "hier"}
    assert all(h.kind == "event" for h in hits)
    assert hits[0].score == pytest.approx(sum(hits[0].components.values()))
    plain = story_minilm.search(Query(text="a sail on the horizon", k=3))
    assert plain[0].id == "e16" and "entity" not in plain[0].components  # no entity named: no entity list


def test_the_entity_list_ranks_the_named_entitys_events_by_the_rest_of_the_query(story_minilm):
    from graph.search import _Ctx, _entity_list, content_text

    mem = story_minilm.mem
    q = Query(text="What did Tomas light?")
    content = content_text(q.text, ["tomas"])
    assert content == "What did light?"
    cv = mem.text.embed([content])[0]
    ctx = _Ctx(mem, q, GraphSearchParams(entity_prior=0.1), False, 0, None, cv, content, {"tomas"})
    ranked = _entity_list(ctx)
    rows = mem.store.conn.execute(
        "SELECT e.id, e.vec, EXISTS(SELECT 1 FROM event_entities x WHERE x.rid=e.rid "
        "AND x.entity_id='tomas') FROM events e"
    ).fetchall()
    score = {i: float(np.frombuffer(v, np.float32) @ cv) + 0.1 * t for i, v, t in rows}
    assert ranked == sorted(score, key=lambda i: -score[i])
    assert ranked.index("e10") < 3  # "In the cottage Tomas lights a fire while Ida sleeps."


def test_compressed_episodes_answer_for_their_archived_events(story_minilm):
    rep = story_minilm.compress()
    assert rep.events_archived == 12
    hits = story_minilm.search(Query(text="a girl is pulled out of the freezing water", k=5))
    assert all(not h.archived or h.kind == "episode" for h in hits)
    episodes = [h for h in hits if h.kind == "episode"]
    assert episodes[0].id == "episode:4" and hits.index(episodes[0]) <= 1
    assert episodes[0].provenance["children"] == ["e07", "e08", "e09"]
    assert "Ida" in episodes[0].text and "summary" in episodes[0].components
    full = story_minilm.search(Query(text="a girl is pulled out of the freezing water", k=5, include_archive=True))
    assert "e08" in [h.id for h in full[:3]]


def test_search_over_the_active_tier_keeps_the_filters(story_minilm):
    story_minilm.compress()
    hits = story_minilm.search(Query(text="the lamp", entities=["ida"], k=10))
    assert hits and all("ida" in h.entities and not h.archived for h in hits)
    assert {h.id for h in hits} <= {"e15", "e16", "e17", "e18"}
    then = story_minilm.search(Query(text="Ida and the lamp", as_of=86450, k=10))
    assert then and all(h.t_start <= 86450 and (h.kind != "event" or not h.archived) for h in then)


def test_locomo_episodes_credit_their_turns(tmp_path, minilm):
    mem = Memory(tmp_path / "l", text_embedder=minilm, image_embedder=None, auto_sync=False)
    mem.add_entity("amy", kind="character", name="Amy")
    turns = [
        "I adopted a grey cat called Pixel.",
        "Pixel sleeps on my keyboard all day.",
        "The vet says Pixel is healthy.",
        "We moved to a flat by the river.",
        "The river floods in spring.",
        "I bought a kayak for the river.",
        "Work is busy this month.",
        "My boss liked the report.",
    ]
    # three sessions a week apart, turns a second apart (as LoCoMo is ingested)
    mem.add_events(
        [
            {
                "id": f"c:D{1 + i // 3}:{i % 3 + 1}",
                "t_start": (i // 3) * 604800 + i,
                "text": f"Amy: {t}",
                "participants": ["amy"],
                "group": f"s{1 + i // 3}",
                "provenance": {"dia_id": f"D{1 + i // 3}:{i % 3 + 1}"},
            }
            for i, t in enumerate(turns)
        ]
    )
    gm = GraphMemory(mem, policy=CompressionPolicy(every=0, keep_events=2, keep_episodes=5))
    gm.compress()
    hits = search(mem, Query(text="What is the name of Amy's cat?", k=3))
    ep = next(h for h in hits if h.kind == "episode")
    assert ep.provenance["dia_ids"] == ["D1:1", "D1:2", "D1:3"]
    from agentmem.bench.locomo import dia_ids_of

    assert dia_ids_of(ep) == ["D1:1", "D1:2", "D1:3"]
    gm.close()
