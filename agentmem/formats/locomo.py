"""Typed loader for the LoCoMo long-conversation benchmark.

The LoCoMo file (``locomo10.json`` and subsets of it) is a JSON list of records, each with a ``sample_id``,
a ``conversation`` mapping (``speaker_a``, ``speaker_b``, ``session_N`` turn lists and
``session_N_date_time`` strings) and a ``qa`` list. This module turns such a file into small dataclasses,
parses the session date-times into UTC epoch seconds and normalizes the question evidence, tolerating the
known defects of the public file (empty evidence, ``"D8:6; D9:17"``, ``"D"``, ``"D:11:26"``,
space-joined lists, zero-padded ids such as ``"D30:05"``, extra ``session_N_date_time`` keys).

It also provides :func:`evidence_recall_at_k`, the retrieval metric in which ``k`` counts turns: ranked
items are expanded into their dia_ids in order and only the first ``k`` distinct dia_ids are kept.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from calendar import timegm
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "LocomoFormatError",
    "LocomoTurn",
    "LocomoQuestion",
    "LocomoConversation",
    "parse_session_time",
    "normalize_evidence",
    "load_locomo",
    "parse_locomo",
    "evidence_recall_at_k",
]

CATEGORY_NAMES: dict[int, str] = {
    1: "multi-hop",
    2: "temporal",
    3: "open-domain",
    4: "single-hop",
    5: "adversarial",
}

_MONTHS = "january february march april may june july august september october november december".split()
_TIME_RE = re.compile(
    r"^\s*(\d{1,2}):(\d{2})\s*([ap])\.?\s*m\.?\s+on\s+(\d{1,2})\s+([A-Za-z]+)\.?,?\s+(\d{4})\s*$",
    re.IGNORECASE,
)
_SESSION_RE = re.compile(r"^session_(\d+)$")
_SESSION_TIME_RE = re.compile(r"^session_(\d+)_date_time$")
_DIA_RE = re.compile(r"^D:?(\d+):(\d+)$")
_EVIDENCE_SPLIT_RE = re.compile(r"[;,\s]+")


class LocomoFormatError(ValueError):
    """Raised when a file or record is not in LoCoMo format; the message names the problem."""


@dataclass(frozen=True)
class LocomoTurn:
    """One dialogue turn.

    Attributes
    ----------
    dia_id : str
        Turn id ``"D<session>:<index>"`` as in the file.
    session : int
        Session number (1-based).
    index : int
        Position of the turn inside its session (0-based).
    speaker : str
        Name of the speaker.
    text : str
        Utterance text.
    caption : str or None
        BLIP caption of the shared image, if the turn shared one.
    time : float or None
        UTC epoch seconds: session start plus ``index`` seconds (keeps turn order); None if the session
        has no parseable date-time.
    """

    dia_id: str
    session: int
    index: int
    speaker: str
    text: str
    caption: str | None = None
    time: float | None = None


@dataclass(frozen=True)
class LocomoQuestion:
    """One question with its normalized evidence.

    Attributes
    ----------
    question : str
        Question text.
    answer : str
        Answer (``adversarial_answer`` for category 5 when ``answer`` is missing), as a string.
    category : int
        LoCoMo category: 1 multi-hop, 2 temporal, 3 open-domain, 4 single-hop, 5 adversarial.
    evidence : list of str
        Normalized dia_ids that resolve to a turn of the conversation, without duplicates, in file order.
    raw_evidence : list of str
        Evidence exactly as in the file.
    skipped_evidence : list of str
        Evidence tokens that could not be resolved to a turn.
    """

    question: str
    answer: str
    category: int
    evidence: list[str] = field(default_factory=list)
    raw_evidence: list[str] = field(default_factory=list)
    skipped_evidence: list[str] = field(default_factory=list)


@dataclass
class LocomoConversation:
    """One LoCoMo conversation.

    Attributes
    ----------
    sample_id : str
        Conversation id, e.g. ``"conv-26"``.
    speakers : tuple of str
        ``(speaker_a, speaker_b)``.
    turns : list of LocomoTurn
        All turns, ordered by session then index.
    questions : list of LocomoQuestion
        Questions about the conversation.
    session_times : dict of int to float
        Session number to UTC epoch seconds, for every session that has turns and a parseable date-time.
    """

    sample_id: str
    speakers: tuple[str, str]
    turns: list[LocomoTurn]
    questions: list[LocomoQuestion]
    session_times: dict[int, float] = field(default_factory=dict)


def parse_session_time(value: str) -> float:
    """Parse a LoCoMo session date-time such as ``"1:56 pm on 8 May, 2023"``.

    Parameters
    ----------
    value : str
        Date-time string, interpreted as UTC.

    Returns
    -------
    float
        UTC epoch seconds.

    Raises
    ------
    LocomoFormatError
        If the string does not have the LoCoMo shape or names an impossible date.
    """
    m = _TIME_RE.match(value) if isinstance(value, str) else None
    name = m.group(5).lower() if m else ""
    month = next((i + 1 for i, full in enumerate(_MONTHS) if len(name) >= 3 and full.startswith(name)), None)
    if m is None or month is None:
        raise LocomoFormatError(f"unparseable LoCoMo session date-time: {value!r}")
    hour, minute, day, year = int(m.group(1)), int(m.group(2)), int(m.group(4)), int(m.group(6))
    ampm = m.group(3).lower()
    if not (1 <= hour <= 12 and 0 <= minute < 60 and 1 <= day <= 31):
        raise LocomoFormatError(f"invalid time in LoCoMo session date-time: {value!r}")
    hour = hour % 12 + (12 if ampm == "p" else 0)
    try:
        _dt.date(year, month, day)
    except ValueError as exc:
        raise LocomoFormatError(f"invalid date in LoCoMo session date-time: {value!r}") from exc
    return float(timegm((year, month, day, hour, minute, 0, 0, 0, 0)))


def normalize_evidence(raw: Iterable[Any], known_ids: set[str] | frozenset[str]) -> tuple[list[str], list[str]]:
    """Normalize a question's evidence list against the conversation's dia_ids.

    Each entry is split on ``;``, ``,`` and whitespace; ``"D:11:26"`` becomes ``"D11:26"``; zero padding is
    stripped (``"D30:05"`` to ``"D30:5"``) only when the stripped id resolves. Ids that do not resolve are
    dropped and returned separately. Duplicates are removed, file order is kept.

    Parameters
    ----------
    raw : iterable
        Evidence entries as in the file (non-strings are converted with ``str``).
    known_ids : set of str
        The dia_ids of the conversation.

    Returns
    -------
    evidence : list of str
        Resolved dia_ids.
    skipped : list of str
        Tokens that could not be resolved.
    """
    evidence: list[str] = []
    skipped: list[str] = []
    for entry in raw:
        for tok in _EVIDENCE_SPLIT_RE.split(str(entry)):
            if not tok:
                continue
            resolved = None
            if tok in known_ids:
                resolved = tok
            else:
                m = _DIA_RE.match(tok)
                if m:
                    candidate = f"D{int(m.group(1))}:{int(m.group(2))}"
                    if candidate in known_ids:
                        resolved = candidate
            if resolved is None:
                skipped.append(tok)
            elif resolved not in evidence:
                evidence.append(resolved)
    return evidence, skipped


def _require(cond: bool, msg: str) -> None:
    if not cond:
        raise LocomoFormatError(msg)


def _parse_conversation(rec: Any, pos: int) -> LocomoConversation:
    _require(isinstance(rec, dict), f"record {pos} is not a JSON object")
    sample_id = str(rec.get("sample_id", f"record-{pos}"))
    conv = rec.get("conversation")
    _require(isinstance(conv, dict), f"{sample_id}: missing or non-object 'conversation'")
    speakers = (conv.get("speaker_a"), conv.get("speaker_b"))
    _require(all(isinstance(s, str) and s for s in speakers), f"{sample_id}: missing 'speaker_a'/'speaker_b'")
    sessions = sorted(int(m.group(1)) for k in conv if (m := _SESSION_RE.match(k)))
    _require(bool(sessions), f"{sample_id}: no 'session_N' turn lists")
    raw_times = {int(m.group(1)): v for k, v in conv.items() if (m := _SESSION_TIME_RE.match(k))}
    session_times: dict[int, float] = {}
    turns: list[LocomoTurn] = []
    for s in sessions:
        lst = conv[f"session_{s}"]
        _require(isinstance(lst, list), f"{sample_id}: 'session_{s}' is not a list of turns")
        start = None
        if s in raw_times:
            try:
                start = parse_session_time(raw_times[s])
                session_times[s] = start
            except LocomoFormatError:
                start = None
        for i, t in enumerate(lst):
            _require(
                isinstance(t, dict) and isinstance(t.get("dia_id"), str) and "text" in t,
                f"{sample_id}: session_{s} turn {i} lacks 'dia_id'/'text'",
            )
            cap = t.get("blip_caption")
            turns.append(
                LocomoTurn(
                    dia_id=t["dia_id"],
                    session=s,
                    index=i,
                    speaker=str(t.get("speaker", "")),
                    text=str(t["text"]),
                    caption=str(cap) if cap else None,
                    time=None if start is None else start + i,
                )
            )
    known = {t.dia_id for t in turns}
    qa = rec.get("qa", [])
    _require(isinstance(qa, list), f"{sample_id}: 'qa' is not a list")
    questions: list[LocomoQuestion] = []
    for j, q in enumerate(qa):
        _require(isinstance(q, dict) and "question" in q, f"{sample_id}: qa[{j}] lacks 'question'")
        raw_ev = q.get("evidence") or []
        if isinstance(raw_ev, str):
            raw_ev = [raw_ev]
        ev, skipped = normalize_evidence(raw_ev, known)
        ans = q.get("answer", q.get("adversarial_answer", ""))
        try:
            cat = int(q.get("category", 0))
        except (TypeError, ValueError) as exc:
            raise LocomoFormatError(f"{sample_id}: qa[{j}] has non-integer category") from exc
        questions.append(
            LocomoQuestion(
                question=str(q["question"]),
                answer="" if ans is None else str(ans),
                category=cat,
                evidence=ev,
                raw_evidence=[str(e) for e in raw_ev],
                skipped_evidence=skipped,
            )
        )
    return LocomoConversation(sample_id, (speakers[0], speakers[1]), turns, questions, session_times)


def parse_locomo(data: Any) -> list[LocomoConversation]:
    """Parse already-decoded LoCoMo JSON (a list of records, or one record).

    Parameters
    ----------
    data : list or dict
        Decoded JSON.

    Returns
    -------
    list of LocomoConversation

    Raises
    ------
    LocomoFormatError
        If the data is not LoCoMo-shaped.
    """
    if isinstance(data, dict):
        data = [data]
    _require(isinstance(data, list), f"LoCoMo data must be a list of records, got {type(data).__name__}")
    _require(bool(data), "LoCoMo data is an empty list")
    return [_parse_conversation(rec, i) for i, rec in enumerate(data)]


def load_locomo(path: str | Path) -> list[LocomoConversation]:
    """Load a LoCoMo JSON file.

    Parameters
    ----------
    path : str or Path
        Path of the JSON file.

    Returns
    -------
    list of LocomoConversation

    Raises
    ------
    LocomoFormatError
        If the file is not valid JSON or not LoCoMo-shaped (the message names the file and problem).
    OSError
        If the file cannot be read.
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LocomoFormatError(f"{p}: not valid JSON ({exc})") from exc
    try:
        return parse_locomo(data)
    except LocomoFormatError as exc:
        raise LocomoFormatError(f"{p}: {exc}") from exc


def evidence_recall_at_k(ranked_dia_id_lists: Sequence[Sequence[str]], evidence: Sequence[str], k: int) -> float:
    """Evidence recall at ``k`` turns.

    The ranked items are expanded into their dia_ids in rank order and the first ``k`` distinct dia_ids
    are kept (an item of three turns spends three of the budget; an item that overflows the budget
    contributes only its first dia_ids). The result is the fraction of ``evidence`` among them.

    Parameters
    ----------
    ranked_dia_id_lists : sequence of sequence of str
        For each retrieved item, best first, the dia_ids it covers in order.
    evidence : sequence of str
        Gold dia_ids (normalized); must be non-empty.
    k : int
        Turn budget.

    Returns
    -------
    float
        Recall in [0, 1].

    Raises
    ------
    ValueError
        If ``evidence`` is empty or ``k`` is negative.
    """
    if not evidence:
        raise ValueError("evidence_recall_at_k needs non-empty evidence")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    kept: list[str] = []
    seen: set[str] = set()
    for item in ranked_dia_id_lists:
        if len(kept) >= k:
            break
        for d in item:
            if len(kept) >= k:
                break
            if d not in seen:
                seen.add(d)
                kept.append(d)
    gold = set(evidence)
    return len(gold & seen) / len(gold)
