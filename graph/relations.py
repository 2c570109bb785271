"""Relations between entities: explicit facts, and edges inferred from events by an extractor.

Two sources feed the ``relation`` edges of the graph:

- **Facts** (``relations`` table; the ingest API, story files' ``"type": "relation"``
  lines, :func:`add_fact`). Each (subject, predicate, object) becomes edges
  with a validity interval; repeated statements of a fact that is still valid
  reinforce one edge (its weight is its evidence count) instead of adding
  another. For a **functional** predicate (:data:`FUNCTIONAL_PREDICATES`: a
  subject has one object at a time) a fact about a new object closes the
  interval of the one it contradicts, at the new fact's ``t_from``. Nothing is
  deleted: the old fact keeps its row, with ``t_to`` set.
- **Events**, through an :class:`Extractor`. The default,
  :class:`CoOccurrenceExtractor`, needs no model: every pair of participants of
  an event gets a ``co_participates`` statement and every participant a
  ``co_located`` statement with the event's location. Statements aggregate into
  one edge per (subject, predicate, object) whose weight counts its events.

Contradiction is decided per stored subject id and predicate (a merge does not
make two ids' facts contradict each other).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from agentmem.facts import PREDICATE_RULES, fact_ends, store_fact
from agentmem.model import Relation
from graph import tables
from graph.persist import EventRecord, GraphEdge, delete_edge, node_id, write_edges

if TYPE_CHECKING:
    from agentmem.storage.store import Store

FUNCTIONAL_PREDICATES: frozenset[str] = frozenset(p for p, r in PREDICATE_RULES.items() if r.one_object_per_subject)
"""Predicates with one object per subject at a time (from :data:`agentmem.facts.PREDICATE_RULES`)."""

INFERRED_PREDICATES = ("co_participates", "co_located")
EVIDENCE_CAP = 32
"""Inferred edges keep the ids of their latest ``EVIDENCE_CAP`` events; their weight counts all of them
(every one is also in ``event_entities``)."""


@dataclass(frozen=True)
class Statement:
    """One piece of evidence for ``subject --predicate--> object`` (stored entity ids) at time ``t``."""

    subject: str
    predicate: str
    object: str
    t: float
    evidence: str


@runtime_checkable
class Extractor(Protocol):
    """Turns a batch of events into relation statements (an NLP or VLM extractor can be plugged in)."""

    name: str

    def extract(self, events: Sequence[EventRecord]) -> Iterable[Statement]: ...


class CoOccurrenceExtractor:
    """Offline default: co-participation and co-location statements from each event.

    Examples
    --------
    >>> ev = EventRecord(rid=1, id="e5", t_start=40, t_end=45, text="", participants=["ida", "mara"],
    ...                  location="harbor")
    >>> [(s.subject, s.predicate, s.object) for s in CoOccurrenceExtractor().extract([ev])]
    [('ida', 'co_participates', 'mara'), ('ida', 'co_located', 'harbor'), ('mara', 'co_located', 'harbor')]
    """

    name = "co-occurrence"

    def extract(self, events: Sequence[EventRecord]) -> Iterable[Statement]:
        for e in events:
            ps = sorted(set(e.participants))
            for i, a in enumerate(ps):
                for b in ps[i + 1 :]:
                    yield Statement(a, "co_participates", b, e.t_start, e.id)
            if e.location:
                for a in ps:
                    if a != e.location:
                        yield Statement(a, "co_located", e.location, e.t_start, e.id)


def apply_statements(store: Store, statements: Iterable[Statement], seq: int) -> int:
    """Aggregate statements into one edge per (subject, predicate, object); returns edges written.

    An edge that compression had pruned comes back to the working set when new evidence arrives.
    """
    agg: dict[tuple[str, str, str], list] = {}
    for s in statements:
        a = agg.get((s.subject, s.predicate, s.object))
        if a is None:
            agg[(s.subject, s.predicate, s.object)] = [1, s.t, s.t, [s.evidence]]
        else:
            a[0] += 1
            a[1] = min(a[1], s.t)
            a[2] = max(a[2], s.t)
            a[3].append(s.evidence)
    if not agg:
        return 0
    preds = sorted({k[1] for k in agg})
    srcs = sorted({node_id("entity", k[0]) for k in agg})
    existing = {(e.src, e.predicate, e.dst): e for e in tables.relation_edges_from(store, srcs, preds)}
    out = []
    for (subj, p, o), (n, t0, t1, ev) in agg.items():
        key = (node_id("entity", subj), p, node_id("entity", o))
        old = existing.get(key)
        if old is None:
            out.append(
                GraphEdge(
                    key[0], key[2], "relation", p, t_from=t0, weight=float(n), evidence=ev[-EVIDENCE_CAP:], t_last=t1
                )
            )
        else:
            out.append(
                GraphEdge(
                    key[0],
                    key[2],
                    "relation",
                    p,
                    t_from=old.t_from,
                    t_to=old.t_to,
                    weight=old.weight + n,
                    evidence=(old.evidence + ev)[-EVIDENCE_CAP:],
                    t_last=max(old.t_last, t1),
                )
            )
    return write_edges(store, out, seq)


# -- facts ----------------------------------------------------------------------------------
def fact_intervals(facts: Sequence[Relation], functional: bool) -> list[tuple[Relation, float | None]]:
    """Each fact with the end of its validity: its own ``t_to``, or for a functional predicate the
    start of the next fact about another object, whichever comes first.

    ``facts`` share one subject and predicate.

    Examples
    --------
    >>> fs = [Relation("mara", "wears", "yellow_coat", 0.0, id=1), Relation("mara", "wears", "oilskin", 48.0, id=2)]
    >>> [(f.object, end) for f, end in fact_intervals(fs, functional=True)]
    [('yellow_coat', 48.0), ('oilskin', None)]
    """
    ordered = sorted(facts, key=lambda f: (f.t_from, f.id or 0))
    out = []
    for i, f in enumerate(ordered):
        end = f.t_to
        if functional:
            nxt = next((g.t_from for g in ordered[i + 1 :] if g.object != f.object and g.t_from > f.t_from), None)
            if nxt is not None and (end is None or nxt < end):
                end = nxt
        out.append((f, end))
    return out


def fact_edges(facts: Sequence[Relation], functional: bool) -> list[GraphEdge]:
    """Consolidated edges of one subject and predicate: restatements of a fact while it is valid
    reinforce it (weight = evidence count), a fact stated again after it ended starts a new interval.

    Examples
    --------
    >>> fs = [Relation("ida", "holds", "lamp", 10.0, evidence=["e12"], id=1),
    ...       Relation("ida", "holds", "lamp", 20.0, evidence=["e18"], id=2)]
    >>> [(e.t_from, e.t_to, e.weight, e.evidence) for e in fact_edges(fs, functional=True)]
    [(10.0, None, 2.0, ['e12', 'e18'])]
    """
    merged: list[list] = []  # [object, t_from, end, evidence, t_last]
    for f, end in fact_intervals(facts, functional):
        ev = list(f.evidence) or [f"fact:{f.id}"]
        cur = next((m for m in reversed(merged) if m[0] == f.object), None)
        if cur is not None and (cur[2] is None or f.t_from <= cur[2]):
            cur[2] = None if (cur[2] is None or end is None) else max(cur[2], end)
            cur[3] += [x for x in ev if x not in cur[3]]
            cur[4] = max(cur[4], f.t_from)
        else:
            merged.append([f.object, f.t_from, end, ev, f.t_from])
    if not facts:
        return []
    s, p = node_id("entity", facts[0].subject), facts[0].predicate
    return [
        GraphEdge(
            s, node_id("entity", o), "relation", p, t_from=t0, t_to=t1, weight=float(len(ev)), evidence=ev, t_last=tl
        )
        for o, t0, t1, ev, tl in merged
    ]


def sync_fact_edges(
    store: Store,
    keys: Iterable[tuple[str, str]],
    seq: int,
    functional: frozenset[str] = FUNCTIONAL_PREDICATES,
) -> int:
    """Re-derive the fact edges of each (subject, predicate) from the ``relations`` rows.

    The edges are a view of the facts, which are never deleted: an edge that a new fact merges into
    another is replaced by the merged one.
    """
    written = 0
    for subject, predicate in sorted(set(keys)):
        if predicate in INFERRED_PREDICATES:
            continue
        want = fact_edges(store.facts_of(subject, predicate), predicate in functional)
        keep = {e.key for e in want}
        src = node_id("entity", subject)
        for old in tables.relation_edges(store, src, predicate):
            if old.key not in keep:
                delete_edge(store, old.id) if old.id is not None else None
        current = {e.key: e for e in tables.relation_edges(store, src, predicate)}
        changed = [e for e in want if e.key not in current or _fact_changed(current[e.key], e)]
        for e in changed:
            if e.key in current:
                e.archived = current[e.key].archived
        written += write_edges(store, changed, seq)
    return written


def _fact_changed(old: GraphEdge, new: GraphEdge) -> bool:
    return (old.t_to, old.weight, old.evidence, old.t_last) != (new.t_to, new.weight, new.evidence, new.t_last)


@dataclass(frozen=True)
class FactResult:
    """What :func:`add_fact` stored: the new fact's id and the ids of the facts it closed."""

    id: int
    closed: list[int]


def add_fact(store, relation: Relation, functional: frozenset[str] = FUNCTIONAL_PREDICATES) -> FactResult:
    """Store a fact, closing the valid facts it contradicts, in one transaction.

    ``relation.subject`` and ``relation.object`` are stored entity ids (see
    :meth:`graph.memory.GraphMemory.add_fact` for names and aliases). A fact
    inserted before a later contradicting one ends where that one starts.
    """
    from agentmem.errors import BadInputError

    if not relation.predicate.strip():
        raise BadInputError("relation predicate is empty")
    if relation.t_to is not None and relation.t_to < relation.t_from:
        raise BadInputError(f"relation t_to ({relation.t_to}) is before t_from ({relation.t_from})")
    rules = _rules(functional)
    with store.transaction():
        rid, closed = store_fact(store, relation, rules)
    return FactResult(rid, closed)


def _rules(functional: frozenset[str]) -> dict:
    """The predicate rules, with the one-object-per-subject ones limited to ``functional`` (a graph setting)."""
    return {p: r for p, r in PREDICATE_RULES.items() if p not in FUNCTIONAL_PREDICATES or p in functional}


def close_contradicted(
    store: Store, functional: frozenset[str] = FUNCTIONAL_PREDICATES
) -> list[tuple[int, float | None, float]]:
    """(fact id, stored t_to, end it should have) for facts still open past a contradicting fact.

    Facts are closed on write (:func:`agentmem.facts.store_fact`); this finds those stored before that, for
    compression to close.
    """
    rules = _rules(functional)
    preds = sorted(rules)
    by_pred: dict[str, list[Relation]] = {}
    for r in store.facts_with_predicates(preds):
        by_pred.setdefault(r.predicate, []).append(r)
    out = []
    for facts in by_pred.values():
        stored = {f.id: f.t_to for f in facts}
        for fid, end in sorted(fact_ends(facts, rules).items()):
            out.append((int(fid), stored[fid], end))
    return out


def keys_touched(store: Store, subject: str, predicate: str, obj: str) -> set[tuple[str, str]]:
    """The (subject, predicate) edge groups that a new fact can change: its own, and for a predicate with one
    subject per object, those of the other subjects it may have closed."""
    keys = {(subject, predicate)}
    rule = PREDICATE_RULES.get(predicate)
    if rule is not None and rule.one_subject_per_object:
        keys |= {(s, predicate) for s in store.subjects_of(predicate, obj)}
    return keys
