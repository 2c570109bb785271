"""Compression's tables: runs and their journal, archive flags, and the reads its steps decide on.

Every change a compression run makes is journalled in ``graph_archive`` (run,
kind, ref, payload) before it is made, which is what :mod:`graph.archive`
restores from. The SQL of :mod:`graph.compress` lives here, with bound values.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, NamedTuple

from agentmem.storage.sql import chunks, marks
from graph.persist import get_mark, set_mark

if TYPE_CHECKING:
    from agentmem.storage.store import Store


class EdgeStrength(NamedTuple):
    """What decay needs of an edge: its id, weight and the time of its latest evidence."""

    id: int
    weight: float
    t_last: float


class EntityKind(NamedTuple):
    """An entity's id and kind."""

    id: str
    kind: str


class VectorCount(NamedTuple):
    """How many vectors of one modality an entity id has."""

    entity_id: str
    modality: str
    n: int


class EntityVector(NamedTuple):
    """A stored entity vector (float32 bytes) with where it came from and when."""

    id: int
    entity_id: str
    modality: str
    vec: bytes
    source: str | None
    t: float | None


def journal(store: Store, run: int, kind: str, items: Iterable[tuple[str | int, dict]], now: float) -> None:
    store.conn.executemany(
        "INSERT INTO graph_archive(run, kind, ref, payload, at) VALUES (?, ?, ?, ?, ?)",
        [(run, kind, str(ref), json.dumps(p, sort_keys=True), now) for ref, p in items],
    )


def start_run(store: Store, now: float, policy: dict) -> int:
    sql = "INSERT INTO graph_runs(started_at, policy) VALUES (?, ?)"
    return store.conn.execute(sql, (now, json.dumps(policy))).lastrowid or 0


def step_done(store: Store, run: int, step: str) -> None:
    steps = json.loads(store.conn.execute("SELECT steps FROM graph_runs WHERE id=?", (run,)).fetchone()[0])
    store.conn.execute("UPDATE graph_runs SET steps=? WHERE id=?", (json.dumps([*steps, step]), run))
    set_mark(store, "archive_version", get_mark(store, "archive_version") + 1)


def finish_run(store: Store, run: int, finished_at: float, report: dict) -> None:
    sql = "UPDATE graph_runs SET finished_at=?, report=? WHERE id=?"
    store.conn.execute(sql, (finished_at, json.dumps(report), run))


def active_counts(store: Store) -> dict[str, int]:
    """Active (non-archived) nodes by type, and active relation edges."""
    conn = store.conn
    row = conn.execute("SELECT value FROM meta WHERE key='graph.active_floor'").fetchone()
    floor = 0 if row is None else int(float(row[0]))
    out = {
        "events": conn.execute("SELECT COUNT(*) FROM events WHERE rid >= ? AND archived=0", (floor,)).fetchone()[0],
        "entities": conn.execute("SELECT COUNT(*) FROM entities WHERE merged_into IS NULL").fetchone()[0],
    }
    for kind, name in (("episode", "episodes"), ("arc", "arcs"), ("community", "communities")):
        out[name] = conn.execute("SELECT COUNT(*) FROM graph_nodes WHERE type=? AND archived=0", (kind,)).fetchone()[0]
    out["nodes"] = sum(out.values())
    out["edges"] = conn.execute("SELECT COUNT(*) FROM graph_edges WHERE archived=0").fetchone()[0]
    return out


# -- facts and edges ----------------------------------------------------------------------
def close_facts(store: Store, ends: Sequence[tuple[int, float]]) -> None:
    """Set ``t_to`` of each relation id."""
    store.conn.executemany("UPDATE relations SET t_to=? WHERE id=?", [(end, fid) for fid, end in ends])


def reinforced_edges(store: Store, inferred: Sequence[str]) -> int:
    """Active relation edges of stated predicates (not ``inferred``) with weight above 1."""
    return int(
        store.conn.execute(
            "SELECT COUNT(*) FROM graph_edges WHERE type='relation' AND archived=0 AND weight > 1 "
            f"AND predicate NOT IN ({marks(len(inferred))})",
            list(inferred),
        ).fetchone()[0]
    )


def latest_start(store: Store) -> float:
    return store.conn.execute("SELECT MAX(t_start) FROM events").fetchone()[0] or 0.0


def weak_edges(store: Store, max_weight: float, predicates: Sequence[str]) -> list[EdgeStrength]:
    """Active relation edges of ``predicates`` with weight at most ``max_weight``."""
    rows = store.conn.execute(
        f"SELECT id, weight, t_last FROM graph_edges WHERE type='relation' AND archived=0 AND weight <= ? "
        f"AND predicate IN ({marks(len(predicates))})",
        (max_weight, *predicates),
    )
    return [EdgeStrength(*r) for r in rows]


def set_edges_archived(store: Store, ids: Iterable[int]) -> None:
    store.conn.executemany("UPDATE graph_edges SET archived=1 WHERE id=?", [(i,) for i in ids])


def set_nodes_archived(store: Store, ids: Iterable[str]) -> None:
    store.conn.executemany("UPDATE graph_nodes SET archived=1 WHERE id=?", [(i,) for i in ids])


# -- entities -----------------------------------------------------------------------------
def canonical_entities_by_age(store: Store) -> list[EntityKind]:
    """The canonical entities, oldest first."""
    sql = "SELECT id, kind FROM entities WHERE merged_into IS NULL ORDER BY created_at, id"
    return [EntityKind(*r) for r in store.conn.execute(sql)]


def entities_updated_since(store: Store, since: float) -> set[str]:
    return {r[0] for r in store.conn.execute("SELECT id FROM entities WHERE updated_at > ?", (since,))}


def canonical_updated_at(store: Store, entity_id: str) -> float | None:
    """``updated_at`` of the entity if it is still canonical, else ``None``."""
    row = store.conn.execute(
        "SELECT updated_at FROM entities WHERE id=? AND merged_into IS NULL", (entity_id,)
    ).fetchone()
    return None if row is None else row[0]


def share_an_event(store: Store, a: Sequence[str], b: Sequence[str]) -> bool:
    """Whether an entity of ``a`` and one of ``b`` take part in one event."""
    row = store.conn.execute(
        f"SELECT 1 FROM event_entities x JOIN event_entities y ON x.rid=y.rid WHERE x.entity_id IN "
        f"({marks(len(a))}) AND y.entity_id IN ({marks(len(b))}) LIMIT 1",
        [*a, *b],
    ).fetchone()
    return row is not None


def vector_counts(store: Store) -> list[VectorCount]:
    """How many vectors of each modality each entity id has."""
    sql = "SELECT entity_id, modality, COUNT(*) FROM entity_vectors GROUP BY entity_id, modality"
    return [VectorCount(*r) for r in store.conn.execute(sql)]


def entity_vector_rows(store: Store, modality: str, entity_ids: Sequence[str]) -> list[EntityVector]:
    """The entities' vectors of ``modality``, in insertion order."""
    rows = store.conn.execute(
        f"SELECT id, entity_id, modality, vec, source, t FROM entity_vectors WHERE modality=? AND entity_id IN "
        f"({marks(len(entity_ids))}) ORDER BY id",
        [modality, *entity_ids],
    )
    return [EntityVector(*r) for r in rows]


def delete_entity_vectors(store: Store, ids: Iterable[int]) -> None:
    store.conn.executemany("DELETE FROM entity_vectors WHERE id=?", [(i,) for i in ids])


def entity_names(store: Store, ids: Sequence[str]) -> list[str]:
    return [store.conn.execute("SELECT name FROM entities WHERE id=?", (m,)).fetchone()[0] for m in ids]


# -- events and levels --------------------------------------------------------------------
def time_of_newest(store: Store, keep: int) -> float | None:
    """Start of the ``keep``-th newest event, or ``None`` when there are none."""
    row = store.conn.execute(
        "SELECT t_start FROM events ORDER BY t_start DESC LIMIT 1 OFFSET ?", (max(keep - 1, 0),)
    ).fetchone()
    return None if row is None else row[0]


def open_episode(store: Store) -> str:
    row = store.conn.execute("SELECT value FROM meta WHERE key='graph.open_episode'").fetchone()
    return row[0] if row else ""


def rollable_events(store: Store, floor: int, cutoff: float, open_ep: str) -> list[int]:
    """Active events at or above ``floor`` in closed episodes that ended before ``cutoff``."""
    return [
        r[0]
        for r in store.conn.execute(
            "SELECT e.rid FROM events e JOIN graph_event_episode g ON g.rid=e.rid JOIN graph_nodes n ON n.id=g.episode "
            "WHERE e.rid >= ? AND e.archived=0 AND n.t_end < ? AND n.id <> ?",
            (floor, cutoff, open_ep),
        )
    ]


def set_events_archived(store: Store, rids: Iterable[int]) -> None:
    store.conn.executemany("UPDATE events SET archived=1 WHERE rid=?", [(r,) for r in rids])


def summary_levels(store: Store) -> list[int]:
    return [
        r[0]
        for r in store.conn.execute(
            "SELECT DISTINCT level FROM graph_nodes WHERE type IN ('episode', 'arc') ORDER BY level"
        )
    ]


def old_nodes(store: Store, kind: str, level: int, keep: int) -> list[str]:
    """Active nodes with a parent at ``level`` beyond the newest ``keep``."""
    return [
        r[0]
        for r in store.conn.execute(
            "SELECT n.id FROM graph_nodes n WHERE n.type=? AND n.level=? AND n.archived=0 AND n.parent IS NOT NULL "
            "ORDER BY n.t_start DESC, n.id DESC LIMIT -1 OFFSET ?",
            (kind, level, keep),
        )
    ]


def episode_has_live_events(store: Store, episode: str, floor: int) -> bool:
    return (
        store.conn.execute(
            "SELECT 1 FROM graph_event_episode g JOIN events e ON e.rid=g.rid WHERE "
            "g.episode=? AND e.archived=0 AND e.rid >= ? LIMIT 1",
            (episode, floor),
        ).fetchone()
        is not None
    )


def arc_has_live_children(store: Store, arc: str) -> bool:
    row = store.conn.execute("SELECT 1 FROM graph_nodes WHERE parent=? AND archived=0 LIMIT 1", (arc,)).fetchone()
    return row is not None


# -- communities --------------------------------------------------------------------------
def active_member_edges(store: Store) -> list[int]:
    return [r[0] for r in store.conn.execute("SELECT id FROM graph_edges WHERE type='member_of' AND archived=0")]


def member_edges_of_seq(store: Store, seq: int) -> list[int]:
    return [r[0] for r in store.conn.execute("SELECT id FROM graph_edges WHERE type='member_of' AND seq=?", (seq,))]


def shared_event_rids(store: Store, entity_ids: Sequence[str], floor: int, limit: int = 64) -> list[int]:
    """The newest events at or above ``floor`` in which at least two of ``entity_ids`` take part."""
    return [
        r[0]
        for r in store.conn.execute(
            f"SELECT rid FROM event_entities WHERE entity_id IN ({marks(len(entity_ids))}) AND rid >= ? GROUP BY rid "
            f"HAVING COUNT(DISTINCT entity_id) >= 2 ORDER BY rid DESC LIMIT ?",
            [*entity_ids, floor, limit],
        )
    ]


# -- restore ------------------------------------------------------------------------------
def move_floor(store: Store, lower_to: int | None = None) -> None:
    """Keep the archive floor (lowest active event row id) and the context-index group floor current."""
    floor = int(get_mark(store, "active_floor"))
    if lower_to is not None:
        floor = min(floor, lower_to)
    row = store.conn.execute("SELECT MIN(rid) FROM events WHERE rid >= ? AND archived=0", (floor,)).fetchone()
    top = store.conn.execute("SELECT COALESCE(MAX(rid), 0) + 1 FROM events").fetchone()[0]
    floor = row[0] if row[0] is not None else top
    set_mark(store, "active_floor", floor)
    # The context index's group documents are numbered in order of first appearance: the same kind of floor.
    gfloor = store.conn.execute(
        "SELECT MIN(g.id) FROM groups g WHERE g.name IN (SELECT DISTINCT grp FROM events "
        "WHERE rid >= ? AND archived=0 AND grp IS NOT NULL)",
        (floor,),
    ).fetchone()[0]
    set_mark(store, "active_group_floor", gfloor or 0)


def archived_overlapping(store: Store, lo: float, hi: float) -> list[int]:
    """Archived events overlapping [lo, hi]."""
    return [
        r[0]
        for r in store.conn.execute("SELECT rid FROM events WHERE archived=1 AND t_start<=? AND t_end>=?", (hi, lo))
    ]


def unarchive_events(store: Store, rids: Sequence[int]) -> int:
    """Return archived events to the active tier, forget their journal rows; the number that came back."""
    n = 0
    for chunk in chunks(list(rids)):
        n += store.conn.execute(
            f"UPDATE events SET archived=0 WHERE archived=1 AND rid IN ({marks(len(chunk))})", chunk
        ).rowcount
        store.conn.execute(
            f"DELETE FROM graph_archive WHERE kind='event' AND ref IN ({marks(len(chunk))})", [str(r) for r in chunk]
        )
    if rids:
        move_floor(store, lower_to=rids[0])
    set_mark(store, "archive_version", get_mark(store, "archive_version") + 1)
    return n


def journalled_runs(store: Store) -> list[int]:
    """Runs with journal rows left, newest first."""
    return [r[0] for r in store.conn.execute("SELECT DISTINCT run FROM graph_archive ORDER BY run DESC")]


def run_exists(store: Store, run: int) -> bool:
    return store.conn.execute("SELECT 1 FROM graph_runs WHERE id=?", (run,)).fetchone() is not None


def undo_run(store, run: int) -> dict[str, int]:
    """Replay run ``run``'s journal backwards (inside the caller's transaction); returns what came back."""
    conn = store.conn
    rep = {"events": 0, "nodes": 0, "edges": 0, "facts_reopened": 0, "merges_undone": 0, "vectors": 0}
    rows = conn.execute(
        "SELECT kind, ref, payload FROM graph_archive WHERE run=? AND kind<>'event' ORDER BY id DESC", (run,)
    ).fetchall()
    lowest = conn.execute(
        "SELECT MIN(CAST(ref AS INTEGER)) FROM graph_archive WHERE run=? AND kind='event'", (run,)
    ).fetchone()[0]
    for kind, ref, payload in rows:
        p = json.loads(payload)
        if kind == "node":
            rep["nodes"] += conn.execute("UPDATE graph_nodes SET archived=0 WHERE id=?", (ref,)).rowcount
        elif kind == "edge":
            rep["edges"] += conn.execute("UPDATE graph_edges SET archived=0 WHERE id=?", (ref,)).rowcount
        elif kind == "node_new":
            conn.execute("DELETE FROM graph_nodes WHERE id=?", (ref,))
        elif kind == "edge_new":
            conn.execute("DELETE FROM graph_edges WHERE id=?", (int(ref),))
        elif kind == "relation_close":
            sql = "UPDATE relations SET t_to=? WHERE id=?"
            rep["facts_reopened"] += conn.execute(sql, (p["t_to"], int(ref))).rowcount
        elif kind == "merge":
            if store.merge(int(ref)).undone_at is None:
                store.undo_merge(int(ref), time.time())
            conn.execute("UPDATE entities SET updated_at=? WHERE id=?", (p["updated_at"], p["source"]))
            rep["merges_undone"] += 1
        elif kind == "entity_vector":
            conn.execute(
                "INSERT OR IGNORE INTO entity_vectors(id, entity_id, modality, vec, source, t) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (int(ref), p["entity_id"], p["modality"], base64.b64decode(p["vec"]), p["source"], p["t"]),
            )
            rep["vectors"] += 1
    rep["events"] += conn.execute(
        "UPDATE events SET archived=0 WHERE rid IN (SELECT CAST(ref AS INTEGER) FROM "
        "graph_archive WHERE run=? AND kind='event')",
        (run,),
    ).rowcount
    conn.execute("DELETE FROM graph_archive WHERE run=?", (run,))
    conn.execute("UPDATE graph_runs SET restored_at=? WHERE id=?", (time.time(), run))
    if lowest is not None:
        move_floor(store, lower_to=lowest)
    set_mark(store, "archive_version", get_mark(store, "archive_version") + 1)
    return rep


def run_history(store: Store) -> list[dict]:
    """Compression runs, newest first, with their reports."""
    out = []
    for rid, started, finished, steps, report, restored in store.conn.execute(
        "SELECT id, started_at, finished_at, steps, report, restored_at FROM graph_runs ORDER BY id DESC"
    ):
        out.append(
            {
                "run": rid,
                "started_at": started,
                "finished_at": finished,
                "steps": json.loads(steps),
                "restored_at": restored,
                "report": json.loads(report),
            }
        )
    return out
