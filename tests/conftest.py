import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from agentmem.encoders.embedders import DescriptorImageEmbedder, SentenceTransformerEmbedder  # noqa: E402
from agentmem.memory import Memory  # noqa: E402


@pytest.fixture(scope="session")
def minilm():
    """One real MiniLM shared by the whole session (loading it costs seconds)."""
    return SentenceTransformerEmbedder()


@pytest.fixture
def make_memory(tmp_path, minilm):
    opened = []

    def make(name="mem", **kwargs):
        kwargs.setdefault("text_embedder", minilm)
        kwargs.setdefault("image_embedder", DescriptorImageEmbedder())
        mem = Memory(tmp_path / name, **kwargs)
        opened.append(mem)
        return mem

    yield make
    for m in opened:
        try:
            m.close()
        except Exception:
            pass


STORY = [
    {
        "type": "entity",
        "id": "mara",
        "kind": "character",
        "name": "Mara",
        "aliases": ["the keeper"],
        "attributes": {"coat": "yellow raincoat"},
    },
    {"type": "entity", "id": "tomas", "kind": "character", "name": "Tomas", "aliases": ["the fisherman"]},
    {"type": "entity", "id": "ida", "kind": "character", "name": "Ida"},
    {"type": "entity", "id": "lighthouse", "kind": "location", "name": "The Lighthouse"},
    {"type": "entity", "id": "harbor", "kind": "location", "name": "The Harbor"},
    {
        "id": "e1",
        "t_start": 0,
        "t_end": 5,
        "text": "Mara climbs the spiral stairs of the lighthouse",
        "participants": ["mara"],
        "location": "lighthouse",
        "group": "n1",
    },
    {
        "id": "e2",
        "t_start": 5,
        "t_end": 10,
        "text": "Mara lights the great brass lamp",
        "participants": ["mara"],
        "location": "lighthouse",
        "group": "n1",
    },
    {
        "id": "e3",
        "t_start": 10,
        "t_end": 30,
        "text": "Tomas ties his boat at the harbor as the storm rises",
        "participants": ["tomas"],
        "location": "harbor",
        "group": "n1",
    },
    {
        "id": "e4",
        "t_start": 30,
        "t_end": 40,
        "text": "The keeper and the fisherman row out into the storm",
        "participants": ["mara", "tomas"],
        "location": "harbor",
        "group": "n1",
    },
    {
        "id": "e5",
        "t_start": 40,
        "t_end": 45,
        "text": "They pull a girl named Ida out of the freezing water",
        "participants": ["mara", "tomas", "ida"],
        "location": "harbor",
        "group": "n1",
    },
    {
        "id": "e6",
        "t_start": 100,
        "t_end": 110,
        "text": "Ida drinks hot tea by the fire",
        "participants": ["ida"],
        "group": "d2",
    },
]


def load_story(mem, story=STORY):
    for d in story:
        if d.get("type") == "entity":
            mem.add_entity(
                d["id"], kind=d["kind"], name=d["name"], aliases=d.get("aliases", []), attributes=d.get("attributes")
            )
    return mem.add_events([d for d in story if d.get("type") != "entity"])


@pytest.fixture
def story_mem(make_memory):
    mem = make_memory("story")
    load_story(mem)
    return mem
