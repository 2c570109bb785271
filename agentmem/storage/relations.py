"""Relation tables: facts between entities, valid over story-time intervals, with their evidence.

A mixin of :class:`agentmem.storage.store.Store`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import NamedTuple

from agentmem.model import Relation
from agentmem.storage.sql import marks

_COLS = "id, subject, predicate, object, t_from, t_to, weight, evidence"


def _relation(r: tuple) -> Relation:
    return Relation(r[1], r[2], r[3], r[4], r[5], json.loads(r[7]), r[6], r[0])


class FactKey(NamedTuple):
    """A stored fact's id and the (subject, predicate, object) it states."""

    id: int
    subject: str
    predicate: str
    object: str


class RelationTables:
    """Reads and writes of the relations table."""

    conn: sqlite3.Connection

    # -- relations --------------------------------------------------------
    def insert_relation(self, r: Relation, now: float) -> int:
        cur = self.conn.execute(
            "INSERT INTO relations(subject, predicate, object, t_from, t_to, weight, evidence, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (r.subject, r.predicate, r.object, r.t_from, r.t_to, r.weight, json.dumps(r.evidence), now),
        )
        return int(cur.lastrowid or 0)

    def relations(self, entity_ids: Sequence[str] | None = None) -> list[Relation]:
        sql = "SELECT id, subject, predicate, object, t_from, t_to, weight, evidence FROM relations"
        args: list[str] = []
        if entity_ids is not None:
            ph = marks(len(entity_ids))
            sql += f" WHERE subject IN ({ph}) OR object IN ({ph})"
            args = [*entity_ids, *entity_ids]
        rows = self.conn.execute(sql + " ORDER BY t_from, id", args).fetchall()
        return [
            Relation(
                subject=r[1],
                predicate=r[2],
                object=r[3],
                t_from=r[4],
                t_to=r[5],
                weight=r[6],
                evidence=json.loads(r[7]),
                id=r[0],
            )
            for r in rows
        ]

    def facts_sharing(self, predicate: str, subject: str, obj: str) -> list[Relation]:
        """Facts of ``predicate`` about the same subject or the same object, in story order."""
        rows = self.conn.execute(
            "SELECT id, subject, predicate, object, t_from, t_to, weight, evidence FROM relations "
            "WHERE predicate=? AND (subject=? OR object=?) ORDER BY t_from, id",
            (predicate, subject, obj),
        ).fetchall()
        return [Relation(r[1], r[2], r[3], r[4], r[5], json.loads(r[7]), r[6], r[0]) for r in rows]

    def evidence_times(self, refs: Sequence[str]) -> dict[str, float]:
        """Story time of each evidence reference: an event id (its start) or ``fact:ID`` (its ``t_from``)."""
        refs = list(dict.fromkeys(refs))
        facts = {r: int(r[5:]) for r in refs if r.startswith("fact:") and r[5:].isdigit()}
        out: dict[str, float] = {}
        for table, key, col, items in (
            ("events", "id", "t_start", [r for r in refs if r not in facts]),
            ("relations", "id", "t_from", list(facts.values())),
        ):
            for i in range(0, len(items), 500):
                chunk = items[i : i + 500]
                ph = marks(len(chunk))
                for k, t in self.conn.execute(f"SELECT {key}, {col} FROM {table} WHERE {key} IN ({ph})", chunk):
                    out[f"fact:{k}" if table == "relations" else k] = t
        return out

    def close_relation(self, relation_id: int, t_to: float) -> None:
        self.conn.execute("UPDATE relations SET t_to=? WHERE id=?", (t_to, relation_id))

    def facts_of(self, subject: str, predicate: str) -> list[Relation]:
        """Every fact (open or closed) of ``subject`` with ``predicate``, by start time."""
        rows = self.conn.execute(
            f"SELECT {_COLS} FROM relations WHERE subject=? AND predicate=? ORDER BY t_from, id", (subject, predicate)
        ).fetchall()
        return [_relation(r) for r in rows]

    def facts_with_predicates(self, predicates: Sequence[str]) -> list[Relation]:
        """Every fact of any of ``predicates``, by predicate then start time."""
        rows = self.conn.execute(
            f"SELECT {_COLS} FROM relations WHERE predicate IN ({marks(len(predicates))}) "
            "ORDER BY predicate, t_from, id",
            list(predicates),
        ).fetchall()
        return [_relation(r) for r in rows]

    def subjects_of(self, predicate: str, obj: str) -> list[str]:
        """Every subject that ever had ``predicate`` ``obj``."""
        sql = "SELECT DISTINCT subject FROM relations WHERE predicate=? AND object=?"
        return [r[0] for r in self.conn.execute(sql, (predicate, obj))]

    def facts_after(self, after_id: int) -> list[FactKey]:
        """The facts stored after ``after_id``, in order."""
        sql = "SELECT id, subject, predicate, object FROM relations WHERE id > ? ORDER BY id"
        return [FactKey(*r) for r in self.conn.execute(sql, (after_id,))]
