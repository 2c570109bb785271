"""Facts over time: which predicates allow one value at a time, and how a new fact closes the old ones.

A predicate's rule is data (:data:`PREDICATE_RULES`). ``one_object_per_subject``:
a subject has one object at a time ("mara wears oilskin" ends "mara wears
raincoat"). ``one_subject_per_object``: an object has one subject at a time
("ida holds lamp" ends "mara holds lamp"). A new fact closes every valid fact
it contradicts at its own ``t_from``; a fact inserted before a later
contradicting one ends where that one starts. Nothing is deleted: a closed
fact keeps its row, with ``t_to`` set. Every reader (queries, the planner, the
graph, its timeline) sees the same stored intervals.

Examples
--------
>>> from agentmem.model import Relation
>>> old = [Relation("mara", "holds", "lamp", 4.0, id=1)]
>>> closing_plan(old, Relation("ida", "holds", "lamp", 50.0))
([(1, 50.0)], None)
>>> closing_plan(old, Relation("ida", "holds", "lamp", 1.0))
([], 4.0)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from agentmem.model import Relation


@dataclass(frozen=True)
class PredicateRule:
    """How many values a predicate allows at one time."""

    one_object_per_subject: bool = False
    one_subject_per_object: bool = False


PREDICATE_RULES: dict[str, PredicateRule] = {
    "holds": PredicateRule(one_subject_per_object=True),
    "carries": PredicateRule(one_subject_per_object=True),
    "wears": PredicateRule(one_object_per_subject=True),
    "located_in": PredicateRule(one_object_per_subject=True),
    "lives_in": PredicateRule(one_object_per_subject=True),
    "works_at": PredicateRule(one_object_per_subject=True),
    "owned_by": PredicateRule(one_object_per_subject=True),
    "rides": PredicateRule(one_object_per_subject=True),
    "married_to": PredicateRule(one_object_per_subject=True, one_subject_per_object=True),
}
"""The predicates with a rule; any other predicate allows many values at once."""


def contradicts(rule: PredicateRule, a: Relation, b: Relation) -> bool:
    """Whether facts ``a`` and ``b`` (same predicate) cannot both hold at one time under ``rule``.

    Examples
    --------
    >>> holds = PREDICATE_RULES["holds"]
    >>> contradicts(holds, Relation("mara", "holds", "lamp"), Relation("ida", "holds", "lamp"))
    True
    >>> contradicts(holds, Relation("mara", "holds", "lamp"), Relation("mara", "holds", "rope"))
    False
    """
    if a.predicate != b.predicate:
        return False
    return (rule.one_object_per_subject and a.subject == b.subject and a.object != b.object) or (
        rule.one_subject_per_object and a.object == b.object and a.subject != b.subject
    )


def closing_plan(
    existing: Sequence[Relation], new: Relation, rules: dict[str, PredicateRule] = PREDICATE_RULES
) -> tuple[list[tuple[int, float]], float | None]:
    """Which stored facts ``new`` closes (id, new ``t_to``), and the ``t_to`` that ``new`` itself gets."""
    rule = rules.get(new.predicate)
    t, t_to = new.t_from, new.t_to
    if rule is None:
        return [], t_to
    closes = []
    for f in existing:
        if not contradicts(rule, f, new) or f.id is None:
            continue
        if f.t_from < t and (f.t_to is None or f.t_to > t):
            closes.append((f.id, t))
        elif f.t_from > t and (t_to is None or f.t_from < t_to):
            t_to = f.t_from
    return closes, t_to


def fact_ends(facts: Sequence[Relation], rules: dict[str, PredicateRule] = PREDICATE_RULES) -> dict[int, float]:
    """Facts still open past a later contradicting fact: id -> the end they should have.

    This is what :func:`closing_plan` would have done had the facts arrived in story order (facts stored
    before the rules existed are closed with it).

    Examples
    --------
    >>> fs = [Relation("mara", "holds", "lamp", 4.0, id=1), Relation("ida", "holds", "lamp", 50.0, id=2)]
    >>> fact_ends(fs)
    {1: 50.0}
    """
    out: dict[int, float] = {}
    ordered = sorted(facts, key=lambda f: (f.t_from, f.id or 0))
    for i, f in enumerate(ordered):
        rule = rules.get(f.predicate)
        if rule is None or f.id is None:
            continue
        nxt = next((g.t_from for g in ordered[i + 1 :] if g.t_from > f.t_from and contradicts(rule, f, g)), None)
        if nxt is not None and (f.t_to is None or nxt < f.t_to):
            out[f.id] = nxt
    return out


def store_fact(store, relation: Relation, rules: dict[str, PredicateRule] = PREDICATE_RULES) -> tuple[int, list[int]]:
    """Insert ``relation`` (stored entity ids) and close what it contradicts, inside the caller's transaction.

    Returns the new fact's id and the ids of the facts it closed.
    """
    existing = store.facts_sharing(relation.predicate, relation.subject, relation.object)
    closes, t_to = closing_plan(existing, relation, rules)
    for fid, t in closes:
        store.close_relation(fid, t)
    fact = Relation(
        relation.subject,
        relation.predicate,
        relation.object,
        relation.t_from,
        t_to,
        list(relation.evidence),
        relation.weight,
    )
    return store.insert_relation(fact, time.time()), [fid for fid, _ in closes]
