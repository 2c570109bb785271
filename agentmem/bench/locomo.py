"""LoCoMo evidence recall@k through the memory's own query path, with baselines.

Each conversation is ingested into a fresh memory (one event per turn). Every
question with resolvable evidence is asked with each preset; the hits are
expanded into their dia_ids in rank order and the first k distinct ones are
kept (k counts turns, not items), so grouping turns cannot buy recall.

Baselines run in the same process on the same stored vectors:
``dense`` (MiniLM only) and ``lexical`` (FTS5 BM25 only) over single turns,
and ``rrf`` (their plain reciprocal-rank fusion).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from agentmem.formats.locomo import CATEGORY_NAMES, evidence_recall_at_k, load_locomo

BASELINES = ("dense", "lexical", "rrf")
GRAPH_PREFIX = "graph+"
"""A preset named ``graph+NAME`` (e.g. ``graph+hybrid``) answers through :func:`graph.search.search`, fusing the
core ranking of preset NAME with the graph's lists; the graph is built after each conversation's ingest."""


@dataclass
class LocomoResult:
    ks: list[int]
    presets: list[str]
    # recall[preset][category or "overall"][k]
    recall: dict[str, dict[str, dict[int, float]]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    skipped_questions: int = 0
    turns: int = 0
    ingest_seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "ks": self.ks,
            "recall": self.recall,
            "counts": self.counts,
            "latency_ms": self.latency_ms,
            "skipped_questions": self.skipped_questions,
            "turns": self.turns,
            "ingest_seconds": round(self.ingest_seconds, 2),
        }


def dia_ids_of(hit) -> list[str]:
    """The turns a hit covers, in order (an episode or window credits all of its turns)."""
    prov = hit.provenance
    if "dia_ids" in prov:
        return list(prov["dia_ids"])
    return [prov["dia_id"]] if "dia_id" in prov else []


def run_locomo(
    path: str | Path, ks: list[int], presets: list[str], *, progress: bool = True, workdir: str | None = None
) -> LocomoResult:
    from tqdm import tqdm

    from agentmem.encoders.embedders import SentenceTransformerEmbedder
    from agentmem.formats.ingest import ingest_locomo
    from agentmem.memory import Memory
    from agentmem.search.query import Query

    text_embedder = SentenceTransformerEmbedder()

    convs = load_locomo(path)
    res = LocomoResult(ks=sorted(ks), presets=presets)
    per: dict[str, dict[str, dict[int, list[float]]]] = {p: {} for p in presets}
    lat: dict[str, list[float]] = {p: [] for p in presets}
    kmax = max(ks)
    total_q = sum(1 for c in convs for q in c.questions if q.evidence)
    bar = tqdm(total=total_q * len(presets), desc="locomo", unit="q", disable=not (progress and sys.stderr.isatty()))
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for n, conv in enumerate(convs):
            t0 = time.perf_counter()
            # Named by position, not by the file's sample_id: an id from input never becomes a path.
            mem = Memory(Path(tmp) / f"conversation-{n}", text_embedder=text_embedder)
            ingest_locomo(mem, [conv])
            if any(p.startswith(GRAPH_PREFIX) for p in presets):
                from graph.build import update

                update(mem.store)
            res.ingest_seconds += time.perf_counter() - t0
            res.turns += len(conv.turns)
            mem.query(Query(text="warm up", k=1))
            for q in conv.questions:
                if not q.evidence:
                    res.skipped_questions += 1
                    continue
                cat = CATEGORY_NAMES.get(q.category, str(q.category))
                for preset in presets:
                    s = time.perf_counter()
                    hits = _ask(mem, Query(text=q.question, k=kmax), preset)
                    lat[preset].append((time.perf_counter() - s) * 1000)
                    ranked = [dia_ids_of(h) for h in hits]
                    for k in ks:
                        r = evidence_recall_at_k(ranked, q.evidence, k)
                        per[preset].setdefault(cat, {}).setdefault(k, []).append(r)
                        per[preset].setdefault("overall", {}).setdefault(k, []).append(r)
                    bar.update(1)
            mem.close()
    bar.close()
    for preset in presets:
        res.recall[preset] = {c: {k: statistics.fmean(v) for k, v in d.items()} for c, d in per[preset].items()}
        xs = sorted(lat[preset])
        res.latency_ms[preset] = {"p50": xs[len(xs) // 2], "p95": xs[int(len(xs) * 0.95)]}
    first = presets[0]
    res.counts = {c: len(d[min(ks)]) for c, d in per[first].items()}
    return res


def _ask(mem, q, preset: str):
    from dataclasses import replace

    if preset.startswith(GRAPH_PREFIX):
        from graph.search import search

        return search(mem, replace(q, preset=preset[len(GRAPH_PREFIX) :]))
    return mem.query(replace(q, preset=preset))


def format_table(res: LocomoResult) -> str:
    cats = ["overall"] + [CATEGORY_NAMES[c] for c in sorted(CATEGORY_NAMES) if CATEGORY_NAMES[c] in res.counts]
    lines = [
        f"LoCoMo evidence recall@k ({res.counts.get('overall', 0)} questions, {res.turns} turns; "
        f"{res.skipped_questions} without resolvable evidence skipped)"
    ]
    for k in res.ks:
        lines.append("")
        lines.append(f"recall@{k:<3} " + "".join(f"{c[:12]:>13}" for c in cats))
        for p in res.presets:
            row = "".join(f"{res.recall[p].get(c, {}).get(k, float('nan')):>13.3f}" for c in cats)
            lines.append(f"{p:<11} " + row)
    lines.append("")
    lines.append("n questions " + "".join(f"{res.counts.get(c, 0):>13}" for c in cats))
    lines.append("")
    for p in res.presets:
        la = res.latency_ms[p]
        lines.append(f"query latency {p:<8} p50 {la['p50']:.1f} ms  p95 {la['p95']:.1f} ms")
    return "\n".join(lines)


def check_targets(res: LocomoResult, main: str = "hybrid", k: int = 10) -> list[str]:
    """Which of the issue's targets the run misses (empty when all are met)."""
    misses = []
    if main not in res.recall or k not in res.ks:
        return [f"run {main} with k={k} to check the targets"]
    overall = res.recall[main]["overall"][k]
    if overall < 0.78:
        misses.append(f"overall recall@{k} {overall:.3f} < 0.78")
    for c in res.counts:
        if c == "overall":
            continue
        best = max(res.recall[b].get(c, {}).get(k, 0.0) for b in ("dense", "lexical") if b in res.recall)
        mine = res.recall[main][c][k]
        if mine < best:
            misses.append(f"{c}: {mine:.3f} below the better baseline {best:.3f}")
    return misses


def save(res: LocomoResult, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res.to_dict(), indent=2))


def plot(res: LocomoResult, out: Path, k: int = 10) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cats = ["overall"] + [c for c in res.counts if c != "overall"]
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / len(res.presets)
    for i, p in enumerate(res.presets):
        vals = [res.recall[p].get(c, {}).get(k, 0) for c in cats]
        ax.bar([x + i * width for x in range(len(cats))], vals, width, label=p)
    ax.set_xticks([x + width * (len(res.presets) - 1) / 2 for x in range(len(cats))], cats)
    ax.set_ylabel(f"evidence recall@{k}")
    ax.set_ylim(0, 1)
    ax.axhline(0.78, color="grey", linestyle="--", linewidth=0.8)
    ax.legend()
    ax.set_title("LoCoMo dev: agentmem vs baselines (same run)")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
