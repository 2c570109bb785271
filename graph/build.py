"""Keeping the graph in step with the store, and the networkx view of it.

:func:`update` is the incremental write path: it reads the events and facts
stored since its watermark, puts the events into episodes and arcs, turns them
into relation statements through the extractor, re-derives the fact edges, and
moves the watermark, all in one transaction per batch. A crash therefore
leaves either the whole batch or none of it, and the next call carries on.
Events written by any path (the CLI, :class:`agentmem.Memory`) are picked up.

:func:`load_graph` builds a :class:`networkx.MultiDiGraph` from the store, and
:func:`refresh` brings one up to date with what was written since it was
built. Node types and edge types are those of :mod:`graph.persist`:

- ``participates_in``: entity -> event; ``located_at``: event -> location entity;
- ``next``: event -> the next event, episode -> next episode, arc -> next arc of its level;
- ``summarizes``: episode -> event, arc -> episode (or lower arc);
- ``relation``: entity -> entity, with predicate, interval, weight and evidence;
- ``member_of``: entity -> community.

Merged entities appear as their canonical entity (the node's ``merged_ids`` lists the rest).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import networkx as nx

from graph import tables
from graph.hierarchy import (
    ArcRule,
    SegmentationRule,
    assign_arcs,
    assign_episodes,
    episode_members,
    refresh_episodes,
)
from graph.persist import bump_seq, get_mark, node_id, set_mark, split_node_id, write_nodes
from graph.relations import (
    FUNCTIONAL_PREDICATES,
    CoOccurrenceExtractor,
    Extractor,
    apply_statements,
    keys_touched,
    sync_fact_edges,
)
from graph.summaries import ExtractiveSummarizer, Summarizer


@dataclass
class GraphConfig:
    """How the graph is built: the episode and arc rules, the extractor and the summarizer."""

    rule: SegmentationRule = field(default_factory=SegmentationRule)
    arcs: ArcRule = field(default_factory=ArcRule)
    extractor: Extractor = field(default_factory=CoOccurrenceExtractor)
    summarizer: Summarizer = field(default_factory=ExtractiveSummarizer)
    functional: frozenset[str] = FUNCTIONAL_PREDICATES
    batch: int = 10_000


@dataclass
class UpdateReport:
    """What one :func:`update` call did."""

    events: int = 0
    facts: int = 0
    episodes: int = 0
    arcs: int = 0
    edges: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def update(store, config: GraphConfig | None = None, progress: Callable[[int], None] | None = None) -> UpdateReport:
    """Bring the graph tables up to date with the events and facts stored since the last call.

    Examples
    --------
    >>> import tempfile
    >>> from agentmem import Memory
    >>> mem = Memory(tempfile.mkdtemp(), text_embedder=None, image_embedder=None)
    >>> _ = mem.add_entity("ann", kind="character")
    >>> _ = mem.add_events([{"id": f"e{i}", "t_start": i, "text": "tea", "participants": ["ann"]} for i in range(3)])
    >>> update(mem.store).events, update(mem.store).events
    (3, 0)
    >>> G = load_graph(mem.store)
    >>> sorted(n for n, d in G.nodes(data=True) if d["type"] != "event")
    ['entity:ann', 'episode:1']
    >>> mem.close()
    """
    config = config or GraphConfig()
    rep = UpdateReport()
    t0 = time.perf_counter()
    while True:
        with store.transaction():
            mark = int(get_mark(store, "events_rid"))
            evs = tables.events_after(store, mark, config.batch)
            if not evs:
                break
            seq = bump_seq(store)
            touched, closed, begun = assign_episodes(store, evs, config.rule, seq)
            refresh_episodes(store, touched, config.summarizer, seq, begun)
            arcs = assign_arcs(store, closed, config.arcs, config.summarizer, seq)
            arcs += _refresh_parent_arcs(store, [t for t in touched if t not in closed], config, seq)
            rep.edges += apply_statements(store, config.extractor.extract(evs), seq)
            set_mark(store, "events_rid", evs[-1].rid)
        rep.events += len(evs)
        rep.episodes += len(touched)
        rep.arcs += len(set(arcs))
        if progress is not None:
            progress(len(evs))
    with store.transaction():
        mark = int(get_mark(store, "relations_id"))
        facts = store.facts_after(mark)
        if facts:
            seq = bump_seq(store)
            keys = {k for f in facts for k in keys_touched(store, f.subject, f.predicate, f.object)}
            rep.edges += sync_fact_edges(store, keys, seq, config.functional)
            set_mark(store, "relations_id", facts[-1].id)
            rep.facts = len(facts)
    rep.seconds = time.perf_counter() - t0
    return rep


def _refresh_parent_arcs(store, episodes: list[str], config: GraphConfig, seq: int) -> list[str]:
    """A late event changed an episode that is already in an arc: re-summarize that arc."""
    from graph.hierarchy import arc_node

    parents = sorted({n.parent for n in tables.nodes_by_id(store, episodes) if n.parent}) if episodes else []
    out = []
    for pid in parents:
        old = tables.nodes_by_id(store, [pid])[0]
        kids = tables.children_of(store, [pid])
        write_nodes(store, [arc_node(pid, old.level, kids, config.summarizer, old)], seq)
        out.append(pid)
    return out


def rebuild(store, config: GraphConfig | None = None, progress: Callable[[int], None] | None = None) -> UpdateReport:
    """Re-derive every graph table from the core tables (events, entities, relations).

    Refuses while compression has archived anything (restore first): the archive's
    bookkeeping refers to the current episodes.
    """
    from agentmem.errors import StoreError

    with store.transaction():
        n = tables.archived_count(store)
        if n:
            raise StoreError(
                f"the graph has {n} archived items from compression; run `agentmem restore` before rebuilding it"
            )
        tables.clear_derived(store)
    return update(store, config, progress)


# -- the networkx view ---------------------------------------------------------------------------
def load_graph(
    store, *, include_archive: bool = False, events: bool = True, t0: float | None = None, t1: float | None = None
) -> nx.MultiDiGraph:
    """The graph as a :class:`networkx.MultiDiGraph`, built from the store.

    Parameters
    ----------
    include_archive : bool
        Also the archived events, nodes and edges (attribute ``archived``).
    events : bool
        Include event nodes (and their participates_in, located_at, next and summarizes edges).
    t0, t1 : float, optional
        Only events overlapping [t0, t1].
    """
    G = nx.MultiDiGraph()
    G.graph.update(
        seq=int(get_mark(store, "seq")),
        archive_version=int(get_mark(store, "archive_version")),
        events_rid=int(get_mark(store, "events_rid")),
        include_archive=include_archive,
        events=events,
        t0=t0,
        t1=t1,
        merges=_merge_state(store),
    )
    canon = store.canonical_map()
    merged: dict[str, list[str]] = {}
    for raw, c in canon.items():
        if raw != c:
            merged.setdefault(c, []).append(raw)
    for eid, kind, name in store.canonical_entities(by_id=True):
        G.add_node(
            node_id("entity", eid),
            type="entity",
            level=0,
            label=name,
            kind=kind,
            merged_ids=sorted(merged.get(eid, [])),
        )
    for n in tables.nodes(store, include_archive=include_archive):
        _add_graph_node(G, n)
    if events:
        _add_events(G, store, 0, canon)
    _link_levels(G)
    for e in tables.edges(store, include_archive=include_archive):
        _add_edge(G, e, canon)
    return G


def _merge_state(store) -> str:
    return json.dumps(store.merge_states())


def _add_graph_node(G: nx.MultiDiGraph, n) -> None:
    G.add_node(
        n.id,
        type=n.type,
        level=n.level,
        label=n.label,
        t_start=n.t_start,
        t_end=n.t_end,
        summary=n.summary,
        parent=n.parent,
        archived=n.archived,
        **{k: v for k, v in n.data.items() if k in ("n", "participants", "location")},
    )
    if n.parent is not None:
        G.add_edge(n.parent, n.id, key="summarizes", type="summarizes")


def _add_events(G: nx.MultiDiGraph, store, after_rid: int, canon: dict[str, str]) -> None:
    """The events stored after row ``after_rid`` that the view holds, with their edges."""
    d = G.graph
    evs = tables.view_events(store, after_rid, include_archive=d["include_archive"], t0=d["t0"], t1=d["t1"])
    episode = tables.episodes_of_rid_range(
        store, min((e.rid for e in evs), default=0), max((e.rid for e in evs), default=-1)
    )
    for e in evs:
        nid = node_id("event", e.id)
        G.add_node(
            nid,
            type="event",
            level=0,
            label=e.text[:80],
            text=e.text,
            t_start=e.t_start,
            t_end=e.t_end,
            group=e.group,
            archived=e.archived,
            rid=e.rid,
        )
        for p in e.participants:
            G.add_edge(node_id("entity", canon.get(p, p)), nid, key="participates_in", type="participates_in")
        if e.location:
            G.add_edge(nid, node_id("entity", canon.get(e.location, e.location)), key="located_at", type="located_at")
        ep = episode.get(e.rid)
        if ep is not None and ep in G:
            G.add_edge(ep, nid, key="summarizes", type="summarizes")


def _link_levels(G: nx.MultiDiGraph) -> None:
    """``next`` edges: consecutive events, consecutive episodes, consecutive arcs of a level."""
    for u, v, key in [e for e in G.edges(keys=True) if e[2] == "next"]:
        G.remove_edge(u, v, key)
    chains: dict[tuple[str, int], list[tuple[float, int, str]]] = {}
    for n, d in G.nodes(data=True):
        if d["type"] in ("event", "episode", "arc") and d.get("t_start") is not None:
            chains.setdefault((d["type"], d["level"]), []).append((d["t_start"], d.get("rid", 0), n))
    for items in chains.values():
        items.sort()
        for (_, _, a), (_, _, b) in zip(items, items[1:], strict=False):
            G.add_edge(a, b, key="next", type="next")


def _add_edge(G: nx.MultiDiGraph, e, canon: dict[str, str]) -> None:
    def node(x: str) -> str:
        kind, key = split_node_id(x)
        return node_id("entity", canon.get(key, key)) if kind == "entity" else x

    u, v = node(e.src), node(e.dst)
    if u not in G or v not in G:
        return
    G.add_edge(
        u,
        v,
        key=f"{e.type}:{e.id}",
        type=e.type,
        predicate=e.predicate,
        t_from=e.t_from,
        t_to=e.t_to,
        weight=e.weight,
        evidence=e.evidence,
        t_last=e.t_last,
        archived=e.archived,
        edge_id=e.id,
    )


def refresh(G: nx.MultiDiGraph, store) -> nx.MultiDiGraph:
    """``G`` brought up to date with the store: new events, nodes and edges are added in place.

    A change of the archive (compression, restore), of merges, or a late event
    rebuilds the view instead; the result equals :func:`load_graph` either way.
    """
    # 1. Rebuild when the view cannot be extended in place.
    if _needs_rebuild(G, store):
        return load_graph(
            store,
            include_archive=G.graph["include_archive"],
            events=G.graph["events"],
            t0=G.graph["t0"],
            t1=G.graph["t1"],
        )
    seq, mark, include_archive = G.graph["seq"], G.graph["events_rid"], G.graph["include_archive"]
    canon = store.canonical_map()
    # 2. New entities, hierarchy nodes and events.
    for eid, kind, name in store.canonical_entities(by_id=False):
        if node_id("entity", eid) not in G:
            G.add_node(node_id("entity", eid), type="entity", level=0, label=name, kind=kind, merged_ids=[])
    for n in tables.nodes_since(store, seq, include_archive=include_archive):
        if n.id in G:
            for p in list(G.predecessors(n.id)):
                if G.has_edge(p, n.id, "summarizes"):
                    G.remove_edge(p, n.id, "summarizes")
        _add_graph_node(G, n)
    if G.graph["events"]:
        _add_events(G, store, mark, canon)
    _link_levels(G)
    # 3. Relation edges of every (subject, predicate) written since.
    _refresh_edges(G, store, canon, seq, include_archive)
    G.graph.update(seq=int(get_mark(store, "seq")), events_rid=int(get_mark(store, "events_rid")))
    return G


def _needs_rebuild(G: nx.MultiDiGraph, store) -> bool:
    if (
        int(get_mark(store, "archive_version")) != G.graph["archive_version"]
        or _merge_state(store) != G.graph["merges"]
    ):
        return True
    if not G.graph["events"]:
        return False
    last_t = max((d["t_start"] for _, d in G.nodes(data=True) if d["type"] == "event"), default=float("-inf"))
    return tables.any_event_after_rid_before(store, G.graph["events_rid"], last_t)


def _refresh_edges(G: nx.MultiDiGraph, store, canon: dict[str, str], seq: int, include_archive: bool) -> None:
    members: dict[str, list[str]] = {}
    for raw, c in canon.items():
        members.setdefault(node_id("entity", c), []).append(node_id("entity", raw))
    since = tables.edges_since(store, seq, include_archive=include_archive)
    stale = {(_canon_node(e.src, canon), e.predicate) for e in since}
    for u, pred in sorted(stale):
        if u in G:
            for _, v, k, d in list(G.out_edges(u, keys=True, data=True)):
                if d.get("predicate") == pred and d["type"] in ("relation", "member_of"):
                    G.remove_edge(u, v, k)
        srcs = members.get(u, [u])
        for e in tables.edges_with_predicate(store, srcs, pred, include_archive=include_archive):
            _add_edge(G, e, canon)


def _canon_node(x: str, canon: dict[str, str]) -> str:
    kind, key = split_node_id(x)
    return node_id("entity", canon.get(key, key)) if kind == "entity" else x


__all__ = ["GraphConfig", "UpdateReport", "episode_members", "load_graph", "rebuild", "refresh", "update"]
