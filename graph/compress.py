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
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from graph import journal, tables
from graph.build import GraphConfig, update
from graph.hierarchy import detect_communities, entity_graph
from graph.journal import active_counts, move_floor
from graph.persist import GraphEdge, GraphNode, bump_seq, get_mark, node_id, set_mark, write_edges
from graph.persist import write_nodes as _write_nodes
from graph.relations import INFERRED_PREDICATES, close_contradicted
from graph.summaries import central_order, centroid, stacked

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
            "  active before -> after:      "
            + ", ".join(
                f"{k} {self.active_before.get(k, 0)} -> {self.active_after.get(k, self.active_before.get(k, 0))}"
                for k in self.active_before
            ),
        ]
        return "\n".join(lines)


# -- steps: each returns what it would change; with run set, it changes it -------------------
def _facts(store, run, now, functional) -> tuple[list[tuple[int, float]], int]:
    todo = close_contradicted(store, functional)
    if run is not None and todo:
        journal.journal(store, run, "relation_close", [(fid, {"t_to": old}) for fid, old, _ in todo], now)
        journal.close_facts(store, [(fid, end) for fid, _, end in todo])
    return [(fid, end) for fid, _, end in todo], journal.reinforced_edges(store, list(INFERRED_PREDICATES))


def _decay(store, run, now, policy: CompressionPolicy) -> int:
    clock = journal.latest_start(store)
    rows = journal.weak_edges(store, policy.prune_max_weight, list(INFERRED_PREDICATES))
    if not rows:
        return 0
    arr = np.array(rows, dtype=np.float64)
    strength = arr[:, 1] * 0.5 ** (np.maximum(clock - arr[:, 2], 0.0) / policy.half_life_s)
    ids = [int(i) for i in arr[strength < policy.prune_below, 0]]
    if run is not None and ids:
        journal.journal(store, run, "edge", [(i, {}) for i in ids], now)
        journal.set_edges_archived(store, ids)
    return len(ids)


def _scope(entity_id: str) -> str:
    return entity_id.rsplit(".", 1)[0] if "." in entity_id else ""


def _merges(store, run, now) -> list[tuple[str, str, str, float]]:
    from agentmem.search.resolution import best_match

    ents = journal.canonical_entities_by_age(store)
    names: dict[str, list[str]] = {}
    for eid, _, norm in store.alias_rows():
        names.setdefault(eid, []).append(norm)
    canon = store.canonical_map()
    own: dict[str, list[str]] = {}
    for raw, ns in names.items():
        if canon.get(raw) == raw:
            own.setdefault(raw, []).extend(ns)
    since = get_mark(store, "merge_checked_at", -1.0)
    changed = journal.entities_updated_since(store, since)
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
            updated_at = journal.canonical_updated_at(store, src)
            if updated_at is None or store.canonical(dst) != dst:
                continue
            mid = store.record_merge(src, dst, why + f" (run {run})", score, now)
            journal.journal(store, run, "merge", [(mid, {"source": src, "updated_at": updated_at})], now)
            done.append((src, dst, why, score))
        set_mark(store, "merge_checked_at", now)
    return done


def _together(store, a: str, b: str) -> bool:
    """Whether two entities (with their merged ids) ever take part in one event: then they are two."""
    return journal.share_an_event(store, store.member_ids(a), store.member_ids(b))


def _cap(store, run, now, policy: CompressionPolicy) -> int:
    from agentmem.search.resolution import select_diverse

    canon = store.canonical_map()
    counts: dict[tuple[str, str], int] = {}
    for eid, modality, n in journal.vector_counts(store):
        key = (canon.get(eid, eid), modality)
        counts[key] = counts.get(key, 0) + n
    caps = {"text": policy.text_cap, "image": policy.image_cap}
    moved = 0
    for (c, modality), n in sorted(counts.items()):
        cap = caps.get(modality)
        if cap is None or n <= cap:
            continue
        ids = store.member_ids(c)
        rows = journal.entity_vector_rows(store, modality, ids)
        keep = set(select_diverse([np.frombuffer(r.vec, dtype=np.float32) for r in rows], cap))
        out = [r for i, r in enumerate(rows) if i not in keep]
        moved += len(out)
        if run is not None:
            journal.journal(
                store,
                run,
                "entity_vector",
                [
                    (
                        r.id,
                        {
                            "entity_id": r.entity_id,
                            "modality": r.modality,
                            "source": r.source,
                            "t": r.t,
                            "vec": base64.b64encode(r.vec).decode(),
                        },
                    )
                    for r in out
                ],
                now,
            )
            journal.delete_entity_vectors(store, [r.id for r in out])
    return moved


def _events(store, run, now, policy: CompressionPolicy) -> int:
    """Archive the raw events of closed episodes older than the newest ``keep_events``.

    The events are archived in transactions of :data:`EVENT_CHUNK`, each journalled, so a concurrent writer
    waits for one chunk at most (well under a second), never for the whole step.
    """
    cutoff = journal.time_of_newest(store, policy.keep_events)
    if cutoff is None:
        return 0
    floor = int(get_mark(store, "active_floor"))
    rids = journal.rollable_events(store, floor, cutoff, journal.open_episode(store))
    for i in range(0, len(rids), EVENT_CHUNK):
        chunk = rids[i : i + EVENT_CHUNK]
        with store.transaction():
            journal.journal(store, run, "event", [(r, {}) for r in chunk], now)
            journal.set_events_archived(store, chunk)
    with store.transaction():
        move_floor(store)
    return len(rids)


def _levels(store, run, now, policy: CompressionPolicy) -> tuple[int, int]:
    """Archive old episodes and arcs whose parent stands for them and whose children are archived."""
    floor = int(get_mark(store, "active_floor"))
    done = {"episode": 0, "arc": 0}
    for level in journal.summary_levels(store):
        kind = "episode" if level == 1 else "arc"
        keep = policy.keep_episodes if level == 1 else policy.keep_arcs
        ids = [
            nid
            for nid in journal.old_nodes(store, kind, level, keep)
            if not (
                journal.episode_has_live_events(store, nid, floor)
                if level == 1
                else journal.arc_has_live_children(store, nid)
            )
        ]
        if run is not None and ids:
            journal.journal(store, run, "node", [(i, {}) for i in ids], now)
            journal.set_nodes_archived(store, ids)
        done[kind] += len(ids)
    return done["episode"], done["arc"]


def _communities(store, run, now, policy: CompressionPolicy, force: bool) -> int | None:
    seen = store.max_event_rid()
    last = get_mark(store, "communities_at_rid", -1)
    if not force and last >= 0 and seen - last < policy.communities_every:
        return None
    canon = store.canonical_map()
    groups = detect_communities(
        entity_graph(store, canon), seed=policy.community_seed, resolution=policy.community_resolution
    )
    old = tables.active_communities(store)
    if sorted(sorted(n.data.get("members", [])) for n in old) == sorted(groups):
        if run is not None:
            with store.transaction():
                set_mark(store, "communities_at_rid", seen)
        return None
    # Summaries are read before the write transaction: only the swap below holds the write lock.
    drafts = [_community_node(store, "", members) for members in groups]
    with store.transaction():
        return _write_communities(store, run, now, old, groups, drafts, seen)


def _write_communities(
    store, run, now, old: list[GraphNode], groups: list[list[str]], drafts: list[GraphNode], seen: int
) -> int:
    old_edges = journal.active_member_edges(store)
    journal.journal(store, run, "node", [(n.id, {}) for n in old], now)
    journal.journal(store, run, "edge", [(i, {}) for i in old_edges], now)
    journal.set_nodes_archived(store, [n.id for n in old])
    journal.set_edges_archived(store, old_edges)
    seq = bump_seq(store)
    counter = int(get_mark(store, "community_counter"))
    nodes, edges = [], []
    for members, draft in zip(groups, drafts):
        counter += 1
        nodes.append(replace(draft, id=f"community:{counter}"))
        t = nodes[-1].t_start or 0.0
        edges += [GraphEdge(node_id("entity", m), nodes[-1].id, "member_of", t_from=t, t_last=t) for m in members]
    set_mark(store, "community_counter", counter)
    _write_nodes(store, nodes, seq)
    write_edges(store, edges, seq)
    journal.journal(store, run, "node_new", [(n.id, {}) for n in nodes], now)
    journal.journal(store, run, "edge_new", [(i, {}) for i in journal.member_edges_of_seq(store, seq)], now)
    set_mark(store, "communities_at_rid", seen)
    return len(groups)


def _community_node(store, nid: str, members: list[str]) -> GraphNode:
    raw = [m for c in members for m in store.member_ids(c)]
    floor = int(get_mark(store, "active_floor"))
    rids = journal.shared_event_rids(store, raw, floor)
    evs = tables.events_by_rids(store, rids) if rids else []
    names = journal.entity_names(store, members)
    label = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    summary = f"{label}: {len(members)} entities, {len(evs)} recent shared events."
    vecs = [e.vec for e in evs]
    X = stacked(vecs)
    if evs and X is not None:
        best = central_order(X)[:2]
        summary += " " + " ".join(evs[i].text[:200] for i in sorted(best))
    return GraphNode(
        nid,
        "community",
        0,
        label,
        min((e.t_start for e in evs), default=None),
        max((e.t_end for e in evs), default=None),
        summary,
        centroid(vecs) if evs else None,
        {"members": members, "names": names},
    )


# -- the run ---------------------------------------------------------------------------------
def compress(
    store,
    policy: CompressionPolicy | None = None,
    *,
    dry_run: bool = False,
    config: GraphConfig | None = None,
    communities: bool | None = None,
) -> CompressionReport:
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
    t0 = time.perf_counter()
    now = time.time()
    update(store, config)
    rep = CompressionReport(run=None, dry_run=False, active_before=active_counts(store))
    top = store.max_event_rid()
    rep.events_seen = top - int(get_mark(store, "compressed_rid"))
    with store.transaction():
        run = journal.start_run(store, now, asdict(policy))
    for name in STEPS:
        if name in CHUNKED_STEPS:
            _step(name, store, run, now, policy, functional, communities, rep)
            with store.transaction():
                journal.step_done(store, run, name)
        else:
            with store.transaction():
                _step(name, store, run, now, policy, functional, communities, rep)
                journal.step_done(store, run, name)
    rep.active_after = active_counts(store)
    rep.seconds = time.perf_counter() - t0
    rep.run = run
    with store.transaction():
        set_mark(store, "compressed_rid", top)
        journal.finish_run(store, run, time.time(), rep.to_dict())
    return rep


def _dry_run(
    store, policy: CompressionPolicy, config: GraphConfig | None, communities: bool | None
) -> CompressionReport:
    """Run on a snapshot copy in a temporary folder: the plan is exactly what a run would do, and the memory
    itself is neither written nor locked (a reader's snapshot never blocks WAL writers)."""
    from agentmem.storage.store import Store

    with tempfile.TemporaryDirectory(prefix="agentmem-dry-run-") as tmp:
        store.copy_to(tmp)
        snap = Store(tmp)
        try:
            rep = compress(snap, policy, config=config, communities=communities)
        finally:
            snap.close()
    rep.dry_run, rep.run = True, None
    return rep


def _step(
    name: str,
    store,
    run: int,
    now: float,
    policy: CompressionPolicy,
    functional: frozenset[str],
    communities: bool | None,
    rep: CompressionReport,
) -> None:
    if name == "facts":
        rep.facts_closed, rep.facts_reinforced = _facts(store, run, now, functional)
    elif name == "decay":
        rep.edges_pruned = _decay(store, run, now, policy)
    elif name == "merge":
        rep.merges = [m[:3] for m in _merges(store, run, now)] if policy.merge_duplicates else []
    elif name == "cap":
        rep.vectors_archived = _cap(store, run, now, policy)
    elif name == "events":
        rep.events_archived = _events(store, run, now, policy)
    elif name == "levels":
        rep.episodes_archived, rep.arcs_archived = _levels(store, run, now, policy)
    elif name == "communities" and communities is not False:
        rep.communities = _communities(store, run, now, policy, force=bool(communities))
