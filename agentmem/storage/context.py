"""The context index: lexical documents for windows of adjacent events and for whole groups.

Evidence in conversations and stories spans neighbouring events: a question
answered by one turn often shares its words with the turn before or after.
For every event in a group (a session, a scene, an episode) the memory keeps
two derived FTS5 documents, the texts of its +-1 and +-2 neighbours in story
order, and one document per group with all of its texts. They are rebuilt
around new events in the same transaction that stores them, and can always
be rebuilt from the events table (:func:`rebuild_context`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from agentmem.storage.sql import marks

RADII = (1, 2)


def window_rowid(rid: int, radius: int) -> int:
    """FTS rowid of the window of ``radius`` around event ``rid``."""
    return rid * 4 + radius


def centre_of(rowid: int) -> tuple[int, int]:
    """Inverse of :func:`window_rowid`: (rid, radius).

    Examples
    --------
    >>> centre_of(window_rowid(17, 2))
    (17, 2)
    """
    return rowid // 4, rowid % 4


def group_members(store, groups: Iterable[str]) -> dict[str, list[tuple[int, str]]]:
    """Each group's events as (rid, search_text), in story order."""
    groups = sorted(set(groups))
    out: dict[str, list[tuple[int, str]]] = {g: [] for g in groups}
    for i in range(0, len(groups), 200):
        chunk = groups[i : i + 200]
        ph = marks(len(chunk))
        for grp, rid, text in store.conn.execute(
            f"SELECT grp, rid, search_text FROM events WHERE grp IN ({ph}) ORDER BY grp, t_start, rid", chunk
        ):
            out[grp].append((rid, text))
    return out


def group_id(store, name: str) -> int:
    store.conn.execute("INSERT OR IGNORE INTO groups(name) VALUES (?)", (name,))
    return int(store.conn.execute("SELECT id FROM groups WHERE name=?", (name,)).fetchone()[0])


def refresh_context(store, rids: Sequence[int]) -> None:
    """Rebuild the windows around ``rids`` and their groups' documents (call inside the write transaction)."""
    if not rids:
        return
    new: dict[str, set[int]] = {}
    for i in range(0, len(rids), 500):
        chunk = list(rids[i : i + 500])
        ph = marks(len(chunk))
        for rid, grp in store.conn.execute(
            f"SELECT rid, grp FROM events WHERE grp IS NOT NULL AND rid IN ({ph})", chunk
        ):
            new.setdefault(grp, set()).add(rid)
    for grp, members in group_members(store, new).items():
        pos = {rid: i for i, (rid, _) in enumerate(members)}
        affected = sorted({j for r in new[grp] for j in range(pos[r] - 2, pos[r] + 3) if 0 <= j < len(members)})
        stale, rows = [], []
        for j in affected:
            rid = members[j][0]
            for radius in RADII:
                doc = " ".join(t for _, t in members[max(0, j - radius) : j + radius + 1])
                rows.append((window_rowid(rid, radius), doc))
                if rid not in new[grp]:
                    # only an older neighbour has a window to replace; new events have none yet
                    stale.append((window_rowid(rid, radius),))
        store.conn.executemany("DELETE FROM window_fts WHERE rowid=?", stale)
        store.conn.executemany("INSERT INTO window_fts(rowid, doc) VALUES (?, ?)", rows)
        gid = group_id(store, grp)
        store.conn.execute("DELETE FROM group_fts WHERE rowid=?", (gid,))
        store.conn.execute("INSERT INTO group_fts(rowid, doc) VALUES (?, ?)", (gid, " ".join(t for _, t in members)))


def rebuild_context(store) -> int:
    """Rebuild the whole context index from the events table; returns the number of groups."""
    with store.transaction():
        store.conn.execute("DELETE FROM window_fts")
        store.conn.execute("DELETE FROM group_fts")
        rids = [r[0] for r in store.conn.execute("SELECT rid FROM events WHERE grp IS NOT NULL")]
        refresh_context(store, rids)
        return int(store.conn.execute("SELECT COUNT(*) FROM groups").fetchone()[0])
