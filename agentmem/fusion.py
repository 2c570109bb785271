"""Rank fusion: search presets as data, and one pure-ish function that fuses.

Each signal contributes reciprocal-rank-fusion mass ``w / (rrf_k + rank)``
(rank from 1). On top of that:

- **entity**: events involving an entity named in the query gain ``w_entity``
  times the mass of a rank-1 hit;
- **time**: events overlapping a dated phrase of the query gain ``w_time`` likewise;
- **context**: an event gains ``w_context`` times the best base score of its
  neighbours in the same group (the previous and next events of its session
  or episode), because evidence in conversation and story runs over adjacent
  turns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agentmem.timeparse import TimeWindow


@dataclass(frozen=True)
class SearchPreset:
    """Weights of the ranking signals (see the module docstring)."""

    name: str
    w_bm25: float = 1.0
    w_dense: float = 1.0
    w_image: float = 1.0
    w_entity: float = 0.5
    w_time: float = 0.5
    w_context: float = 0.0
    rrf_k: int = 60
    depth: int = 100
    description: str = ""


PRESETS: dict[str, SearchPreset] = {
    p.name: p
    for p in (
        SearchPreset("hybrid", description="BM25 + dense + entity/time boosts + group context (default)"),
        SearchPreset("lexical", w_dense=0.0, w_entity=0.0, w_time=0.0, w_context=0.0,
                     description="FTS5 BM25 only (a baseline)"),
        SearchPreset("dense", w_bm25=0.0, w_entity=0.0, w_time=0.0, w_context=0.0,
                     description="MiniLM cosine only (a baseline)"),
        SearchPreset("rrf", w_entity=0.0, w_time=0.0, w_context=0.0,
                     description="plain reciprocal-rank fusion of BM25 and dense"),
    )
}


@dataclass
class FusionInputs:
    lexical: list[tuple[int, float]] = field(default_factory=list)
    dense: list[tuple[int, float]] = field(default_factory=list)
    image: list[tuple[int, float]] = field(default_factory=list)
    mention_members: dict[str, set[str]] = field(default_factory=dict)
    windows: list[TimeWindow] = field(default_factory=list)


def fuse(store, inputs: FusionInputs, preset: SearchPreset, k: int) -> list[tuple[int, float, dict[str, float]]]:
    """Top ``k`` (rid, score, components), best first; ties break on rid."""
    comps: dict[int, dict[str, float]] = {}
    for name, ranking, w in (
        ("bm25", inputs.lexical, preset.w_bm25),
        ("dense", inputs.dense, preset.w_dense),
        ("image", inputs.image, preset.w_image),
    ):
        if w <= 0:
            continue
        for rank, (rid, raw) in enumerate(ranking, start=1):
            c = comps.setdefault(rid, {})
            c[name] = w / (preset.rrf_k + rank)
            c[f"{name}_raw"] = raw
    if not comps:
        return []
    top_mass = 1.0 / (preset.rrf_k + 1)
    rids = sorted(comps)
    info = _event_info(store, rids)
    if inputs.mention_members and preset.w_entity > 0:
        for rid in rids:
            ents = info[rid][2]
            hit = sum(1 for members in inputs.mention_members.values() if members & ents)
            if hit:
                comps[rid]["entity"] = preset.w_entity * top_mass * hit / len(inputs.mention_members)
    if inputs.windows and preset.w_time > 0:
        for rid in rids:
            t0, t1, _ = info[rid]
            if any(t0 <= w.t1 and t1 >= w.t0 for w in inputs.windows):
                comps[rid]["time"] = preset.w_time * top_mass
    base = {rid: _base(c) for rid, c in comps.items()}
    if preset.w_context > 0:
        for rid, neigh in _neighbours(store, rids).items():
            best = max((base.get(n, 0.0) for n in neigh), default=0.0)
            if best > 0:
                comps[rid]["context"] = preset.w_context * best
    scored = [(rid, _base(c) + c.get("context", 0.0), c) for rid, c in comps.items()]
    scored.sort(key=lambda p: (-p[1], p[0]))
    return scored[:k]


_SIGNALS = ("bm25", "dense", "image", "entity", "time")


def _base(c: dict[str, float]) -> float:
    return sum(c.get(s, 0.0) for s in _SIGNALS)


def _event_info(store, rids: list[int]) -> dict[int, tuple[float, float, set[str]]]:
    out: dict[int, tuple[float, float, set[str]]] = {}
    for i in range(0, len(rids), 500):
        chunk = rids[i : i + 500]
        marks = ",".join("?" * len(chunk))
        for rid, t0, t1 in store.conn.execute(f"SELECT rid, t_start, t_end FROM events WHERE rid IN ({marks})", chunk):
            out[rid] = (t0, t1, set())
        for ent, rid in store.conn.execute(f"SELECT entity_id, rid FROM event_entities WHERE rid IN ({marks})", chunk):
            out[rid][2].add(ent)
    return out


def _neighbours(store, rids: list[int]) -> dict[int, list[int]]:
    """The previous and next event of the same group, by story time."""
    out: dict[int, list[int]] = {}
    for rid in rids:
        row = store.conn.execute("SELECT grp, t_start FROM events WHERE rid=?", (rid,)).fetchone()
        if row is None or row[0] is None:
            continue
        grp, t = row
        prev = store.conn.execute(
            "SELECT rid FROM events WHERE grp=? AND (t_start<? OR (t_start=? AND rid<?)) "
            "ORDER BY t_start DESC, rid DESC LIMIT 1", (grp, t, t, rid)).fetchone()
        nxt = store.conn.execute(
            "SELECT rid FROM events WHERE grp=? AND (t_start>? OR (t_start=? AND rid>?)) "
            "ORDER BY t_start, rid LIMIT 1", (grp, t, t, rid)).fetchone()
        out[rid] = [r[0] for r in (prev, nxt) if r is not None]
    return out
