"""Synthetic store benchmark: ingest rate, index build rate and filtered query latency.

Events come in episodes of 20 (their ``group``), so the context index of
windows and group documents is built and searched as it would be for real
stories. Stored event vectors are random unit vectors (embedding 100k texts with MiniLM
would take ~5 minutes on 2 cores and measures the model, not the memory). The
*query* is embedded with the real MiniLM, so query latency includes it.

Baselines measured in the same run:
- ``brute``: the same query answered by a dot product over all stored vectors
  plus the SQL filter, i.e. without the (entity, t) candidate index;
- ``fts``: FTS5 BM25 top-10 alone;
- ``embed``: the MiniLM query embedding alone.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

WORDS = (
    "storm lamp harbor boat keeper tower cliff sea wave rope anchor lantern gull sail net fish rain wind night "
    "dawn fire door stair window bell ship wreck rock shore sand map key letter coat hat knife bread tea cup "
    "table chair bed candle smoke mist island bridge road cart horse dog cat child father mother sister "
    "brother friend stranger captain sailor doctor baker singer painter garden well market church school"
).split()
VERBS = "finds loses carries opens closes watches follows meets greets paints repairs hides shows gives".split()


@dataclass
class SyntheticResult:
    events: int
    ingest_events_per_s: float
    index_events_per_s: float
    index_sample: int
    embed_ingest_events_per_s: float
    embed_only_texts_per_s: float = 0.0
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return self.__dict__


def _sentence(rng: np.random.Generator) -> str:
    w = rng.choice(WORDS, 4)
    return f"The {w[0]} {rng.choice(VERBS)} the {w[1]} near the {w[2]} with a {w[3]}"


def _pct(xs: list[float]) -> dict[str, float]:
    xs = sorted(xs)
    return {"p50": round(statistics.median(xs), 2), "p95": round(xs[int(0.95 * (len(xs) - 1))], 2)}


def run_synthetic(
    n_events: int = 100_000,
    n_entities: int = 500,
    n_queries: int = 200,
    index_sample: int = 5000,
    seed: int = 0,
    progress: bool = True,
    workdir: str | None = None,
) -> SyntheticResult:
    from tqdm import tqdm

    from agentmem.memory import Memory
    from agentmem.search.query import Query, candidate_rids
    from agentmem.storage.lexical import events_bm25

    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        mem = Memory(Path(tmp) / "mem", image_embedder=None, auto_sync=False)
        with mem.store.transaction():
            for i in range(n_entities):
                mem.store.insert_entity(f"ent{i}", "character", f"Person {i}", 0.0)
                mem.store.add_alias(f"ent{i}", f"Person {i}", f"person {i}")
        horizon = 1_000_000.0
        t_start = np.sort(rng.uniform(0, horizon, n_events))
        dur = rng.uniform(1, 60, n_events)
        vecs = rng.standard_normal((n_events, 384)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        events = [
            {
                "id": f"s{i}",
                "t_start": float(t_start[i]),
                "t_end": float(t_start[i] + dur[i]),
                "text": _sentence(rng),
                "group": f"episode{i // 20}",
                "participants": [f"ent{j}" for j in rng.choice(n_entities, int(rng.integers(1, 4)), replace=False)],
            }
            for i in range(n_events)
        ]
        bar = tqdm(total=n_events, desc="ingest", unit="ev", disable=not (progress and sys.stderr.isatty()))
        t0 = time.perf_counter()
        mem.add_events(events, embeddings=vecs, batch_size=5000, progress=bar.update)
        ingest_rate = n_events / (time.perf_counter() - t0)
        bar.close()

        # Index build rate on a sample of the outbox (Chroma adds ~1k/s; 100k would dominate the run).
        rows = mem.store.outbox_batch(index_sample)
        sub = np.array([r[3] for r in rows])
        t0 = time.perf_counter()
        mem.index.upsert("text", [str(r) for r in sub], vecs[sub - 1])
        index_rate = len(sub) / (time.perf_counter() - t0)

        embed_n = 1000
        extra = [
            {"id": f"x{i}", "t_start": horizon + i, "text": _sentence(rng), "participants": ["ent0"]}
            for i in range(embed_n)
        ]
        text = mem.text
        if text is None:
            raise RuntimeError("the synthetic benchmark embeds its queries: open the memory with a text embedder")
        text.embed(["warm up"])
        t0 = time.perf_counter()
        text.embed([str(e["text"]) for e in extra])
        embed_only_rate = embed_n / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        mem.add_events(extra)
        embed_rate = embed_n / (time.perf_counter() - t0)

        mem.vectors.refresh()
        queries = []
        for _ in range(n_queries):
            w = rng.choice(WORDS, 2)
            a = float(rng.uniform(0, horizon - 100_000))
            queries.append(
                Query(
                    text=f"{w[0]} {w[1]}", entities=[f"ent{int(rng.integers(n_entities))}"], t0=a, t1=a + 100_000, k=10
                )
            )
        # Each method runs in its own loop: interleaved, the brute-force baseline's multi-threaded BLAS left
        # threads spinning into the next query and slowed it by ~30% on 2 cores.
        lat: dict[str, list[float]] = {"query": [], "brute": [], "fts": [], "embed": []}
        qbar = tqdm(total=4 * n_queries, desc="queries", unit="q", disable=not (progress and sys.stderr.isatty()))
        for q in queries:
            s = time.perf_counter()
            mem.query(q)
            lat["query"].append((time.perf_counter() - s) * 1000)
            qbar.update(1)
        for q in queries:
            s = time.perf_counter()
            text.embed([str(q.text)])
            lat["embed"].append((time.perf_counter() - s) * 1000)
            qbar.update(1)
        for q in queries:
            s = time.perf_counter()
            qv = text.embed([str(q.text)])[0]
            found = candidate_rids(mem, q)
            cand = set() if found is None else set(found.tolist())
            rids, sims = mem.vectors.scores(qv)
            order = np.argsort(-sims)
            _ = [int(rids[i]) for i in order[: 10 * 50] if int(rids[i]) in cand][:10]
            lat["brute"].append((time.perf_counter() - s) * 1000)
            qbar.update(1)
        for q in queries:
            s = time.perf_counter()
            events_bm25(mem.store, " OR ".join(f'"{w}"' for w in str(q.text).split()), 10)
            lat["fts"].append((time.perf_counter() - s) * 1000)
            qbar.update(1)
        qbar.close()
        mem.close()
    return SyntheticResult(
        events=n_events,
        ingest_events_per_s=round(ingest_rate),
        index_events_per_s=round(index_rate),
        index_sample=len(sub),
        embed_ingest_events_per_s=round(embed_rate),
        embed_only_texts_per_s=round(embed_only_rate),
        latency_ms={k: _pct(v) for k, v in lat.items()},
    )


def format_result(r: SyntheticResult) -> str:
    q, b = r.latency_ms["query"], r.latency_ms["brute"]
    return "\n".join(
        [
            f"synthetic store: {r.events} events (random 384-d stored vectors; real MiniLM query embedding)",
            f"ingest, embeddings supplied (acknowledged, durable): {r.ingest_events_per_s:,} events/s",
            f"ingest with MiniLM embedding:                      {r.embed_ingest_events_per_s:,} events/s "
            f"(baseline, MiniLM alone on the same texts: {r.embed_only_texts_per_s:,} texts/s)",
            f"chroma index build ({r.index_sample} vectors):          {r.index_events_per_s:,} events/s",
            f"text+entity+time query (incl. embedding): p50 {q['p50']} ms  p95 {q['p95']} ms",
            f"baseline brute force + filter:            p50 {b['p50']} ms  p95 {b['p95']} ms "
            f"(query is {b['p50'] / max(q['p50'], 1e-9):.1f}x faster at p50)",
            f"baseline MiniLM query embedding alone:    p50 {r.latency_ms['embed']['p50']} ms",
            f"baseline FTS5 BM25 top-10 alone:          p50 {r.latency_ms['fts']['p50']} ms",
        ]
    )
