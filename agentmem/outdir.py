"""Output folders that agentmem owns: never delete or overwrite what agentmem did not create.

A command that writes a folder of results claims it first with a manifest,
``.agentmem-output.json``, and lists in it every file it wrote once it is done.
The rules:

- a folder that is missing or empty is claimed and written;
- a folder holding anything else is refused, unless ``force`` is given *and* it
  holds the manifest of an earlier run:

  - a finished run: exactly the files its manifest lists are removed (and the
    folders they leave empty), and anything a person added is kept;
  - an unfinished run of the same command: of the names that run said it writes,
    everything that was not in the folder when it claimed it is removed (the
    manifest records both at claim time), and anything else is kept;

- a name the new run writes that still holds something agentmem did not write is
  refused, before anything is written;
- :func:`fresh_folder` picks a new folder of its own (``NAME``, ``NAME-2``, ...)
  for commands such as ``agentmem demo`` that should never touch an old one;
- :func:`claim_files` and :func:`record_files` serve folders that gather the
  fixed-name results of several commands (``agentmem bench --out``): a name is
  written only if it is new or agentmem wrote it there before.

Every name derived from input goes through :func:`safe_name` (one path
component, never ``..``, hidden or over-long) and :func:`unique_names` (two
inputs never share one output), and every path written is checked with
:func:`inside` (it must resolve, symlinks followed, inside the claimed folder).

Examples
--------
>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> out = claim(root / "run", command="generate", writes=["a.txt"])
>>> _ = (out / "a.txt").write_text("mine")
>>> finish(out)
>>> _ = (out / "notes.txt").write_text("a person's file")
>>> out = claim(root / "run", command="generate", force=True, writes=["a.txt"])
>>> sorted(p.name for p in out.iterdir())
['.agentmem-output.json', 'notes.txt']
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from agentmem.errors import BadInputError

MANIFEST = ".agentmem-output.json"
MAX_NAME_BYTES = 100  # well under the 255 bytes file systems allow, leaving room for suffixes such as "-2.mp4"


def safe_name(name: str) -> str:
    """``name`` as one safe file or folder name: separators and control characters become ``_``, a leading dot
    (``..``, hidden files, the manifest's own name) gets a ``_`` before it, empty becomes ``_``, and the name is cut
    to :data:`MAX_NAME_BYTES` bytes of UTF-8. A name that is safe already comes back unchanged.

    Examples
    --------
    >>> [safe_name(n) for n in ["shot", "..", "../x", "/abs", "", "a\\x00b", "a\\\\b", ".agentmem-output.json"]]
    ['shot', '_..', '_.._x', '_abs', '_', 'a_b', 'a_b', '_.agentmem-output.json']
    >>> len(safe_name("é" * 200).encode())
    100
    """
    cleaned = "".join("_" if c in "/\\" or ord(c) < 32 or ord(c) == 127 else c for c in name)
    if cleaned.startswith(".") or not cleaned:
        cleaned = "_" + cleaned
    return cleaned.encode()[:MAX_NAME_BYTES].decode("utf-8", "ignore")


def unique_names(names: Iterable[str]) -> list[str]:
    """``names`` in order, each made distinct from the ones before it by ``-2``, ``-3``, ...; case is ignored in
    the comparison, since macOS and Windows file systems ignore it too.

    Examples
    --------
    >>> unique_names(["shot", "shot", "Shot", "shot-2"])
    ['shot', 'shot-2', 'Shot-3', 'shot-2-2']
    """
    taken: set[str] = set()
    out = []
    for name in names:
        candidate, n = name, 1
        while candidate.casefold() in taken:
            n += 1
            candidate = f"{name}-{n}"
        taken.add(candidate.casefold())
        out.append(candidate)
    return out


def distinct(pairs: Iterable[tuple[str, str]], option: str) -> None:
    """Refuse two inputs that would be written under one name (case ignored, as :func:`unique_names` does), naming
    both: for commands where a renamed output would be confusing. ``pairs`` are (input, output name).

    Examples
    --------
    >>> distinct([("a/x.yaml", "x"), ("b/X.yaml", "X")], "--walk")
    Traceback (most recent call last):
    agentmem.errors.BadInputError: --walk: a/x.yaml and b/X.yaml would both be written as 'X'; rename one
    """
    seen: dict[str, str] = {}
    for source, name in pairs:
        first = seen.setdefault(name.casefold(), source)
        if first != source:
            raise BadInputError(f"{option}: {first} and {source} would both be written as {name!r}; rename one")


def inside(out: str | os.PathLike, rel: str | os.PathLike) -> Path:
    """``out / rel``, refused unless it stays inside ``out`` with every symlink resolved (a last check before a
    write: names should already have gone through :func:`safe_name`).

    Examples
    --------
    >>> inside("run", "shots/s01.mp4").as_posix()
    'run/shots/s01.mp4'
    >>> inside("run", "../x")
    Traceback (most recent call last):
    agentmem.errors.BadInputError: ../x: would be written outside run; refused
    """
    root = Path(out).resolve()
    target = (root / rel).resolve()
    if target == root or root not in target.parents:
        raise BadInputError(f"{rel}: would be written outside {out}; refused")
    return Path(out) / rel


def claim(folder: str | os.PathLike, *, command: str, force: bool = False, option: str = "--out",
          writes: Sequence[str] = ()) -> Path:  # fmt: skip
    """Make ``folder`` this command's output folder, or refuse with a one-line error (see the module).

    ``command`` is the command as a person types it without ``agentmem`` (``"world run"``); ``writes`` are the
    top-level names the run may write, recorded so that a run that fails can be replaced. Each must hold nothing
    agentmem did not write, except a name ending in ``/``: a folder the run adds files to, keeping a person's.
    """
    out, command = Path(folder), _bare(command)
    if out.exists() and not out.is_dir():
        raise BadInputError(f"{option}: {out} is a file, not a folder")
    if out.exists() and any(out.iterdir()):
        manifest = _read_manifest(out)
        if manifest is None:
            raise BadInputError(
                f"{option}: {out} is not empty and was not written by agentmem; choose a new or empty folder"
            )
        earlier = _bare(str(manifest.get("command")))
        if not force:
            state = "an earlier" if manifest.get("finished") else "an unfinished"
            raise BadInputError(
                f"{option}: {out} holds {state} `agentmem {earlier}` run; "
                "pass --force to replace its files (yours are kept), or choose another folder"
            )
        if manifest.get("finished"):
            _remove_listed(out, _str_list(manifest.get("files")), _str_list(manifest.get("dirs")))
        else:
            _remove_unfinished(out, manifest, command, option)
    out.mkdir(parents=True, exist_ok=True)
    before = _listing(out)
    for name in writes:
        shared = name.endswith("/") and (out / name).is_dir() and not (out / name.rstrip("/")).is_symlink()
        if name.rstrip("/") in before and not shared:
            raise BadInputError(f"{option}: {out / name.rstrip('/')} holds files agentmem did not write; move them "
                                "away, or choose another folder")  # fmt: skip
    _write_manifest(out, {"command": command, "finished": False, "files": [], "writes": sorted(set(writes)),
                          "preexisting": sorted(before)})  # fmt: skip
    return out


def finish(out: Path, **record: object) -> None:
    """Record every file and folder now under ``out`` that was not there at claim time as written by this run;
    ``record`` adds fields to the manifest (``agentmem world render`` keeps which view went to which folder)."""
    manifest = _read_manifest(out) or {}
    before = set(_str_list(manifest.get("preexisting")))
    files = sorted(p for p, is_dir in _entries(out) if not is_dir and p not in before)
    dirs = sorted(p for p, is_dir in _entries(out) if is_dir and p not in before)
    _write_manifest(out, {**manifest, **record, "finished": True, "files": files, "dirs": dirs})


def claim_files(folder: str | os.PathLike, names: Sequence[str], *, option: str = "--out") -> Path:
    """Check, before any work, that ``names`` may be written into ``folder``, a folder that gathers results
    (``agentmem bench --out``): each name must be new, or a file agentmem wrote there before. Creates the folder.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (root / "mine.json").write_text("{}")
    >>> claim_files(root, ["mine.json"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    agentmem.errors.BadInputError: --out: ... was not written by agentmem; choose another folder
    """
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise BadInputError(f"{option}: {out} is a file, not a folder")
    manifest = _read_manifest(out) if out.exists() else None
    if manifest is not None and not manifest.get("finished"):
        raise BadInputError(f"{option}: {out} holds an unfinished `agentmem {_bare(str(manifest.get('command')))}` "
                            "run; choose another folder")  # fmt: skip
    ours = set(_str_list((manifest or {}).get("files")))
    for name in names:
        target = inside(out, name)
        if os.path.lexists(target) and (name not in ours or target.is_symlink() or not target.is_file()):
            raise BadInputError(f"{option}: {target} was not written by agentmem; choose another folder")
    out.mkdir(parents=True, exist_ok=True)
    return out


def record_files(out: Path, names: Sequence[str], *, command: str) -> None:
    """List ``names`` in the manifest of ``out`` as written by agentmem (after :func:`claim_files`)."""
    manifest = _read_manifest(out) or {"command": _bare(command), "finished": True}
    files = sorted({*_str_list(manifest.get("files")), *names})
    _write_manifest(out, {**manifest, "files": files})


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


def _bare(command: str) -> str:
    """The command without a leading ``agentmem`` (manifests of older versions recorded it)."""
    return command.removeprefix("agentmem ").strip()


def _str_list(value: object) -> list[str]:
    """A manifest is data on disk: anything but a list of strings counts as empty."""
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _entries(out: Path) -> list[tuple[str, bool]]:
    """Every entry under ``out`` (relative POSIX path, is a real folder), symlinks listed but never followed."""
    found = []
    for top, dirs, files in os.walk(out):  # os.walk lists a symlink to a folder in dirs and does not enter it
        base = Path(top).relative_to(out)
        for name in dirs:
            found.append(((base / name).as_posix(), not (Path(top) / name).is_symlink()))
        found.extend(((base / name).as_posix(), False) for name in files)
    return [(p, is_dir) for p, is_dir in found if p not in (MANIFEST, MANIFEST + ".tmp")]


def _listing(out: Path) -> set[str]:
    return {p for p, _ in _entries(out)}


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


def _remove_unfinished(out: Path, manifest: dict, command: str, option: str) -> None:
    """Remove what an unfinished run of ``command`` wrote: under the names it declared, whatever was not there
    when it claimed the folder. A manifest without that record (an older version's) is refused."""
    earlier = _bare(str(manifest.get("command")))
    if earlier != command:
        raise BadInputError(f"{option}: {out} holds an unfinished `agentmem {earlier}` run; only `agentmem "
                            f"{earlier} --force` may replace it, or choose another folder")  # fmt: skip
    writes = _str_list(manifest.get("writes"))
    if "preexisting" not in manifest or not writes:
        raise BadInputError(
            f"{option}: the earlier run in {out} did not finish, so which files it wrote is "
            "unknown; remove what you do not need yourself, or choose another folder"
        )
    before = set(_str_list(manifest.get("preexisting")))
    names = {w.rstrip("/") for w in writes}
    written = [(p, is_dir) for p, is_dir in _entries(out) if p.split("/")[0] in names and p not in before]
    files = [p for p, is_dir in written if not is_dir]
    _remove_listed(out, files, [p for p, is_dir in written if is_dir])


def _remove_listed(out: Path, files: list[str], listed_dirs: list[str]) -> None:
    root = out.resolve()
    dirs = {(out / d).resolve() for d in listed_dirs if not (out / d).is_symlink()}
    for rel in files:
        p = out / rel
        parent = p.parent.resolve()
        if p.is_symlink() and (parent == root or root in parent.parents):
            p.unlink()  # the link itself, never what it points to
            continue
        p = p.resolve()
        # A manifest is data on disk: never follow it outside the folder it describes.
        if root not in p.parents or not p.is_file():
            continue
        p.unlink()
        dirs.update(d for d in p.parents if root in d.parents)
    for d in sorted(dirs, key=lambda d: len(d.parts), reverse=True):
        if root in d.parents and d.is_dir() and not any(d.iterdir()):
            d.rmdir()
