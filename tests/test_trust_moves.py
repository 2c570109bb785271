"""A memory folder works from any working directory and after it is moved or copied whole; a moved dataset is named in
one line and `agentmem world relink` re-points it; a memory written before version 7 migrates on open."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agentmem.errors import MediaNotFoundError
from agentmem.formats.transforms import write_transforms
from agentmem.memory import Memory
from agentmem.model import Event, MediaRef
from agentmem.spatial.camera import Intrinsics, look_at
from agentmem.spatial.frames import Frame
from agentmem.spatial.scenes import ray_cast, town
from agentmem.spatial.world import SpatialMemory
from agentmem.storage.paths import migrate_paths
from agentmem.storage.schema import SCHEMA_VERSION
from agentmem.storage.store import Store
from agentmem.story.frames import frame_media

K = Intrinsics.from_fov(70.0, 48, 36)
POSES = [look_at([-14.0 + 28.0 * i / 5, 1.6, 9.0], [0.0, 2.0, 0.0]) for i in range(6)]
PATHS = ("rgb_path", "depth_path", "mask_path")


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    """A 6-frame dataset with depth; frames 2 and 3 carry an instance map of entity 'bob' (so agentmem writes
    masks of its own for them)."""
    folder = tmp_path_factory.mktemp("data") / "scene"
    world = town(0, blocks=3)
    frames = []
    for i, c2w in enumerate(POSES):
        v = ray_cast(world, K, c2w)
        f = Frame(f"f{i}", float(i), c2w, K, v.rgb, v.depth)
        if i in (2, 3):
            f.instances = np.zeros((K.h, K.w), np.int32)
            f.instances[28:30, 20:22] = 1
            f.instance_ids = {1: "bob"}
        frames.append(f)
    write_transforms(folder, frames)
    views = {"fl_x": K.fx, "fl_y": K.fy, "cx": K.cx, "cy": K.cy, "w": K.w, "h": K.h,
             "frames": [{"file_path": "v/three.png", "transform_matrix": POSES[3].tolist(), "time": 10.0}]}  # fmt: skip
    (folder.parent / "views.json").write_text(json.dumps(views))
    return folder


def agentmem(*args: str | Path, cwd: Path | str) -> subprocess.CompletedProcess:
    """``agentmem ARGS`` as a user types it, from ``cwd``."""
    cmd = [sys.executable, "-m", "agentmem.cli", *map(str, args)]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)


def one_line(res: subprocess.CompletedProcess) -> str:
    """The error of a refused command: exit 1 and one line, no traceback."""
    assert res.returncode == 1, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    return lines[0]


def stored_paths(db: Path) -> list[tuple]:
    conn = sqlite3.connect(db / "memory.db")
    try:
        return conn.execute("SELECT id, rgb_path, depth_path, mask_path FROM frames ORDER BY fid").fetchall()
    finally:
        conn.close()


def ingest(scene: Path, work: Path, *copy: str) -> Path:
    """``world ingest`` run in ``work`` with a relative ``--db mem`` (and entity bob declared first)."""
    work.mkdir(parents=True, exist_ok=True)
    store = Store(work / "mem")
    with store.transaction():
        store.insert_entity("bob", "person", "Bob", 0.0)
    store.close()
    res = agentmem("world", "ingest", scene / "transforms.json", "--db", "mem", *copy, cwd=work)
    assert res.returncode == 0, res.stderr
    return work / "mem"


def render(db: Path, views: Path, out: Path, cwd: Path | str) -> bytes:
    res = agentmem("world", "render", "--db", db, "--views", views, "--out", out, cwd=cwd)
    assert res.returncode == 0, res.stderr
    return (out / "three" / "rgb.png").read_bytes()


@pytest.mark.parametrize("copy", [(), ("--copy",)], ids=["referenced", "copied"])
def test_a_memory_works_from_any_directory_and_after_it_is_moved_or_copied_whole(scene, tmp_path, copy):
    views = scene.parent / "views.json"
    db = ingest(scene, tmp_path / "work", *copy)
    rows = stored_paths(db)
    # Files of the memory folder (copies, agentmem's masks) are stored relative to it; the dataset's absolute.
    masks = [r[3] for r in rows if r[3] is not None]
    assert len(masks) == 2 and all(m.startswith("frames/") and m.endswith(".mask.png") for m in masks)
    for r in rows:
        for p in r[1:3]:
            assert p.startswith("frames/" if copy else f"{scene.resolve()}/")
    first = render(db, views, tmp_path / "r0", cwd="/")
    stats = agentmem("world", "stats", "--db", db, "--json", cwd="/")
    assert stats.returncode == 0 and json.loads(stats.stdout)["frames"] == 6
    got = agentmem("world", "retrieve", "--db", db, "--views", views, "--json", cwd=tmp_path)
    assert got.returncode == 0 and got.stdout.count('"id"') >= 1, got.stderr
    (tmp_path / "elsewhere").mkdir()
    moved = shutil.move(db, tmp_path / "elsewhere" / "moved")
    assert render(Path(moved), views, tmp_path / "r1", cwd="/") == first
    shutil.copytree(moved, tmp_path / "twin")  # a copy works on its own
    assert render(Path("twin"), views, tmp_path / "r2", cwd=tmp_path) == first


def test_a_memory_killed_before_its_map_checkpoint_reopens_from_another_directory(scene, tmp_path):
    db = ingest(scene, tmp_path / "work", "--copy")
    before = json.loads(agentmem("world", "stats", "--db", "mem", "--json", cwd=tmp_path / "work").stdout)
    conn = sqlite3.connect(db / "memory.db")
    with conn:  # what a kill between the frames' commit and the map checkpoint leaves
        conn.execute("DELETE FROM map_arrays")
        conn.execute("DELETE FROM meta WHERE key='map.upto'")
    conn.close()
    moved = Path(shutil.move(db, tmp_path / "moved"))
    res = agentmem("world", "stats", "--db", moved, "--json", cwd="/")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == before  # the map is rebuilt from the memory's own files, wherever it is now


def test_a_moved_dataset_is_named_in_one_line_and_relink_repoints_it_in_full_or_not_at_all(scene, tmp_path):
    data = tmp_path / "data" / "scene"
    shutil.copytree(scene, data)
    db = ingest(data, tmp_path / "work")
    views = scene.parent / "views.json"
    first = render(db, views, tmp_path / "r0", cwd=tmp_path)
    shutil.move(data, tmp_path / "new")
    new = tmp_path / "new"
    msg = one_line(agentmem("world", "render", "--db", db, "--views", views, "--out", tmp_path / "r1", cwd="/"))
    assert f"frame 'images/00003.png': rgb_path: {data.resolve()}/images/00003.png is missing" in msg
    assert msg.endswith("(moved? run agentmem world relink OLD NEW)")
    before = stored_paths(db)
    # Every new file is checked before anything is written: one missing file refuses the whole relink.
    (new / "images" / "00004.png").unlink()
    msg = one_line(agentmem("world", "relink", data, new, "--db", db, cwd="/"))
    assert msg == f"Error: MediaNotFoundError: frame 'images/00004.png': rgb_path: {new.resolve()}/images/00004.png " \
                  "is missing; nothing was changed"  # fmt: skip
    assert stored_paths(db) == before
    shutil.copy(scene / "images" / "00004.png", new / "images" / "00004.png")
    # A prefix matches whole path components: '.../sce' is not a prefix of '.../scene'.
    res = agentmem("world", "relink", str(data)[:-2], new, "--db", db, cwd="/")
    assert res.stdout.strip() == "re-pointed 0 paths (0 frames, 0 media items)" and stored_paths(db) == before
    res = agentmem("world", "relink", data, new, "--db", db, "--dry-run", cwd="/")
    assert res.stdout.strip() == "would re-point 12 paths (6 frames, 0 media items)" and stored_paths(db) == before
    res = agentmem("world", "relink", data, new, "--db", db, cwd="/")
    assert res.stdout.strip() == "re-pointed 12 paths (6 frames, 0 media items)", res.stderr
    after = stored_paths(db)
    assert [r[1] for r in after] == [f"{new.resolve()}/images/{i:05d}.png" for i in range(6)]
    assert [r[3] for r in after] == [r[3] for r in before]  # the memory's own masks stay relative to it
    assert render(db, views, tmp_path / "r2", cwd="/") == first


def test_relink_in_python_reads_the_new_place_in_the_same_process(scene, tmp_path):
    data = tmp_path / "data" / "scene"
    shutil.copytree(scene, data)
    db = ingest(data, tmp_path / "work")
    shutil.move(data, tmp_path / "new")
    with SpatialMemory(db) as sm:
        with pytest.raises(MediaNotFoundError, match=r"frame 'images/00000.png': rgb_path: .* is missing \(moved\?"):
            sm.pixels(0)
        assert sm.relink(str(data), str(tmp_path / "new"), dry_run=True).paths == 12
        with pytest.raises(MediaNotFoundError):
            sm.pixels(0)  # a dry run changes nothing
        assert sm.relink(str(data), str(tmp_path / "new")).paths == 12
        rgb, depth = sm.pixels(0)
        assert rgb.shape == (K.h, K.w, 3) and depth is not None


def _as_v6(db: Path, ingest_cwd: Path) -> None:
    """Rewrite a current memory's rows as version 6 wrote them: its own files relative to the working directory the
    ingest ran in."""
    conn = sqlite3.connect(db / "memory.db")
    with conn:
        for fid, *paths in conn.execute("SELECT fid, rgb_path, depth_path, mask_path FROM frames").fetchall():
            old = [p if p is None or p.startswith("/") else str((db / p).relative_to(ingest_cwd)) for p in paths]
            conn.execute("UPDATE frames SET rgb_path=?, depth_path=?, mask_path=? WHERE fid=?", (*old, fid))
        conn.execute("UPDATE meta SET value='6' WHERE key='schema_version'")
    conn.close()


def test_a_version_6_memory_migrates_on_open_and_then_works_from_anywhere(scene, tmp_path):
    work = tmp_path / "work"
    db = ingest(scene, work, "--copy")
    views = scene.parent / "views.json"
    first = render(db, views, tmp_path / "r0", cwd=work)
    current = stored_paths(db)
    _as_v6(db, work)
    assert stored_paths(db)[0][1].startswith("mem/frames/")
    # Opened from '/', the old relative paths are found from the memory folder's parent.
    assert render(db, views, tmp_path / "r1", cwd="/") == first
    assert stored_paths(db) == current
    assert Store(db).get_meta("schema_version") == str(SCHEMA_VERSION) == "7"


def test_the_migration_finds_old_paths_from_the_working_directory_the_parent_or_the_own_frames_folder(tmp_path):
    root = (tmp_path / "deep" / "mem").resolve()
    (root / "frames").mkdir(parents=True)
    (root / "frames" / "ab12.png").write_bytes(b"x")
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "a.png").write_bytes(b"x")
    (tmp_path / "deep" / "b.png").write_bytes(b"x")
    cases = {
        "pics/a.png": str(tmp_path.resolve() / "pics" / "a.png"),  # from the working directory of the open
        "b.png": str(tmp_path.resolve() / "deep" / "b.png"),  # from the memory folder's parent
        "x/y/mem/frames/ab12.png": "frames/ab12.png",  # a file of the memory's own frames folder
        "/gone/mem/frames/ab12.png": "frames/ab12.png",  # its own file, though the memory has moved since
        str(root / "frames" / "ab12.png"): "frames/ab12.png",  # inside the folder, stored absolute
        "lost.png": str(tmp_path.resolve() / "lost.png"),  # nowhere: absolute, so the error names it
        "/data/kept.png": "/data/kept.png",
    }
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE frames (fid INTEGER PRIMARY KEY, rgb_path, depth_path, mask_path)")
    conn.execute("CREATE TABLE media (id INTEGER PRIMARY KEY, path)")
    conn.executemany("INSERT INTO frames(rgb_path) VALUES (?)", [(p,) for p in cases])
    conn.executemany("INSERT INTO media(path) VALUES (?)", [(p,) for p in cases] + [(None,)])
    migrate_paths(conn, root, cwd=tmp_path)
    want = list(cases.values())
    assert [r[0] for r in conn.execute("SELECT rgb_path FROM frames ORDER BY fid")] == want
    assert [r[0] for r in conn.execute("SELECT path FROM media ORDER BY id")] == [*want, None]


def test_event_media_is_stored_absolute_or_relative_to_the_memory_and_found_after_a_move(tmp_path, monkeypatch):
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "a.png").write_bytes(_png())
    db = tmp_path / "mem"
    (db / "shots").mkdir(parents=True)
    (db / "shots" / "k.png").write_bytes(_png())
    monkeypatch.chdir(tmp_path)
    with Memory("mem", text_embedder=None) as mem:
        mem.add_events([
            Event(id="e1", t_start=0, t_end=1, text="a", media=[MediaRef(path="pics/a.png")]),
            Event(id="e2", t_start=1, t_end=2, text="b", media=[MediaRef(path="mem/shots/k.png")]),
        ])  # fmt: skip
    conn = sqlite3.connect(db / "memory.db")
    assert conn.execute("SELECT path FROM media ORDER BY id").fetchall() == [
        (str(tmp_path.resolve() / "pics" / "a.png"),),
        ("shots/k.png",),
    ]
    conn.close()
    shutil.move(db, tmp_path / "moved")
    monkeypatch.chdir("/")
    with Memory(tmp_path / "moved", text_embedder=None) as mem:
        assert mem.event("e1").media[0].path == str(tmp_path.resolve() / "pics" / "a.png")
        assert mem.event("e2").media[0].path == str(tmp_path.resolve() / "moved" / "shots" / "k.png")
        assert frame_media(mem, ["e2"])["e2"][0] == mem.event("e2").media[0].path


def _png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(buf, format="PNG")
    return buf.getvalue()
