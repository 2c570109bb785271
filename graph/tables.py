"""Named reads and small writes of the graph's tables, for building, search, the hierarchy and exploration.

With :mod:`graph.persist` (node and edge writes, marks, generic reads) and
:mod:`graph.journal` (compression and restore) this is the graph's storage:
its SQL lives in these three modules, with bound values. The other graph
modules call these functions with the store; none of them writes SQL.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from agentmem.storage.sql import chunks, marks, rows_in
from graph.persist import EventRecord, GraphEdge, GraphNode, read_edges, read_events, read_nodes

if TYPE_CHECKING:
    from agentmem.storage.store import Store


class Turn(NamedTuple):
    """An event of an episode: id, provenance, start and row id."""

    id: str
    provenance: dict[str, Any]
    t_start: float
    rid: int


class EventRef(NamedTuple):
    """An event's id and row id."""

    id: str
    rid: int


class TimelineRow(NamedTuple):
    """An event on an entity's timeline, with the episode it belongs to (``None`` before the graph has it)."""

    id: str
    t_start: float
    t_end: float
    text: str
    location: str | None
    episode: str | None
    archived: bool


class WeightedEnds(NamedTuple):
    """The ends (node ids) and weight of an edge."""

    src: str
    dst: str
    weight: float


def _active(include_archive: bool, prefix: str = "") -> str:
    """The condition that leaves archived rows out (none when the archive is included)."""
    return "" if include_archive else f" AND {prefix}archived=0"


# -- events ---------------------------------------------------------------------------------
def events_after(store: Store, rid: int, limit: int) -> list[EventRecord]:
    """The first ``limit`` events stored after row ``rid``, in row order."""
    return read_events(store, "e.rid > ?", (rid,), limit=limit)


def view_events(
    store: Store, after_rid: int, *, include_archive: bool, t0: float | None, t1: float | None
) -> list[EventRecord]:
    """Events stored after row ``after_rid`` (active unless the archive is included, overlapping [t0, t1] where
    given) in story order."""
    where = "e.rid > ?" + _active(include_archive, "e.")
    args: list[float] = [after_rid]
    if t0 is not None:
        where += " AND e.t_end >= ?"
        args.append(float(t0))
    if t1 is not None:
        where += " AND e.t_start <= ?"
        args.append(float(t1))
    return read_events(store, where, args, order="e.t_start, e.rid")


def episode_tail(store: Store, episode: str, n: int) -> list[EventRecord]:
    """The last ``n`` events of ``episode`` (without provenance), in story order."""
    newest = read_events(
        store,
        "e.rid IN (SELECT rid FROM graph_event_episode WHERE episode=?)",
        (episode,),
        order="e.t_start DESC, e.rid DESC",
        limit=n,
        provenance=False,
    )
    return newest[::-1]


# -- nodes ----------------------------------------------------------------------------------
def nodes(store: Store, *, include_archive: bool) -> list[GraphNode]:
    """Every episode, arc and community (active ones unless the archive is included)."""
    return read_nodes(store, "1=1" + _active(include_archive))


def nodes_since(store: Store, seq: int, *, include_archive: bool) -> list[GraphNode]:
    """The nodes written after write ``seq`` (active ones unless the archive is included)."""
    return read_nodes(store, "seq > ?" + _active(include_archive), (seq,))


def root_arcs(store: Store, level: int, *, besides: str) -> list[GraphNode]:
    """The arcs of ``level`` without a parent, other than ``besides`` (the open arc)."""
    return read_nodes(store, "type='arc' AND level=? AND parent IS NULL AND id<>?", (level, besides))


def nodes_by_id(store: Store, ids: Sequence[str]) -> list[GraphNode]:
    """The nodes with these ids (read in chunks; each chunk in (level, t_start, id) order)."""
    return [n for chunk in chunks(list(ids), 400) for n in read_nodes(store, f"id IN ({marks(len(chunk))})", chunk)]


def children_of(store: Store, parents: Sequence[str]) -> list[GraphNode]:
    """The nodes whose parent is one of ``parents``."""
    return read_nodes(store, f"parent IN ({marks(len(parents))})", list(parents))


def parent_nodes(store: Store, include_archive: bool) -> list[GraphNode]:
    """Episodes and arcs (active ones unless the archive is included)."""
    return read_nodes(store, "type IN ('episode', 'arc')" + _active(include_archive))


def episodes_under(store: Store, nid: str) -> list[str]:
    """Every episode below node ``nid``, through nested arcs."""
    out, frontier = [], [nid]
    while frontier:
        rows = store.conn.execute(
            f"SELECT id, type FROM graph_nodes WHERE parent IN ({marks(len(frontier))})", frontier
        ).fetchall()
        out += [i for i, t in rows if t == "episode"]
        frontier = [i for i, t in rows if t == "arc"]
    return out


def child_ids(store: Store, nid: str) -> list[str]:
    return [r[0] for r in store.conn.execute("SELECT id FROM graph_nodes WHERE parent=? ORDER BY t_start, id", (nid,))]


def episode_events(store: Store, episode: str, *, include_archive: bool, as_of: float | None) -> list[EventRecord]:
    """The events of ``episode`` in story order (active unless the archive is included, started by ``as_of``)."""
    where = "e.rid IN (SELECT rid FROM graph_event_episode WHERE episode=?)"
    args: tuple = (episode,)
    if not include_archive:
        where += " AND e.archived=0"
    if as_of is not None:
        where += " AND e.t_start <= ?"
        args = (episode, float(as_of))
    return read_events(store, where, args, order="e.t_start, e.rid")


def has_archived_events(store: Store, episode: str) -> bool:
    return (
        store.conn.execute(
            "SELECT 1 FROM graph_event_episode g JOIN events e ON e.rid=g.rid WHERE g.episode=? AND "
            "e.archived=1 LIMIT 1",
            (episode,),
        ).fetchone()
        is not None
    )


def episode_turns(store: Store, episodes: Sequence[str]) -> list[Turn]:
    """Every event of ``episodes``, in story order."""
    rows = [
        Turn(r[0], json.loads(r[1]), r[2], r[3])
        for r in rows_in(
            store.conn,
            "SELECT e.id, e.provenance, e.t_start, e.rid FROM graph_event_episode g JOIN events e ON e.rid=g.rid "
            "WHERE g.episode IN ({in})",
            list(episodes),
            size=400,
        )
    ]
    return sorted(rows, key=lambda r: (r.t_start, r.rid))


def member_rids(store: Store, entity_ids: Sequence[str], floor: int) -> set[int]:
    """Events of any of ``entity_ids`` with row id ``floor`` or above."""
    return {
        r[0]
        for r in store.conn.execute(
            f"SELECT rid FROM event_entities WHERE entity_id IN ({marks(len(entity_ids))}) AND rid >= ?",
            [*entity_ids, floor],
        )
    }


def ids_of(store: Store, rids: Sequence[int]) -> list[str]:
    """Event ids of ``rids``, in that order (unknown rows left out)."""
    out = dict(rows_in(store.conn, "SELECT rid, id FROM events WHERE rid IN ({in})", list(rids)))
    return [out[r] for r in rids if r in out]


def episode_neighbours(store: Store, event_id: str, *, include_archive: bool) -> list[EventRef]:
    """The previous and the next event of ``event_id`` in its episode, as far as they exist."""
    row = store.conn.execute(
        "SELECT g.episode, e.t_start, e.rid FROM events e JOIN graph_event_episode g ON g.rid=e.rid WHERE e.id=?",
        (event_id,),
    ).fetchone()
    if row is None:
        return []
    ep, t, rid = row
    arch = "" if include_archive else " AND e.archived=0"
    out = []
    for cond in (
        "(e.t_start<? OR (e.t_start=? AND e.rid<?)) ORDER BY e.t_start DESC, e.rid DESC",
        "(e.t_start>? OR (e.t_start=? AND e.rid>?)) ORDER BY e.t_start, e.rid",
    ):
        r = store.conn.execute(
            f"SELECT e.id, e.rid FROM events e JOIN graph_event_episode g ON g.rid=e.rid WHERE "
            f"g.episode=?{arch} AND {cond} LIMIT 1",
            (ep, t, t, rid),
        ).fetchone()
        if r is not None:
            out.append(EventRef(r[0], r[1]))
    return out


def timeline_rows(
    store: Store,
    entity_ids: Sequence[str],
    *,
    t0: float | None,
    t1: float | None,
    include_archive: bool,
    limit: int,
) -> list[TimelineRow]:
    """The entities' events in story order (at most ``limit``)."""
    sql = (
        f"SELECT DISTINCT e.id, e.t_start, e.t_end, e.text, e.location, g.episode, e.archived "
        f"FROM event_entities ee JOIN events e ON e.rid=ee.rid LEFT JOIN graph_event_episode g ON g.rid=e.rid "
        f"WHERE ee.entity_id IN ({marks(len(entity_ids))})"
    )
    args: list = list(entity_ids)
    if not include_archive:
        sql += " AND e.archived=0"
    if t0 is not None:
        sql += " AND e.t_end >= ?"
        args.append(t0)
    if t1 is not None:
        sql += " AND e.t_start <= ?"
        args.append(t1)
    rows = store.conn.execute(sql + " ORDER BY e.t_start, e.rid LIMIT ?", [*args, limit])
    return [TimelineRow(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6])) for r in rows]


def graph_counts(store: Store) -> dict:
    """Nodes and edges by type, active and archived, and the number of compression runs."""

    def pair(sql: str, args: tuple = ()) -> dict[str, int]:
        rows = dict(store.conn.execute(sql, args).fetchall())
        return {"active": int(rows.get(0, 0)), "archived": int(rows.get(1, 0))}

    nodes = {
        "entity": {
            "active": store.conn.execute("SELECT COUNT(*) FROM entities WHERE merged_into IS NULL").fetchone()[0],
            "archived": 0,
        },
        "event": pair("SELECT archived, COUNT(*) FROM events GROUP BY archived"),
    }
    for kind in ("episode", "arc", "community"):
        nodes[kind] = pair("SELECT archived, COUNT(*) FROM graph_nodes WHERE type=? GROUP BY archived", (kind,))
    edges = {
        "participates_in": pair(
            "SELECT e.archived, COUNT(*) FROM event_entities ee JOIN events e ON e.rid=ee.rid "
            "WHERE ee.role='participant' GROUP BY e.archived"
        ),
        "located_at": pair(
            "SELECT e.archived, COUNT(*) FROM event_entities ee JOIN events e ON e.rid=ee.rid "
            "WHERE ee.role='location' GROUP BY e.archived"
        ),
        "summarizes": {
            "active": store.conn.execute("SELECT COUNT(*) FROM graph_event_episode").fetchone()[0]
            + store.conn.execute("SELECT COUNT(*) FROM graph_nodes WHERE parent IS NOT NULL").fetchone()[0],
            "archived": 0,
        },
    }
    for (pred,) in store.conn.execute("SELECT DISTINCT predicate FROM graph_edges WHERE type='relation' ORDER BY 1"):
        edges[f"relation:{pred}"] = pair(
            "SELECT archived, COUNT(*) FROM graph_edges WHERE type='relation' AND predicate=? GROUP BY archived",
            (pred,),
        )
    edges["member_of"] = pair("SELECT archived, COUNT(*) FROM graph_edges WHERE type='member_of' GROUP BY archived")
    runs = store.conn.execute("SELECT COUNT(*), MAX(id) FROM graph_runs").fetchone()
    return {"nodes": nodes, "edges": edges, "runs": runs[0], "last_run": runs[1]}


def active_communities(store: Store) -> list[GraphNode]:
    return read_nodes(store, "type='community' AND archived=0")


def events_by_rids(store: Store, rids: Sequence[int]) -> list[EventRecord]:
    return read_events(store, f"e.rid IN ({marks(len(rids))})", list(rids))


def text_mark(store: Store, name: str) -> str | None:
    """A graph bookmark holding an id (the open episode or arc), or ``None``."""
    row = store.conn.execute("SELECT value FROM meta WHERE key=?", (f"graph.{name}",)).fetchone()
    return row[0] if row else None


def set_text_mark(store: Store, name: str, value: str | None) -> None:
    store.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (f"graph.{name}", value))


def episode_of_events(store: Store, episodes: Sequence[str]) -> dict[int, str]:
    """Event rid -> episode, for the events of ``episodes``."""
    return dict(
        store.conn.execute(
            f"SELECT rid, episode FROM graph_event_episode WHERE episode IN ({marks(len(episodes))})", list(episodes)
        )
    )


def episode_at(store: Store, t: float) -> str:
    """The episode that started last at or before ``t``, else the first one."""
    row = store.conn.execute(
        "SELECT id FROM graph_nodes WHERE type='episode' AND t_start<=? ORDER BY t_start DESC, id DESC LIMIT 1", (t,)
    ).fetchone()
    if row:
        return row[0]
    return store.conn.execute(
        "SELECT id FROM graph_nodes WHERE type='episode' ORDER BY t_start, id LIMIT 1"
    ).fetchone()[0]


def assign_episodes(store: Store, rows: Sequence[tuple[int, str]]) -> None:
    """Put each (event rid, episode) in its episode."""
    store.conn.executemany("INSERT OR REPLACE INTO graph_event_episode(rid, episode) VALUES (?, ?)", rows)


def top_arc_level(store: Store) -> int:
    return int(store.conn.execute("SELECT COALESCE(MAX(level), 0) FROM graph_nodes WHERE type='arc'").fetchone()[0])


def active_relation_edges(store: Store) -> list[WeightedEnds]:
    """The ends and weight of the active relation edges, in insertion order."""
    sql = "SELECT src, dst, weight FROM graph_edges WHERE type='relation' AND archived=0 ORDER BY id"
    return [WeightedEnds(*r) for r in store.conn.execute(sql)]


def episode_members(store: Store, episodes: Sequence[str]) -> dict[str, list[EventRecord]]:
    """The events of each episode (without provenance), in rid order."""
    out: dict[str, list[EventRecord]] = {ep: [] for ep in episodes}
    eps = list(episodes)
    for chunk in chunks(eps, 400):
        by_rid = episode_of_events(store, chunk)
        recs = read_events(
            store,
            f"e.rid IN (SELECT rid FROM graph_event_episode WHERE episode IN ({marks(len(chunk))}))",
            chunk,
            provenance=False,
        )
        for e in recs:
            out[by_rid[e.rid]].append(e)
    return out


def child_episodes(store: Store, arc: str) -> list[GraphNode]:
    return read_nodes(store, "parent=? AND type='episode'", (arc,))


def archived_count(store: Store) -> int:
    """Journal rows of compression not yet restored."""
    return store.conn.execute("SELECT COUNT(*) FROM graph_archive").fetchone()[0]


def clear_derived(store: Store) -> None:
    """Empty the derived graph tables and bookmarks (the write sequence stays), for a rebuild."""
    for table in ("graph_nodes", "graph_edges", "graph_event_episode"):
        store.conn.execute(f"DELETE FROM {table}")
    store.conn.execute("DELETE FROM meta WHERE key LIKE 'graph.%' AND key NOT IN ('graph.seq')")


def episodes_of_rid_range(store: Store, lo: int, hi: int) -> dict[int, str]:
    """Event rid -> episode for events with rid in [lo, hi]."""
    return dict(
        store.conn.execute(
            "SELECT rid, episode FROM graph_event_episode WHERE rid BETWEEN ? AND ?", (lo, hi)
        ).fetchall()
    )


def any_event_after_rid_before(store: Store, rid: int, t: float) -> bool:
    """Whether an event stored after row ``rid`` starts before ``t`` (a late arrival)."""
    return store.conn.execute("SELECT COUNT(*) FROM events WHERE rid > ? AND t_start < ?", (rid, t)).fetchone()[0] > 0


# -- edges ----------------------------------------------------------------------------------
def edges(store: Store, *, include_archive: bool) -> list[GraphEdge]:
    """Every edge (active ones unless the archive is included), in insertion order."""
    return read_edges(store, "1=1" + _active(include_archive))


def edges_since(store: Store, seq: int, *, include_archive: bool) -> list[GraphEdge]:
    """The edges written after write ``seq`` (active ones unless the archive is included), in insertion order."""
    return read_edges(store, "seq > ?" + _active(include_archive), (seq,))


def edges_with_predicate(
    store: Store, srcs: Sequence[str], predicate: str, *, include_archive: bool
) -> list[GraphEdge]:
    """The edges of any type from ``srcs`` with ``predicate`` (active ones unless the archive is included)."""
    where = f"src IN ({marks(len(srcs))}) AND predicate=?" + _active(include_archive)
    return read_edges(store, where, (*srcs, predicate))


def relation_edges(store: Store, src: str, predicate: str) -> list[GraphEdge]:
    """The relation edges from ``src`` with ``predicate``, archived ones included."""
    return read_edges(store, "src=? AND type='relation' AND predicate=?", (src, predicate))


def relation_edges_from(store: Store, srcs: Sequence[str], predicates: Sequence[str]) -> list[GraphEdge]:
    """The relation edges from any of ``srcs`` with any of ``predicates``, archived ones included (read in chunks
    of sources; each chunk in insertion order)."""
    preds = list(predicates)
    return [
        e
        for chunk in chunks(list(srcs), 400)
        for e in read_edges(
            store,
            f"type='relation' AND predicate IN ({marks(len(preds))}) AND src IN ({marks(len(chunk))})",
            [*preds, *chunk],
        )
    ]


def relation_edges_touching(
    store: Store, ends: Sequence[str], *, include_archive: bool, predicate: str | None = None
) -> list[GraphEdge]:
    """The relation edges from or to any of ``ends`` (active ones unless the archive is included; of
    ``predicate`` only, if given), in insertion order."""
    ph = marks(len(ends))
    where = f"type='relation' AND (src IN ({ph}) OR dst IN ({ph}))" + _active(include_archive)
    args: list = [*ends, *ends]
    if predicate:
        where += " AND predicate=?"
        args.append(predicate)
    return read_edges(store, where, args)


def active_relations(store: Store) -> list[GraphEdge]:
    """The active relation edges, in insertion order."""
    return read_edges(store, "type='relation' AND archived=0")
