"""Reads and small writes of the graph's tables for search, the hierarchy and exploration.

With :mod:`graph.persist` (node and edge writes, marks, generic reads) and
:mod:`graph.journal` (compression and restore) this is the graph's storage:
its SQL lives in these three modules, with bound values.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from agentmem.storage.sql import chunks, marks, rows_in
from graph.persist import EventRecord, GraphNode, read_events, read_nodes


def nodes_by_id(conn: sqlite3.Connection, ids: Sequence[str]) -> list[GraphNode]:
    """The nodes with these ids (read in chunks; each chunk in (level, t_start, id) order)."""
    return [n for chunk in chunks(list(ids), 400) for n in read_nodes(conn, f"id IN ({marks(len(chunk))})", chunk)]


def children_of(conn: sqlite3.Connection, parents: Sequence[str]) -> list[GraphNode]:
    """The nodes whose parent is one of ``parents``."""
    return read_nodes(conn, f"parent IN ({marks(len(parents))})", list(parents))


def parent_nodes(conn: sqlite3.Connection, include_archive: bool) -> list[GraphNode]:
    """Episodes and arcs (active ones unless the archive is included)."""
    arch = "" if include_archive else " AND archived=0"
    return read_nodes(conn, f"type IN ('episode', 'arc'){arch}")


def episodes_under(conn: sqlite3.Connection, nid: str) -> list[str]:
    """Every episode below node ``nid``, through nested arcs."""
    out, frontier = [], [nid]
    while frontier:
        rows = conn.execute(
            f"SELECT id, type FROM graph_nodes WHERE parent IN ({marks(len(frontier))})", frontier
        ).fetchall()
        out += [i for i, t in rows if t == "episode"]
        frontier = [i for i, t in rows if t == "arc"]
    return out


def child_ids(conn: sqlite3.Connection, nid: str) -> list[str]:
    return [r[0] for r in conn.execute("SELECT id FROM graph_nodes WHERE parent=? ORDER BY t_start, id", (nid,))]


def episode_events(
    conn: sqlite3.Connection, episode: str, *, include_archive: bool, as_of: float | None
) -> list[EventRecord]:
    """The events of ``episode`` in story order (active unless the archive is included, started by ``as_of``)."""
    where = "e.rid IN (SELECT rid FROM graph_event_episode WHERE episode=?)"
    args: tuple = (episode,)
    if not include_archive:
        where += " AND e.archived=0"
    if as_of is not None:
        where += " AND e.t_start <= ?"
        args = (episode, float(as_of))
    return read_events(conn, where, args, order="e.t_start, e.rid")


def has_archived_events(conn: sqlite3.Connection, episode: str) -> bool:
    return (
        conn.execute(
            "SELECT 1 FROM graph_event_episode g JOIN events e ON e.rid=g.rid WHERE g.episode=? AND "
            "e.archived=1 LIMIT 1",
            (episode,),
        ).fetchone()
        is not None
    )


def episode_turns(conn: sqlite3.Connection, episodes: Sequence[str]) -> list[tuple[str, dict, float, int]]:
    """(event id, provenance, t_start, rid) of every event of ``episodes``, in story order."""
    rows = [
        (r[0], json.loads(r[1]), r[2], r[3])
        for r in rows_in(
            conn,
            "SELECT e.id, e.provenance, e.t_start, e.rid FROM graph_event_episode g JOIN events e ON e.rid=g.rid "
            "WHERE g.episode IN ({in})",
            list(episodes),
            size=400,
        )
    ]
    return sorted(rows, key=lambda r: (r[2], r[3]))


def member_rids(conn: sqlite3.Connection, entity_ids: Sequence[str], floor: int) -> set[int]:
    """Events of any of ``entity_ids`` with row id ``floor`` or above."""
    return {
        r[0]
        for r in conn.execute(
            f"SELECT rid FROM event_entities WHERE entity_id IN ({marks(len(entity_ids))}) AND rid >= ?",
            [*entity_ids, floor],
        )
    }


def ids_of(conn: sqlite3.Connection, rids: Sequence[int]) -> list[str]:
    """Event ids of ``rids``, in that order (unknown rows left out)."""
    out = dict(rows_in(conn, "SELECT rid, id FROM events WHERE rid IN ({in})", list(rids)))
    return [out[r] for r in rids if r in out]


def episode_neighbours(conn: sqlite3.Connection, event_id: str, *, include_archive: bool) -> list[tuple[str, int]]:
    """(id, rid) of the previous and the next event of ``event_id`` in its episode, as far as they exist."""
    row = conn.execute(
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
        r = conn.execute(
            f"SELECT e.id, e.rid FROM events e JOIN graph_event_episode g ON g.rid=e.rid WHERE "
            f"g.episode=?{arch} AND {cond} LIMIT 1",
            (ep, t, t, rid),
        ).fetchone()
        if r is not None:
            out.append((r[0], r[1]))
    return out


def timeline_rows(
    conn: sqlite3.Connection,
    entity_ids: Sequence[str],
    *,
    t0: float | None,
    t1: float | None,
    include_archive: bool,
    limit: int,
) -> list[tuple]:
    """(id, t_start, t_end, text, location, episode, archived) of the entities' events in story order."""
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
    return conn.execute(sql + " ORDER BY e.t_start, e.rid LIMIT ?", [*args, limit]).fetchall()


def graph_counts(conn: sqlite3.Connection) -> dict:
    """Nodes and edges by type, active and archived, and the number of compression runs."""

    def pair(sql: str, args: tuple = ()) -> dict[str, int]:
        rows = dict(conn.execute(sql, args).fetchall())
        return {"active": int(rows.get(0, 0)), "archived": int(rows.get(1, 0))}

    nodes = {
        "entity": {
            "active": conn.execute("SELECT COUNT(*) FROM entities WHERE merged_into IS NULL").fetchone()[0],
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
            "active": conn.execute("SELECT COUNT(*) FROM graph_event_episode").fetchone()[0]
            + conn.execute("SELECT COUNT(*) FROM graph_nodes WHERE parent IS NOT NULL").fetchone()[0],
            "archived": 0,
        },
    }
    for (pred,) in conn.execute("SELECT DISTINCT predicate FROM graph_edges WHERE type='relation' ORDER BY 1"):
        edges[f"relation:{pred}"] = pair(
            "SELECT archived, COUNT(*) FROM graph_edges WHERE type='relation' AND predicate=? GROUP BY archived",
            (pred,),
        )
    edges["member_of"] = pair("SELECT archived, COUNT(*) FROM graph_edges WHERE type='member_of' GROUP BY archived")
    runs = conn.execute("SELECT COUNT(*), MAX(id) FROM graph_runs").fetchone()
    return {"nodes": nodes, "edges": edges, "runs": runs[0], "last_run": runs[1]}


def active_communities(conn: sqlite3.Connection) -> list[GraphNode]:
    return read_nodes(conn, "type='community' AND archived=0")


def events_by_rids(conn: sqlite3.Connection, rids: Sequence[int]) -> list[EventRecord]:
    return read_events(conn, f"e.rid IN ({marks(len(rids))})", list(rids))


def text_mark(conn: sqlite3.Connection, name: str) -> str | None:
    """A graph bookmark holding an id (the open episode or arc), or ``None``."""
    row = conn.execute("SELECT value FROM meta WHERE key=?", (f"graph.{name}",)).fetchone()
    return row[0] if row else None


def set_text_mark(conn: sqlite3.Connection, name: str, value: str | None) -> None:
    conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (f"graph.{name}", value))


def episode_of_events(conn: sqlite3.Connection, episodes: Sequence[str]) -> dict[int, str]:
    """Event rid -> episode, for the events of ``episodes``."""
    return dict(
        conn.execute(
            f"SELECT rid, episode FROM graph_event_episode WHERE episode IN ({marks(len(episodes))})", list(episodes)
        )
    )


def episode_at(conn: sqlite3.Connection, t: float) -> str:
    """The episode that started last at or before ``t``, else the first one."""
    row = conn.execute(
        "SELECT id FROM graph_nodes WHERE type='episode' AND t_start<=? ORDER BY t_start DESC, id DESC LIMIT 1", (t,)
    ).fetchone()
    if row:
        return row[0]
    return conn.execute("SELECT id FROM graph_nodes WHERE type='episode' ORDER BY t_start, id LIMIT 1").fetchone()[0]


def assign_episodes(conn: sqlite3.Connection, rows: Sequence[tuple[int, str]]) -> None:
    """Put each (event rid, episode) in its episode."""
    conn.executemany("INSERT OR REPLACE INTO graph_event_episode(rid, episode) VALUES (?, ?)", rows)


def top_arc_level(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COALESCE(MAX(level), 0) FROM graph_nodes WHERE type='arc'").fetchone()[0])


def active_relation_edges(conn: sqlite3.Connection) -> list[tuple[str, str, float]]:
    """(src, dst, weight) of active relation edges, in insertion order."""
    return conn.execute(
        "SELECT src, dst, weight FROM graph_edges WHERE type='relation' AND archived=0 ORDER BY id"
    ).fetchall()


def episode_members(conn: sqlite3.Connection, episodes: Sequence[str]) -> dict[str, list[EventRecord]]:
    """The events of each episode (without provenance), in rid order."""
    out: dict[str, list[EventRecord]] = {ep: [] for ep in episodes}
    eps = list(episodes)
    for chunk in chunks(eps, 400):
        by_rid = episode_of_events(conn, chunk)
        recs = read_events(
            conn,
            f"e.rid IN (SELECT rid FROM graph_event_episode WHERE episode IN ({marks(len(chunk))}))",
            chunk,
            provenance=False,
        )
        for e in recs:
            out[by_rid[e.rid]].append(e)
    return out


def child_episodes(conn: sqlite3.Connection, arc: str) -> list[GraphNode]:
    return read_nodes(conn, "parent=? AND type='episode'", (arc,))


def archived_count(conn: sqlite3.Connection) -> int:
    """Journal rows of compression not yet restored."""
    return conn.execute("SELECT COUNT(*) FROM graph_archive").fetchone()[0]


def clear_derived(conn: sqlite3.Connection) -> None:
    """Empty the derived graph tables and bookmarks (the write sequence stays), for a rebuild."""
    for table in ("graph_nodes", "graph_edges", "graph_event_episode"):
        conn.execute(f"DELETE FROM {table}")
    conn.execute("DELETE FROM meta WHERE key LIKE 'graph.%' AND key NOT IN ('graph.seq')")


def episodes_of_rid_range(conn: sqlite3.Connection, lo: int, hi: int) -> dict[int, str]:
    """Event rid -> episode for events with rid in [lo, hi]."""
    return dict(
        conn.execute("SELECT rid, episode FROM graph_event_episode WHERE rid BETWEEN ? AND ?", (lo, hi)).fetchall()
    )


def any_event_after_rid_before(conn: sqlite3.Connection, rid: int, t: float) -> bool:
    """Whether an event stored after row ``rid`` starts before ``t`` (a late arrival)."""
    return conn.execute("SELECT COUNT(*) FROM events WHERE rid > ? AND t_start < ?", (rid, t)).fetchone()[0] > 0
