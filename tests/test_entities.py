import pytest

from agentmem.errors import BadInputError, StoreError, UnknownEntityError


def test_attribute_intervals_close_and_nothing_is_deleted(make_memory):
    mem = make_memory(text_embedder=None)
    mem.add_entity("mara", kind="character", name="Mara", attributes={"coat": "yellow raincoat"})
    mem.set_attribute("mara", "coat", "red raincoat", t=40)
    mem.set_attribute("mara", "coat", "blue coat", t=100)
    # a value inserted between two existing ones closes the earlier and ends at the later
    mem.set_attribute("mara", "coat", "green cape", t=70)
    attrs = [(a.value, a.t_from, a.t_to) for a in mem.entity("mara").attributes]
    assert attrs == [
        ("yellow raincoat", 0.0, 40.0),
        ("red raincoat", 40.0, 70.0),
        ("green cape", 70.0, 100.0),
        ("blue coat", 100.0, None),
    ]
    assert [mem.state_at("mara", t)["coat"] for t in (0, 39.9, 40, 69, 70, 100, 1e9)] == [
        "yellow raincoat",
        "yellow raincoat",
        "red raincoat",
        "red raincoat",
        "green cape",
        "blue coat",
        "blue coat",
    ]


def test_resolve_by_id_name_alias_and_normalized_forms(make_memory):
    mem = make_memory(text_embedder=None)
    mem.add_entity("mara", kind="character", name="Mara Quill", aliases=["the keeper"])
    for ref in ("mara", "Mara Quill", "mara quill", "The Keeper", "keeper", "KEEPER!"):
        assert mem.resolve_entity(ref) == "mara"
    with pytest.raises(UnknownEntityError, match="unknown entity 'nobody'"):
        mem.resolve_entity("nobody")


def test_new_entity_matching_an_alias_is_merged_with_provenance_and_split_undoes_it(story_mem):
    mem = story_mem
    assert mem.add_entity("keeper_2", kind="character", name="The Keeper") == "mara"
    (m,) = mem.merges()
    assert (m.source, m.target, m.reason, m.undone_at) == ("keeper_2", "mara", "exact match on write", None)
    mem.add_events([{"id": "k1", "t_start": 50, "text": "keeper_2 polishes the lens", "participants": ["keeper_2"]}])
    assert "k1" in [h.id for h in mem.query(entities=["mara"], k=50)]
    mem.split(m.id)
    assert mem.resolve_entity("keeper_2") == "keeper_2"
    assert "k1" not in [h.id for h in mem.query(entities=["mara"], k=50)]
    assert [h.id for h in mem.query(entities=["keeper_2"], k=50)] == ["k1"]
    with pytest.raises(StoreError, match="already undone"):
        mem.split(m.id)


def test_no_id_collisions_face_1_face_12(make_memory):
    mem = make_memory(text_embedder=None)
    mem.add_entity("face_12", kind="character", name="face_12")
    assert mem.add_entity("face_1", kind="character", name="face_1") == "face_1"
    assert mem.merges() == []
    mem.add_events(
        [
            {"id": "a", "t_start": 0, "text": "one", "participants": ["face_1"]},
            {"id": "b", "t_start": 1, "text": "twelve", "participants": ["face_12"]},
        ]
    )
    assert [h.id for h in mem.query(entities=["face_1"])] == ["a"]
    assert [h.id for h in mem.query(entities=["face_12"])] == ["b"]


def test_fuzzy_match_merges_close_spelling_but_not_transitively(make_memory):
    mem = make_memory(text_embedder=None)
    mem.add_entity("caroline", kind="character", name="Caroline")
    assert mem.add_entity("carolinee", kind="character", name="Carolinee") == "caroline"
    # close to the merged "Carolinee" (0.95) but not to "Caroline" itself (0.89): no chain of merges
    assert mem.add_entity("carolineee", kind="character", name="Carolineee") == "carolineee"
    assert [(m.source, m.target, m.reason) for m in mem.merges()] == [("carolinee", "caroline", "fuzzy match on write")]


def test_ambiguous_name_is_not_merged(make_memory):
    mem = make_memory(text_embedder=None)
    mem.add_entity("sam_a", kind="character", name="Sam", aliases=["the cook"])
    mem.add_entity("sam_b", kind="character", name="Samuel", aliases=["the cook"], resolve=False)
    assert mem.add_entity("cook", kind="character", name="The Cook") == "cook"
    with pytest.raises(UnknownEntityError, match="ambiguous"):
        mem.resolve_entity("the cook")


def test_embedding_stage_merges_same_description_of_same_kind_only(make_memory):
    mem = make_memory()
    mem.add_entity(
        "lh",
        kind="location",
        name="Lighthouse on the black cliff",
        attributes={"appearance": "a white lighthouse tower on a black cliff above the sea"},
    )
    got = mem.add_entity(
        "tower",
        kind="location",
        name="tower on the cliff",
        attributes={"appearance": "a white lighthouse tower on a black cliff above the sea"},
    )
    assert got == "lh"
    assert mem.merges()[0].reason == "embedding match on write"
    other = mem.add_entity(
        "tower_obj",
        kind="object",
        name="toy tower",
        attributes={"appearance": "a white lighthouse tower on a black cliff above the sea"},
    )
    assert other == "tower_obj"


def test_bad_entity_input_names_the_field(make_memory):
    mem = make_memory(text_embedder=None)
    with pytest.raises(BadInputError, match="kind must be one of"):
        mem.add_entity("m", kind="person")
    with pytest.raises(BadInputError, match="id must be"):
        mem.add_entity("bad id!")


def test_embedding_set_is_capped_deterministically(make_memory):
    mem = make_memory()
    for i in range(12):
        mem.add_entity("mara", kind="character", name="Mara", attributes={"appearance": f"outfit {i} " + "x" * i})
    rows = mem.store.entity_vectors(["mara"], "text")
    assert len(rows) == 8
    mem2 = make_memory("again")
    for i in range(12):
        mem2.add_entity("mara", kind="character", name="Mara", attributes={"appearance": f"outfit {i} " + "x" * i})
    import numpy as np

    assert all(np.array_equal(a[1], b[1]) for a, b in zip(rows, mem2.store.entity_vectors(["mara"], "text")))
