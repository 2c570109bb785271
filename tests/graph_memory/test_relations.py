"""Facts: contradiction closing, reinforcement, the extractor interface, bad input."""

import pytest

from agentmem.errors import BadInputError, UnknownEntityError
from agentmem.model import Relation
from graph.build import GraphConfig
from graph.memory import GraphMemory
from graph.relations import Statement


@pytest.fixture
def wardrobe(story):
    for eid, name in (("yellow_coat", "the yellow raincoat"), ("oilskin", "the red oilskin"), ("rope", "a rope")):
        story.mem.add_entity(eid, kind="object", name=name)
    return story


def fact_rows(gm, subject, predicate):
    return gm.store.conn.execute(
        "SELECT id, object, t_from, t_to FROM relations WHERE subject=? AND predicate=? ORDER BY id",
        (subject, predicate),
    ).fetchall()


def edges(gm, predicate):
    return gm.store.conn.execute(
        "SELECT src, dst, t_from, t_to, weight, evidence FROM graph_edges WHERE predicate=? ORDER BY t_from, dst",
        (predicate,),
    ).fetchall()


def test_a_contradicting_fact_closes_the_valid_one_at_its_start(wardrobe):
    first = wardrobe.add_fact("mara", "wears", "yellow_coat", t_from=0, evidence=["e01"])
    res = wardrobe.add_fact("the keeper", "wears", "oilskin", t_from=48, evidence=["e09"])
    assert res.closed == [first.id]
    assert fact_rows(wardrobe, "mara", "wears") == [
        (first.id, "yellow_coat", 0.0, 48.0),
        (res.id, "oilskin", 48.0, None),
    ]
    assert edges(wardrobe, "wears") == [
        ("entity:mara", "entity:yellow_coat", 0.0, 48.0, 1.0, '["e01"]'),
        ("entity:mara", "entity:oilskin", 48.0, None, 1.0, '["e09"]'),
    ]


def test_a_fact_inserted_before_a_later_one_ends_where_it_starts(wardrobe):
    later = wardrobe.add_fact("mara", "wears", "oilskin", t_from=48)
    early = wardrobe.add_fact("mara", "wears", "yellow_coat", t_from=0)
    assert early.closed == []
    assert fact_rows(wardrobe, "mara", "wears") == [
        (later.id, "oilskin", 48.0, None),
        (early.id, "yellow_coat", 0.0, 48.0),
    ]


def test_a_repeated_fact_reinforces_one_edge(wardrobe):
    # (the story has Ida holding the lamp from 86410; "holds" allows one holder per object, so she keeps it)
    wardrobe.add_fact("ida", "holds", "rope", t_from=600000, evidence=["e17"])
    wardrobe.add_fact("ida", "holds", "rope", t_from=604810, evidence=["e18"])
    assert [r[1:] for r in fact_rows(wardrobe, "ida", "holds")] == [
        ("lamp", 86410.0, None),
        ("rope", 600000.0, None),
        ("rope", 604810.0, None),
    ]
    rope = [e for e in edges(wardrobe, "holds") if e[1] == "entity:rope"]
    assert rope == [("entity:ida", "entity:rope", 600000.0, None, 2.0, '["e17", "e18"]')]


def test_non_functional_predicates_are_never_closed(wardrobe):
    wardrobe.add_fact("mara", "friend_of", "tomas", t_from=0)
    res = wardrobe.add_fact("mara", "friend_of", "ida", t_from=50)
    assert res.closed == [] and all(r[3] is None for r in fact_rows(wardrobe, "mara", "friend_of"))


def test_facts_stored_through_the_core_are_closed_on_write_in_both_directions(wardrobe):
    wardrobe.mem.add_relation(Relation("mara", "wears", "yellow_coat", 0.0))
    wardrobe.mem.add_relation(Relation("mara", "wears", "oilskin", 48.0))
    assert [r[3] for r in fact_rows(wardrobe, "mara", "wears")] == [48.0, None]
    # one holder per object: the story's "ida holds lamp" at 86410 closed "mara holds lamp" (from t=4)
    assert [r[1:] for r in fact_rows(wardrobe, "mara", "holds")] == [("lamp", 4.0, 86410.0)]
    # inserted between two holders: it closes the earlier one and ends where the later one starts
    wardrobe.mem.add_relation(Relation("tomas", "holds", "lamp", 50000.0))
    assert [r[1:] for r in fact_rows(wardrobe, "tomas", "holds")] == [("lamp", 50000.0, 86410.0)]
    assert [r[1:] for r in fact_rows(wardrobe, "mara", "holds")] == [("lamp", 4.0, 50000.0)]
    wardrobe.update()
    assert sorted((e[0], e[2], e[3]) for e in edges(wardrobe, "holds") if e[1] == "entity:lamp") == [
        ("entity:ida", 86410.0, None),
        ("entity:mara", 4.0, 50000.0),
        ("entity:tomas", 50000.0, 86410.0),
    ]


def test_facts_of_an_older_store_are_closed_by_compression_and_reopened_by_restore(wardrobe):
    with wardrobe.store.transaction():  # rows as a store written before facts were closed on write
        wardrobe.store.insert_relation(Relation("mara", "wears", "yellow_coat", 0.0), 0.0)
        wardrobe.store.insert_relation(Relation("mara", "wears", "oilskin", 48.0), 0.0)
    wardrobe.update()
    # the graph already shows the closed interval; the stored fact is still open
    assert [e[3] for e in edges(wardrobe, "wears")] == [48.0, None]
    assert [r[3] for r in fact_rows(wardrobe, "mara", "wears")] == [None, None]
    rep = wardrobe.compress()
    assert [(t) for _, t in rep.facts_closed] == [48.0]
    assert [r[3] for r in fact_rows(wardrobe, "mara", "wears")] == [48.0, None]
    wardrobe.restore()
    assert [r[3] for r in fact_rows(wardrobe, "mara", "wears")] == [None, None]


class TalksTo:
    """A toy extractor: the first participant of an event whose text has 'tells' talks to the others."""

    name = "talks-to"

    def extract(self, events):
        for e in events:
            if "tells" in e.text and len(e.participants) > 1:
                for other in sorted(e.participants)[1:]:
                    yield Statement(sorted(e.participants)[0], "talks_to", other, e.t_start, e.id)


def test_an_extractor_can_be_plugged_in(plain_memory):
    from agentmem.formats.examples import example_path
    from agentmem.formats.ingest import ingest_file

    mem = plain_memory("x")
    ingest_file(mem, example_path())
    gm = GraphMemory(mem, config=GraphConfig(extractor=TalksTo()))
    gm.update()
    # e11: "Next morning Ida tells them she came from a ship called the Heron." (ida, mara, tomas)
    assert [e[:2] + (e[4], e[5]) for e in edges(gm, "talks_to")] == [
        ("entity:ida", "entity:mara", 1.0, '["e11"]'),
        ("entity:ida", "entity:tomas", 1.0, '["e11"]'),
    ]
    assert edges(gm, "co_participates") == []


@pytest.mark.parametrize(
    "args,error,msg",
    [
        (("mara", " ", "lamp"), BadInputError, "relation predicate is empty"),
        (("mara", "holds", "unicorn"), UnknownEntityError, "fact object: unknown entity 'unicorn'"),
        (("nobody", "holds", "lamp"), UnknownEntityError, "fact subject: unknown entity 'nobody'"),
    ],
)
def test_bad_facts_are_refused_and_store_nothing(story, args, error, msg):
    before = story.store.conn.execute("SELECT COUNT(*) FROM relations").fetchone()[0]
    with pytest.raises(error, match=msg):
        story.add_fact(*args, t_from=5)
    with pytest.raises(BadInputError, match=r"t_to \(1.0\) is before t_from \(5.0\)"):
        story.add_fact("mara", "holds", "lamp", t_from=5, t_to=1)
    with pytest.raises(BadInputError, match=r"unknown events \['e99'\]"):
        story.add_fact("mara", "holds", "lamp", t_from=5, evidence=["e99"])
    assert story.store.conn.execute("SELECT COUNT(*) FROM relations").fetchone()[0] == before
