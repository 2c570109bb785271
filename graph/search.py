"""Retrieval through the graph and the hierarchy, fused with the core ranking.

:func:`search` answers a :class:`agentmem.search.query.Query` with up to four
ranked lists over events, fused by weighted reciprocal rank (each list gives
``w / (rrf_k + rank)``; ``rrf_k`` is the core's):

1. ``core``: the core ranking (:func:`agentmem.search.query.run_query`), or, once
   compression has archived events and the query leaves the archive out, the
   same signals (FTS5 BM25 over events and windows, group BM25, dense cosine,
   entity and time boosts, fused by :func:`agentmem.search.fusion.fuse`) computed
   over the active tier only, so that its cost follows the working set rather
   than the whole history;
2. ``entity`` (graph expansion from the entities the query names): the query
   text is split into the entity mentions, which are resolved to entity nodes,
   and the rest (the *content*). The events are ranked by the cosine between
   their vector and the content's, plus ``entity_prior`` for the events the
   named entities take part in (their ``participates_in`` neighbours). Once an
   entity is resolved through the graph its name no longer tells its events
   apart; the remaining words do. Queries that name no entity skip this list;
3. ``hier`` (coarse to fine): episode and arc summaries are ranked by the
   cosine between their summary vector and the content vector (BM25 on the
   summary text without vectors); a matched arc contributes its best
   episodes; each matched episode contributes its best events (those of the
   named entities when the query names some), taken round-robin over the
   episodes. A matched episode or arc whose events are all archived stands in
   for them (``kind`` "episode" or "arc", component ``summary``): it ranks
   where its vector's cosine falls among the active events' and carries the
   summed weight of all lists;
4. ``around`` (off by default): the neighbours, in their episode, of the top core hits.

Every hit's ``components`` gives each list's contribution. Episode hits carry
``provenance["children"]`` (event ids) and, for LoCoMo material,
``provenance["dia_ids"]``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from agentmem.memory import Memory

from agentmem.model import Hit
from agentmem.search.entities import alias_index
from agentmem.search.query import Query, check_inputs, run_query
from agentmem.search.resolution import find_mentions
from graph import tables
from graph.active import ActiveTier, active_vectors, admissible_mask, allowed_rids
from graph.persist import GraphNode, get_mark

_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class GraphSearchParams:
    """Weights and depths of :func:`search` (defaults chosen on the LoCoMo development split; see the README)."""

    depth: int = 100
    w_core: float = 1.0
    w_entity: float = 0.5
    w_hier: float = 0.2
    w_around: float = 0.0
    w_summary: float = 1.0
    entity_prior: float = 0.1
    top_parents: int = 4
    children_per_parent: int = 3
    around_hits: int = 3
    list_depth: int = 50
    rrf_k: int = 10


def tokens(text: str) -> list[str]:
    """Lower-case content words (the core's stop words dropped).

    Examples
    --------
    >>> tokens("What did the storm do to the sea?")
    ['storm', 'sea']
    """
    from agentmem.search.query import STOPWORDS

    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


def bm25(query: list[str], docs: list[list[str]], k1: float = 1.2, b: float = 0.75) -> np.ndarray:
    """Okapi BM25 of each tokenized doc for the query tokens.

    Examples
    --------
    >>> [round(float(s), 3) for s in bm25(["storm"], [["storm", "sea"], ["tea"]])]
    [0.61, 0.0]
    """
    n = len(docs)
    if n == 0 or not query:
        return np.zeros(n)
    df = Counter(w for d in docs for w in set(d))
    avg = sum(len(d) for d in docs) / n or 1.0
    out = np.zeros(n)
    for i, d in enumerate(docs):
        tf = Counter(d)
        for w in set(query):
            if tf[w]:
                idf = math.log(1 + (n - df[w] + 0.5) / (df[w] + 0.5))
                out[i] += idf * tf[w] * (k1 + 1) / (tf[w] + k1 * (1 - b + b * len(d) / avg))
    return out


def content_text(text: str, aliases: list[str]) -> str:
    """``text`` without the entity mentions (normalized aliases) that were resolved in it.

    Examples
    --------
    >>> content_text("What did the keeper's lamp light?", ["keeper"])
    'What did the lamp light?'
    """
    out = text
    for alias in sorted(aliases, key=len, reverse=True):
        words = alias.split()
        if words:
            out = re.sub(r"\b" + r"\W+".join(map(re.escape, words)) + r"(?:'s|’s)?\b", " ", out, flags=re.I)
    return " ".join(out.split())


@dataclass
class _Ctx:
    """What the lists of one query share."""

    mem: Memory
    q: Query
    params: GraphSearchParams
    tiered: bool
    floor: int
    allowed: set[int] | None
    cv: np.ndarray | None
    content: str
    members: set[str]


def search(mem: Memory, q, params: GraphSearchParams | None = None, vector: np.ndarray | None = None) -> list[Hit]:
    """Graph-expanded, coarse-to-fine search fused with the core ranking; best first.

    Parameters
    ----------
    mem : agentmem.Memory
    q : agentmem.search.query.Query
    params : GraphSearchParams, optional
    vector : ndarray, optional
        The query's unit text vector, for memories without a text embedder
        (synthetic data); it then also stands for the content vector.
    """
    check_inputs(q)
    params = params or GraphSearchParams()
    store = mem.store
    floor = int(get_mark(store, "active_floor"))
    tiered = floor > 1 and not q.include_archive
    deep = replace(q, k=max(params.depth, q.k))
    embed = mem.text.embed if mem.text is not None else None
    qv = vector
    if qv is None and tiered and q.text and embed is not None:
        qv = embed([q.text])[0]
    if tiered:
        core_hits = run_query(
            mem, replace(deep, text_vector=qv) if qv is not None and embed else deep, ActiveTier(floor, qv)
        )
    else:
        core_hits = mem.query(deep)
    core = [(h.id, h) for h in core_hits]
    if not q.text:
        return [h for _, h in core][: q.k]
    mentions = find_mentions(q.text, alias_index(mem))
    content = content_text(q.text, list(mentions.values()))
    if vector is None and embed is not None:
        if content and content != q.text:
            cv = embed([content])[0]
        else:
            qv = qv if qv is not None else embed([q.text])[0]
            cv = qv
    else:
        cv = qv
    members = {m for e in mentions for m in store.member_ids(e)}
    ctx = _Ctx(mem, q, params, tiered, floor, allowed_rids(mem, q), cv, content or q.text, members)
    hits: dict[str, Hit] = dict(core)
    lists: dict[str, tuple[float, list[str]]] = {"core": (params.w_core, [i for i, _ in core])}
    if params.w_entity > 0 and members and cv is not None:
        lists["entity"] = (params.w_entity, _entity_list(ctx))
    summary_ranks: dict[str, int] = {}
    if params.w_hier > 0 or params.w_summary > 0:
        hier, summaries, extra = _coarse_to_fine(ctx)
        lists["hier"] = (params.w_hier, hier)
        hits.update(extra)
        if summaries and qv is None and embed is not None:
            qv = embed([q.text])[0]  # only now: the core embedded the text itself
        summary_ranks = _stand_in_ranks(ctx, qv, [extra[i] for i in summaries])
    if params.w_around > 0:
        lists["around"] = (params.w_around, _around(ctx, [i for i, _ in core[: params.around_hits]]))
    fused: dict[str, dict[str, float]] = {}
    for name, (w, ranking) in lists.items():
        for r, key in enumerate(ranking, start=1):
            fused.setdefault(key, {})[name] = w / (params.rrf_k + r)
    # A summary whose events were rolled up stands in for them: it ranks where its vector falls among the
    # active events' and carries the weight of every list those events would have been in.
    w_all = params.w_summary * sum(w for w, _ in lists.values())
    for key, r in summary_ranks.items():
        fused.setdefault(key, {})["summary"] = w_all / (params.rrf_k + r)
    order = sorted(fused, key=lambda k: (-sum(fused[k].values()), k))[: q.k]
    missing = [k for k in order if k not in hits]
    for e in mem.get_events(missing) if missing else []:
        hits[e.id] = Hit.from_event(e)
    return [replace(hits[key], score=sum(fused[key].values()), components=dict(fused[key])) for key in order]


def _stand_in_ranks(ctx: _Ctx, qv: np.ndarray | None, stand_ins: list[Hit]) -> dict[str, int]:
    """Each stand-in summary's rank among the admissible events by cosine to the query (1 = above them all)."""
    if not stand_ins:
        return {}
    if qv is None:
        return {h.id: i for i, h in enumerate(stand_ins, start=1)}
    _, sims = _event_scores(ctx, qv)
    nodes = {n.id: n for n in tables.nodes_by_id(ctx.mem.store, [h.id for h in stand_ins])}
    return {h.id: 1 + int((sims > _cos(nodes[h.id].vec, qv, -2.0)).sum()) for h in stand_ins}


def _event_scores(ctx: _Ctx, vec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rids, cosine) of the events the query may return (active unless the archive is included)."""
    mem, q = ctx.mem, ctx.q
    if ctx.tiered:
        rids, mat = active_vectors(mem, ctx.floor)
        if not len(rids) or mat.shape[1] != len(vec):
            return np.zeros(0, np.int64), np.zeros(0)
        sims = mat @ vec
        if q.as_of is not None:
            keep = admissible_mask(mem.store, rids, q)
            rids, sims = rids[keep], sims[keep]
    else:
        rids, sims = mem.vectors.scores(vec)
        if len(rids) and (not q.include_archive or q.as_of is not None):
            keep = admissible_mask(mem.store, rids, q)
            rids, sims = rids[keep], sims[keep]
    if ctx.allowed is not None:
        ok = np.isin(rids, np.fromiter(ctx.allowed, np.int64, len(ctx.allowed)))
        rids, sims = rids[ok], sims[ok]
    return rids, sims


def _member_rids(ctx: _Ctx) -> set[int]:
    if not ctx.members:
        return set()
    return tables.member_rids(ctx.mem.store, sorted(ctx.members), ctx.floor if ctx.tiered else 0)


def _entity_list(ctx: _Ctx) -> list[str]:
    """Events by content cosine, with a prior for those of the named entities (graph neighbours)."""
    if ctx.cv is None:
        return []
    rids, sims = _event_scores(ctx, ctx.cv)
    if not len(rids):
        return []
    mine = _member_rids(ctx)
    bonus = np.fromiter((ctx.params.entity_prior if r in mine else 0.0 for r in rids.tolist()), float, len(rids))
    score = sims + bonus
    top = np.argsort(-score, kind="stable")[: ctx.params.list_depth]
    return tables.ids_of(ctx.mem.store, [int(rids[i]) for i in top])


def _coarse_to_fine(ctx: _Ctx) -> tuple[list[str], list[str], dict[str, Hit]]:
    """Summaries first, then their children, round-robin over the matched episodes.

    Returns the event ids, the ids of matched summaries whose events are all archived, and their hits.
    """
    store, q, params = ctx.mem.store, ctx.q, ctx.params
    parents = _parents(ctx.mem, q.include_archive)
    if q.as_of is not None:
        parents = [p for p in parents if (p.t_start or 0) <= q.as_of]
    if not parents:
        return [], [], {}
    cv = ctx.cv
    if cv is not None:
        score = np.array([_cos(p.vec, cv, -2.0) for p in parents])
    else:
        score = bm25(tokens(ctx.content), [tokens(p.summary) for p in parents])
    order = [parents[i] for i in np.argsort(-score, kind="stable")]
    episodes: list[GraphNode] = []
    stand_ins: dict[str, Hit] = {}
    for node in order:
        if len(episodes) + len(stand_ins) >= params.top_parents:
            break
        if node.type == "episode":
            episodes.append(node)
            continue
        # Descend into archived episodes too: rolled up into this arc, their summaries still answer.
        kids = _descend(store, node, cv)
        if kids:
            episodes += kids[:2]
        elif not q.include_archive and ctx.allowed is None:
            stand_ins[node.id] = _summary_hit(store, node)
    mine = _member_rids(ctx)
    per_episode: list[list[str]] = []
    for ep in list({e.id: e for e in episodes}.values()):
        evs = _children(store, ep.id, q, ctx.allowed)
        if not evs or (ep.archived and not q.include_archive):
            if not q.include_archive and ctx.allowed is None and tables.has_archived_events(store, ep.id):
                stand_ins[ep.id] = _summary_hit(store, ep)
            continue
        if mine and any(e.rid in mine for e in evs):
            evs = [e for e in evs if e.rid in mine]
        if cv is not None:
            evs.sort(key=lambda e: -_cos(e.vec, cv, -2.0))
        else:
            lex = bm25(tokens(ctx.content), [tokens(e.text) for e in evs])
            evs = [evs[i] for i in np.argsort(-lex, kind="stable")]
        per_episode.append([e.id for e in evs[: params.children_per_parent]])
    out: list[str] = []
    for depth in range(params.children_per_parent):
        out += [ids[depth] for ids in per_episode if depth < len(ids)]
    return list(dict.fromkeys(out)), list(stand_ins), stand_ins


@dataclass
class ParentNodes:
    """Episodes and arcs, kept on the memory (``mem.cache_of``) until the graph changes."""

    key: tuple[int, int, bool] | None = None
    nodes: list[GraphNode] = field(default_factory=list)


def _parents(mem: Memory, include_archive: bool) -> list[GraphNode]:
    """Episodes and arcs (active ones unless the archive is included), cached until the graph changes."""
    store = mem.store
    key = (int(get_mark(store, "seq")), int(get_mark(store, "archive_version")), include_archive)
    cache = mem.cache_of(ParentNodes)
    if cache.key != key:
        cache.key, cache.nodes = key, tables.parent_nodes(store, include_archive)
    return cache.nodes


def _cos(v: np.ndarray | None, q: np.ndarray | None, missing: float) -> float:
    return float(v @ q) if v is not None and q is not None and v.shape == q.shape else missing


def _descend(store, node: GraphNode, cv: np.ndarray | None, beam: int = 2) -> list[GraphNode]:
    """The episodes under an arc, best first: level by level, only the ``beam`` best arcs are opened,
    so the cost is bounded by the depth of the tree, not by its size."""
    frontier = [node]
    while frontier:
        ids = [n.id for n in frontier]
        kids = tables.children_of(store, ids)
        kids.sort(key=lambda k: -_cos(k.vec, cv, -2.0))
        episodes = [k for k in kids if k.type == "episode"]
        if episodes:
            return episodes
        frontier = [k for k in kids if k.type == "arc"][:beam]
    return []


def _children(store, episode: str, q, allowed):
    evs = tables.episode_events(store, episode, include_archive=q.include_archive, as_of=q.as_of)
    return [e for e in evs if allowed is None or e.rid in allowed]


def _summary_hit(store, node: GraphNode, max_events: int = 500) -> Hit:
    """An episode or arc as a hit: its summary, and what it stands for in provenance.

    ``children`` lists an episode's events, or an arc's child nodes; ``dia_ids`` (LoCoMo turns) are given
    when the node covers at most ``max_events`` events, so a long item is never cheaper than its turns.
    """
    prov: dict = {"summary_of": node.data.get("n"), "level": node.level}
    if node.type == "arc":
        prov["children"] = tables.child_ids(store, node.id)
    if node.type == "episode" or (node.data.get("n") or 0) <= max_events:
        episodes = [node.id] if node.type == "episode" else tables.episodes_under(store, node.id)
        rows = tables.episode_turns(store, episodes)
        if node.type == "episode":
            prov["children"] = [r.id for r in rows]
        dia = [r.provenance["dia_id"] for r in rows if "dia_id" in r.provenance]
        if dia:
            prov["dia_ids"] = dia
    return Hit(
        id=node.id,
        kind=node.type,
        t_start=node.t_start or 0.0,
        t_end=node.t_end or 0.0,
        text=node.summary,
        entities=node.data.get("participants", []),
        score=0.0,
        components={},
        provenance=prov,
        location=node.data.get("location"),
        group=node.data.get("group"),
        archived=node.archived,
    )


def _around(ctx: _Ctx, top_hits: list[str]) -> list[str]:
    """The previous and next event, in its episode, of each top hit."""
    out: list[str] = []
    for hid in top_hits:
        for eid, rid in tables.episode_neighbours(ctx.mem.store, hid, include_archive=ctx.q.include_archive):
            if ctx.allowed is None or rid in ctx.allowed:
                out.append(eid)
    return list(dict.fromkeys(out))
