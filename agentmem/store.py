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
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from agentmem.errors import NotFoundError, StoreError
from agentmem.model import AttributeValue, CameraPose, EntitySlot, Event, MediaRef, Merge, Relation
from agentmem.schema import DDL, MIGRATIONS, SCHEMA_VERSION, sql_statements

DB_NAME = "memory.db"


def vec_to_blob(vec: Sequence[float] | np.ndarray | None) -> bytes | None:
    if vec is None:
        return None
    return np.asarray(vec, dtype=np.float32).tobytes()


def blob_to_vec(blob: bytes | None) -> np.ndarray | None:
    return None if blob is None else np.frombuffer(blob, dtype=np.float32)


class Store:
    """Thin typed access to the SQLite tables of a memory directory."""

    def __init__(self, directory: str | Path):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
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
            self.set_meta("schema_version", str(SCHEMA_VERSION))

    def close(self) -> None:
        self.conn.close()

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

    # -- entities ---------------------------------------------------------
    def entity_exists(self, entity_id: str) -> bool:
        return self.conn.execute("SELECT 1 FROM entities WHERE id=?", (entity_id,)).fetchone() is not None

    def entity_name(self, entity_id: str) -> str:
        row = self.conn.execute("SELECT name FROM entities WHERE id=?", (entity_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no entity {entity_id!r}")
        return row[0]

    def insert_entity(self, entity_id: str, kind: str, name: str, now: float) -> None:
        self.conn.execute(
            "INSERT INTO entities(id, kind, name, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
            (entity_id, kind, name, now, now),
        )

    def touch_entity(self, entity_id: str, now: float, *, kind: str | None = None, name: str | None = None) -> None:
        self.conn.execute(
            "UPDATE entities SET updated_at=?, kind=COALESCE(?, kind), name=COALESCE(?, name) WHERE id=?",
            (now, kind, name, entity_id),
        )

    def add_alias(self, entity_id: str, alias: str, norm: str) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO aliases(entity_id, alias, norm) VALUES (?, ?, ?)", (entity_id, alias, norm)
        )

    def canonical(self, entity_id: str) -> str:
        """Follow recorded merges to the entity that ``entity_id`` now resolves to."""
        seen = set()
        cur = entity_id
        while True:
            row = self.conn.execute("SELECT merged_into FROM entities WHERE id=?", (cur,)).fetchone()
            if row is None:
                raise NotFoundError(f"no entity {entity_id!r}")
            if row[0] is None or row[0] in seen:
                return cur
            seen.add(cur)
            cur = row[0]

    def member_ids(self, canonical_id: str) -> list[str]:
        """``canonical_id`` and every id merged into it, directly or through others."""
        out, frontier = [canonical_id], [canonical_id]
        while frontier:
            marks = ",".join("?" * len(frontier))
            rows = self.conn.execute(f"SELECT id FROM entities WHERE merged_into IN ({marks})", frontier).fetchall()
            frontier = [r[0] for r in rows if r[0] not in out]
            out.extend(frontier)
        return out

    def canonical_entities(self) -> list[tuple[str, str, str]]:
        return self.conn.execute(
            "SELECT id, kind, name FROM entities WHERE merged_into IS NULL ORDER BY id"
        ).fetchall()

    def alias_rows(self) -> list[tuple[str, str, str]]:
        """(entity_id, alias, norm) for every alias and every entity name."""
        return self.conn.execute("SELECT entity_id, alias, norm FROM aliases ORDER BY entity_id, norm").fetchall()

    def entity_ids_by_norm(self, norm: str) -> list[str]:
        rows = self.conn.execute("SELECT DISTINCT entity_id FROM aliases WHERE norm=? ORDER BY entity_id", (norm,))
        return [r[0] for r in rows]

    def set_attribute(self, entity_id: str, key: str, value: str, t: float, source: str | None) -> None:
        """Make ``value`` the attribute's value from ``t`` on, closing the interval it interrupts."""
        cur = self.conn.execute(
            "SELECT id, value, t_to FROM attributes WHERE entity_id=? AND key=? AND t_from<=? "
            "AND (t_to IS NULL OR t_to>?) ORDER BY t_from DESC LIMIT 1",
            (entity_id, key, t, t),
        ).fetchone()
        nxt = self.conn.execute(
            "SELECT MIN(t_from) FROM attributes WHERE entity_id=? AND key=? AND t_from>?", (entity_id, key, t)
        ).fetchone()[0]
        if cur is not None:
            if cur[1] == value:
                return
            self.conn.execute("UPDATE attributes SET t_to=? WHERE id=?", (t, cur[0]))
        dup = self.conn.execute(
            "SELECT id FROM attributes WHERE entity_id=? AND key=? AND t_from=? AND value=?", (entity_id, key, t, value)
        ).fetchone()
        if dup is None:
            self.conn.execute(
                "INSERT INTO attributes(entity_id, key, value, t_from, t_to, source) VALUES (?, ?, ?, ?, ?, ?)",
                (entity_id, key, value, t, nxt, source),
            )

    def attributes(self, ids: Sequence[str]) -> list[AttributeValue]:
        marks = ",".join("?" * len(ids))
        rows = self.conn.execute(
            f"SELECT key, value, t_from, t_to, source FROM attributes WHERE entity_id IN ({marks}) "
            "ORDER BY key, t_from, id",
            list(ids),
        ).fetchall()
        return [AttributeValue(*r) for r in rows]

    def add_entity_vector(self, entity_id: str, modality: str, vec: np.ndarray, source: str, t: float | None) -> None:
        self.conn.execute(
            "INSERT INTO entity_vectors(entity_id, modality, vec, source, t) VALUES (?, ?, ?, ?, ?)",
            (entity_id, modality, vec_to_blob(vec), source, t),
        )

    def entity_vectors(self, ids: Sequence[str], modality: str) -> list[tuple[int, np.ndarray, str]]:
        marks = ",".join("?" * len(ids))
        rows = self.conn.execute(
            f"SELECT id, vec, source FROM entity_vectors WHERE modality=? AND entity_id IN ({marks}) ORDER BY id",
            [modality, *ids],
        ).fetchall()
        return [(r[0], blob_to_vec(r[1]), r[2]) for r in rows]

    def delete_entity_vectors(self, vector_ids: Iterable[int]) -> None:
        self.conn.executemany("DELETE FROM entity_vectors WHERE id=?", [(i,) for i in vector_ids])

    def add_media(self, owner: str, owner_id: str, m: MediaRef) -> int:
        cur = self.conn.execute(
            "INSERT INTO media(owner, owner_id, path, t, caption, kind, vec) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (owner, owner_id, m.path, m.t, m.caption, m.kind, vec_to_blob(m.embedding)),
        )
        return int(cur.lastrowid)

    def media_for(self, owner: str, owner_ids: Sequence[str]) -> dict[str, list[MediaRef]]:
        if not owner_ids:
            return {}
        marks = ",".join("?" * len(owner_ids))
        rows = self.conn.execute(
            f"SELECT owner_id, path, t, caption, kind FROM media WHERE owner=? AND owner_id IN ({marks}) ORDER BY id",
            [owner, *owner_ids],
        ).fetchall()
        out: dict[str, list[MediaRef]] = {}
        for oid, path, t, caption, kind in rows:
            out.setdefault(oid, []).append(MediaRef(path=path, t=t, caption=caption, kind=kind))
        return out

    def entity_slot(self, entity_id: str) -> EntitySlot:
        canon = self.canonical(entity_id)
        row = self.conn.execute(
            "SELECT id, kind, name, created_at, updated_at FROM entities WHERE id=?", (canon,)
        ).fetchone()
        ids = self.member_ids(canon)
        marks = ",".join("?" * len(ids))
        aliases = [
            r[0]
            for r in self.conn.execute(
                f"SELECT DISTINCT alias FROM aliases WHERE entity_id IN ({marks}) ORDER BY alias", ids
            )
            if r[0] != row[2]
        ]
        media = [m for i in ids for m in self.media_for("entity", [i]).get(i, [])]
        return EntitySlot(
            id=row[0], kind=row[1], name=row[2], aliases=aliases, attributes=self.attributes(ids),
            media=media, created_at=row[3], updated_at=row[4], merged_ids=ids[1:],
        )

    # -- merges -----------------------------------------------------------
    def record_merge(self, source: str, target: str, reason: str, score: float, now: float) -> int:
        self.conn.execute("UPDATE entities SET merged_into=?, updated_at=? WHERE id=?", (target, now, source))
        cur = self.conn.execute(
            "INSERT INTO merges(source, target, reason, score, at) VALUES (?, ?, ?, ?, ?)",
            (source, target, reason, score, now),
        )
        return int(cur.lastrowid)

    def undo_merge(self, merge_id: int, now: float) -> Merge:
        m = self.merge(merge_id)
        if m.undone_at is not None:
            raise StoreError(f"merge {merge_id} was already undone at {m.undone_at}")
        self.conn.execute("UPDATE entities SET merged_into=NULL, updated_at=? WHERE id=?", (now, m.source))
        self.conn.execute("UPDATE merges SET undone_at=? WHERE id=?", (now, merge_id))
        return self.merge(merge_id)

    def merge(self, merge_id: int) -> Merge:
        row = self.conn.execute(
            "SELECT id, source, target, reason, score, at, undone_at FROM merges WHERE id=?", (merge_id,)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"no merge {merge_id}")
        return Merge(*row)

    def merges(self) -> list[Merge]:
        rows = self.conn.execute("SELECT id, source, target, reason, score, at, undone_at FROM merges ORDER BY id")
        return [Merge(*r) for r in rows]

    # -- events -----------------------------------------------------------
    def existing_event_ids(self, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for i in range(0, len(ids), 500):
            chunk = list(ids[i : i + 500])
            marks = ",".join("?" * len(chunk))
            found.update(r[0] for r in self.conn.execute(f"SELECT id FROM events WHERE id IN ({marks})", chunk))
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
                (rid, e.id, e.t_start, e.t_end, e.text, text, e.location,
                 None if e.camera is None else json.dumps(e.camera.__dict__), json.dumps(e.provenance, sort_keys=True),
                 e.importance, e.group, e.ingested_at, int(e.archived), vec_to_blob(vec))
                for rid, (e, text, vec) in zip(rids, items)
            ],
        )
        self.conn.executemany(
            "INSERT INTO events_fts(rowid, search_text) VALUES (?, ?)", [(rid, it[1]) for rid, it in zip(rids, items)]
        )
        links = []
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
            marks = ",".join("?" * len(chunk))
            rows = self.conn.execute(
                "SELECT rid, id, t_start, t_end, text, location, camera, provenance, importance, grp, ingested_at, "
                f"archived FROM events WHERE rid IN ({marks})",
                chunk,
            ).fetchall()
            parts: dict[int, list[str]] = {}
            for ent, rid in self.conn.execute(
                f"SELECT entity_id, rid FROM event_entities WHERE role='participant' AND rid IN ({marks}) "
                "ORDER BY rid, entity_id",
                chunk,
            ):
                parts.setdefault(rid, []).append(ent)
            media = self.media_for("event", [r[1] for r in rows])
            for r in rows:
                cam = json.loads(r[6]) if r[6] else None
                out[r[0]] = Event(
                    id=r[1], t_start=r[2], t_end=r[3], text=r[4], participants=parts.get(r[0], []), location=r[5],
                    media=media.get(r[1], []), camera=CameraPose(**cam) if cam else None,
                    provenance=json.loads(r[7]), importance=r[8], group=r[9], ingested_at=r[10], archived=bool(r[11]),
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
        for key, value, sql in (("max_duration", duration, "SELECT MAX(t_end - t_start) FROM events"),
                                ("max_t_end", t_end, "SELECT MAX(t_end) FROM events")):
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
            self.conn.execute("INSERT INTO outbox(op, collection, ref) SELECT 'upsert', 'text', rid FROM events "
                              "WHERE vec IS NOT NULL ORDER BY rid")
            self.conn.execute("INSERT INTO outbox(op, collection, ref) SELECT 'upsert', 'image', id FROM media "
                              "WHERE vec IS NOT NULL ORDER BY id")

    def ack_outbox(self, seqs: Sequence[int]) -> None:
        """Acknowledge exactly these rows: another writer may have queued others meanwhile."""
        with self.transaction():
            self.conn.executemany("DELETE FROM outbox WHERE seq=?", [(s,) for s in seqs])

    def vector_rids_after(self, rid: int) -> list[int]:
        """Row ids above ``rid`` of events with a text vector, in order."""
        return [r[0] for r in self.conn.execute("SELECT rid FROM events WHERE rid>? AND vec IS NOT NULL ORDER BY rid",
                                                (rid,))]

    def max_vector_rid(self) -> int:
        """Largest event row id (0 for an empty memory)."""
        return int(self.conn.execute("SELECT COALESCE(MAX(rid), 0) FROM events").fetchone()[0])

    # -- relations --------------------------------------------------------
    def insert_relation(self, r: Relation, now: float) -> int:
        cur = self.conn.execute(
            "INSERT INTO relations(subject, predicate, object, t_from, t_to, weight, evidence, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (r.subject, r.predicate, r.object, r.t_from, r.t_to, r.weight, json.dumps(r.evidence), now),
        )
        return int(cur.lastrowid)

    def relations(self, entity_ids: Sequence[str] | None = None) -> list[Relation]:
        sql = "SELECT id, subject, predicate, object, t_from, t_to, weight, evidence FROM relations"
        args: list[str] = []
        if entity_ids is not None:
            marks = ",".join("?" * len(entity_ids))
            sql += f" WHERE subject IN ({marks}) OR object IN ({marks})"
            args = [*entity_ids, *entity_ids]
        rows = self.conn.execute(sql + " ORDER BY t_from, id", args).fetchall()
        return [
            Relation(subject=r[1], predicate=r[2], object=r[3], t_from=r[4], t_to=r[5], weight=r[6],
                     evidence=json.loads(r[7]), id=r[0])
            for r in rows
        ]

    def facts_sharing(self, predicate: str, subject: str, obj: str) -> list[Relation]:
        """Facts of ``predicate`` about the same subject or the same object, in story order."""
        rows = self.conn.execute(
            "SELECT id, subject, predicate, object, t_from, t_to, weight, evidence FROM relations "
            "WHERE predicate=? AND (subject=? OR object=?) ORDER BY t_from, id", (predicate, subject, obj)).fetchall()
        return [Relation(r[1], r[2], r[3], r[4], r[5], json.loads(r[7]), r[6], r[0]) for r in rows]

    def evidence_times(self, refs: Sequence[str]) -> dict[str, float]:
        """Story time of each evidence reference: an event id (its start) or ``fact:ID`` (its ``t_from``)."""
        refs = list(dict.fromkeys(refs))
        facts = {r: int(r[5:]) for r in refs if r.startswith("fact:") and r[5:].isdigit()}
        out: dict[str, float] = {}
        for table, key, col, items in (("events", "id", "t_start", [r for r in refs if r not in facts]),
                                       ("relations", "id", "t_from", list(facts.values()))):
            for i in range(0, len(items), 500):
                chunk = items[i : i + 500]
                marks = ",".join("?" * len(chunk))
                for k, t in self.conn.execute(f"SELECT {key}, {col} FROM {table} WHERE {key} IN ({marks})", chunk):
                    out[f"fact:{k}" if table == "relations" else k] = t
        return out

    def close_relation(self, relation_id: int, t_to: float) -> None:
        self.conn.execute("UPDATE relations SET t_to=? WHERE id=?", (t_to, relation_id))

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
