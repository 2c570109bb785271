"""Tests for agentmem.formats.locomo: parsing, evidence normalization, recall@k with the turn budget, errors."""

from __future__ import annotations

import json

import pytest

from agentmem.formats.locomo import (
    LocomoFormatError,
    evidence_recall_at_k,
    load_locomo,
    normalize_evidence,
    parse_locomo,
    parse_session_time,
)


def _record() -> dict:
    def turns(s: int, n: int, first: str) -> list[dict]:
        other = {"Ann": "Bob", "Bob": "Ann"}
        out, spk = [], first
        for i in range(1, n + 1):
            out.append({"speaker": spk, "dia_id": f"D{s}:{i}", "text": f"s{s} t{i}"})
            spk = other[spk]
        return out

    s1 = turns(1, 3, "Ann")
    s1[1]["img_url"] = ["http://x/y.jpg"]
    s1[1]["blip_caption"] = "a photo of a dog"
    conv = {
        "speaker_a": "Ann",
        "speaker_b": "Bob",
        "session_1_date_time": "1:56 pm on 8 May, 2023",
        "session_1": s1,
        "session_2_date_time": "10:04 am on 25 May, 2023",
        "session_2": turns(2, 2, "Bob"),
        "session_10_date_time": "12:30 am on 1 January, 2024",
        "session_10": turns(10, 6, "Ann"),
        # extra date-time keys without sessions (known defect)
        "session_11_date_time": "9:00 pm on 2 January, 2024",
        "session_12_date_time": "garbage",
    }
    qa = [
        {"question": "q-ok", "answer": "a", "evidence": ["D1:3"], "category": 2},
        {"question": "q-empty", "answer": "a", "evidence": [], "category": 3},
        {"question": "q-semi", "answer": 1, "evidence": ["D1:1; D2:2"], "category": 1},
        {"question": "q-D", "answer": "a", "evidence": ["D1:1", "D", "D1:2"], "category": 4},
        {"question": "q-colon", "answer": "a", "evidence": ["D:10:6"], "category": 1},
        {"question": "q-space", "answer": "a", "evidence": ["D1:1 D1:2,D2:1"], "category": 1},
        {"question": "q-pad", "answer": "a", "evidence": ["D10:05", "D01:2"], "category": 4},
        {"question": "q-unres", "answer": "a", "evidence": ["D30:05", "D1:9", "D1:3", "D1:3"], "category": 4},
        {"question": "q-adv", "adversarial_answer": "nope", "evidence": ["D2:1"], "category": 5},
    ]
    return {"sample_id": "conv-x", "conversation": conv, "qa": qa}


@pytest.fixture()
def conv():
    return parse_locomo([_record()])[0]


def test_parse_session_time_exact():
    assert parse_session_time("1:56 pm on 8 May, 2023") == 1683554160.0  # 2023-05-08T13:56:00Z
    assert parse_session_time("12:30 am on 1 January, 2024") == 1704069000.0  # 2024-01-01T00:30:00Z
    assert parse_session_time("12:05 pm on 1 Jan, 2024") == 1704110700.0  # noon + 5 min
    assert parse_session_time("3:00 PM on 2 Sept, 2023") == 1693666800.0
    for bad in (
        "yesterday",
        "1:00 pm on 2 Mayday, 2023",
        "13:00 pm on 1 May, 2023",
        "1:00 pm on 30 February, 2023",
        "",
    ):
        with pytest.raises(LocomoFormatError):
            parse_session_time(bad)


def test_turns_sessions_and_times(conv):
    assert conv.sample_id == "conv-x"
    assert conv.speakers == ("Ann", "Bob")
    assert [t.dia_id for t in conv.turns][:6] == ["D1:1", "D1:2", "D1:3", "D2:1", "D2:2", "D10:1"]
    assert len(conv.turns) == 11
    # extra session_N_date_time keys without turns are ignored, numeric session order (10 after 2)
    assert sorted(conv.session_times) == [1, 2, 10]
    assert conv.session_times[10] == 1704069000.0
    t = conv.turns[2]
    assert (t.session, t.index, t.speaker, t.time) == (1, 2, "Ann", 1683554160.0 + 2)
    assert conv.turns[1].caption == "a photo of a dog"
    assert conv.turns[0].caption is None


def test_evidence_normalization_each_defect(conv):
    got = {q.question: (q.evidence, q.skipped_evidence) for q in conv.questions}
    assert got["q-ok"] == (["D1:3"], [])
    assert got["q-empty"] == ([], [])
    assert got["q-semi"] == (["D1:1", "D2:2"], [])
    assert got["q-D"] == (["D1:1", "D1:2"], ["D"])
    assert got["q-colon"] == (["D10:6"], [])
    assert got["q-space"] == (["D1:1", "D1:2", "D2:1"], [])
    assert got["q-pad"] == (["D10:5", "D1:2"], [])
    assert got["q-unres"] == (["D1:3"], ["D30:05", "D1:9"])
    semi = next(q for q in conv.questions if q.question == "q-semi")
    assert semi.raw_evidence == ["D1:1; D2:2"] and semi.answer == "1" and semi.category == 1
    adv = next(q for q in conv.questions if q.question == "q-adv")
    assert adv.answer == "nope" and adv.category == 5


def test_zero_padding_kept_when_it_resolves():
    assert normalize_evidence(["D3:05"], {"D3:05", "D3:5"}) == (["D3:05"], [])
    assert normalize_evidence(["D3:05"], {"D3:5"}) == (["D3:5"], [])


def test_recall_turn_budget():
    ev = ["D1:1", "D1:5"]
    items = [["D1:1", "D1:2", "D1:3"], ["D1:4"], ["D1:5"]]
    assert evidence_recall_at_k(items, ev, 3) == 0.5  # the 3-turn item spends the whole budget
    assert evidence_recall_at_k(items, ev, 4) == 0.5
    assert evidence_recall_at_k(items, ev, 5) == 1.0
    # duplicates do not spend budget; an overflowing item contributes only its first dia_ids
    assert evidence_recall_at_k([["D1:2"], ["D1:2", "D1:3", "D1:1"]], ["D1:1"], 2) == 0.0
    assert evidence_recall_at_k([["D1:2"], ["D1:2", "D1:3", "D1:1"]], ["D1:1"], 3) == 1.0
    assert evidence_recall_at_k([], ev, 10) == 0.0
    with pytest.raises(ValueError):
        evidence_recall_at_k(items, [], 10)


def test_load_file_and_errors(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps([_record()]))
    assert len(load_locomo(good)[0].questions) == 9
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    with pytest.raises(LocomoFormatError, match="not valid JSON"):
        load_locomo(bad_json)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"foo": 1}))
    with pytest.raises(LocomoFormatError, match="conversation"):
        load_locomo(other)
    with pytest.raises(LocomoFormatError, match="list"):
        parse_locomo("nope")
    with pytest.raises(LocomoFormatError, match="empty"):
        parse_locomo([])
    rec = _record()
    del rec["conversation"]["speaker_b"]
    with pytest.raises(LocomoFormatError, match="speaker_a"):
        parse_locomo([rec])
    rec = _record()
    rec["conversation"]["session_1"][0].pop("dia_id")
    with pytest.raises(LocomoFormatError, match="session_1 turn 0"):
        parse_locomo([rec])
    assert issubclass(LocomoFormatError, ValueError)
