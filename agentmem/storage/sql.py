"""Bound ``IN (...)`` lists: placeholders and chunking, so that no caller pastes values into SQL.

SQLite caps the number of bound parameters per statement, so long lists are
read in chunks; every value is still a bound parameter.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

CHUNK = 500


def marks(n: int) -> str:
    """``n`` comma-separated placeholders.

    Examples
    --------
    >>> marks(3)
    '?,?,?'
    """
    return ",".join("?" * n)


def chunks(values: Sequence[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    """``values`` in consecutive lists of at most ``size``.

    Examples
    --------
    >>> list(chunks([1, 2, 3, 4, 5], 2))
    [[1, 2], [3, 4], [5]]
    """
    for i in range(0, len(values), size):
        yield list(values[i : i + size])


def rows_in(
    conn: sqlite3.Connection,
    sql: str,
    values: Sequence[Any],
    *,
    before: Sequence[Any] = (),
    after: Sequence[Any] = (),
    size: int = CHUNK,
) -> Iterator[tuple]:
    """Rows of ``sql`` run once per chunk of ``values``; ``{in}`` in ``sql`` becomes that chunk's placeholders.

    ``before`` and ``after`` are bound before and after the chunk's values. Rows come chunk by chunk, so an
    ``ORDER BY`` holds within a chunk only.

    Examples
    --------
    >>> c = sqlite3.connect(":memory:")
    >>> _ = c.execute("CREATE TABLE t(x)")
    >>> _ = c.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(10)])
    >>> sorted(r[0] for r in rows_in(c, "SELECT x FROM t WHERE x IN ({in}) AND x > ?", [1, 5, 7, 9], after=[4], size=2))
    [5, 7, 9]
    """
    for chunk in chunks(values, size):
        yield from conn.execute(sql.replace("{in}", marks(len(chunk))), [*before, *chunk, *after])
