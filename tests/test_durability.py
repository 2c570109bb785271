"""A writer killed with SIGKILL mid-ingest loses no acknowledged event and leaves a consistent index."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from agentmem.memory import Memory

WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    from agentmem.memory import Memory

    mem = Memory(sys.argv[1], text_embedder=None, image_embedder=None, auto_sync=True)
    rng = np.random.default_rng(0)
    for b in range(10_000):
        evs = [{"id": f"b{b}-{i}", "t_start": b * 100 + i, "text": f"event {i} of batch {b}"} for i in range(100)]
        vecs = rng.standard_normal((100, 16)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        mem.add_events(evs, embeddings=vecs)
        print(" ".join(e["id"] for e in evs), flush=True)
""")


@pytest.mark.parametrize("kill_after", [0.3, 1.1, 2.3])
def test_sigkill_mid_ingest_keeps_acknowledged_events_and_index_consistent(tmp_path, kill_after):
    db = tmp_path / "mem"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, text=True)
    acked: list[str] = []
    deadline = time.time() + 120
    # wait for the first acknowledgement (the import is slow), then let it write a little longer
    first = proc.stdout.readline()
    assert first, "writer died before acknowledging anything"
    acked += first.split()
    time.sleep(kill_after)
    os.kill(proc.pid, signal.SIGKILL)
    rest, _ = proc.communicate(timeout=30)
    for line in rest.splitlines():
        acked += line.split()
    assert time.time() < deadline and len(acked) >= 100

    conn = sqlite3.connect(db / "memory.db")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    mem = Memory(db, text_embedder=None, image_embedder=None)
    stored = {r[0] for r in mem.store.conn.execute("SELECT id FROM events")}
    assert set(acked) <= stored
    # every stored batch is whole: transactions are atomic
    assert len(stored) % 100 == 0
    fixed = mem.reconcile_index()
    # ids compared and repaired, or (if the kill damaged Chroma's files) the index rebuilt from SQLite
    assert fixed.get("text_extra", 0) == 0 and ("rebuilt" in fixed or "text_missing" in fixed)
    truth = {r[0] for r in mem.store.conn.execute("SELECT rid FROM events WHERE vec IS NOT NULL")}
    assert mem.index.all_ids("text") == truth and mem.store.outbox_size() == 0
    # the index answers for the last acknowledged event
    rid = mem.store.rid_of(acked[-1])
    vec = np.frombuffer(mem.store.conn.execute("SELECT vec FROM events WHERE rid=?", (rid,)).fetchone()[0], np.float32)
    assert mem.index.query("text", vec, 1)[0][0] == rid
    mem.close()
