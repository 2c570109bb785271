"""Periodic compression: keep the active working set bounded while losing nothing.

A run (:func:`compress`) first brings the graph up to date, then applies these
steps, each in ONE SQLite transaction that also journals what it changed in
``graph_archive`` (so a SIGKILL leaves whole steps or nothing, and every change
can be undone):

1. ``facts``: facts of functional predicates that a later fact contradicts, but
   that are still open in ``relations``, are closed where the later one starts.
   (The graph's fact edges already count repeated statements as reinforcement;
   the report gives how many edges carry more than one.)
2. ``decay``: an inferred edge's strength is ``weight * 0.5 ** (age / half_life_s)``,
   age being story time since its latest evidence; edges weaker than
   ``prune_below`` with weight at most ``prune_max_weight`` move to the archive.
3. ``merge``: canonical entities that :func:`agentmem.search.resolution.best_match`
   says are the same (same kind, same id scope, never together in one event)
   are merged with :meth:`agentmem.storage.store.Store.record_merge`.
4. ``cap``: each canonical entity keeps at most ``text_cap`` / ``image_cap``
   vectors over all its merged ids, chosen by
   :func:`agentmem.search.resolution.select_diverse`; the rest move to the archive.
5. ``events``: raw events of closed episodes that end before the newest
   ``keep_events`` events are archived; their episode's summary stands for them.
6. ``levels``: episodes and arcs that have a parent, whose children are all
   archived and that are not among the newest ``keep_episodes`` / ``keep_arcs``
   (per level) are archived.
7. ``communities``: Louvain communities are recomputed every
   ``communities_every`` events; a changed set replaces the old one.

Archived rows keep their place (``archived`` = 1) and stay queryable with
``include_archive``; entity vectors beyond the cap move into the journal
itself (as base64 JSON). :func:`restore` undoes runs from the journal, newest
first, or brings chosen events back: archived rows return, closed facts reopen,
merges are undone (the ``merges`` log keeps both), moved vectors return with
their ids, and community rows a run created give way to the ones it replaced.
Afterwards every stored row is as it was before the run.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from agentmem.storage.entities import canonical_map
from graph.archive import move_floor
from graph.build import GraphConfig, update
from graph.hierarchy import central_order, centroid, detect_communities, entity_graph
from graph.persist import GraphEdge, GraphNode, bump_seq, get_mark, node_id, read_nodes, set_mark, write_edges
from graph.persist import write_nodes as _write_nodes
from graph.relations import INFERRED_PREDICATES, close_contradicted

STEPS = ("facts", "decay", "merge", "cap", "events", "levels", "communities")
# Steps that write in several short transactions of their own (the others run in one, short at any size).
CHUNKED_STEPS = ("merge", "events", "communities")
EVENT_CHUNK = 5000


@dataclass(frozen=True)
class CompressionPolicy:
    """When compression runs and what it keeps active (see the module docstring)."""

    every: int = 10_000
    keep_events: int = 5_000
    keep_episodes: int = 256
    keep_arcs: int = 64
    half_life_s: float = 7 * 86_400.0
    prune_below: float = 0.25
    prune_max_weight: float = 2.0
    merge_duplicates: bool = True
    text_cap: int = 8
    image_cap: int = 16
    communities_every: int = 100_000
    community_seed: int = 0
    community_resolution: float = 1.0


@dataclass
class CompressionReport:
    """What a run changed (or, for a dry run, would change)."""

    run: int | None
    dry_run: bool
    facts_closed: list[tuple[int, float]] = field(default_factory=list)
    facts_reinforced: int = 0
    edges_pruned: int = 0
    merges: list[tuple[str, str, str]] = field(default_factory=list)
    vectors_archived: int = 0
    events_archived: int = 0
    episodes_archived: int = 0
    arcs_archived: int = 0
    communities: int | None = None
    active_before: dict[str, int] = field(default_factory=dict)
    active_after: dict[str, int] = field(default_factory=dict)
    events_seen: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    def format(self) -> str:
        head = "plan (dry run, nothing written)" if self.dry_run else f"compression run {self.run}"
        lines = [
            f"{head}: {self.seconds:.2f}s over {self.events_seen} events",
            f"  facts closed (contradicted):  {len(self.facts_closed)}",
            f"  fact edges reinforced (w>1): {self.facts_reinforced}",
            f"  weak edges pruned:           {self.edges_pruned}",
            f"  entity merges:               {len(self.merges)}"
            + "".join(f"\n    {s} -> {t} ({why})" for s, t, why in self.merges),
            f"  entity vectors archived:     {self.vectors_archived}",
            f"  events rolled up:            {self.events_archived}",
            f"  episodes / arcs archived:    {self.episodes_archived} / {self.arcs_archived}",
            f"  communities:                 {'unchanged' if self.communities is None else self.communities}",
            "  active before -> after:      " + ", ".join(
                f"{k} {self.active_before.get(k, 0)} -> {self.active_after.get(k, self.active_before.get(k, 0))}"
                for k in self.active_before),
        ]
        return "\n".join(lines)


def active_counts(conn) -> dict[str, int]:
    """Active (non-archived) nodes by type, and active relation edges."""
    floor = int(get_mark(conn, "active_floor"))
    out = {"events": conn.execute("SELECT COUNT(*) FROM events WHERE rid >= ? AND archived=0", (floor,)).fetchone()[0],
           "entities": conn.execute("SELECT COUNT(*) FROM entities WHERE merged_into IS NULL").fetchone()[0]}
    for kind, name in (("episode", "episodes"), ("arc", "arcs"), ("community", "communities")):
        out[name] = conn.execute("SELECT COUNT(*) FROM graph_nodes WHERE type=? AND archived=0", (kind,)).fetchone()[0]
    out["nodes"] = sum(out.values())
    out["edges"] = conn.execute("SELECT COUNT(*) FROM graph_edges WHERE archived=0").fetchone()[0]
    return out


def _journal(conn, run: int, kind: str, items: Iterable[tuple[str, dict]], now: float) -> None:
    conn.executemany("INSERT INTO graph_archive(run, kind, ref, payload, at) VALUES (?, ?, ?, ?, ?)",
                     [(run, kind, str(ref), json.dumps(p, sort_keys=True), now) for ref, p in items])


def _step_done(conn, run: int, step: str) -> None:
    steps = json.loads(conn.execute("SELECT steps FROM graph_runs WHERE id=?", (run,)).fetchone()[0])
    conn.execute("UPDATE graph_runs SET steps=? WHERE id=?", (json.dumps([*steps, step]), run))
    set_mark(conn, "archive_version", get_mark(conn, "archive_version") + 1)


# -- steps: each returns what it would change; with run set, it changes it -------------------
def _facts(conn, run, now, functional) -> tuple[list[tuple[int, float]], int]:
    todo = close_contradicted(conn, functional)
    if run is not None and todo:
        _journal(conn, run, "relation_close", [(fid, {"t_to": old}) for fid, old, _ in todo], now)
        conn.executemany("UPDATE relations SET t_to=? WHERE id=?", [(end, fid) for fid, _, end in todo])
    preds = [p for p in INFERRED_PREDICATES]
    reinforced = conn.execute(
        f"SELECT COUNT(*) FROM graph_edges WHERE type='relation' AND archived=0 AND weight > 1 AND predicate NOT IN "
        f"({','.join('?' * len(preds))})", preds).fetchone()[0]
    return [(fid, end) for fid, _, end in todo], int(reinforced)


def _decay(conn, run, now, policy: CompressionPolicy) -> int:
    clock = conn.execute("SELECT MAX(t_start) FROM events").fetchone()[0] or 0.0
    preds = list(INFERRED_PREDICATES)
    rows = conn.execute(
        f"SELECT id, weight, t_last FROM graph_edges WHERE type='relation' AND archived=0 AND weight <= ? "
        f"AND predicate IN ({','.join('?' * len(preds))})", (policy.prune_max_weight, *preds)).fetchall()
    if not rows:
        return 0
    arr = np.array(rows, dtype=np.float64)
    strength = arr[:, 1] * 0.5 ** (np.maximum(clock - arr[:, 2], 0.0) / policy.half_life_s)
    ids = [int(i) for i in arr[strength < policy.prune_below, 0]]
    if run is not None and ids:
        _journal(conn, run, "edge", [(i, {}) for i in ids], now)
        conn.executemany("UPDATE graph_edges SET archived=1 WHERE id=?", [(i,) for i in ids])
    return len(ids)


def _scope(entity_id: str) -> str:
    return entity_id.rsplit(".", 1)[0] if "." in entity_id else ""


def _merges(store, run, now) -> list[tuple[str, str, str, float]]:
    from agentmem.search.resolution import best_match

    conn = store.conn
    ents = conn.execute("SELECT id, kind FROM entities WHERE merged_into IS NULL ORDER BY created_at, id").fetchall()
    names: dict[str, list[str]] = {}
    for eid, _, norm in store.alias_rows():
        names.setdefault(eid, []).append(norm)
    canon = canonical_map(conn)
    own: dict[str, list[str]] = {}
    for raw, ns in names.items():
        if canon.get(raw) == raw:
            own.setdefault(raw, []).extend(ns)
    since = get_mark(conn, "merge_checked_at", -1.0)
    changed = {r[0] for r in conn.execute("SELECT id FROM entities WHERE updated_at > ?", (since,))}
    out: list[tuple[str, str, str, float]] = []
    gone: set[str] = set()
    for i, (eid, kind) in enumerate(ents):
        if eid not in changed or eid in gone:
            continue
        cands = {c: own.get(c, []) for c, k in ents[:i] if k == kind and _scope(c) == _scope(eid) and c not in gone}
        m = best_match(own.get(eid, []), cands, kind=kind) if cands else None
        if m is None or _together(store, eid, m.entity_id):
            continue
        out.append((eid, m.entity_id, f"compress: {m.stage} name match", m.score))
        gone.add(eid)
    # The comparison above only reads (it is quadratic in entities); the merges are written in one short
    # transaction, each only if both entities are still canonical by then.
    with store.transaction():
        done = []
        for src, dst, why, score in out:
            row = conn.execute("SELECT updated_at FROM entities WHERE id=? AND merged_into IS NULL", (src,)).fetchone()
            if row is None or store.canonical(dst) != dst:
                continue
            mid = store.record_merge(src, dst, why + f" (run {run})", score, now)
            _journal(conn, run, "merge", [(mid, {"source": src, "updated_at": row[0]})], now)
            done.append((src, dst, why, score))
        set_mark(conn, "merge_checked_at", now)
    return done


def _together(store, a: str, b: str) -> bool:
    """Whether two entities (with their merged ids) ever take part in one event: then they are two."""
    ma, mb = store.member_ids(a), store.member_ids(b)
    row = store.conn.execute(
        f"SELECT 1 FROM event_entities x JOIN event_entities y ON x.rid=y.rid WHERE x.entity_id IN "
        f"({','.join('?' * len(ma))}) AND y.entity_id IN ({','.join('?' * len(mb))}) LIMIT 1", [*ma, *mb]).fetchone()
    return row is not None


def _cap(store, run, now, policy: CompressionPolicy) -> int:
    from agentmem.search.resolution import select_diverse

    conn = store.conn
    canon = canonical_map(conn)
    counts: dict[tuple[str, str], int] = {}
    for eid, modality, n in conn.execute("SELECT entity_id, modality, COUNT(*) FROM entity_vectors "
                                         "GROUP BY entity_id, modality"):
        key = (canon.get(eid, eid), modality)
        counts[key] = counts.get(key, 0) + n
    caps = {"text": policy.text_cap, "image": policy.image_cap}
    moved = 0
    for (c, modality), n in sorted(counts.items()):
        cap = caps.get(modality)
        if cap is None or n <= cap:
            continue
        ids = store.member_ids(c)
        rows = conn.execute(
            f"SELECT id, entity_id, modality, vec, source, t FROM entity_vectors WHERE modality=? AND entity_id IN "
            f"({','.join('?' * len(ids))}) ORDER BY id", [modality, *ids]).fetchall()
        keep = set(select_diverse([np.frombuffer(r[3], dtype=np.float32) for r in rows], cap))
        out = [r for i, r in enumerate(rows) if i not in keep]
        moved += len(out)
        if run is not None:
            _journal(conn, run, "entity_vector", [(r[0], {"entity_id": r[1], "modality": r[2], "source": r[4],
                                                          "t": r[5], "vec": base64.b64encode(r[3]).decode()})
                                                  for r in out], now)
            conn.executemany("DELETE FROM entity_vectors WHERE id=?", [(r[0],) for r in out])
    return moved


_ROLL_EVENTS = (
    "SELECT e.rid FROM events e JOIN graph_event_episode g ON g.rid=e.rid JOIN graph_nodes n ON n.id=g.episode "
    "WHERE e.rid >= ? AND e.archived=0 AND n.t_end < ? AND n.id <> ?")


def _cutoff(conn, keep: int) -> float | None:
    row = conn.execute("SELECT t_start FROM events ORDER BY t_start DESC LIMIT 1 OFFSET ?",
                       (max(keep - 1, 0),)).fetchone()
    return None if row is None else row[0]


def _events(store, run, now, policy: CompressionPolicy) -> int:
    """Archive the raw events of closed episodes older than the newest ``keep_events``.

    The events are archived in transactions of :data:`EVENT_CHUNK`, each journalled, so a concurrent writer
    waits for one chunk at most (well under a second), never for the whole step.
    """
    conn = store.conn
    cutoff = _cutoff(conn, policy.keep_events)
    if cutoff is None:
        return 0
    floor = int(get_mark(conn, "active_floor"))
    row = conn.execute("SELECT value FROM meta WHERE key='graph.open_episode'").fetchone()
    args = (floor, cutoff, row[0] if row else "")
    rids = [r[0] for r in conn.execute(f"SELECT rid FROM ({_ROLL_EVENTS})", args)]
    for i in range(0, len(rids), EVENT_CHUNK):
        chunk = rids[i : i + EVENT_CHUNK]
        with store.transaction():
            _journal(conn, run, "event", [(r, {}) for r in chunk], now)
            conn.executemany("UPDATE events SET archived=1 WHERE rid=?", [(r,) for r in chunk])
    with store.transaction():
        move_floor(conn)
    return len(rids)


def _levels(conn, run, now, policy: CompressionPolicy) -> tuple[int, int]:
    """Archive old episodes and arcs whose parent stands for them and whose children are archived."""
    floor = int(get_mark(conn, "active_floor"))
    done = {"episode": 0, "arc": 0}
    levels = [r[0] for r in conn.execute("SELECT DISTINCT level FROM graph_nodes WHERE type IN ('episode', 'arc') "
                                         "ORDER BY level")]
    for level in levels:
        kind = "episode" if level == 1 else "arc"
        keep = policy.keep_episodes if level == 1 else policy.keep_arcs
        rows = conn.execute(
            "SELECT n.id FROM graph_nodes n WHERE n.type=? AND n.level=? AND n.archived=0 AND n.parent IS NOT NULL "
            "ORDER BY n.t_start DESC, n.id DESC LIMIT -1 OFFSET ?", (kind, level, keep)).fetchall()
        ids = []
        for (nid,) in rows:
            if level == 1:
                live = conn.execute("SELECT 1 FROM graph_event_episode g JOIN events e ON e.rid=g.rid WHERE "
                                    "g.episode=? AND e.archived=0 AND e.rid >= ? LIMIT 1", (nid, floor)).fetchone()
            else:
                live = conn.execute("SELECT 1 FROM graph_nodes WHERE parent=? AND archived=0 LIMIT 1",
                                    (nid,)).fetchone()
            if live is None:
                ids.append(nid)
        if run is not None and ids:
            _journal(conn, run, "node", [(i, {}) for i in ids], now)
            conn.executemany("UPDATE graph_nodes SET archived=1 WHERE id=?", [(i,) for i in ids])
        done[kind] += len(ids)
    return done["episode"], done["arc"]


def _communities(store, run, now, policy: CompressionPolicy, force: bool) -> int | None:
    conn = store.conn
    seen = int(conn.execute("SELECT COALESCE(MAX(rid), 0) FROM events").fetchone()[0])
    last = get_mark(conn, "communities_at_rid", -1)
    if not force and last >= 0 and seen - last < policy.communities_every:
        return None
    canon = canonical_map(conn)
    groups = detect_communities(entity_graph(conn, canon), seed=policy.community_seed,
                                resolution=policy.community_resolution)
    old = read_nodes(conn, "type='community' AND archived=0")
    if sorted(sorted(n.data.get("members", [])) for n in old) == sorted(groups):
        if run is not None:
            with store.transaction():
                set_mark(conn, "communities_at_rid", seen)
        return None
    # Summaries are read before the write transaction: only the swap below holds the write lock.
    drafts = [_community_node(store, "", members) for members in groups]
    with store.transaction():
        return _write_communities(store, run, now, old, groups, drafts, seen)


def _write_communities(store, run, now, old: list[GraphNode], groups: list[list[str]], drafts: list[GraphNode],
                       seen: int) -> int:
    conn = store.conn
    old_edges = [r[0] for r in conn.execute("SELECT id FROM graph_edges WHERE type='member_of' AND archived=0")]
    _journal(conn, run, "node", [(n.id, {}) for n in old], now)
    _journal(conn, run, "edge", [(i, {}) for i in old_edges], now)
    conn.executemany("UPDATE graph_nodes SET archived=1 WHERE id=?", [(n.id,) for n in old])
    conn.executemany("UPDATE graph_edges SET archived=1 WHERE id=?", [(i,) for i in old_edges])
    seq = bump_seq(conn)
    counter = int(get_mark(conn, "community_counter"))
    nodes, edges = [], []
    for members, draft in zip(groups, drafts):
        counter += 1
        nodes.append(replace(draft, id=f"community:{counter}"))
        t = nodes[-1].t_start or 0.0
        edges += [GraphEdge(node_id("entity", m), nodes[-1].id, "member_of", t_from=t, t_last=t) for m in members]
    set_mark(conn, "community_counter", counter)
    _write_nodes(conn, nodes, seq)
    write_edges(conn, edges, seq)
    _journal(conn, run, "node_new", [(n.id, {}) for n in nodes], now)
    _journal(conn, run, "edge_new", [(r[0], {}) for r in conn.execute(
        "SELECT id FROM graph_edges WHERE type='member_of' AND seq=?", (seq,))], now)
    set_mark(conn, "communities_at_rid", seen)
    return len(groups)


def _community_node(store, nid: str, members: list[str]) -> GraphNode:
    from graph.persist import read_events

    conn = store.conn
    raw = [m for c in members for m in store.member_ids(c)]
    floor = int(get_mark(conn, "active_floor"))
    marks = ",".join("?" * len(raw))
    rids = [r[0] for r in conn.execute(
        f"SELECT rid FROM event_entities WHERE entity_id IN ({marks}) AND rid >= ? GROUP BY rid "
        f"HAVING COUNT(DISTINCT entity_id) >= 2 ORDER BY rid DESC LIMIT 64", [*raw, floor])]
    evs = read_events(conn, f"e.rid IN ({','.join('?' * len(rids))})", rids) if rids else []
    names = [conn.execute("SELECT name FROM entities WHERE id=?", (m,)).fetchone()[0] for m in members]
    label = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    summary = f"{label}: {len(members)} entities, {len(evs)} recent shared events."
    vecs = [e.vec for e in evs]
    if evs and all(v is not None for v in vecs):
        best = central_order(np.stack(vecs))[:2]
        summary += " " + " ".join(evs[i].text[:200] for i in sorted(best))
    return GraphNode(nid, "community", 0, label, min((e.t_start for e in evs), default=None),
                     max((e.t_end for e in evs), default=None), summary, centroid(vecs) if evs else None,
                     {"members": members, "names": names})


# -- the run ---------------------------------------------------------------------------------
def compress(store, policy: CompressionPolicy | None = None, *, dry_run: bool = False,
             config: GraphConfig | None = None, communities: bool | None = None) -> CompressionReport:
    """Run one compression (see the module docstring for the steps) and report what changed.

    With ``dry_run`` the same steps run inside one transaction that is rolled
    back, so the plan is exactly what a run would do and nothing is written.
    ``communities``: ``None`` follows ``policy.communities_every``, ``True``
    recomputes them now, ``False`` skips them.

    Examples
    --------
    >>> import tempfile
    >>> from agentmem import Memory
    >>> mem = Memory(tempfile.mkdtemp(), text_embedder=None, image_embedder=None)
    >>> _ = mem.add_entity("ann", kind="character")
    >>> _ = mem.add_events([{"id": f"e{i}", "t_start": 1000.0 * i, "text": "tea", "participants": ["ann"]}
    ...                     for i in range(6)])
    >>> policy = CompressionPolicy(keep_events=2)
    >>> compress(mem.store, policy, dry_run=True).events_archived   # six one-event episodes; the 2 newest stay
    4
    >>> rep = compress(mem.store, policy)
    >>> rep.run, rep.events_archived, rep.active_after["events"]
    (1, 4, 2)
    >>> from graph.archive import restore
    >>> restore(mem.store).events
    4
    >>> mem.close()
    """
    policy = policy or CompressionPolicy()
    if dry_run:
        return _dry_run(store, policy, config, communities)
    functional = (config or GraphConfig()).functional
    conn = store.conn
    t0 = time.perf_counter()
    now = time.time()
    update(store, config)
    rep = CompressionReport(run=None, dry_run=False, active_before=active_counts(conn))
    top = int(conn.execute("SELECT COALESCE(MAX(rid), 0) FROM events").fetchone()[0])
    rep.events_seen = top - int(get_mark(conn, "compressed_rid"))
    with store.transaction():
        run = conn.execute("INSERT INTO graph_runs(started_at, policy) VALUES (?, ?)",
                           (now, json.dumps(asdict(policy)))).lastrowid
    for name in STEPS:
        if name in CHUNKED_STEPS:
            _step(name, store, run, now, policy, functional, communities, rep)
            with store.transaction():
                _step_done(conn, run, name)
        else:
            with store.transaction():
                _step(name, store, run, now, policy, functional, communities, rep)
                _step_done(conn, run, name)
    rep.active_after = active_counts(conn)
    rep.seconds = time.perf_counter() - t0
    rep.run = run
    with store.transaction():
        set_mark(conn, "compressed_rid", top)
        conn.execute("UPDATE graph_runs SET finished_at=?, report=? WHERE id=?",
                     (time.time(), json.dumps(rep.to_dict()), run))
    return rep


def _dry_run(store, policy: CompressionPolicy, config: GraphConfig | None,
             communities: bool | None) -> CompressionReport:
    """Run on a snapshot copy in a temporary folder: the plan is exactly what a run would do, and the memory
    itself is neither written nor locked (a reader's snapshot never blocks WAL writers)."""
    from agentmem.storage.store import DB_NAME, Store

    with tempfile.TemporaryDirectory(prefix="agentmem-dry-run-") as tmp:
        dst = sqlite3.connect(Path(tmp) / DB_NAME)
        try:
            store.conn.backup(dst)
        finally:
            dst.close()
        snap = Store(tmp)
        try:
            rep = compress(snap, policy, config=config, communities=communities)
        finally:
            snap.close()
    rep.dry_run, rep.run = True, None
    return rep


def _step(name: str, store, run: int, now: float, policy: CompressionPolicy, functional: frozenset[str],
          communities: bool | None, rep: CompressionReport) -> None:
    conn = store.conn
    if name == "facts":
        rep.facts_closed, rep.facts_reinforced = _facts(conn, run, now, functional)
    elif name == "decay":
        rep.edges_pruned = _decay(conn, run, now, policy)
    elif name == "merge":
        rep.merges = [m[:3] for m in _merges(store, run, now)] if policy.merge_duplicates else []
    elif name == "cap":
        rep.vectors_archived = _cap(store, run, now, policy)
    elif name == "events":
        rep.events_archived = _events(store, run, now, policy)
    elif name == "levels":
        rep.episodes_archived, rep.arcs_archived = _levels(conn, run, now, policy)
    elif name == "communities" and communities is not False:
        rep.communities = _communities(store, run, now, policy, force=bool(communities))

