"""SQLite storage of one memory: the source of truth.

One directory is one memory; the database is ``memory.db`` in it, in WAL mode
with ``synchronous=FULL``. Every public write runs in one ``BEGIN IMMEDIATE``
transaction, so a write is either wholly there or not at all, and a write that
returned is on disk. Vector-index work is queued in the ``outbox`` table inside
the same transaction, which is what lets the index be reconciled after a crash.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from agentmem.errors import NotFoundError, StoreError
from agentmem.model import CameraPose, Event
from agentmem.storage.blobs import vec_to_blob
from agentmem.storage.entities import EntityTables
from agentmem.storage.paths import migrate_paths
from agentmem.storage.relations import RelationTables
from agentmem.storage.schema import DDL, MIGRATIONS, SCHEMA_VERSION, sql_statements
from agentmem.storage.sql import marks

DB_NAME = "memory.db"


class Store(EntityTables, RelationTables):
    """Thin typed access to the SQLite tables of a memory directory."""

    def __init__(self, directory: str | Path):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        # The folder's current place: owned files are stored relative to it (agentmem.storage.paths).
        self.root = self.dir.resolve()
        self.path = self.dir / DB_NAME
        self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("PRAGMA busy_timeout=30000")
        self.conn.execute("PRAGMA foreign_keys=OFF")
        # Longest write transaction so far (seconds the write lock was held): what a concurrent writer may wait.
        self.longest_write_s = 0.0
        self._init_schema()

    def _init_schema(self) -> None:
        # IF NOT EXISTS makes the DDL idempotent, so two processes opening at once are harmless.
        self.conn.executescript(DDL)
        with self.transaction():
            version = self.get_meta("schema_version")
            if version is None:
                self.set_meta("schema_version", str(SCHEMA_VERSION))
                return
            v = int(version)
            if v > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has schema version {v}, newer than this agentmem ({SCHEMA_VERSION}): upgrade agentmem"
                )
            for step in range(v + 1, SCHEMA_VERSION + 1):
                # executescript() would COMMIT the open transaction: run the steps one by one inside it.
                for stmt in sql_statements(MIGRATIONS[step]):
                    self.conn.execute(stmt)
                if step == 7:
                    migrate_paths(self.conn, self.root)
            self.set_meta("schema_version", str(SCHEMA_VERSION))

    def close(self) -> None:
        self.conn.close()

    def copy_to(self, directory: str | Path) -> Path:
        """A consistent copy of the database in ``directory`` (SQLite's online backup: writers are neither blocked
        nor seen half-way); returns the copy's path."""
        path = Path(directory) / DB_NAME
        dst = sqlite3.connect(path)
        try:
            self.conn.backup(dst)
        finally:
            dst.close()
        return path

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write; nested use joins the outer transaction."""
        if self.conn.in_transaction:
            yield self.conn
            return
        self.conn.execute("BEGIN IMMEDIATE")
        began = time.perf_counter()
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
        self.longest_write_s = max(self.longest_write_s, time.perf_counter() - began)

    # -- meta -------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    # -- events -----------------------------------------------------------
    def existing_event_ids(self, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for i in range(0, len(ids), 500):
            chunk = list(ids[i : i + 500])
            ph = marks(len(chunk))
            found.update(r[0] for r in self.conn.execute(f"SELECT id FROM events WHERE id IN ({ph})", chunk))
        return found

    def insert_events(self, items: Sequence[tuple[Event, str, np.ndarray | None]]) -> list[int]:
        """Insert (event, search text, text vector) rows; returns their row ids, in order.

        Row ids are assigned here, which is safe because writes hold the
        ``BEGIN IMMEDIATE`` lock; that lets every table be filled with one
        ``executemany`` instead of four statements per event.
        """
        if not items:
            return []
        first = int(self.conn.execute("SELECT COALESCE(MAX(rid), 0) FROM events").fetchone()[0]) + 1
        rids = list(range(first, first + len(items)))
        self.conn.executemany(
            "INSERT INTO events(rid, id, t_start, t_end, text, search_text, location, camera, provenance, importance, "
            "grp, ingested_at, archived, vec) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    rid,
                    e.id,
                    e.t_start,
                    e.t_end,
                    e.text,
                    text,
                    e.location,
                    None if e.camera is None else json.dumps(e.camera.__dict__),
                    json.dumps(e.provenance, sort_keys=True),
                    e.importance,
                    e.group,
                    e.ingested_at,
                    int(e.archived),
                    vec_to_blob(vec),
                )
                for rid, (e, text, vec) in zip(rids, items)
            ],
        )
        self.conn.executemany(
            "INSERT INTO events_fts(rowid, search_text) VALUES (?, ?)", [(rid, it[1]) for rid, it in zip(rids, items)]
        )
        links: list[tuple] = []
        for rid, (e, _, _) in zip(rids, items):
            links.extend((p, e.t_start, rid, e.t_end, "participant") for p in dict.fromkeys(e.participants))
            if e.location:
                links.append((e.location, e.t_start, rid, e.t_end, "location"))
        self.conn.executemany(
            "INSERT OR IGNORE INTO event_entities(entity_id, t_start, rid, t_end, role) VALUES (?, ?, ?, ?, ?)", links
        )
        self.conn.executemany(
            "INSERT INTO outbox(op, collection, ref) VALUES ('upsert', 'text', ?)",
            [(rid,) for rid, it in zip(rids, items) if it[2] is not None],
        )
        return rids

    def set_archived(self, rids: Sequence[int], archived: bool) -> None:
        self.conn.executemany("UPDATE events SET archived=? WHERE rid=?", [(int(archived), r) for r in rids])

    def events_by_rid(self, rids: Sequence[int]) -> dict[int, Event]:
        out: dict[int, Event] = {}
        for i in range(0, len(rids), 500):
            chunk = list(rids[i : i + 500])
            ph = marks(len(chunk))
            rows = self.conn.execute(
                "SELECT rid, id, t_start, t_end, text, location, camera, provenance, importance, grp, ingested_at, "
                f"archived FROM events WHERE rid IN ({ph})",
                chunk,
            ).fetchall()
            parts: dict[int, list[str]] = {}
            for ent, rid in self.conn.execute(
                f"SELECT entity_id, rid FROM event_entities WHERE role='participant' AND rid IN ({ph}) "
                "ORDER BY rid, entity_id",
                chunk,
            ):
                parts.setdefault(rid, []).append(ent)
            media = self.media_for("event", [r[1] for r in rows])
            for r in rows:
                cam = json.loads(r[6]) if r[6] else None
                out[r[0]] = Event(
                    id=r[1],
                    t_start=r[2],
                    t_end=r[3],
                    text=r[4],
                    participants=parts.get(r[0], []),
                    location=r[5],
                    media=media.get(r[1], []),
                    camera=CameraPose(**cam) if cam else None,
                    provenance=json.loads(r[7]),
                    importance=r[8],
                    group=r[9],
                    ingested_at=r[10],
                    archived=bool(r[11]),
                )
        return out

    def rid_of(self, event_id: str) -> int:
        row = self.conn.execute("SELECT rid FROM events WHERE id=?", (event_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no event {event_id!r}")
        return int(row[0])

    def event_vectors(self, after_rid: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(rids, vectors) of events with a text vector and rid > ``after_rid``, in rid order."""
        rows = self.conn.execute(
            "SELECT rid, vec FROM events WHERE rid>? AND vec IS NOT NULL ORDER BY rid", (after_rid,)
        ).fetchall()
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        rids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        mat = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
        return rids, mat

    def max_event_rid(self) -> int:
        """The highest event row id so far (0 when there are none); row ids only grow."""
        return self.conn.execute("SELECT COALESCE(MAX(rid), 0) FROM events").fetchone()[0]

    def time_span(self) -> tuple[float | None, float | None]:
        """Earliest start and latest end of any event; ``(None, None)`` when there are none."""
        return self.conn.execute("SELECT MIN(t_start), MAX(t_end) FROM events").fetchone()

    def max_duration(self) -> float:
        """Longest event (t_end - t_start): bounds the index range scan of time-overlap queries."""
        value = self.get_meta("max_duration")
        if value is None:
            row = self.conn.execute("SELECT MAX(t_end - t_start) FROM events").fetchone()
            return float(row[0] or 0.0)
        return float(value)

    def latest_time(self) -> float:
        """Latest ``t_end`` of any event (0 for an empty memory)."""
        value = self.get_meta("max_t_end")
        if value is None:
            row = self.conn.execute("SELECT MAX(t_end) FROM events").fetchone()
            return float(row[0] or 0.0)
        return float(value)

    def note_times(self, duration: float, t_end: float) -> None:
        """Raise the stored maximum event duration and latest time (inside the write transaction)."""
        for key, value, sql in (
            ("max_duration", duration, "SELECT MAX(t_end - t_start) FROM events"),
            ("max_t_end", t_end, "SELECT MAX(t_end) FROM events"),
        ):
            if self.get_meta(key) is None:
                value = max(value, float(self.conn.execute(sql).fetchone()[0] or value))
            self.conn.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
                "SET value = CAST(MAX(CAST(value AS REAL), CAST(excluded.value AS REAL)) AS TEXT)",
                (key, repr(float(value))),
            )

    # -- outbox -----------------------------------------------------------
    def enqueue(self, op: str, collection: str, ref: int) -> None:
        self.conn.execute("INSERT INTO outbox(op, collection, ref) VALUES (?, ?, ?)", (op, collection, ref))

    def outbox_batch(self, limit: int) -> list[tuple[int, str, str, int]]:
        sql = "SELECT seq, op, collection, ref FROM outbox ORDER BY seq LIMIT ?"
        return self.conn.execute(sql, (limit,)).fetchall()

    def outbox_refs(self, collection: str) -> list[int]:
        return [r[0] for r in self.conn.execute("SELECT DISTINCT ref FROM outbox WHERE collection=?", (collection,))]

    def outbox_size(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def requeue_all_vectors(self) -> None:
        """Replace the queued index work with an upsert of every stored vector (a rebuild), in one transaction."""
        with self.transaction():
            self.conn.execute("DELETE FROM outbox")
            self.conn.execute(
                "INSERT INTO outbox(op, collection, ref) SELECT 'upsert', 'text', rid FROM events "
                "WHERE vec IS NOT NULL ORDER BY rid"
            )
            self.conn.execute(
                "INSERT INTO outbox(op, collection, ref) SELECT 'upsert', 'image', id FROM media "
                "WHERE vec IS NOT NULL ORDER BY id"
            )

    def ack_outbox(self, seqs: Sequence[int]) -> None:
        """Acknowledge exactly these rows: another writer may have queued others meanwhile."""
        with self.transaction():
            self.conn.executemany("DELETE FROM outbox WHERE seq=?", [(s,) for s in seqs])

    def vector_rids_after(self, rid: int) -> list[int]:
        """Row ids above ``rid`` of events with a text vector, in order."""
        return [
            r[0]
            for r in self.conn.execute("SELECT rid FROM events WHERE rid>? AND vec IS NOT NULL ORDER BY rid", (rid,))
        ]

    def max_vector_rid(self) -> int:
        """Largest event row id (0 for an empty memory)."""
        return int(self.conn.execute("SELECT COALESCE(MAX(rid), 0) FROM events").fetchone()[0])

    # -- stats ------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        q = {
            "entities": "SELECT COUNT(*) FROM entities WHERE merged_into IS NULL",
            "merged_entities": "SELECT COUNT(*) FROM entities WHERE merged_into IS NOT NULL",
            "events": "SELECT COUNT(*) FROM events WHERE archived=0",
            "archived_events": "SELECT COUNT(*) FROM events WHERE archived=1",
            "attributes": "SELECT COUNT(*) FROM attributes",
            "relations": "SELECT COUNT(*) FROM relations",
            "media": "SELECT COUNT(*) FROM media",
            "outbox": "SELECT COUNT(*) FROM outbox",
        }
        return {k: int(self.conn.execute(sql).fetchone()[0]) for k, sql in q.items()}
