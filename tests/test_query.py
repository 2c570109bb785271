import numpy as np
import pytest
from PIL import Image

from agentmem import Query, parse_time
from agentmem.errors import BadInputError, MediaNotFoundError, UnknownEntityError


def ids(hits):
    return [h.id for h in hits]


def test_entity_any_all_and_time_range_return_exact_ids(story_mem):
    m = story_mem
    assert ids(m.query(entities=["Mara"])) == ["e1", "e2", "e4", "e5"]
    assert ids(m.query(entities=["the fisherman", "ida"])) == ["e3", "e4", "e5", "e6"]
    assert ids(m.query(all_entities=["mara", "Tomas"])) == ["e4", "e5"]
    assert ids(m.query(all_entities=["mara", "tomas", "ida"])) == ["e5"]
    assert ids(m.query(entities=["ida"], t0=0, t1=50)) == ["e5"]
    # overlap, not containment: e3 runs 10..30 and overlaps [8, 12]
    assert ids(m.query(t0=8, t1=12)) == ["e2", "e3"]
    assert ids(m.query(entities=["harbor"], t0=31, t1=41)) == ["e4", "e5"]


def test_as_of_hides_the_future_and_reports_state(story_mem):
    m = story_mem
    m.set_attribute("mara", "coat", "red raincoat", t=40)
    assert ids(m.query(as_of=35, k=50)) == ["e1", "e2", "e3", "e4"]
    assert ids(m.query(entities=["mara"], as_of=35)) == ["e1", "e2", "e4"]
    assert m.state_at("mara", 35) == {"coat": "yellow raincoat"}
    assert m.state_at("mara", 40) == {"coat": "red raincoat"}


def test_text_query_ranks_the_matching_event_first_with_components(story_mem):
    hits = story_mem.query(text="brass lamp", k=3)
    assert hits[0].id == "e2"
    assert {"bm25", "dense"} <= set(hits[0].components)
    # the score is exactly the sum of the fused contributions (raw scores are shown beside them)
    assert hits[0].score == pytest.approx(sum(v for k, v in hits[0].components.items() if not k.endswith("_raw")))
    assert hits[0].provenance == {}


def test_a_given_text_vector_replaces_embedding_the_text(story_mem, minilm):
    plain = story_mem.query(text="brass lamp", k=3)
    given = story_mem.query(text="brass lamp", k=3, text_vector=minilm.embed(["brass lamp"])[0])
    assert [(h.id, h.components) for h in given] == [(h.id, h.components) for h in plain]
    # the vector is used as given: the embedding of other words moves the dense ranking
    other = story_mem.query(text="brass lamp", k=3, preset="dense", text_vector=minilm.embed(["storm at sea"])[0])
    assert ids(other) != ids(story_mem.query(text="brass lamp", k=3, preset="dense"))


def test_text_combined_with_entity_and_time_filters(story_mem):
    # both mention the storm; the filter keeps exactly the two with Tomas before t=35
    assert sorted(ids(story_mem.query(text="storm", entities=["tomas"], t0=0, t1=35, k=5))) == ["e3", "e4"]
    assert ids(story_mem.query(text="storm", all_entities=["mara", "tomas"], k=5))[0] == "e4"


def test_entity_named_in_text_is_recognized_and_boosts(story_mem):
    hits = story_mem.query(text="what did the fisherman do", k=3)
    assert hits[0].id in {"e3", "e4"}
    assert "entity" in hits[0].components
    # the mention is a boost, not a filter: events without him still rank
    assert len(story_mem.query(text="what did the fisherman do", k=6)) == 6


def test_dated_phrase_resolved_against_reference_time(make_memory):
    m = make_memory(text_embedder=None)
    m.add_entity("ann", kind="character", name="Ann")
    m.add_events(
        [
            {"id": "old", "t_start": "2023-05-01T10:00", "text": "Ann went to the market", "participants": ["ann"]},
            {"id": "new", "t_start": "2023-05-19T10:00", "text": "Ann went to the market", "participants": ["ann"]},
        ]
    )
    hits = m.query(text="Ann went to the market yesterday", reference_time=parse_time("2023-05-20T12:00"), k=2)
    assert ids(hits) == ["new", "old"]
    assert "time" in hits[0].components and "time" not in hits[1].components


def test_image_query_ranks_by_media_similarity(make_memory, tmp_path):
    m = make_memory()
    paths = {}
    for name, color in {"red": (220, 30, 30), "blue": (30, 30, 220), "green": (30, 200, 30)}.items():
        arr = np.zeros((64, 64, 3), np.uint8)
        arr[:] = color
        arr[20:40, 20:40] = 255
        paths[name] = str(tmp_path / f"{name}.png")
        Image.fromarray(arr).save(paths[name])
    m.add_events(
        [
            {"id": f"shot_{n}", "t_start": i, "text": f"a shot {i}", "media": [p]}
            for i, (n, p) in enumerate(paths.items())
        ]
    )
    q = tmp_path / "query.png"
    arr = np.zeros((80, 80, 3), np.uint8)
    arr[:] = (200, 40, 40)
    Image.fromarray(arr).save(q)
    hits = m.query(image=str(q), k=3)
    assert hits[0].id == "shot_red"
    assert hits[0].components["image_raw"] > hits[1].components["image_raw"]


def test_archived_events_are_hidden_unless_asked(story_mem):
    m = story_mem
    m.store.set_archived([m.store.rid_of("e1")], True)
    assert ids(m.query(entities=["mara"])) == ["e2", "e4", "e5"]
    assert ids(m.query(entities=["mara"], include_archive=True)) == ["e1", "e2", "e4", "e5"]
    assert "e1" not in ids(m.query(text="spiral stairs", k=6))
    assert ids(m.query(text="spiral stairs", k=1, include_archive=True)) == ["e1"]


def test_unindexed_events_are_still_found_by_dense_search(make_memory):
    m = make_memory(auto_sync=False)
    m.add_events(
        [
            {"id": "a", "t_start": 0, "text": "a lighthouse keeper lights the lamp"},
            {"id": "b", "t_start": 1, "text": "children build a sandcastle"},
        ]
    )
    assert m.store.outbox_size() == 2 and m.index.count("text") == 0
    hits = m.query(text="beacon lantern tower", k=2, preset="dense")
    assert ids(hits) == ["a", "b"]
    m.sync_index()
    assert m.store.outbox_size() == 0 and m.index.count("text") == 2
    assert ids(m.query(text="beacon lantern tower", k=2, preset="dense")) == ["a", "b"]


@pytest.mark.parametrize(
    "kwargs,err,msg",
    [
        ({"k": 0}, BadInputError, "k must be a positive integer"),
        ({"t0": 10, "t1": 5}, BadInputError, "time range is empty"),
        ({"image": "/nope.png"}, MediaNotFoundError, "query image not found"),
        ({"entities": ["nobody"]}, UnknownEntityError, "unknown entity 'nobody'"),
        ({"text": "  "}, BadInputError, "text is empty"),
        ({"text": "x", "preset": "magic"}, BadInputError, "unknown preset"),
        ({"text_vector": np.ones(384)}, BadInputError, "give text too"),
        ({"text": "storm", "text_vector": np.ones(512)}, BadInputError, "has 512 dimensions.*makes 384"),
    ],
)
def test_bad_queries_raise_specific_errors(story_mem, kwargs, err, msg):
    with pytest.raises(err, match=msg):
        story_mem.query(Query(**kwargs))
