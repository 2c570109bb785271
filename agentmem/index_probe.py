"""Probing the vector index: do stored vectors still find themselves?

Comparing ids is not enough. Damaged HNSW files can keep every id and still
return wrong neighbours, or crash the process that reads them. The probe
queries the index with a deterministic sample of the vectors that SQLite holds
(evenly spaced over the row ids, none still queued in the outbox) and expects
each to come back among its own nearest hits with cosine >= ``SELF_COSINE``.

An embedded index is probed in a child process (``python -m
agentmem.index_probe DIR``), so that a crash marks the index as broken instead
of killing the caller. A server is probed in-process.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

SAMPLES = 32
SELF_COSINE = 0.999
MAX_MISS_SHARE = 0.25
PROBE_TIMEOUT_S = 300

_SOURCES = {
    "text": "SELECT rid, vec FROM events WHERE vec IS NOT NULL AND rid NOT IN "
            "(SELECT ref FROM outbox WHERE collection='text') ORDER BY rid",
    "image": "SELECT id, vec FROM media WHERE vec IS NOT NULL AND id NOT IN "
             "(SELECT ref FROM outbox WHERE collection='image') ORDER BY id",
}


def probe_index(store, index, samples: int = SAMPLES) -> str | None:
    """``None`` when the index answers a sample of stored vectors correctly, else what went wrong."""
    if index.config.url is not None:
        return probe_in_process(store, index, samples)
    if not index.directory.exists():
        return None
    cmd = [sys.executable, "-m", "agentmem.index_probe", str(store.dir), str(samples)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"the probe did not finish in {PROBE_TIMEOUT_S} s"
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or [""])[-1]
        return f"reading the index crashed the probe (exit code {done.returncode}) {tail}".strip()
    return json.loads(done.stdout.strip().splitlines()[-1])["problem"]


def probe_in_process(store, index, samples: int = SAMPLES) -> str | None:
    """The probe itself; see the module docstring.

    HNSW is approximate, so a healthy index may miss a rare sample; the index counts as broken when more than
    :data:`MAX_MISS_SHARE` of the samples miss (a damaged one misses nearly all of them).
    """
    for collection, sql in _SOURCES.items():
        rows = store.conn.execute(sql).fetchall()
        if not rows:
            continue
        picks = sorted({round(i) for i in np.linspace(0, len(rows) - 1, min(samples, len(rows)))})
        misses = []
        for i in picks:
            ref, blob = rows[i]
            hits = index.query(collection, np.frombuffer(blob, dtype=np.float32), 10)
            if not any(h == ref and sim >= SELF_COSINE for h, sim in hits):
                got = ", ".join(f"{h} ({sim:.3f})" for h, sim in hits[:3]) or "nothing"
                misses.append(f"{collection} vector {ref} does not find itself: the index returned {got}")
        if len(misses) > MAX_MISS_SHARE * len(picks):
            return f"{len(misses)} of {len(picks)} samples missed; {misses[0]}"
    return None


def _main(argv: list[str]) -> int:
    from agentmem.store import Store
    from agentmem.vector_index import ChromaIndex, IndexConfig

    store = Store(argv[0])
    try:
        index = ChromaIndex(store.dir, IndexConfig(None))
        problem = probe_in_process(store, index, int(argv[1]) if len(argv) > 1 else SAMPLES)
    except Exception as exc:  # noqa: BLE001 - any failure to read the index is the finding
        problem = f"{type(exc).__name__}: {str(exc)[:200]}"
    finally:
        store.close()
    print(json.dumps({"problem": problem}))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
