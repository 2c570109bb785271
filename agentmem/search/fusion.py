"""Rank fusion: search presets as data, and the function that fuses ranked lists.

Every ranked list contributes reciprocal-rank mass ``w / (rrf_k + rank)``
(rank from 1). The ``hybrid`` preset fuses six lists over events and their
context (:mod:`agentmem.storage.context`):

- ``bm25`` and ``dense``: the event itself (FTS5 BM25; MiniLM cosine);
- ``bm25_w1``/``bm25_w2``: the FTS5 documents of its +-1 / +-2 window in its group;
- ``dense_w1``/``dense_w2``: the mean cosine of the events in those windows;

and then adds, each in units of one rank-1 vote ``1 / (rrf_k + 1)``:

- **group**: ``w_group * (1/(rrf_k + r_bm25(group)) + 1/(rrf_k + r_maxcos(group)))``
  to every event of a group, where the group ranks by the BM25 of its whole
  document and by its best event cosine (coarse to fine);
- **entity**: ``w_entity`` to events involving every entity named in the query;
- **time**: ``w_time`` to events inside a dated phrase of the query, and
  ``w_temporal`` to events whose text carries a date when the query asks
  *when* (or how long, since, before ...);
- **context**: finally ``w_context`` times the best score of the previous or
  next event in the group.

The weights were chosen on the LoCoMo development split as round values in a
flat region: every single-weight change of the sensitivity grid stays within
0.02 of the chosen setting (see the README's benchmark section).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from agentmem.errors import BadInputError
from agentmem.storage.filters import entities_of, group_orders, groups_of, spans_and_texts
from agentmem.timeparse import TimeWindow

_MONTHS = "january february march april may june july august september october november december".split()
TEMPORAL_QUESTION = re.compile(
    r"\b(when|how long|what (year|month|day|date|time)|which (year|month|day)|how many (days|weeks|months|"
    r"years)|since|before|after|during|first time|last time|recently)\b",
    re.I,
)
TEMPORAL_TEXT = re.compile(
    r"\b(yesterday|today|tonight|tomorrow|last (night|week|weekend|month|year|summer|winter|spring|fall|"
    r"monday|tuesday|wednesday|thursday|friday|saturday|sunday)|next (week|month|year|weekend)|this "
    r"(morning|week|weekend|month|year|summer)|ago|recently|(19|20)\d\d|monday|tuesday|wednesday|thursday|"
    r"friday|saturday|sunday|" + "|".join(_MONTHS) + r"|weeks?|months?|years?|days?)\b",
    re.I,
)


@dataclass(frozen=True)
class SearchPreset:
    """Weights of the ranking signals (see the module docstring)."""

    name: str
    w_bm25: float = 1.0
    w_dense: float = 1.0
    w_image: float = 1.0
    w_windows: float = 1.0
    w_group: float = 1.0
    w_entity: float = 1.0
    w_time: float = 0.5
    w_temporal: float = 0.5
    w_context: float = 0.25
    rrf_k: int = 10
    depth: int = 300
    expand: int = 50
    description: str = ""

    @property
    def uses_text_vector(self) -> bool:
        """Whether ranking with this preset needs the query text's embedding."""
        return max(self.w_dense, self.w_windows, self.w_group) > 0


PRESETS: dict[str, SearchPreset] = {
    p.name: p
    for p in (
        SearchPreset("hybrid", description="events + windows (BM25, dense), group, entity, time, context (default)"),
        SearchPreset(
            "rrf",
            w_windows=0,
            w_group=0,
            w_entity=0,
            w_time=0,
            w_temporal=0,
            w_context=0,
            rrf_k=60,
            depth=100,
            description="plain reciprocal-rank fusion of BM25 and dense over events",
        ),
        SearchPreset(
            "lexical",
            w_dense=0,
            w_windows=0,
            w_group=0,
            w_entity=0,
            w_time=0,
            w_temporal=0,
            w_context=0,
            depth=100,
            description="FTS5 BM25 over events only (a baseline)",
        ),
        SearchPreset(
            "dense",
            w_bm25=0,
            w_windows=0,
            w_group=0,
            w_entity=0,
            w_time=0,
            w_temporal=0,
            w_context=0,
            depth=100,
            description="MiniLM cosine over events only (a baseline)",
        ),
    )
}


def preset_named(preset: str | SearchPreset) -> SearchPreset:
    """The preset called ``preset``; a :class:`SearchPreset` passes through.

    Examples
    --------
    >>> preset_named("lexical").w_dense == 0
    True
    >>> preset_named("fast")
    Traceback (most recent call last):
    ...
    agentmem.errors.BadInputError: unknown preset 'fast'; choose one of ['dense', 'hybrid', 'lexical', 'rrf']
    """
    if isinstance(preset, SearchPreset):
        return preset
    found = PRESETS.get(preset)
    if found is None:
        raise BadInputError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    return found


@dataclass
class FusionInputs:
    """Ranked lists as (rid, raw score), best first, plus what the query text named."""

    lists: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    group_bm25: list[tuple[str, float]] = field(default_factory=list)
    cosine: Callable[[list[int]], dict[int, float]] | None = None
    mention_members: dict[str, set[str]] = field(default_factory=dict)
    windows: list[TimeWindow] = field(default_factory=list)
    temporal_question: bool = False


@dataclass
class Pool:
    """Events under consideration with what fusion needs to know about them.

    ``ranked`` holds the events that can rank, ``groups`` their group names,
    ``order`` the full story order of the leaders' groups (which window means
    and group scores read). ``times``, ``entities`` and ``texts`` are read only
    when a signal needs them.
    """

    ranked: list[int]
    groups: dict[int, str | None]
    order: dict[str, list[int]]
    times: dict[int, tuple[float, float]] = field(default_factory=dict)
    entities: dict[int, set[str]] = field(default_factory=dict)
    texts: dict[int, str] = field(default_factory=dict)


def fuse(
    store, inputs: FusionInputs, preset: SearchPreset, k: int, admissible: Callable[[set[int]], set[int]]
) -> list[tuple[int, float, dict[str, float]]]:
    """Top ``k`` (rid, score, components), best first; ties break on rid."""
    # 1. The pool: every ranked event, and the context around each list's leaders.
    lists = dict(inputs.lists)
    if not any(lists.values()):
        return []
    pool = _pool_for(store, inputs, preset, lists)
    # 2. Cosines over the pool; the dense window lists come from them.
    cos = _pool_cosines(inputs, preset, pool)
    if preset.w_windows > 0 and cos:
        lists.update(_dense_windows(pool.order, cos, preset.depth))
    # 3. Reciprocal-rank votes of every list, then the boosts (BOOSTS, in order).
    comps = _rank_votes(lists, preset, pool.ranked)
    for boost in BOOSTS:
        boost(comps, pool, inputs, preset, cos)
    # 4. Context from the neighbours, then the admissible top k.
    base = {rid: _base(c) for rid, c in comps.items()}
    _add_context(comps, base, pool, preset)
    keep = admissible({rid for rid, b in base.items() if b > 0 or "context" in comps[rid]})
    scored = [(rid, base[rid] + comps[rid].get("context", 0.0), comps[rid]) for rid in keep]
    scored.sort(key=lambda p: (-p[1], p[0]))
    return scored[:k]


def _unit(preset: SearchPreset) -> float:
    """One rank-1 vote."""
    return 1.0 / (preset.rrf_k + 1)


def _structured(preset: SearchPreset) -> bool:
    return preset.w_windows > 0 or preset.w_group > 0 or preset.w_context > 0


def _pool_for(store, inputs: FusionInputs, preset: SearchPreset, lists: dict[str, list]) -> Pool:
    seeds = {rid for ranking in lists.values() for rid, _ in ranking}
    # Context only matters around strong candidates: expand the groups of each list's top hits.
    leaders = {rid for ranking in lists.values() for rid, _ in ranking[: preset.expand]}
    return _pool(
        store,
        seeds,
        leaders if _structured(preset) else set(),
        times=preset.w_time > 0 and bool(inputs.windows),
        entities=preset.w_entity > 0 and bool(inputs.mention_members),
        texts=preset.w_temporal > 0 and inputs.temporal_question,
    )


def _pool_cosines(inputs: FusionInputs, preset: SearchPreset, pool: Pool) -> dict[int, float]:
    if inputs.cosine is None or not _structured(preset):
        return {}
    return inputs.cosine(sorted({m for ms in pool.order.values() for m in ms}.union(pool.ranked)))


def _rank_votes(lists: dict[str, list], preset: SearchPreset, rids: list[int]) -> dict[int, dict[str, float]]:
    """``w / (rrf_k + rank)`` from each list with a positive weight, and the raw score of the event-level lists."""
    weights = {
        "bm25": preset.w_bm25,
        "dense": preset.w_dense,
        "image": preset.w_image,
        "bm25_w1": preset.w_windows,
        "bm25_w2": preset.w_windows,
        "dense_w1": preset.w_windows,
        "dense_w2": preset.w_windows,
    }
    comps: dict[int, dict[str, float]] = {rid: {} for rid in rids}
    for name, ranking in lists.items():
        w = weights.get(name, 0.0)
        if w <= 0:
            continue
        raw_name = f"{name}_raw" if name in ("bm25", "dense", "image") else None
        for rank, (rid, raw) in enumerate(ranking, start=1):
            c = comps.get(rid)
            if c is not None:
                c[name] = w / (preset.rrf_k + rank)
                if raw_name:
                    c[raw_name] = raw
    return comps


def _group_boost(comps, pool: Pool, inputs: FusionInputs, preset: SearchPreset, cos: dict[int, float]) -> None:
    if preset.w_group <= 0 or not pool.order:
        return
    gscore = _group_scores(pool, inputs.group_bm25, cos, preset.rrf_k)
    for rid in pool.ranked:
        g = pool.groups.get(rid)
        if g is not None and gscore.get(g, 0.0) > 0:
            comps[rid]["group"] = preset.w_group * gscore[g]


def _entity_boost(comps, pool: Pool, inputs: FusionInputs, preset: SearchPreset, cos: dict[int, float]) -> None:
    for rid in pool.ranked if pool.entities else ():
        ents = pool.entities.get(rid, set())
        if all(members & ents for members in inputs.mention_members.values()):
            comps[rid]["entity"] = preset.w_entity * _unit(preset)


def _time_boost(comps, pool: Pool, inputs: FusionInputs, preset: SearchPreset, cos: dict[int, float]) -> None:
    for rid in pool.ranked if pool.times else ():
        t0, t1 = pool.times[rid]
        if any(t0 <= w.t1 and t1 >= w.t0 for w in inputs.windows):
            comps[rid]["time"] = preset.w_time * _unit(preset)


def _temporal_boost(comps, pool: Pool, inputs: FusionInputs, preset: SearchPreset, cos: dict[int, float]) -> None:
    for rid in pool.ranked if pool.texts else ():
        if TEMPORAL_TEXT.search(pool.texts[rid]):
            comps[rid]["temporal"] = preset.w_temporal * _unit(preset)


BOOSTS = (_group_boost, _entity_boost, _time_boost, _temporal_boost)
"""The boost signals, applied in this order after the rank votes (each in units of one rank-1 vote)."""


def _add_context(comps, base: dict[int, float], pool: Pool, preset: SearchPreset) -> None:
    """``w_context`` times the best base score of the previous or next event in the group."""
    if preset.w_context <= 0:
        return
    for members in pool.order.values():
        for j, rid in enumerate(members):
            if rid not in comps:
                continue
            best = max((base.get(m, 0.0) for m in members[max(0, j - 1) : j + 2] if m != rid), default=0.0)
            if best > 0:
                comps[rid]["context"] = preset.w_context * best


def _dense_windows(order: dict[str, list[int]], cos: dict[int, float], depth: int) -> dict[str, list]:
    """``dense_w1``/``dense_w2``: events ranked by the mean cosine of their +-1 / +-2 window."""
    flat = np.array([m for members in order.values() for m in members], dtype=np.int64)
    sizes = [len(members) for members in order.values()]
    values = [cos.get(m, 0.0) for m in flat.tolist()]
    out = {}
    for radius in (1, 2):
        means = window_means(values, radius, sizes)
        top = np.lexsort((flat, -means))[:depth]
        out[f"dense_w{radius}"] = list(zip(flat[top].tolist(), means[top].tolist()))
    return out


def window_means(values: list[float], radius: int, sizes: list[int] | None = None) -> np.ndarray:
    """Mean of each value's window of +-``radius`` neighbours, cut at the ends of its group.

    ``values`` holds consecutive groups of the given ``sizes`` (one group when ``None``).

    Examples
    --------
    >>> window_means([1.0, 0.0, 2.0, 4.0], 1).tolist()
    [0.5, 1.0, 2.0, 3.0]
    >>> window_means([1.0, 0.0, 2.0, 4.0], 1, sizes=[2, 2]).tolist()
    [0.5, 0.5, 3.0, 3.0]
    >>> window_means([], 1, sizes=[]).tolist()
    []
    """
    n = len(values)
    if n == 0:
        return np.zeros(0)
    sizes = [n] if sizes is None else sizes
    c = np.concatenate([[0.0], np.cumsum(values)])
    start = np.repeat(np.cumsum([0, *sizes[:-1]]), sizes)
    end = start + np.repeat(sizes, sizes)
    idx = np.arange(n)
    lo, hi = np.maximum(start, idx - radius), np.minimum(end, idx + radius + 1)
    return (c[hi] - c[lo]) / (hi - lo)


_SIGNALS = (
    "bm25",
    "dense",
    "image",
    "bm25_w1",
    "bm25_w2",
    "dense_w1",
    "dense_w2",
    "group",
    "entity",
    "time",
    "temporal",
)


def _base(c: dict[str, float]) -> float:
    return sum(c.get(s, 0.0) for s in _SIGNALS)


def _group_scores(pool: Pool, group_bm25: list[tuple[str, float]], cos: dict[int, float], rk: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for rank, (g, _) in enumerate(group_bm25, start=1):
        if g in pool.order:
            out[g] = out.get(g, 0.0) + 1.0 / (rk + rank)
    if cos:
        best = sorted(((max(cos.get(r, -1.0) for r in m), g) for g, m in pool.order.items() if m), reverse=True)
        for rank, (_, g) in enumerate(best, start=1):
            out[g] = out.get(g, 0.0) + 1.0 / (rk + rank)
    return out


def _pool(store, seeds: set[int], leaders: set[int], *, times: bool, entities: bool, texts: bool) -> Pool:
    """The seeds, and the +-2 neighbours of the ``leaders`` in their groups (their context)."""
    groups = groups_of(store, sorted(seeds))
    order: dict[str, list[int]] = {}
    ranked = set(groups)
    if leaders:
        order = group_orders(store, sorted({g for r in leaders if (g := groups.get(r)) is not None}))
        for grp, members in order.items():
            for j, rid in enumerate(members):
                if rid in leaders:
                    window = members[max(0, j - 2) : j + 3]
                    ranked.update(window)
                    groups.update(dict.fromkeys(window, grp))
    pool = Pool(ranked=sorted(ranked), groups=groups, order=order)
    for rid, t0, t1, text in spans_and_texts(store, pool.ranked) if (times or texts) else ():
        if times:
            pool.times[rid] = (t0, t1)
        if texts:
            pool.texts[rid] = text
    for ent, rid in entities_of(store, pool.ranked) if entities else ():
        pool.entities.setdefault(rid, set()).add(ent)
    return pool
