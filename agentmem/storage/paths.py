"""Stored file paths: files the memory owns relative to the memory folder, files it references absolute.

A memory folder works from any working directory and after it is moved or copied whole, because the form of a
stored path says where it is:

- relative (``frames/3f2a....png``): a file inside the memory folder (copies made by ``world ingest --copy``, the
  masks and pixels agentmem writes), read against the folder's *current* location;
- absolute (``/data/scene/images/00003.png``): a file the memory references, stored resolved. When the dataset
  moves, :func:`relink_plan` re-points every such path under one prefix (``agentmem world relink OLD NEW``).

This applies to frame pixels (``frames.rgb_path``, ``depth_path``, ``mask_path``) and to media of events and
entities (``media.path``). :func:`migrate_paths` rewrites a memory written before this rule (schema version 7).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agentmem.errors import BadInputError, MediaNotFoundError

if TYPE_CHECKING:
    from agentmem.storage.store import Store

FRAME_FIELDS = ("rgb_path", "depth_path", "mask_path")
RELINK_HINT = "moved? run agentmem world relink OLD NEW"


def to_stored(path: str | Path, root: Path) -> str:
    """The stored form of ``path`` (relative paths are taken from the working directory) for the memory folder
    ``root`` (resolved): relative to ``root`` when inside it, else resolved and absolute.

    Examples
    --------
    >>> to_stored("/m/frames/a.png", Path("/m")), to_stored("/data/x/../a.png", Path("/m"))
    ('frames/a.png', '/data/a.png')
    """
    full = Path(os.path.abspath(path)).resolve()
    return full.relative_to(root).as_posix() if full.is_relative_to(root) else str(full)


def from_stored(stored: str, root: Path) -> Path:
    """Where a stored path is now: an owned (relative) one inside ``root``, a referenced (absolute) one as stored.

    >>> from_stored("frames/a.png", Path("/moved/m")), from_stored("/data/a.png", Path("/moved/m"))
    (PosixPath('/moved/m/frames/a.png'), PosixPath('/data/a.png'))
    """
    return Path(stored) if os.path.isabs(stored) else root / stored


def existing_file(stored: str, root: Path, where: str, field: str) -> Path:
    """:func:`from_stored`, refused with one line naming ``where``, ``field`` and the path when it is missing."""
    path = from_stored(stored, root)
    if not path.is_file():
        hint = RELINK_HINT if os.path.isabs(stored) else "a file of the memory folder itself was removed"
        raise MediaNotFoundError(f"{where}: {field}: {path} is missing ({hint})")
    return path


def repointed(stored: str | None, old: Path, new: Path) -> Path | None:
    """The new place of a referenced path under the prefix ``old`` (whole path components), else ``None``.

    >>> old, new = Path("/data/a"), Path("/new")
    >>> repointed("/data/a/x.png", old, new), repointed("/data/ab/x.png", old, new)
    (PosixPath('/new/x.png'), None)
    >>> repointed("frames/x.png", Path("/"), Path("/new")) is None  # an owned file never moves apart from the memory
    True
    """
    if stored is None or not os.path.isabs(stored) or not Path(stored).is_relative_to(old):
        return None
    return new / Path(stored).relative_to(old)


# -- relink -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RelinkPlan:
    """What a relink changes: (frame id, {field: new stored path}) per frame and (media row id, new stored path)."""

    frames: list[tuple[int, str, dict[str, str]]]
    media: list[tuple[int, str]]

    @property
    def paths(self) -> int:
        return sum(len(f[2]) for f in self.frames) + len(self.media)


def relink_plan(conn: sqlite3.Connection, root: Path, old: str, new: str) -> RelinkPlan:
    """Every referenced path under ``old`` re-pointed under ``new``, each new file checked to exist; the first
    missing one is refused with one line naming the frame (or media item), field and path. Writes nothing."""
    if not old.strip() or not new.strip():
        raise BadInputError("relink: OLD_PREFIX and NEW_PREFIX must be non-empty paths")
    src, dest = Path(os.path.abspath(old)), Path(os.path.abspath(new)).resolve()
    prefix = str(src) if str(src).endswith(os.sep) else str(src) + os.sep
    frames: list[tuple[int, str, dict[str, str]]] = []
    starts = " OR ".join(f"substr({c}, 1, ?) = ? OR {c} = ?" for c in FRAME_FIELDS)
    args = [len(prefix), prefix, str(src)] * len(FRAME_FIELDS)
    for fid, frame_id, *stored in conn.execute(f"SELECT fid, id, {', '.join(FRAME_FIELDS)} FROM frames WHERE {starts}",
                                               args):  # fmt: skip
        moved = {}
        for name, value in zip(FRAME_FIELDS, stored):
            target = repointed(value, src, dest)
            if target is not None:
                moved[name] = _checked(target, root, f"frame {frame_id!r}", name)
        if moved:
            frames.append((fid, frame_id, moved))
    media = []
    rows = conn.execute(
        "SELECT id, owner, owner_id, path FROM media WHERE substr(path, 1, ?) = ? OR path = ? ORDER BY id",
        (len(prefix), prefix, str(src)),
    )
    for mid, owner, owner_id, path in rows:
        target = repointed(path, src, dest)
        if target is not None:
            media.append((mid, _checked(target, root, f"media of {owner} {owner_id!r}", "path")))
    return RelinkPlan(frames, media)


def _checked(target: Path, root: Path, where: str, field: str) -> str:
    if not target.is_file():
        raise MediaNotFoundError(f"{where}: {field}: {target} is missing; nothing was changed")
    return to_stored(target, root)


def relink(store: Store, old: str, new: str, *, dry_run: bool = False) -> RelinkPlan:
    """Check and write a :func:`relink_plan` in one transaction (nothing written with ``dry_run``). It needs no
    pixels, so it works on a memory whose map cannot be rebuilt until its files are found again."""
    with store.transaction():  # the write lock: no frame arrives between the checks and the writes
        plan = relink_plan(store.conn, store.root, old, new)
        if not dry_run:
            apply_relink(store.conn, plan)
    return plan


def apply_relink(conn: sqlite3.Connection, plan: RelinkPlan) -> None:
    """Write a :func:`relink_plan` (inside the caller's transaction)."""
    for fid, _, moved in plan.frames:
        sets = ", ".join(f"{name}=?" for name in moved)
        conn.execute(f"UPDATE frames SET {sets} WHERE fid=?", [*moved.values(), fid])
    conn.executemany("UPDATE media SET path=? WHERE id=?", [(path, mid) for mid, path in plan.media])


# -- migration to schema version 7 ------------------------------------------------------------------
def migrate_paths(conn: sqlite3.Connection, root: Path, cwd: Path | None = None) -> None:
    """Rewrite the paths of a memory written before version 7 (inside the caller's transaction).

    Such a memory stored paths as they were given, often relative to a working directory that is unknown now. A
    relative path is taken from the working directory of this open (``cwd``) if the file is there, else from the
    memory folder's parent; a missing path that names a file of the memory's own ``frames/`` folder (agentmem's
    names there are unique) is that file; any other missing path is stored absolute, from ``cwd``, so the
    missing-file error names it and ``world relink`` can re-point it.
    """
    cwd = cwd or Path.cwd()
    cols = ", ".join(FRAME_FIELDS)
    for fid, *stored in conn.execute(f"SELECT fid, {cols} FROM frames").fetchall():
        now = [_migrated(p, root, cwd) for p in stored]
        if now != stored:
            conn.execute(f"UPDATE frames SET {', '.join(f'{c}=?' for c in FRAME_FIELDS)} WHERE fid=?", [*now, fid])
    for mid, path in conn.execute("SELECT id, path FROM media WHERE path IS NOT NULL").fetchall():
        now_path = _migrated(path, root, cwd)
        if now_path != path:
            conn.execute("UPDATE media SET path=? WHERE id=?", (now_path, mid))


def _migrated(path: str | None, root: Path, cwd: Path) -> str | None:
    if path is None:
        return None
    given = Path(path)
    tries: Sequence[Path] = [given] if given.is_absolute() else [cwd / given, root.parent / given]
    for candidate in tries:
        if candidate.is_file():
            return to_stored(candidate, root)
    own = root / "frames" / given.name
    if given.parent.name == "frames" and own.is_file():
        return to_stored(own, root)
    return to_stored(tries[0], root)
