"""Reading the graph around one entity: its neighbours, a path to another, its timeline.

These read the graph's tables through :mod:`graph.tables` (and so the indexes on
``graph_edges`` and ``event_entities``), so they cost the same on a story of
minutes or of days.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import networkx as nx

from graph import tables
from graph.persist import node_id, split_node_id


@dataclass
class Neighbor:
    """An entity related to another, through one edge."""

    entity: str
    name: str
    predicate: str
    direction: str
    weight: float
    t_from: float
    t_to: float | None
    evidence: list[str]
    archived: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def neighbors(
    mem, entity: str, *, as_of: float | None = None, predicate: str | None = None, include_archive: bool = False
) -> list[Neighbor]:
    """Entities linked to ``entity`` by relation edges, strongest first.

    ``as_of`` keeps facts valid at that time (inferred edges: seen by then), and only the evidence from then or
    before; an edge's weight drops by the evidence it loses (exact while the edge lists all its evidence, which
    it does up to 32 events).

    Examples
    --------
    >>> import tempfile
    >>> from agentmem import Memory
    >>> from graph.build import update
    >>> mem = Memory(tempfile.mkdtemp(), text_embedder=None, image_embedder=None)
    >>> for p in ("ann", "bob", "cy"):
    ...     _ = mem.add_entity(p, kind="character")
    >>> _ = mem.add_events([{"id": "e1", "t_start": 0, "text": "tea", "participants": ["ann", "bob"]},
    ...                     {"id": "e2", "t_start": 5, "text": "cake", "participants": ["ann", "bob", "cy"]}])
    >>> _ = update(mem.store)
    >>> [(n.entity, n.predicate, n.weight) for n in neighbors(mem, "ann")]
    [('bob', 'co_participates', 2.0), ('cy', 'co_participates', 1.0)]
    >>> [(s.src, s.dst) for s in path(mem, "bob", "cy")]
    [('bob', 'cy')]
    >>> [e.id for e in timeline(mem, "cy").events]
    ['e2']
    >>> mem.close()
    """
    store = mem.store
    canon_id = mem.resolve_entity(entity)
    members = [node_id("entity", m) for m in store.member_ids(canon_id)]
    canon = store.canonical_map()
    out = []
    edges = tables.relation_edges_touching(store, members, include_archive=include_archive, predicate=predicate)
    times = store.evidence_times([x for e in edges for x in e.evidence]) if as_of is not None else {}
    for e in edges:
        if as_of is not None and (e.t_from > as_of or (e.t_to is not None and e.t_to <= as_of)):
            continue
        outgoing = e.src in members
        other = split_node_id(e.dst if outgoing else e.src)[1]
        other = canon.get(other, other)
        if other == canon_id:
            continue
        evidence, weight = e.evidence, e.weight
        if as_of is not None:
            # As of means as of: evidence from later is not shown, and not counted.
            evidence = [x for x in e.evidence if times.get(x, e.t_from) <= as_of]
            weight = max(e.weight - (len(e.evidence) - len(evidence)), float(len(evidence)))
        out.append(
            Neighbor(
                other,
                store.entity_name(other),
                e.predicate,
                "out" if outgoing else "in",
                weight,
                e.t_from,
                e.t_to,
                evidence,
                e.archived,
            )
        )
    out.sort(key=lambda n: (-n.weight, n.predicate, n.entity, n.t_from))
    return out


@dataclass
class PathStep:
    """One hop of a path: from, to, and the strongest edge between them."""

    src: str
    dst: str
    predicate: str
    weight: float
    evidence: list[str] = field(default_factory=list)


def path(mem, a: str, b: str) -> list[PathStep]:
    """The shortest path between two entities over active relation edges (stronger edges are shorter).

    Raises :class:`~agentmem.errors.NotFoundError` when they are not connected.
    """
    from agentmem.errors import NotFoundError

    store = mem.store
    sa, sb = mem.resolve_entity(a), mem.resolve_entity(b)
    canon = store.canonical_map()
    G = nx.Graph()
    for e in tables.active_relations(store):
        u, v = canon.get(split_node_id(e.src)[1]), canon.get(split_node_id(e.dst)[1])
        if u is None or v is None or u == v:
            continue
        if not G.has_edge(u, v) or G.edges[u, v]["weight"] < e.weight:
            G.add_edge(u, v, weight=e.weight, cost=1.0 / e.weight, predicate=e.predicate, evidence=e.evidence)
    if sa == sb:
        return []
    try:
        nodes = nx.shortest_path(G, sa, sb, weight="cost")
    except (nx.NodeNotFound, nx.NetworkXNoPath):
        raise NotFoundError(f"no path between {sa!r} and {sb!r} in the relation graph") from None
    return [
        PathStep(u, v, G.edges[u, v]["predicate"], G.edges[u, v]["weight"], list(G.edges[u, v]["evidence"]))
        for u, v in zip(nodes, nodes[1:], strict=False)
    ]


@dataclass
class TimelineEvent:
    id: str
    t_start: float
    t_end: float
    text: str
    location: str | None
    episode: str | None
    archived: bool


@dataclass
class Timeline:
    """An entity's events, facts and attribute values over story time."""

    entity: str
    name: str
    events: list[TimelineEvent]
    facts: list[dict]
    attributes: list[dict]

    def to_dict(self) -> dict:
        return asdict(self)


def timeline(
    mem,
    entity: str,
    *,
    t0: float | None = None,
    t1: float | None = None,
    include_archive: bool = False,
    limit: int = 5000,
) -> Timeline:
    """Events of ``entity`` (and its merged ids) in story order, with its facts and attribute intervals."""
    store = mem.store
    eid = mem.resolve_entity(entity)
    ids = store.member_ids(eid)
    rows = tables.timeline_rows(store, ids, t0=t0, t1=t1, include_archive=include_archive, limit=limit)
    events = [TimelineEvent(r.id, r.t_start, r.t_end, r.text, r.location, r.episode, r.archived) for r in rows]
    facts = [
        {"subject": r.subject, "predicate": r.predicate, "object": r.object, "t_from": r.t_from, "t_to": r.t_to}
        for r in store.relations(ids)
    ]
    attrs = [{"key": a.key, "value": a.value, "t_from": a.t_from, "t_to": a.t_to} for a in store.attributes(ids)]
    return Timeline(eid, store.entity_name(eid), events, facts, attrs)


def graph_stats(store) -> dict:
    """Nodes and edges by type, active and archived, and the number of compression runs."""
    return tables.graph_counts(store)
