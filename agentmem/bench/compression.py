"""Bounded working set: a synthetic stream of events with periodic compression.

The stream imitates long video: scenes of 20 to 80 events at one location, a
cast drawn from one circle of characters, event vectors near the scene's topic
(32-d synthetic unit vectors; no text model runs), texts naming the characters
and a few topic words. Events go through the full write path
(:meth:`agentmem.Memory.add_events`, then the graph update), and compression
runs every ``every`` events, as :class:`graph.memory.GraphMemory` does.

At each checkpoint it records the active (non-archived) node count, the stored
events, the peak RSS, and query latency over the same kind of query: two topic
words and one character of one of the last 50 scenes, with that scene's vector, answered by
:func:`graph.search.search` (which reads the active tier). For reference the
core's own query (:func:`agentmem.search.query.run_query`, which reads the whole
FTS index and then drops archived events) is timed on the same queries.

Latency on a shared machine drifts with its load, so the first checkpoint's
store is copied (SQLite backup) and, at every later checkpoint, its queries are
timed again interleaved one for one with the current store's: the ratio
``p95 now / p95 first`` compares the two under the same load.
"""

from __future__ import annotations

import resource
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

SYLLABLES = "ka lo mi ne ru sa ti vo pe da go hu ji ko le ma no pi ra se to vu wa ye zo".split()
VERBS = "meets follows watches greets helps chases answers warns thanks calls".split()


@dataclass
class Checkpoint:
    events: int
    active: dict[str, int]
    archived_events: int
    rss_mb: float
    query_ms: dict[str, float]
    core_query_ms: dict[str, float]
    baseline_query_ms: dict[str, float]


@dataclass
class CompressionBench:
    events: int
    every: int
    keep_events: int
    dim: int
    batch: int = 10_000
    checkpoints: list[Checkpoint] = field(default_factory=list)
    rates: dict[str, float] = field(default_factory=dict)
    runs: int = 0
    peak_rss_mb: float = 0.0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def _word(i: int) -> str:
    n = len(SYLLABLES)
    return SYLLABLES[i % n] + SYLLABLES[(i // n) % n] + SYLLABLES[(i // n // n) % n]


class Stream:
    """Deterministic synthetic scenes; :meth:`batch` yields the next ``n`` events."""

    def __init__(self, n_entities: int, n_places: int, dim: int, seed: int):
        self.rng = np.random.default_rng(seed)
        self.n_entities, self.n_places, self.dim = n_entities, n_places, dim
        self.i, self.t, self.scene = 0, 0.0, -1
        self.left = 0
        self.vocab = 20_000
        self.recent: list[tuple[list[str], list[str], np.ndarray]] = []

    def _new_scene(self) -> None:
        rng = self.rng
        self.scene += 1
        self.left = int(rng.integers(20, 81))
        circle = int(rng.integers(0, max(self.n_entities // 25, 1)))
        self.cast = [f"c{circle * 25 + int(j)}" for j in rng.choice(25, 4, replace=False)]
        self.place = f"place{int(rng.integers(self.n_places))}"
        # Zipf-like topic words: a few common, most rare
        self.topic_words = [_word(int(min(rng.zipf(1.3), self.vocab))) for _ in range(3)] + [
            _word(int(rng.integers(self.vocab))) for _ in range(3)
        ]
        v = rng.standard_normal(self.dim)
        self.topic = (v / np.linalg.norm(v)).astype(np.float32)
        self.t += float(rng.choice([5.0, 60.0, 3600.0], p=[0.6, 0.3, 0.1]))
        self.recent = [*self.recent[-49:], (self.topic_words, self.cast, self.topic)]

    def batch(self, n: int) -> tuple[list[dict], np.ndarray]:
        rng = self.rng
        events, vecs = [], np.empty((n, self.dim), dtype=np.float32)
        for k in range(n):
            if self.left == 0:
                self._new_scene()
            self.left -= 1
            who = [self.cast[int(j)] for j in rng.choice(4, int(rng.integers(1, 4)), replace=False)]
            words = " ".join(rng.choice(self.topic_words, 3))
            v = self.topic + 0.6 * rng.standard_normal(self.dim).astype(np.float32) / np.sqrt(self.dim)
            vecs[k] = v / np.linalg.norm(v)
            events.append(
                {
                    "id": f"s{self.i}",
                    "t_start": self.t,
                    "t_end": self.t + 4.0,
                    "text": f"{who[0]} {rng.choice(VERBS)} near the {self.place}: {words}",
                    "participants": who,
                    "location": self.place,
                    "group": f"scene-{self.scene}",
                }
            )
            self.i += 1
            self.t += 5.0
        return events, vecs

    def query(self) -> tuple[str, str, np.ndarray]:
        """A query about one of the last 50 scenes: two of its words, one of its cast, its vector."""
        words_, cast, topic = self.recent[int(self.rng.integers(len(self.recent)))]
        words = " ".join(self.rng.choice(words_, 2))
        who = cast[int(self.rng.integers(len(cast)))]
        return f"what did {who} do about {words}", who, topic


def _copy(mem, directory: Path):
    """A consistent copy of ``mem``'s store (SQLite's online backup), opened as its own memory."""
    from agentmem.memory import Memory

    directory.mkdir(parents=True)
    mem.store.copy_to(directory)
    return Memory(directory, text_embedder=None, image_embedder=None, auto_sync=False)


def _pct(xs: list[float]) -> dict[str, float]:
    xs = sorted(xs)
    return {"p50": round(statistics.median(xs), 2), "p95": round(xs[min(len(xs) - 1, int(0.95 * len(xs)))], 2)}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_compression_bench(
    n_events: int = 100_000,
    checkpoints: tuple[int, ...] = (10_000, 100_000, 1_000_000),
    every: int = 10_000,
    keep_events: int = 5_000,
    dim: int = 32,
    n_entities: int = 500,
    n_places: int = 60,
    n_queries: int = 100,
    core_queries: int = 10,
    batch: int = 10_000,
    seed: int = 0,
    progress: bool = True,
    workdir: str | None = None,
) -> CompressionBench:
    from tqdm import tqdm

    from agentmem.memory import Memory
    from agentmem.search.query import Query
    from graph.compress import CompressionPolicy
    from graph.journal import active_counts
    from graph.memory import GraphMemory
    from graph.search import search

    marks = sorted({c for c in checkpoints if c <= n_events} | {n_events})
    res = CompressionBench(events=n_events, every=every, keep_events=keep_events, dim=dim, batch=batch)
    t_all = time.perf_counter()
    timing = {"ingest": 0.0, "update": 0.0, "compress": 0.0}
    # The longest write-lock hold of compression, and of one ingest batch in the same run for scale.
    held = {"compress": 0.0, "ingest_batch": 0.0}
    compressed = 0
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        mem = Memory(Path(tmp) / "mem", text_embedder=None, image_embedder=None, auto_sync=False)
        gm = GraphMemory(mem, policy=CompressionPolicy(every=every, keep_events=keep_events))
        with mem.store.transaction():
            for i in range(n_entities):
                mem.store.insert_entity(f"c{i}", "character", f"c{i}", 0.0)
                mem.store.add_alias(f"c{i}", f"c{i}", f"c{i}")
            for i in range(n_places):
                mem.store.insert_entity(f"place{i}", "location", f"place{i}", 0.0)
                mem.store.add_alias(f"place{i}", f"place{i}", f"place{i}")
        stream = Stream(n_entities, n_places, dim, seed)
        bar = tqdm(total=n_events, desc="stream", unit="ev", disable=not (progress and sys.stderr.isatty()))
        done = 0
        base, base_queries = None, []
        for mark in marks:
            while done < mark:
                n = min(batch, mark - done)
                events, vecs = stream.batch(n)
                t0 = time.perf_counter()
                mem.store.longest_write_s = 0.0
                mem.add_events(events, embeddings=vecs, batch_size=n)
                held["ingest_batch"] = max(held["ingest_batch"], mem.store.longest_write_s)
                t1 = time.perf_counter()
                gm.update()
                t2 = time.perf_counter()
                timing["ingest"] += t1 - t0
                timing["update"] += t2 - t1
                if gm.pending() >= every:
                    mem.store.longest_write_s = 0.0
                    rep = gm.compress()
                    held["compress"] = max(held["compress"], mem.store.longest_write_s)
                    timing["compress"] += rep.seconds
                    compressed += rep.events_seen
                    res.runs += 1
                done += n
                bar.update(n)
            queries = [stream.query() for _ in range(n_queries)]
            if base is None:
                base = _copy(mem, Path(tmp) / "first")
                base_queries = queries
            lat, core_lat, base_lat = [], [], []
            search(mem, Query(text=queries[0][0], k=10), vector=queries[0][2])  # warm the caches
            for j, (text, _, qv) in enumerate(queries):
                s = time.perf_counter()
                search(mem, Query(text=text, k=10), vector=qv)
                lat.append((time.perf_counter() - s) * 1000)
                bt, _, bv = base_queries[j]
                s = time.perf_counter()
                search(base, Query(text=bt, k=10), vector=bv)
                base_lat.append((time.perf_counter() - s) * 1000)
            # After, not between: the core query reads the whole index and would evict the caches the others use.
            for text, _, _ in queries[:core_queries]:
                s = time.perf_counter()
                mem.query(Query(text=text, k=10))
                core_lat.append((time.perf_counter() - s) * 1000)
            counts = active_counts(mem.store)
            archived = mem.store.counts()["archived_events"]
            res.checkpoints.append(
                Checkpoint(done, counts, archived, round(_rss_mb(), 1), _pct(lat), _pct(core_lat), _pct(base_lat))
            )
            bar.write(
                f"{done:>9,} events: active nodes {counts['nodes']:,} (events {counts['events']:,}), "
                f"query p95 {res.checkpoints[-1].query_ms['p95']} ms, RSS {_rss_mb():.0f} MB"
            )
        bar.close()
        mem.close()
        if base is not None:
            base.close()
    res.rates = {
        "ingest_events_per_s": round(n_events / max(timing["ingest"], 1e-9)),
        "graph_update_events_per_s": round(n_events / max(timing["update"], 1e-9)),
        "compression_events_per_s": round(compressed / max(timing["compress"], 1e-9)),
        "compress_seconds": round(timing["compress"], 1),
        "longest_compress_write_s": round(held["compress"], 3),
        "longest_ingest_batch_write_s": round(held["ingest_batch"], 3),
    }
    res.peak_rss_mb = round(_rss_mb(), 1)
    res.seconds = round(time.perf_counter() - t_all, 1)
    return res


def format_result(r: CompressionBench) -> str:
    base = r.checkpoints[0]
    lines = [
        f"compression benchmark: {r.events:,} synthetic events ({r.dim}-d vectors), compression every "
        f"{r.every:,} events ({r.runs} runs), {r.keep_events:,} newest raw events kept active; 'first p95' is the "
        "first checkpoint's store timed again, interleaved with the current one",
        "",
        f"{'events':>10} {'active nodes':>13} {'(x first)':>10} {'active events':>14} {'archived':>10} "
        f"{'query p50':>10} {'p95':>8} {'first p95':>10} {'(ratio)':>8} {'core p50':>9} {'peak RSS':>9}",
    ]
    for c in r.checkpoints:
        lines.append(
            f"{c.events:>10,} {c.active['nodes']:>13,} {c.active['nodes'] / base.active['nodes']:>10.2f} "
            f"{c.active['events']:>14,} {c.archived_events:>10,} {c.query_ms['p50']:>8.1f}ms "
            f"{c.query_ms['p95']:>6.1f}ms {c.baseline_query_ms['p95']:>8.1f}ms "
            f"{c.query_ms['p95'] / c.baseline_query_ms['p95']:>8.2f} {c.core_query_ms['p50']:>7.1f}ms "
            f"{c.rss_mb:>7.0f}MB"
        )
    lines += [
        "",
        f"ingest (core write path, vectors supplied): {r.rates['ingest_events_per_s']:,} events/s",
        f"graph update (episodes, arcs, edges):       {r.rates['graph_update_events_per_s']:,} events/s",
        f"compression:                                {r.rates['compression_events_per_s']:,} events/s "
        f"({r.rates['compress_seconds']} s in all)",
        f"longest write transaction: compression {r.rates['longest_compress_write_s']:.2f} s; "
        f"one ingest batch of {r.batch:,} events {r.rates['longest_ingest_batch_write_s']:.2f} s (same run)",
        f"peak RSS {r.peak_rss_mb:,.0f} MB; whole run {r.seconds:,.0f} s",
    ]
    return "\n".join(lines)


def plot(r: CompressionBench, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [c.events for c in r.checkpoints]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.loglog(xs, xs, "--", color="grey", label="all events (linear)")
    a.loglog(xs, [c.active["nodes"] for c in r.checkpoints], "o-", label="active nodes")
    a.loglog(xs, [c.active["events"] for c in r.checkpoints], "s-", label="active events")
    a.set_xlabel("events stored")
    a.legend()
    a.set_title("working set after compression")
    b.semilogx(xs, [c.query_ms["p95"] for c in r.checkpoints], "o-", label="graph search p95 (active tier)")
    b.semilogx(xs, [c.core_query_ms["p50"] for c in r.checkpoints], "s-", label="core query p50 (whole index)")
    b.set_xlabel("events stored")
    b.set_ylabel("ms")
    b.legend()
    b.set_title("query latency")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
