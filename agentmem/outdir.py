"""Output folders that agentmem owns: never delete or overwrite what agentmem did not create.

A command that writes a folder of results claims it first with a manifest,
``.agentmem-output.json``, and lists in it every file it wrote once it is done.
The rules:

- a folder that is missing or empty is claimed and written;
- a folder holding anything else is refused, unless ``force`` is given *and* it
  holds a finished manifest of an earlier run; then exactly the files that
  manifest lists are removed (and the folders they leave empty) before the new
  run, and anything a person added is kept;
- :func:`fresh_folder` picks a new folder of its own (``NAME``, ``NAME-2``, ...)
  for commands such as ``agentmem demo`` that should never touch an old one.

Examples
--------
>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> out = claim(root / "run", command="generate")
>>> _ = (out / "a.txt").write_text("mine")
>>> finish(out)
>>> _ = (out / "notes.txt").write_text("a person's file")
>>> out = claim(root / "run", command="generate", force=True)
>>> sorted(p.name for p in out.iterdir())
['.agentmem-output.json', 'notes.txt']
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from agentmem.errors import BadInputError

MANIFEST = ".agentmem-output.json"


def claim(folder: str | os.PathLike, *, command: str, force: bool = False, option: str = "--out") -> Path:
    """Make ``folder`` this command's output folder, or refuse with a one-line error (see the module)."""
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise BadInputError(f"{option}: {out} is a file, not a folder")
    entries = sorted(p.name for p in out.iterdir()) if out.exists() else []
    if entries:
        manifest = _read_manifest(out)
        if manifest is None:
            raise BadInputError(
                f"{option}: {out} is not empty and was not written by agentmem; choose a new or empty folder"
            )
        if not force:
            raise BadInputError(
                f"{option}: {out} holds an earlier `agentmem {manifest.get('command')}` run; "
                "pass --force to replace its files (yours are kept), or choose another folder"
            )
        if not manifest.get("finished"):
            raise BadInputError(
                f"{option}: the earlier run in {out} did not finish, so which files it wrote is "
                "unknown; remove what you do not need yourself, or choose another folder"
            )
        _remove_listed(out, manifest.get("files", []), manifest.get("dirs", []))
    out.mkdir(parents=True, exist_ok=True)
    _write_manifest(out, {"command": command, "finished": False, "files": []})
    return out


def finish(out: Path) -> None:
    """Record every file and folder now under ``out`` as written by this run."""
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.name != MANIFEST)
    dirs = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_dir())
    manifest = _read_manifest(out) or {}
    _write_manifest(out, {**manifest, "finished": True, "files": files, "dirs": dirs})


def fresh_folder(base: str | os.PathLike) -> Path:
    """``base`` if it does not exist yet, else the first free ``base-2``, ``base-3``, ...

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "demo").mkdir()
    >>> fresh_folder(root / "demo").name
    'demo-2'
    """
    base = Path(base)
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def _read_manifest(out: Path) -> dict | None:
    try:
        data = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_manifest(out: Path, data: dict) -> None:
    tmp = out / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, out / MANIFEST)


def _remove_listed(out: Path, files: list[str], listed_dirs: list[str]) -> None:
    root = out.resolve()
    dirs = {(out / d).resolve() for d in listed_dirs}
    for rel in files:
        p = (out / rel).resolve()
        # A manifest is data on disk: never follow it outside the folder it describes.
        if root not in p.parents or not p.is_file():
            continue
        p.unlink()
        dirs.update(d for d in p.parents if root in d.parents)
    for d in sorted(dirs, key=lambda d: len(d.parts), reverse=True):
        if root in d.parents and d.is_dir() and not any(d.iterdir()):
            d.rmdir()
