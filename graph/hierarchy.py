"""The hierarchy: events segmented into episodes, episodes grouped into arcs, entities into communities.

**Episode rule** (:class:`SegmentationRule`). Events are read in story-time
order (ties by arrival). A new episode starts before an event when, checked in
this order:

1. ``group``: its group (session, scene id) differs from the previous event's;
2. ``gap``: it starts more than ``gap_s`` seconds after the episode's latest end;
3. ``location``: it has a location and the episode's last known location differs;
4. ``length``: the episode already holds ``max_events`` events;
5. ``participants``: the episode holds at least ``min_events`` events, and the
   event's participants share no one with the last ``participant_window`` events;
6. ``shift``: the episode holds at least ``min_events`` events and the cosine
   between the event's vector and the mean vector of the episode's last
   ``shift_window`` events is below ``shift_threshold``.

An event that arrives late (it starts before the open episode) joins the
episode in effect at its time.

**Arcs** (:class:`ArcRule`). Closed episodes join the open arc in order; a new
arc starts when the open one holds ``max_episodes`` or the episode's vector
has cosine below ``shift_threshold`` with the arc's. When ``fanout`` closed arcs
of one level have no parent, the oldest ``fanout`` roll up into one arc of the
next level, so the arcs form a log-depth tree: a day of video is a handful of
top-level arcs, and a working set of summaries stays bounded.

**Summaries** (:mod:`graph.summaries`). Every parent has a summary text, a
vector and ``summarizes`` links to its children.

**Communities** come from :func:`networkx.community.louvain_communities` over
the entity graph (relation edges, weighted), with a fixed seed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import networkx as nx
import numpy as np

from graph import tables
from graph.persist import EventRecord, GraphNode, get_mark, set_mark, write_nodes
from graph.summaries import Summarizer, central_order, centroid, cut, stacked, word_vectors
from graph.tables import episode_members

if TYPE_CHECKING:
    from agentmem.storage.store import Store


@dataclass(frozen=True)
class SegmentationRule:
    """When a new episode starts; see the module docstring for the order of the checks."""

    gap_s: float = 600.0
    split_on_group: bool = True
    split_on_location: bool = True
    participant_window: int = 3
    shift_threshold: float = 0.2
    shift_window: int = 4
    min_events: int = 3
    max_events: int = 64


@dataclass(frozen=True)
class ArcRule:
    """When a new arc starts, and how many closed arcs roll up into one of the next level."""

    max_episodes: int = 8
    shift_threshold: float = 0.2
    fanout: int = 8


def segment(
    events: Sequence[EventRecord],
    rule: SegmentationRule = SegmentationRule(),
    tail: Sequence[EventRecord] = (),
    tail_count: int = 0,
    tail_location: str | None = None,
) -> list[tuple[int, str]]:
    """Where new episodes start among ``events`` (in story order), with the reason.

    ``tail`` holds the last events of the episode still open before ``events``
    (``tail_count`` events in all, last known location ``tail_location``).

    Examples
    --------
    >>> ev = lambda i, t, loc, ps: EventRecord(i, f"e{i}", t, t + 1, "", ps, loc)
    >>> segment([ev(1, 0, "pier", ["a"]), ev(2, 2, "pier", ["a", "b"]), ev(3, 4, "inn", ["b"]),
    ...          ev(4, 5000, "inn", ["b"])])
    [(0, 'start'), (2, 'location'), (3, 'gap')]
    """
    out: list[tuple[int, str]] = []
    count = tail_count
    last = tail[-1] if tail else None
    last_end = max((e.t_end for e in tail), default=-np.inf)
    loc = tail_location
    recent: deque[frozenset[str]] = deque((frozenset(e.participants) for e in tail), maxlen=rule.participant_window)
    window: deque[np.ndarray] = deque((e.vec for e in tail if e.vec is not None), maxlen=rule.shift_window)
    wsum = np.sum(window, axis=0) if window else None  # kept up to date: a sum per event would dominate
    for i, e in enumerate(events):
        reason = None
        if last is None:
            reason = "start"
        elif rule.split_on_group and e.group != last.group:
            reason = "group"
        elif e.t_start - last_end > rule.gap_s:
            reason = "gap"
        elif rule.split_on_location and e.location and loc and e.location != loc:
            reason = "location"
        elif count >= rule.max_events:
            reason = "length"
        elif (
            count >= rule.min_events
            and e.participants
            and recent
            and not (set(e.participants) & frozenset().union(*recent))
        ):
            reason = "participants"
        elif count >= rule.min_events and e.vec is not None and window and wsum is not None:
            norm = float(np.sqrt(wsum @ wsum))
            if norm > 0 and float(e.vec @ wsum) / norm < rule.shift_threshold:
                reason = "shift"
        if reason is not None:
            out.append((i, reason))
            count, last_end, loc = 0, -np.inf, None
            recent.clear()
            window.clear()
            wsum = None
        count += 1
        last = e
        last_end = max(last_end, e.t_end)
        loc = e.location or loc
        if e.participants:
            recent.append(frozenset(e.participants))
        if e.vec is not None:
            if wsum is None or wsum.shape != e.vec.shape:
                window.clear()
                wsum = np.zeros_like(e.vec, dtype=np.float64)
            if len(window) == window.maxlen:
                wsum -= window[0]
            window.append(e.vec)
            wsum += e.vec
    return out


# -- episodes --------------------------------------------------------------------------------
def _episode_node(
    nid: str, members: list[EventRecord], summarizer: Summarizer, open_: bool, parent: str | None
) -> GraphNode:
    members.sort(key=lambda e: (e.t_start, e.rid))
    X = stacked([e.vec for e in members])
    texts = [e.text for e in members]
    counts: dict[str, int] = {}
    for e in members:
        for p in e.participants:
            counts[p] = counts.get(p, 0) + 1
    people = sorted(counts, key=lambda p: (-counts[p], p))
    locs = [e.location for e in members if e.location]
    lead = texts[central_order(X if X is not None else word_vectors(texts))[0]]
    label = ", ".join(people[:3]) + (f" at {locs[-1]}" if locs else "")
    data = {
        "n": len(members),
        "open": open_,
        "participants": people[:8],
        "location": locs[-1] if locs else None,
        "group": members[-1].group,
        "lead": cut(lead, 240),
        "first": members[0].id,
        "last": members[-1].id,
    }
    return GraphNode(
        nid,
        "episode",
        1,
        label or nid,
        members[0].t_start,
        max(e.t_end for e in members),
        summarizer.summarize(texts, X),
        centroid([e.vec for e in members]),
        data,
        parent,
    )


def assign_episodes(
    store: Store, events: list[EventRecord], rule: SegmentationRule, seq: int
) -> tuple[list[str], list[str], dict[str, list[EventRecord]]]:
    """Put ``events`` (new, not yet in any episode) into episodes.

    Returns the touched and the closed episode ids, and the events of the episodes begun here.
    """
    events = sorted(events, key=lambda e: (e.t_start, e.rid))
    open_id = tables.text_mark(store, "open_episode")
    tail: list[EventRecord] = []
    count, open_start, tail_loc = 0, -np.inf, None
    if open_id is not None:
        node = tables.nodes_by_id(store, [open_id])[0]
        count, tail_loc = node.data["n"], node.data.get("location")
        open_start = -np.inf if node.t_start is None else node.t_start
        w = max(rule.participant_window, rule.shift_window)
        tail = tables.episode_tail(store, open_id, w)
    late = [e for e in events if e.t_start < open_start]
    fresh = [e for e in events if e.t_start >= open_start]
    rows: list[tuple[int, str]] = []
    touched: dict[str, None] = {}
    for e in late:
        ep = tables.episode_at(store, e.t_start)
        rows.append((e.rid, ep))
        touched[ep] = None
    closed: list[str] = []
    starts = dict(segment(fresh, rule, tail, count, tail_loc))
    cur = open_id
    counter = int(get_mark(store, "episode_counter"))
    new_members: dict[str, list[EventRecord]] = {}
    for i, e in enumerate(fresh):
        if i in starts:
            if cur is not None:
                closed.append(cur)
            counter += 1
            cur = f"episode:{counter}"
            new_members[cur] = []
        if cur is None:  # the first fresh event always starts or continues an episode
            raise AssertionError("no open episode for a fresh event")
        if cur in new_members:
            new_members[cur].append(e)
        rows.append((e.rid, cur))
        touched[cur] = None
    tables.assign_episodes(store, rows)
    set_mark(store, "episode_counter", counter)
    if cur is not None:
        tables.set_text_mark(store, "open_episode", cur)
    for ep in closed:
        touched[ep] = None
    late_eps = {ep for _, ep in rows[: len(late)]}
    return list(touched), closed, {ep: m for ep, m in new_members.items() if ep not in late_eps}


def refresh_episodes(
    store: Store,
    episodes: Sequence[str],
    summarizer: Summarizer,
    seq: int,
    known: dict[str, list[EventRecord]] | None = None,
) -> int:
    """Recompute the summary, vector and span of each episode from its events.

    ``known`` holds the whole membership of episodes that began in this batch (no need to read it back).
    """
    if not episodes:
        return 0
    open_id = tables.text_mark(store, "open_episode")
    old = {n.id: n for n in tables.nodes_by_id(store, episodes)}
    known = {ep: evs for ep, evs in (known or {}).items() if ep not in old}
    members = {**episode_members(store, [ep for ep in episodes if ep not in known]), **known}
    nodes = []
    for ep in episodes:
        prev = old.get(ep)
        node = _episode_node(ep, members[ep], summarizer, ep == open_id, prev.parent if prev else None)
        node.archived = prev.archived if prev else False
        nodes.append(node)
    return write_nodes(store, nodes, seq)


# -- arcs ------------------------------------------------------------------------------------
def arc_node(
    nid: str, level: int, children: list[GraphNode], summarizer: Summarizer, old: GraphNode | None
) -> GraphNode:
    children.sort(key=lambda n: (n.t_start, n.id))
    weights = [float(c.data.get("n", 1)) for c in children]
    leads = [c.data.get("lead") or c.summary for c in children]
    vecs = [c.vec for c in children]
    X = stacked(vecs)
    data = {
        "n": int(sum(weights)),
        "children": len(children),
        "lead": leads[central_order(X if X is not None else word_vectors(leads))[0]],
    }
    label = f"{children[0].label} … {children[-1].label}" if len(children) > 1 else children[0].label
    return GraphNode(
        nid,
        "arc",
        level,
        label[:120],
        children[0].t_start,
        max(c.t_end or 0 for c in children),
        summarizer.summarize(leads, X),
        centroid(vecs, weights),
        data,
        old.parent if old else None,
        old.archived if old else False,
    )


def assign_arcs(store: Store, closed: Sequence[str], rule: ArcRule, summarizer: Summarizer, seq: int) -> list[str]:
    """Put closed episodes into arcs, then roll full levels up; returns the arcs written."""
    if not closed:
        return []
    episodes = sorted(tables.nodes_by_id(store, closed), key=lambda n: (n.t_start, n.id))
    open_arc = tables.text_mark(store, "open_arc")
    old = {}
    cur, kids = None, []
    if open_arc is not None:
        old[open_arc] = tables.nodes_by_id(store, [open_arc])[0]
        cur, kids = open_arc, tables.child_episodes(store, open_arc)
    counter = int(get_mark(store, "arc_counter"))
    members: dict[str, list[GraphNode]] = {}
    for ep in episodes:
        if ep.parent is not None:
            continue
        mean = centroid([k.vec for k in kids], [float(k.data.get("n", 1)) for k in kids]) if kids else None
        if (
            cur is None
            or len(kids) >= rule.max_episodes
            or (
                len(kids) >= 2
                and ep.vec is not None
                and mean is not None
                and float(ep.vec @ mean) < rule.shift_threshold
            )
        ):
            counter += 1
            cur, kids = f"arc:{counter}", []
        ep.parent = cur
        kids.append(ep)
        members[cur] = kids
    write_nodes(store, episodes, seq)
    set_mark(store, "arc_counter", counter)
    tables.set_text_mark(store, "open_arc", cur)
    write_nodes(store, [arc_node(a, 2, list(ks), summarizer, old.get(a)) for a, ks in members.items()], seq)
    return [*members, *roll_up_arcs(store, rule, summarizer, seq)]


def roll_up_arcs(store: Store, rule: ArcRule, summarizer: Summarizer, seq: int) -> list[str]:
    """Give each ``fanout`` closed parentless arcs of a level a parent one level up, level by level."""
    open_arc = tables.text_mark(store, "open_arc") or ""
    made: list[str] = []
    top = tables.top_arc_level(store)
    level = 2
    while level <= top:
        roots = tables.root_arcs(store, level, besides=open_arc)
        roots.sort(key=lambda n: (n.t_start, n.id))
        while len(roots) >= rule.fanout:
            group, roots = roots[: rule.fanout], roots[rule.fanout :]
            counter = int(get_mark(store, "arc_counter")) + 1
            set_mark(store, "arc_counter", counter)
            parent = arc_node(f"arc:{counter}", level + 1, group, summarizer, None)
            for g in group:
                g.parent = parent.id
            write_nodes(store, [*group, parent], seq)
            made.append(parent.id)
            top = max(top, level + 1)
        level += 1
    return made


# -- communities -----------------------------------------------------------------------------
def entity_graph(store: Store, canonical: dict[str, str]) -> nx.Graph:
    """Undirected weighted graph of canonical entities from the active relation edges."""
    G = nx.Graph()
    G.add_nodes_from(sorted(set(canonical.values())))
    for src, dst, w in tables.active_relation_edges(store):
        a, b = canonical.get(src[7:]), canonical.get(dst[7:])
        if a is None or b is None or a == b:
            continue
        G.add_edge(a, b, weight=G.get_edge_data(a, b, {"weight": 0.0})["weight"] + w)
    return G


def detect_communities(G: nx.Graph, seed: int = 0, resolution: float = 1.0, min_size: int = 2) -> list[list[str]]:
    """Louvain communities of at least ``min_size`` entities, largest first (ties by first member).

    Examples
    --------
    >>> G = nx.Graph([("a", "b"), ("b", "c"), ("a", "c"), ("x", "y"), ("y", "z"), ("x", "z"), ("c", "x")])
    >>> detect_communities(G)
    [['a', 'b', 'c'], ['x', 'y', 'z']]
    """
    if G.number_of_edges() == 0:
        return []
    parts = nx.community.louvain_communities(G, weight="weight", resolution=resolution, seed=seed)
    groups = [sorted(p) for p in parts if len(p) >= min_size]
    return sorted(groups, key=lambda g: (-len(g), g[0]))
