"""Commands never delete what they did not create; the index never misses an acknowledged event (issue 9)."""

import multiprocessing as mp
import os
import sqlite3
import warnings

import numpy as np
import pytest
from click.testing import CliRunner

from agentmem.cli.main import cli
from agentmem.formats.examples import example_path
from agentmem.formats.ingest import ingest_file
from agentmem.memory import Memory
from agentmem.storage.vector_index import sync


def run(*args):
    return CliRunner().invoke(cli, list(args))


def test_generate_never_deletes_a_folder_it_did_not_write(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run("ingest", str(example_path()), "--db", "memory").exit_code == 0
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "keep_me.txt").write_text("mine")
    res = run("generate", "lighthouse", "--out", ".", "--text-embedder", "none")
    assert res.exit_code == 1 and "not empty and was not written by agentmem" in res.output
    assert (tmp_path / "frames" / "keep_me.txt").read_text() == "mine"
    with Memory("memory", text_embedder=None) as mem:
        assert mem.stats()["events"] == 18


def test_generate_replaces_only_its_own_files_with_force(tmp_path):
    out = tmp_path / "out"
    assert run("generate", "lighthouse", "--out", str(out), "--text-embedder", "none").exit_code == 0
    again = run("generate", "lighthouse", "--out", str(out), "--text-embedder", "none")
    assert again.exit_code == 1 and "pass --force" in again.output
    (out / "shots" / "notes.txt").write_text("a person's notes")
    forced = run("generate", "lighthouse", "--out", str(out), "--text-embedder", "none", "--force")
    assert forced.exit_code == 0, forced.output
    assert (out / "shots" / "notes.txt").read_text() == "a person's notes" and (out / "report.html").is_file()


@pytest.mark.parametrize(
    "args,msg",
    [
        (["--backend", "nosuch"], "Invalid value for '--backend'"),
        (["--backend", "cogvideox"], "give its weights with --model"),
        (["--backend", "cogvideox", "--model", "/no/such/weights"], "WeightsNotFoundError"),
    ],
)
def test_generator_errors_are_one_line_and_create_no_folder(tmp_path, args, msg):
    out = tmp_path / "never"
    res = run("generate", "lighthouse", "--out", str(out), *args)
    assert res.exit_code != 0 and msg in res.output and "Traceback" not in res.output
    assert not out.exists()


def test_demo_never_touches_an_existing_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTMEM_DB", str(tmp_path / "precious"))
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "memory.db").write_text("a user's memory")
    (tmp_path / "demo").mkdir()
    res = run("demo", "--out", str(tmp_path / "demo"))
    assert res.exit_code == 0, res.output
    assert (tmp_path / "precious" / "memory.db").read_text() == "a user's memory"
    assert list((tmp_path / "demo").iterdir()) == [] and (tmp_path / "demo-2" / "memory" / "memory.db").is_file()


def test_an_ack_removes_exactly_the_rows_that_were_applied(make_memory):
    """The failing interleaving of issue 9 item 9, replayed step by step with two real processes' views."""
    a = make_memory("m", auto_sync=False)
    a.add_events([{"id": "e1", "t_start": 0, "text": "first"}])
    b = Memory(a.dir, text_embedder=a.text, auto_sync=False)
    try:
        rows = a.store.outbox_batch(10)  # A reads its batch (and would upsert it)
        sync(b.store, b.index)  # B syncs the same row and acknowledges it
        b.add_events([{"id": "e2", "t_start": 1, "text": "second"}])  # B's new row
        a.store.ack_outbox([s for s, _, _, _ in rows])  # A acknowledges what it applied
        assert [r[3] for r in a.store.outbox_batch(10)] == [a.store.rid_of("e2")]
    finally:
        b.close()


def _writer(path: str, n: int, tag: str) -> None:
    with Memory(path, text_embedder=None, image_embedder=None) as mem:
        rng = np.random.default_rng(abs(hash(tag)) % 2**32)
        for i in range(n):
            v = rng.standard_normal((1, 8)).astype(np.float32)
            mem.add_events([{"id": f"{tag}{i}", "t_start": i, "text": f"{tag} {i}"}], embeddings=v / np.linalg.norm(v))


def test_concurrent_writers_leave_no_acknowledged_event_out_of_the_index(tmp_path):
    path = str(tmp_path / "m")
    Memory(path, text_embedder=None, image_embedder=None).close()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, 40, f"w{k}x")) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(180)
    assert all(p.exitcode == 0 for p in procs)
    with Memory(path, text_embedder=None, image_embedder=None) as mem:
        assert mem.store.outbox_size() == 0
        assert mem.index.all_ids("text") == {r for (r,) in mem.store.conn.execute("SELECT rid FROM events")}


def test_a_long_lived_memory_sees_vectors_another_process_indexed(make_memory, minilm):
    reader = make_memory("m")
    ingest_file(reader, example_path())
    reader.sync_index()
    assert reader.query(text="brass lamp keepsake", preset="dense", k=1)[0].id == "e12"  # its client is open
    ctx = mp.get_context("spawn")
    p = ctx.Process(target=_add_one, args=(str(reader.dir),))
    p.start()
    p.join(180)
    assert p.exitcode == 0 and reader.store.outbox_size() == 0  # the other process indexed it
    hits = reader.query(text="a green bottle with a map inside washes ashore", preset="dense", k=1)
    assert hits[0].id == "late"


def _add_one(path: str) -> None:
    with Memory(path) as mem:
        mem.add_events([{"id": "late", "t_start": 999999, "text": "a green bottle with a map inside washes ashore"}])


@pytest.mark.parametrize("damage", ["random bytes", "deleted segment"])
def test_reconcile_finds_a_damaged_index_rebuilds_it_and_writes_work_after(make_memory, damage):
    import shutil

    mem = make_memory("m", text_embedder=None)
    rng = np.random.default_rng(0)
    v = rng.standard_normal((3000, 32)).astype(np.float32)  # enough for Chroma to persist an HNSW segment
    mem.add_events(
        [{"id": f"e{i}", "t_start": i, "text": f"t {i}"} for i in range(3000)],
        embeddings=v / np.linalg.norm(v, axis=1, keepdims=True),
    )
    mem.index.release()
    segments = [p for p in (mem.dir / "chroma").iterdir() if p.is_dir()]
    for seg in segments:
        if damage == "deleted segment":
            shutil.rmtree(seg)
        else:
            f = seg / "data_level0.bin"
            f.write_bytes(rng.bytes(f.stat().st_size))
    rep = mem.reconcile_index()
    assert rep["quarantined"] == 1 and rep["rebuilt"] == 3000
    assert "does not find itself" in rep["error"] or "crashed" in rep["error"] or "Error" in rep["error"]
    assert list(mem.dir.glob("chroma.broken-*"))
    w = rng.standard_normal((1, 32)).astype(np.float32)
    mem.add_events(
        [{"id": "after", "t_start": 1e6, "text": "a write after the repair"}], embeddings=w / np.linalg.norm(w)
    )  # no "readonly database"
    assert mem.index.count("text") == 3001
    assert mem.reconcile_index() == {"text_missing": 0, "text_extra": 0, "image_missing": 0, "image_extra": 0}


def test_compression_never_holds_the_write_lock_for_the_whole_archive(make_memory, monkeypatch):
    from graph import compress as gc
    from graph.compress import CompressionPolicy, compress

    monkeypatch.setattr(gc, "EVENT_CHUNK", 10)
    mem = make_memory("m", text_embedder=None)
    mem.add_entity("ann", kind="character")
    mem.add_events(
        [
            {"id": f"e{i}", "t_start": 1000.0 * i, "text": "tea", "participants": ["ann"], "group": f"g{i}"}
            for i in range(60)
        ]
    )
    changes = []
    real = type(mem.store).transaction

    def counted(store):
        before = store.conn.total_changes
        with real(store) as conn:
            yield conn
        changes.append(store.conn.total_changes - before)

    import contextlib

    monkeypatch.setattr(type(mem.store), "transaction", contextlib.contextmanager(counted))
    rep = compress(mem.store, CompressionPolicy(keep_events=5))
    assert rep.events_archived >= 50
    # 10 events per transaction (10 journal rows + 10 updates): the archive is never written in one transaction
    assert sum(1 for c in changes if c == 20) == rep.events_archived // 10


def test_writes_warn_instead_of_failing_when_the_index_breaks_after_commit(make_memory, monkeypatch):
    from agentmem.memory import IndexWarning

    mem = make_memory("m")

    def broken(*a, **k):
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(mem.index, "upsert", broken)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert mem.add_events([{"id": "x", "t_start": 0, "text": "kept"}]) == ["x"]
    assert any(issubclass(w.category, IndexWarning) for w in caught)
    assert mem.store.outbox_size() == 1 and mem.query(text="kept", preset="dense", k=1)[0].id == "x"
    assert os.path.exists(mem.dir / "memory.db")


def _write_then_die(path: str) -> None:
    mem = Memory(path, text_embedder=None, image_embedder=None)
    v = np.ones((1, 8), dtype=np.float32) / np.sqrt(8)
    mem.add_events([{"id": "before-death", "t_start": 0, "text": "written, then the process dies"}], embeddings=v)
    os._exit(0)  # no close(): as after a SIGKILL, the index was never released


def test_an_index_left_by_a_process_that_died_is_checked_before_it_is_used(tmp_path):
    path = str(tmp_path / "m")
    ctx = mp.get_context("spawn")
    p = ctx.Process(target=_write_then_die, args=(path,))
    p.start()
    p.join(120)
    assert p.exitcode == 0 and len(list((tmp_path / "m" / "chroma.users").iterdir())) == 1
    with Memory(path, text_embedder=None, image_embedder=None) as mem:
        assert mem.index.count("text") == 1
        assert mem.index.recovered == {
            "fixed": {"text_missing": 0, "text_extra": 0, "image_missing": 0, "image_extra": 0}
        }
        assert [m.name.split("-")[0] for m in (tmp_path / "m" / "chroma.users").iterdir()] == [str(os.getpid())]
    assert list((tmp_path / "m" / "chroma.users").iterdir()) == []
    with Memory(path, text_embedder=None, image_embedder=None) as mem:
        mem.index.count("text")
        assert mem.index.recovered is None  # closed cleanly last time: no check
