"""Every open Memory sees every acknowledged event, whoever wrote it and whenever it opened (issue 18 item 4)."""

import json
import subprocess
import sys

import pytest

from agentmem.memory import Memory

MODES = ("dense", "rrf", "hybrid")
LATE = "A violet zeppelin drifts over the frozen quarry at midnight"


def _ingest_in_child(db, tmp_path, event_id: str, text: str) -> None:
    """Store one event with ``agentmem ingest`` in another process, and wait until it is acknowledged."""
    src = tmp_path / f"{event_id}.jsonl"
    src.write_text(json.dumps({"id": event_id, "t_start": 500, "t_end": 505, "text": text, "group": event_id}) + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "agentmem.cli", "ingest", str(src), "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "stored 0 entities, 1 events" in done.stdout


def _first_ids(mem: Memory, text: str) -> dict[str, str]:
    return {mode: mem.query(text=text, preset=mode, k=1)[0].id for mode in MODES}


def _rankings(mem: Memory, text: str) -> dict[str, list[tuple[str, float]]]:
    """The top five (id, score) of each mode."""
    return {mode: [(h.id, round(h.score, 9)) for h in mem.query(text=text, preset=mode, k=5)] for mode in MODES}


def _ranked_first(event_id: str) -> dict[str, str]:
    return dict.fromkeys(MODES, event_id)


@pytest.fixture
def open_a(story_mem):
    """Memory A: a few events, indexed and queried, so that this process has Chroma's index loaded."""
    a = story_mem
    assert a.query(text="Mara lights the great brass lamp", preset="dense", k=1)[0].id == "e2"
    return a


def test_a_memory_opened_while_an_older_one_is_open_sees_another_process_event(open_a, make_memory, tmp_path):
    _ingest_in_child(open_a.dir, tmp_path, "late", LATE)
    b = make_memory("story")  # opened after the other process acknowledged, while A still holds the index
    seen = {"b": _rankings(b, LATE), "a": _rankings(open_a, LATE)}
    open_a.close()
    seen["b after a closed"] = _rankings(b, LATE)
    b.close()
    with Memory(open_a.dir, text_embedder=open_a.text) as fresh:  # loads the index afresh
        expected = _rankings(fresh, LATE)
    assert {mode: ranking[0][0] for mode, ranking in expected.items()} == _ranked_first("late")
    assert seen == dict.fromkeys(seen, expected)


def test_a_memory_opened_after_the_first_closed_still_sees_what_the_shared_index_lacks(open_a, make_memory, tmp_path):
    b = make_memory("story")
    assert _first_ids(b, "Mara lights the great brass lamp")["dense"] == "e2"  # B shares A's loaded index
    open_a.close()  # B keeps the index A loaded open
    _ingest_in_child(b.dir, tmp_path, "late", LATE)
    c = make_memory("story")
    assert _first_ids(c, LATE) == _ranked_first("late")
    assert _first_ids(b, LATE) == _ranked_first("late")


def test_an_older_memory_sees_what_a_newer_one_in_the_same_process_wrote(open_a, make_memory):
    b = make_memory("story")
    b.add_events([{"id": "late", "t_start": 500, "t_end": 505, "text": LATE, "group": "late"}])
    assert _first_ids(open_a, LATE) == _ranked_first("late")
    assert _first_ids(b, LATE) == _ranked_first("late")
