"""Checking and repairing the vector index: do stored vectors still find themselves?

Comparing ids is not enough. Damaged HNSW files (a writer killed mid-write,
a damaged disk) can keep every id and still return wrong neighbours, or crash
the process that reads *or writes* them. The check queries the index with a
deterministic sample of the vectors that SQLite holds (evenly spaced over the
row ids, none still queued in the outbox) and expects each to come back among
its own nearest hits with cosine >= ``SELF_COSINE``; then the ids are compared
with SQLite and the differences applied.

For an embedded index all of that runs in a child process (``python -m
agentmem.storage.index_probe DIR``), so that a crash, in a query or in an upsert,
marks the index as broken instead of killing the caller. A server is checked
in-process.
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


def repair_in_child(store_dir, samples: int = SAMPLES) -> dict:
    """Run :func:`repair_in_process` on an embedded index in a child process.

    Returns ``{"fixed": {...}}`` (what reconcile found and applied) or ``{"problem": "..."}`` when the index
    answers wrongly, fails, or crashes the child.
    """
    cmd = [sys.executable, "-m", "agentmem.storage.index_probe", str(store_dir), str(samples)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"problem": f"the check did not finish in {PROBE_TIMEOUT_S} s"}
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or [""])[-1]
        return {"problem": f"the index crashed the process using it (exit code {done.returncode}) {tail}".strip()}
    return json.loads(done.stdout.strip().splitlines()[-1])


def repair_in_process(store, index, samples: int = SAMPLES) -> dict:
    """Probe, then compare ids with SQLite and apply the differences; see the module docstring."""
    from agentmem.storage.vector_index import IndexUnavailableError, reconcile, sync

    try:
        problem = probe_in_process(store, index, samples)
        if problem is not None:
            return {"problem": problem}
        fixed = reconcile(store, index)
        sync(store, index)
        return {"fixed": fixed}
    except IndexUnavailableError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure to use the index is the finding
        return {"problem": f"{type(exc).__name__}: {str(exc)[:200]}"}


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
    from agentmem.storage.store import Store
    from agentmem.storage.vector_index import ChromaIndex, IndexConfig

    store = Store(argv[0])
    index = ChromaIndex(store.dir, IndexConfig(None))
    try:
        result = repair_in_process(store, index, int(argv[1]) if len(argv) > 1 else SAMPLES)
    finally:
        index.release()
        store.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
