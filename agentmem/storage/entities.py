"""Entity tables: entities, aliases, merges, attributes over time, entity vectors and media.

A mixin of :class:`agentmem.storage.store.Store`; every method runs on the
store's connection and joins its open transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from agentmem.errors import NotFoundError, StoreError, UnknownEntityError
from agentmem.model import AttributeValue, EntitySlot, MediaRef, Merge
from agentmem.names import normalize_name
from agentmem.storage.blobs import blob_to_array, vec_to_blob
from agentmem.storage.paths import from_stored, to_stored
from agentmem.storage.sql import marks


def follow_merges(entity_id: str, parent: Callable[[str], str | None]) -> str:
    """The entity that ``entity_id`` resolves to, following ``parent`` (merged into) links; a cycle stops the walk.

    Examples
    --------
    >>> follow_merges("tomas", {"tomas": "fisher", "fisher": "tom"}.get)
    'tom'
    >>> follow_merges("mara", {}.get)
    'mara'
    """
    seen: set[str] = set()
    cur = entity_id
    while (nxt := parent(cur)) is not None and cur not in seen:
        seen.add(cur)
        cur = nxt
    return cur


def canonical_map(conn: sqlite3.Connection) -> dict[str, str]:
    """Every stored entity id -> the canonical id it resolves to through merges (:func:`follow_merges`)."""
    parent = dict(conn.execute("SELECT id, merged_into FROM entities").fetchall())
    return {eid: follow_merges(eid, parent.get) for eid in parent}


class EntityRow(NamedTuple):
    """A canonical entity: id, kind and name."""

    id: str
    kind: str
    name: str


class AliasRow(NamedTuple):
    """An alias (or an entity's own name) with its normalized form (:func:`agentmem.names.normalize_name`)."""

    entity_id: str
    alias: str
    norm: str


class EntityVector(NamedTuple):
    """A stored entity vector with where it came from."""

    id: int
    vec: np.ndarray
    source: str


class EntityTables:
    """Reads and writes of the entity tables."""

    conn: sqlite3.Connection
    root: Path  # the memory folder, resolved: media paths are stored against it (agentmem.storage.paths)

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
        if not self.entity_exists(entity_id):
            raise NotFoundError(f"no entity {entity_id!r}")

        def parent(eid: str) -> str | None:
            row = self.conn.execute("SELECT merged_into FROM entities WHERE id=?", (eid,)).fetchone()
            return None if row is None else row[0]

        return follow_merges(entity_id, parent)

    def resolve_entity(self, ref: str) -> str:
        """Canonical id of an entity given by id, name or alias (merges followed); one line if unknown or ambiguous."""
        if self.entity_exists(ref):
            return self.canonical(ref)
        ids = {self.canonical(e) for e in self.entity_ids_by_norm(normalize_name(ref))}
        if len(ids) == 1:
            return ids.pop()
        if len(ids) > 1:
            raise UnknownEntityError(f"entity {ref!r} is ambiguous: it names {sorted(ids)}; use an id")
        raise UnknownEntityError(f"unknown entity {ref!r}: declare it first (see `agentmem entities`)")

    def canonical_map(self) -> dict[str, str]:
        """Every stored entity id -> the canonical id it resolves to through merges."""
        return canonical_map(self.conn)

    def alias_version(self) -> tuple[int, int, int]:
        """Changes whenever an alias is added or a merge is made or undone (aliases and merges are never deleted)."""
        return self.conn.execute(
            "SELECT (SELECT COUNT(*) FROM aliases), (SELECT COUNT(*) FROM merges), "
            "(SELECT COUNT(*) FROM merges WHERE undone_at IS NOT NULL)"
        ).fetchone()

    def member_ids(self, canonical_id: str) -> list[str]:
        """``canonical_id`` and every id merged into it, directly or through others."""
        out, frontier = [canonical_id], [canonical_id]
        while frontier:
            ph = marks(len(frontier))
            rows = self.conn.execute(f"SELECT id FROM entities WHERE merged_into IN ({ph})", frontier).fetchall()
            frontier = [r[0] for r in rows if r[0] not in out]
            out.extend(frontier)
        return out

    def canonical_entities(self, *, by_id: bool = True) -> list[EntityRow]:
        """The canonical entities; ``by_id`` sorts them, else they come in storage order."""
        order = " ORDER BY id" if by_id else ""
        rows = self.conn.execute(f"SELECT id, kind, name FROM entities WHERE merged_into IS NULL{order}")
        return [EntityRow(*r) for r in rows]

    def merge_states(self) -> list[tuple[int, float | None]]:
        """(merge id, undone_at) of every merge: changes when a merge is made or undone."""
        return self.conn.execute("SELECT id, undone_at FROM merges ORDER BY id").fetchall()

    def alias_rows(self) -> list[AliasRow]:
        """Every alias and every entity name."""
        return [
            AliasRow(*r)
            for r in self.conn.execute("SELECT entity_id, alias, norm FROM aliases ORDER BY entity_id, norm")
        ]

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
        ph = marks(len(ids))
        rows = self.conn.execute(
            f"SELECT key, value, t_from, t_to, source FROM attributes WHERE entity_id IN ({ph}) "
            "ORDER BY key, t_from, id",
            list(ids),
        ).fetchall()
        return [AttributeValue(*r) for r in rows]

    def add_entity_vector(self, entity_id: str, modality: str, vec: np.ndarray, source: str, t: float | None) -> None:
        self.conn.execute(
            "INSERT INTO entity_vectors(entity_id, modality, vec, source, t) VALUES (?, ?, ?, ?, ?)",
            (entity_id, modality, vec_to_blob(vec), source, t),
        )

    def entity_vectors(self, ids: Sequence[str], modality: str) -> list[EntityVector]:
        """The vectors of ``modality`` of the entity ids, in insertion order."""
        ph = marks(len(ids))
        rows = self.conn.execute(
            f"SELECT id, vec, source FROM entity_vectors WHERE modality=? AND entity_id IN ({ph}) ORDER BY id",
            [modality, *ids],
        ).fetchall()
        return [EntityVector(r[0], blob_to_array(r[1]), r[2]) for r in rows]

    def delete_entity_vectors(self, vector_ids: Iterable[int]) -> None:
        self.conn.executemany("DELETE FROM entity_vectors WHERE id=?", [(i,) for i in vector_ids])

    def add_media(self, owner: str, owner_id: str, m: MediaRef) -> int:
        path = None if m.path is None else to_stored(m.path, self.root)
        cur = self.conn.execute(
            "INSERT INTO media(owner, owner_id, path, t, caption, kind, vec) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (owner, owner_id, path, m.t, m.caption, m.kind, vec_to_blob(m.embedding)),
        )
        return int(cur.lastrowid or 0)

    def media_for(self, owner: str, owner_ids: Sequence[str]) -> dict[str, list[MediaRef]]:
        if not owner_ids:
            return {}
        ph = marks(len(owner_ids))
        rows = self.conn.execute(
            f"SELECT owner_id, path, t, caption, kind FROM media WHERE owner=? AND owner_id IN ({ph}) ORDER BY id",
            [owner, *owner_ids],
        ).fetchall()
        out: dict[str, list[MediaRef]] = {}
        for oid, path, t, caption, kind in rows:
            where = None if path is None else str(from_stored(path, self.root))
            out.setdefault(oid, []).append(MediaRef(path=where, t=t, caption=caption, kind=kind))
        return out

    def entity_slot(self, entity_id: str) -> EntitySlot:
        canon = self.canonical(entity_id)
        row = self.conn.execute(
            "SELECT id, kind, name, created_at, updated_at FROM entities WHERE id=?", (canon,)
        ).fetchone()
        ids = self.member_ids(canon)
        ph = marks(len(ids))
        aliases = [
            r[0]
            for r in self.conn.execute(
                f"SELECT DISTINCT alias FROM aliases WHERE entity_id IN ({ph}) ORDER BY alias", ids
            )
            if r[0] != row[2]
        ]
        media = [m for i in ids for m in self.media_for("entity", [i]).get(i, [])]
        return EntitySlot(
            id=row[0],
            kind=row[1],
            name=row[2],
            aliases=aliases,
            attributes=self.attributes(ids),
            media=media,
            created_at=row[3],
            updated_at=row[4],
            merged_ids=ids[1:],
        )

    # -- merges -----------------------------------------------------------
    def record_merge(self, source: str, target: str, reason: str, score: float, now: float) -> int:
        self.conn.execute("UPDATE entities SET merged_into=?, updated_at=? WHERE id=?", (target, now, source))
        cur = self.conn.execute(
            "INSERT INTO merges(source, target, reason, score, at) VALUES (?, ?, ?, ?, ?)",
            (source, target, reason, score, now),
        )
        return int(cur.lastrowid or 0)

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
