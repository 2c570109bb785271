"""Queries: filters by entity, time and state, and hybrid ranking by text and image.

A query runs in numbered steps (see :func:`run_query`):

1. check the inputs;
2. resolve the filters (entities any/all, time overlap, as-of, archive) to a
   candidate set in SQLite, using the (entity, t) index;
3. read the query text: entity mentions and dated phrases;
4. rank candidates lexically (FTS5 BM25), densely (MiniLM cosine; exact over
   filtered candidates, Chroma plus the not-yet-indexed tail otherwise) and by
   image similarity;
5. fuse the rankings (:mod:`agentmem.search.fusion`) and return hits with their
   score components and provenance.

Step 4 is a :class:`RankingSource`: :class:`FullIndex` ranks over everything the
memory holds; the graph's active tier (:class:`graph.active.ActiveTier`) ranks
over the events compression has not archived. Every other step is shared.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeGuard

import numpy as np

from agentmem.errors import BadInputError, MediaNotFoundError
from agentmem.model import Hit
from agentmem.search.entities import alias_index
from agentmem.search.fusion import TEMPORAL_QUESTION, FusionInputs, SearchPreset, fuse, preset_named
from agentmem.search.resolution import find_mentions
from agentmem.storage import filters, lexical
from agentmem.storage.context import RADII, centre_of, window_rowid
from agentmem.storage.vector_index import IndexUnavailableError
from agentmem.timeparse import TimeWindow, resolve_temporal_expressions

if TYPE_CHECKING:
    from agentmem.memory import Memory

STOPWORDS = frozenset(
    """a about above after again against all am an and any are aren't as at be because been before being below
    between both but by can could did didn't do does doesn't doing don't down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is isn't it it's its itself just
    let's me more most my myself no nor not of off on once only or other our ours ourselves out over own same she
    should so some such than that that's the their theirs them themselves then there these they this those through
    to too under until up very was wasn't we were what when where which while who whom why will with would you
    your yours yourself yourselves s t kind type sort ever also like likely might may much many whose one ones
    something anything thing things""".split()
)
_WORD = re.compile(r"[A-Za-z0-9]+")


@dataclass
class Query:
    """What to look for. Every field is optional; filters combine with AND.

    Attributes
    ----------
    text : str, optional
        Free text, ranked by BM25 and dense similarity. Entity names in it boost
        their events; dated phrases ("last week", "in May 2023") boost events
        in that span, resolved against ``reference_time``.
    image : str, optional
        Path of a picture; ranks events by the similarity of their media.
    entities : list of str
        Ids, names or aliases; events involving ANY of them.
    all_entities : list of str
        Events involving ALL of them.
    t0, t1 : float, optional
        Events overlapping [t0, t1] in story time.
    as_of : float, optional
        Only what had happened by then (events starting at or before it).
    k : int
        Number of hits.
    include_archive : bool
        Also search archived events.
    reference_time : float, optional
        "Now" for dated phrases; defaults to the latest event time.
    preset : str or SearchPreset
        Ranking weights; see :data:`agentmem.search.fusion.PRESETS`.
    text_vector : numpy.ndarray or concurrent.futures.Future, optional
        The embedding of ``text`` by this memory's text embedder, when the
        caller already has it or has started it (a Future is awaited only
        when the vector is needed; the planner embeds the action while it
        reads the entities). Otherwise the query embeds ``text`` itself.
    """

    text: str | None = None
    image: str | None = None
    entities: list[str] = field(default_factory=list)
    all_entities: list[str] = field(default_factory=list)
    t0: float | None = None
    t1: float | None = None
    as_of: float | None = None
    k: int = 10
    include_archive: bool = False
    reference_time: float | None = None
    preset: str | SearchPreset = "hybrid"
    text_vector: np.ndarray | Future | None = None


def fts_query(text: str) -> str | None:
    """An FTS5 MATCH string: the content words of ``text`` OR-ed, each quoted.

    Examples
    --------
    >>> fts_query("What did Mara's lamp do?")
    '"mara" OR "lamp"'
    >>> fts_query("what is it") is None
    True
    """
    words = [w.lower() for w in _WORD.findall(text)]
    words = [w for w in dict.fromkeys(words) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]
    return " OR ".join(f'"{w}"' for w in words) or None


def check_inputs(q: Query) -> None:
    if not isinstance(q.k, int) or q.k <= 0:
        raise BadInputError(f"k must be a positive integer, got {q.k!r}")
    if q.t0 is not None and q.t1 is not None and q.t0 > q.t1:
        raise BadInputError(f"time range is empty: from ({q.t0}) is after to ({q.t1})")
    if q.image is not None and not os.path.exists(q.image):
        raise MediaNotFoundError(f"query image not found: {q.image}")
    if q.text is not None and not q.text.strip():
        raise BadInputError("text is empty; leave it out to list events by filters only")
    preset_named(q.preset)
    if q.text_vector is not None and q.text is None:
        raise BadInputError("text_vector is the embedding of text: give text too")


@dataclass
class Rankings:
    """What step 4 hands to fusion: ranked lists, group scores, a cosine lookup, and which rows may be returned."""

    lists: dict[str, list[tuple[int, float]]]
    group_bm25: list[tuple[str, float]]
    cosine: Callable[[list[int]], dict[int, float]] | None
    admissible: Callable[[set[int]], set[int]]


class RankingSource(Protocol):
    """Step 4 of a query: rank the events the filters admit (``cands``: row ids, or ``None`` for no filter)."""

    def rank(
        self, mem, q: Query, preset: SearchPreset, cands: np.ndarray | None, query_vector, depth: int
    ) -> Rankings: ...


def run_query(mem: Memory, q: Query, source: RankingSource | None = None) -> list[Hit]:
    """Execute ``q`` against a :class:`~agentmem.memory.Memory`; ``source`` ranks (default :class:`FullIndex`)."""
    # 1. inputs
    check_inputs(q)
    preset = preset_named(q.preset)
    store = mem.store
    if q.text is None and q.image is None:
        return _listing(mem, q, candidate_rids(mem, q))
    # The query embedding (~12 ms) runs on the memory's worker thread while steps 2-4 work in SQLite.
    query_vector = None
    if q.text and mem.text is not None and preset.uses_text_vector:
        query_vector = mem.submit(mem.text.embed, [q.text]) if q.text_vector is None else q.text_vector
    # 2. filters
    cands = candidate_rids(mem, q)
    # 3. read the query
    mentions: dict[str, str] = {}
    windows: list[TimeWindow] = []
    if q.text:
        mentions = find_mentions(q.text, alias_index(mem))
        ref = q.reference_time if q.reference_time is not None else store.latest_time()
        windows = resolve_temporal_expressions(q.text, ref)
    # 4. rankings
    depth = max(preset.depth, q.k * 4)
    ranks = (source or FullIndex()).rank(mem, q, preset, cands, query_vector, depth)
    # 5. fusion
    inputs = FusionInputs(
        lists=ranks.lists,
        group_bm25=ranks.group_bm25,
        cosine=ranks.cosine,
        mention_members={e: set(store.member_ids(e)) for e in mentions},
        windows=windows,
        temporal_question=bool(q.text and TEMPORAL_QUESTION.search(q.text)),
    )
    ranked = fuse(store, inputs, preset, q.k, ranks.admissible)
    events = store.events_by_rid([rid for rid, _, _ in ranked])
    return [Hit.from_event(events[rid], score, comps) for rid, score, comps in ranked]


class FullIndex:
    """Rank over everything the memory holds: FTS5 BM25, Chroma (or exact) dense, image similarity."""

    def rank(
        self, mem: Memory, q: Query, preset: SearchPreset, cands: np.ndarray | None, query_vector, depth: int
    ) -> Rankings:
        store = mem.store
        lists: dict[str, list[tuple[int, float]]] = {}
        group_bm25: list[tuple[str, float]] = []
        cosine = None
        match = fts_query(q.text) if q.text else None
        if match and preset.w_bm25 > 0:
            lists["bm25"] = _lexical(store, match, cands, depth)
        if match and preset.w_windows > 0:
            lists.update(_window_lexical(store, match, cands, depth))
        if match and preset.w_group > 0:
            group_bm25 = _group_lexical(store, match, cands, depth)
        if query_vector is not None:
            qv = _vector_of(mem, query_vector)
            if preset.w_dense > 0:
                lists["dense"] = _dense(mem, qv, cands, depth)
            cosine = _cosine_lookup(mem, qv)
        if q.image:
            lists["image"] = _image(mem, q.image, cands, depth)
        return Rankings(lists, group_bm25, cosine, _admission(store, q, cands))


def _admission(store, q: Query, cands: np.ndarray | None) -> Callable[[set[int]], set[int]]:
    if cands is not None:
        allowed = set(cands.tolist())
        return lambda rids: rids & allowed
    return lambda rids: filters.admitted(store, sorted(rids), include_archive=q.include_archive, as_of=q.as_of)


def _vector_of(mem: Memory, given) -> np.ndarray:
    """The query vector from what the query was given or has started: an array, or a Future of one or of rows."""
    v = np.asarray(given.result() if isinstance(given, Future) else given, dtype=np.float32)
    v = v.reshape(-1)
    text = mem.text
    if text is not None and v.shape[0] != text.dim:
        raise BadInputError(
            f"text_vector has {v.shape[0]} dimensions, but this memory's text embedder {text.name} makes "
            f"{text.dim}: embed the text with the same model, or leave text_vector out"
        )
    return v


def candidate_rids(mem: Memory, q: Query) -> np.ndarray | None:
    """Row ids passing the entity and time filters, or ``None`` when there are none."""
    store = mem.store
    if not (q.entities or q.all_entities or q.t0 is not None or q.t1 is not None):
        return None
    lo = -np.inf if q.t0 is None else q.t0
    hi = np.inf if q.t1 is None else q.t1
    if q.as_of is not None:
        hi = min(hi, q.as_of)
    t_lo = lo - store.max_duration()
    sets: list[set[int]] = []
    groups = [[e] for e in q.all_entities]
    if q.entities:
        groups.append(list(q.entities))
    for group in groups:
        ids = sorted({m for ref in group for m in store.member_ids(mem.resolve_entity(ref))})
        sets.append(filters.entity_rids(store, ids, lo, hi, t_lo, include_archive=q.include_archive))
    if not groups:
        sets.append(filters.time_rids(store, lo, hi, t_lo, include_archive=q.include_archive))
    out = set.intersection(*sets)
    return np.array(sorted(out), dtype=np.int64)


# Below this many filter candidates, BM25 runs over just their documents in a temporary FTS table
# (about 1 ms for 40, 10 ms for 500); above it, over the full index and the hits are filtered.
SMALL_CANDIDATE_SET = 1000


def _small(cands: np.ndarray | None) -> TypeGuard[np.ndarray]:
    return cands is not None and len(cands) <= SMALL_CANDIDATE_SET


def _lexical(store, match: str, cands: np.ndarray | None, depth: int) -> list[tuple[int, float]]:
    if _small(cands):
        return lexical.events_among(store, cands.tolist(), match, depth)
    # With a filter, read deeper and keep the candidates.
    rows = lexical.events_bm25(store, match, depth if cands is None else max(depth * 20, 5000))
    if cands is not None:
        allowed = set(cands.tolist())
        rows = [r for r in rows if r[0] in allowed]
    return rows[:depth]


def _window_lexical(store, match: str, cands: np.ndarray | None, depth: int) -> dict[str, list[tuple[int, float]]]:
    """BM25 over the +-1 and +-2 window documents, credited to each window's centre event."""
    if _small(cands):
        ids = [window_rowid(r, radius) for r in cands.tolist() for radius in RADII]
        rows = lexical.windows_among(store, ids, match, depth * 2)
    else:
        rows = lexical.windows_bm25(store, match, depth * 2 if cands is None else max(depth * 40, 10000))
    allowed = None if cands is None else set(cands.tolist())
    out: dict[str, list[tuple[int, float]]] = {"bm25_w1": [], "bm25_w2": []}
    for rowid, score in rows:
        rid, radius = centre_of(rowid)
        if allowed is None or rid in allowed:
            out[f"bm25_w{radius}"].append((rid, float(score)))
    return {name: ranking[:depth] for name, ranking in out.items()}


def _group_lexical(store, match: str, cands: np.ndarray | None, depth: int) -> list[tuple[str, float]]:
    """BM25 of whole group documents; with a small filter, among the candidates' groups only."""
    if _small(cands):
        return lexical.groups_among(store, cands.tolist(), match, depth)
    return lexical.groups_bm25(store, match, depth)


def _cosine_lookup(mem: Memory, qv: np.ndarray):
    def lookup(rids: list[int]) -> dict[int, float]:
        ids, sims = mem.vectors.scores(qv, np.asarray(rids, dtype=np.int64))
        return dict(zip(ids.tolist(), sims.tolist()))

    return lookup


def _dense(mem: Memory, qv: np.ndarray, cands: np.ndarray | None, depth: int) -> list[tuple[int, float]]:
    if cands is not None:
        return mem.vectors.top(qv, depth, cands)
    try:
        found = dict(mem.index.query("text", qv, depth))
    except IndexUnavailableError:
        # SQLite holds every vector: rank them all exactly while the server is away.
        return mem.vectors.top(qv, depth)
    unseen = _unseen_by_index(mem)
    if len(unseen) > 50_000:
        return mem.vectors.top(qv, depth)
    if len(unseen):
        # Not in the index this process reads: score exactly so that no acknowledged event is missed.
        found.update(mem.vectors.top(qv, depth, unseen))
    return sorted(found.items(), key=lambda p: (-p[1], p[0]))[:depth]


def _unseen_by_index(mem: Memory) -> np.ndarray:
    """Row ids the open index may lack: queued work, and (embedded) what others acknowledged since it opened."""
    unseen = set(mem.store.outbox_refs("text"))
    horizon = mem.index.horizon
    if horizon is None:
        return np.array(sorted(unseen), dtype=np.int64)
    unseen |= horizon.pending
    unseen.update(mem.store.vector_rids_after(horizon.max_rid))
    return np.array(sorted(unseen), dtype=np.int64)


def _image(mem: Memory, path: str, cands: np.ndarray | None, depth: int) -> list[tuple[int, float]]:
    if mem.image is None:
        raise BadInputError("this memory has no image embedder; open it with one to search by image")
    qv = mem.image.embed_images([path])[0]
    rows = filters.event_media_vectors(mem.store)
    allowed = None if cands is None else set(cands.tolist())
    best: dict[int, float] = {}
    for rid, blob in rows:
        if allowed is not None and rid not in allowed:
            continue
        v = np.frombuffer(blob, dtype=np.float32)
        if v.shape != qv.shape:
            continue
        s = float(v @ qv)
        if s > best.get(rid, -2.0):
            best[rid] = s
    return sorted(best.items(), key=lambda p: (-p[1], p[0]))[:depth]


def _listing(mem: Memory, q: Query, cands: np.ndarray | None) -> list[Hit]:
    """Filter-only query: matching events in story-time order."""
    store = mem.store
    if cands is None:
        rids = filters.first_rids(store, q.k, include_archive=q.include_archive, as_of=q.as_of)
    else:
        rids = cands.tolist()
    events = store.events_by_rid(rids)
    ordered = sorted(events.items(), key=lambda p: (p[1].t_start, p[0]))[: q.k]
    return [Hit.from_event(e, 1.0, {"filter": 1.0}) for _, e in ordered]
