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

from agentmem.storage.entities import canonical_entity_rows, canonical_map, merge_states
from agentmem.storage.relations import relations_after
from agentmem.storage.sql import marks
from graph import tables
from graph.hierarchy import (
    ArcRule,
    SegmentationRule,
    assign_arcs,
    assign_episodes,
    episode_members,
    refresh_episodes,
)
from graph.persist import (
    bump_seq,
    get_mark,
    node_id,
    read_edges,
    read_events,
    read_nodes,
    set_mark,
    split_node_id,
    write_nodes,
)
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
        with store.transaction() as conn:
            mark = int(get_mark(conn, "events_rid"))
            evs = read_events(conn, "e.rid > ?", (mark,), limit=config.batch)
            if not evs:
                break
            seq = bump_seq(conn)
            touched, closed, begun = assign_episodes(conn, evs, config.rule, seq)
            refresh_episodes(conn, touched, config.summarizer, seq, begun)
            arcs = assign_arcs(conn, closed, config.arcs, config.summarizer, seq)
            arcs += _refresh_parent_arcs(conn, [t for t in touched if t not in closed], config, seq)
            rep.edges += apply_statements(conn, config.extractor.extract(evs), seq)
            set_mark(conn, "events_rid", evs[-1].rid)
        rep.events += len(evs)
        rep.episodes += len(touched)
        rep.arcs += len(set(arcs))
        if progress is not None:
            progress(len(evs))
    with store.transaction() as conn:
        mark = int(get_mark(conn, "relations_id"))
        rows = relations_after(conn, mark)
        if rows:
            seq = bump_seq(conn)
            keys = {k for r in rows for k in keys_touched(conn, r[1], r[2], r[3])}
            rep.edges += sync_fact_edges(conn, keys, seq, config.functional)
            set_mark(conn, "relations_id", rows[-1][0])
            rep.facts = len(rows)
    rep.seconds = time.perf_counter() - t0
    return rep


def _refresh_parent_arcs(conn, episodes: list[str], config: GraphConfig, seq: int) -> list[str]:
    """A late event changed an episode that is already in an arc: re-summarize that arc."""
    from graph.hierarchy import arc_node

    parents = sorted({n.parent for n in tables.nodes_by_id(conn, episodes) if n.parent}) if episodes else []
    out = []
    for pid in parents:
        old = tables.nodes_by_id(conn, [pid])[0]
        kids = tables.children_of(conn, [pid])
        write_nodes(conn, [arc_node(pid, old.level, kids, config.summarizer, old)], seq)
        out.append(pid)
    return out


def rebuild(store, config: GraphConfig | None = None, progress: Callable[[int], None] | None = None) -> UpdateReport:
    """Re-derive every graph table from the core tables (events, entities, relations).

    Refuses while compression has archived anything (restore first): the archive's
    bookkeeping refers to the current episodes.
    """
    from agentmem.errors import StoreError

    with store.transaction() as conn:
        n = tables.archived_count(conn)
        if n:
            raise StoreError(
                f"the graph has {n} archived items from compression; run `agentmem restore` before rebuilding it"
            )
        tables.clear_derived(conn)
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
    conn = store.conn
    G = nx.MultiDiGraph()
    G.graph.update(
        seq=int(get_mark(conn, "seq")),
        archive_version=int(get_mark(conn, "archive_version")),
        events_rid=int(get_mark(conn, "events_rid")),
        include_archive=include_archive,
        events=events,
        t0=t0,
        t1=t1,
        merges=_merge_state(conn),
    )
    canon = canonical_map(conn)
    merged: dict[str, list[str]] = {}
    for raw, c in canon.items():
        if raw != c:
            merged.setdefault(c, []).append(raw)
    for eid, kind, name in canonical_entity_rows(conn, by_id=True):
        G.add_node(
            node_id("entity", eid),
            type="entity",
            level=0,
            label=name,
            kind=kind,
            merged_ids=sorted(merged.get(eid, [])),
        )
    arch = "" if include_archive else " AND archived=0"
    for n in read_nodes(conn, f"1=1{arch}"):
        _add_graph_node(G, n)
    if events:
        _add_events(G, store, "e.rid > 0", (), canon)
    _link_levels(G)
    for e in read_edges(conn, f"1=1{arch}"):
        _add_edge(G, e, canon)
    return G


def _merge_state(conn) -> str:
    return json.dumps(merge_states(conn))


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


def _add_events(G: nx.MultiDiGraph, store, where: str, args: tuple, canon: dict[str, str]) -> None:
    conn = store.conn
    if not G.graph["include_archive"]:
        where += " AND e.archived=0"
    if G.graph["t0"] is not None:
        where += " AND e.t_end >= ?"
        args = (*args, float(G.graph["t0"]))
    if G.graph["t1"] is not None:
        where += " AND e.t_start <= ?"
        args = (*args, float(G.graph["t1"]))
    evs = read_events(conn, where, args, order="e.t_start, e.rid")
    episode = tables.episodes_of_rid_range(
        conn, min((e.rid for e in evs), default=0), max((e.rid for e in evs), default=-1)
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
    conn = store.conn
    # 1. Rebuild when the view cannot be extended in place.
    if _needs_rebuild(G, conn):
        return load_graph(
            store,
            include_archive=G.graph["include_archive"],
            events=G.graph["events"],
            t0=G.graph["t0"],
            t1=G.graph["t1"],
        )
    seq, mark = G.graph["seq"], G.graph["events_rid"]
    canon = canonical_map(conn)
    arch = "" if G.graph["include_archive"] else " AND archived=0"
    # 2. New entities, hierarchy nodes and events.
    for eid, kind, name in canonical_entity_rows(conn, by_id=False):
        if node_id("entity", eid) not in G:
            G.add_node(node_id("entity", eid), type="entity", level=0, label=name, kind=kind, merged_ids=[])
    for n in read_nodes(conn, f"seq > ?{arch}", (seq,)):
        if n.id in G:
            for p in list(G.predecessors(n.id)):
                if G.has_edge(p, n.id, "summarizes"):
                    G.remove_edge(p, n.id, "summarizes")
        _add_graph_node(G, n)
    if G.graph["events"]:
        _add_events(G, store, "e.rid > ?", (mark,), canon)
    _link_levels(G)
    # 3. Relation edges of every (subject, predicate) written since.
    _refresh_edges(G, conn, canon, seq, arch)
    G.graph.update(seq=int(get_mark(conn, "seq")), events_rid=int(get_mark(conn, "events_rid")))
    return G


def _needs_rebuild(G: nx.MultiDiGraph, conn) -> bool:
    if int(get_mark(conn, "archive_version")) != G.graph["archive_version"] or _merge_state(conn) != G.graph["merges"]:
        return True
    if not G.graph["events"]:
        return False
    last_t = max((d["t_start"] for _, d in G.nodes(data=True) if d["type"] == "event"), default=float("-inf"))
    return tables.any_event_after_rid_before(conn, G.graph["events_rid"], last_t)


def _refresh_edges(G: nx.MultiDiGraph, conn, canon: dict[str, str], seq: int, arch: str) -> None:
    members: dict[str, list[str]] = {}
    for raw, c in canon.items():
        members.setdefault(node_id("entity", c), []).append(node_id("entity", raw))
    stale = {(_canon_node(e.src, canon), e.predicate) for e in read_edges(conn, f"seq > ?{arch}", (seq,))}
    for u, pred in sorted(stale):
        if u in G:
            for _, v, k, d in list(G.out_edges(u, keys=True, data=True)):
                if d.get("predicate") == pred and d["type"] in ("relation", "member_of"):
                    G.remove_edge(u, v, k)
        srcs = members.get(u, [u])
        for e in read_edges(conn, f"src IN ({marks(len(srcs))}) AND predicate=?{arch}", (*srcs, pred)):
            _add_edge(G, e, canon)


def _canon_node(x: str, canon: dict[str, str]) -> str:
    kind, key = split_node_id(x)
    return node_id("entity", canon.get(key, key)) if kind == "entity" else x


__all__ = ["GraphConfig", "UpdateReport", "episode_members", "load_graph", "rebuild", "refresh", "update"]
