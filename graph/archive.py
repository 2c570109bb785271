"""The archive tier: bringing back what compression archived (:func:`restore`), and the run history.

Compression journals every change in ``graph_archive`` (see :mod:`graph.compress`); restoring a run replays
its journal backwards in one transaction, so a SIGKILL leaves the run either restored or not.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from graph.persist import get_mark, set_mark


def move_floor(conn, lower_to: int | None = None) -> None:
    """Keep the archive floor (lowest active event row id) and the context-index group floor current."""
    floor = int(get_mark(conn, "active_floor"))
    if lower_to is not None:
        floor = min(floor, lower_to)
    row = conn.execute("SELECT MIN(rid) FROM events WHERE rid >= ? AND archived=0", (floor,)).fetchone()
    top = conn.execute("SELECT COALESCE(MAX(rid), 0) + 1 FROM events").fetchone()[0]
    floor = row[0] if row[0] is not None else top
    set_mark(conn, "active_floor", floor)
    # The context index's group documents are numbered in order of first appearance: the same kind of floor.
    gfloor = conn.execute("SELECT MIN(g.id) FROM groups g WHERE g.name IN (SELECT DISTINCT grp FROM events "
                          "WHERE rid >= ? AND archived=0 AND grp IS NOT NULL)", (floor,)).fetchone()[0]
    set_mark(conn, "active_group_floor", gfloor or 0)


@dataclass
class RestoreReport:
    """What :func:`restore` brought back."""

    runs: list[int] = field(default_factory=list)
    events: int = 0
    nodes: int = 0
    edges: int = 0
    facts_reopened: int = 0
    merges_undone: int = 0
    vectors: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    def format(self) -> str:
        runs = ", ".join(map(str, self.runs)) or "-"
        return (f"restored runs {runs}: {self.events} events, {self.nodes} nodes, {self.edges} edges, "
                f"{self.facts_reopened} facts reopened, {self.merges_undone} merges undone, {self.vectors} vectors")


def restore(store, *, run: int | None = None, events: Sequence[str] = (), t0: float | None = None,
            t1: float | None = None) -> RestoreReport:
    """Bring archived items back.

    With ``events`` or a time range, only those archived events return to the
    active tier. Otherwise compression runs are undone from their journal,
    newest first: all of them, or ``run`` and every later one. Each run is
    undone in one transaction.
    """
    from agentmem.errors import NotFoundError

    rep = RestoreReport()
    conn = store.conn
    if events or t0 is not None or t1 is not None:
        rids = [store.rid_of(e) for e in events]
        if t0 is not None or t1 is not None:
            lo, hi = (-np.inf if t0 is None else t0), (np.inf if t1 is None else t1)
            rids += [r[0] for r in conn.execute("SELECT rid FROM events WHERE archived=1 AND t_start<=? AND t_end>=?",
                                                (hi, lo))]
        rids = sorted(set(rids))
        with store.transaction():
            for i in range(0, len(rids), 500):
                chunk = rids[i : i + 500]
                marks = ",".join("?" * len(chunk))
                rep.events += conn.execute(f"UPDATE events SET archived=0 WHERE archived=1 AND rid IN ({marks})",
                                           chunk).rowcount
                conn.execute(f"DELETE FROM graph_archive WHERE kind='event' AND ref IN ({marks})",
                             [str(r) for r in chunk])
            if rids:
                move_floor(conn, lower_to=rids[0])
            set_mark(conn, "archive_version", get_mark(conn, "archive_version") + 1)
        return rep
    runs = [r[0] for r in conn.execute("SELECT DISTINCT run FROM graph_archive ORDER BY run DESC")]
    if run is not None:
        if run not in runs and conn.execute("SELECT 1 FROM graph_runs WHERE id=?", (run,)).fetchone() is None:
            raise NotFoundError(f"no compression run {run}; see `agentmem compress --history`")
        runs = [r for r in runs if r >= run]
    for r in runs:
        with store.transaction():
            _undo_run(store, r, rep)
        rep.runs.append(r)
    return rep


def _undo_run(store, run: int, rep: RestoreReport) -> None:
    conn = store.conn
    rows = conn.execute("SELECT kind, ref, payload FROM graph_archive WHERE run=? AND kind<>'event' ORDER BY id DESC",
                        (run,)).fetchall()
    lowest = conn.execute("SELECT MIN(CAST(ref AS INTEGER)) FROM graph_archive WHERE run=? AND kind='event'",
                          (run,)).fetchone()[0]
    for kind, ref, payload in rows:
        p = json.loads(payload)
        if kind == "node":
            rep.nodes += conn.execute("UPDATE graph_nodes SET archived=0 WHERE id=?", (ref,)).rowcount
        elif kind == "edge":
            rep.edges += conn.execute("UPDATE graph_edges SET archived=0 WHERE id=?", (ref,)).rowcount
        elif kind == "node_new":
            conn.execute("DELETE FROM graph_nodes WHERE id=?", (ref,))
        elif kind == "edge_new":
            conn.execute("DELETE FROM graph_edges WHERE id=?", (int(ref),))
        elif kind == "relation_close":
            rep.facts_reopened += conn.execute("UPDATE relations SET t_to=? WHERE id=?", (p["t_to"], int(ref))).rowcount
        elif kind == "merge":
            if store.merge(int(ref)).undone_at is None:
                store.undo_merge(int(ref), time.time())
            conn.execute("UPDATE entities SET updated_at=? WHERE id=?", (p["updated_at"], p["source"]))
            rep.merges_undone += 1
        elif kind == "entity_vector":
            conn.execute("INSERT OR IGNORE INTO entity_vectors(id, entity_id, modality, vec, source, t) "
                         "VALUES (?, ?, ?, ?, ?, ?)", (int(ref), p["entity_id"], p["modality"],
                                                       base64.b64decode(p["vec"]), p["source"], p["t"]))
            rep.vectors += 1
    rep.events += conn.execute("UPDATE events SET archived=0 WHERE rid IN (SELECT CAST(ref AS INTEGER) FROM "
                               "graph_archive WHERE run=? AND kind='event')", (run,)).rowcount
    conn.execute("DELETE FROM graph_archive WHERE run=?", (run,))
    conn.execute("UPDATE graph_runs SET restored_at=? WHERE id=?", (time.time(), run))
    if lowest is not None:
        move_floor(conn, lower_to=lowest)
    set_mark(conn, "archive_version", get_mark(conn, "archive_version") + 1)


def runs(conn) -> list[dict]:
    """Compression runs, newest first, with their reports."""
    out = []
    for rid, started, finished, steps, report, restored in conn.execute(
            "SELECT id, started_at, finished_at, steps, report, restored_at FROM graph_runs ORDER BY id DESC"):
        out.append({"run": rid, "started_at": started, "finished_at": finished, "steps": json.loads(steps),
                    "restored_at": restored, "report": json.loads(report)})
    return out

