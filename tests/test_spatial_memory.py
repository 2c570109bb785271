"""``SpatialMemory`` in a memory directory: entity tracks, compression and restore, and durability under SIGKILL."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from agentmem.errors import BadInputError
from agentmem.spatial.camera import Intrinsics, look_at, unproject
from agentmem.spatial.frames import Frame, FrameSet
from agentmem.spatial.scenes import ray_cast, town
from agentmem.spatial.world import SpatialMemory
from agentmem.storage.store import Store

K = Intrinsics.from_fov(70.0, 48, 36)
SCENE = town(0, blocks=3)


def _poses(n: int, laps: int = 1) -> list[np.ndarray]:
    per = n // laps
    return [look_at([-14.0 + 28.0 * (i % per) / (per - 1), 1.6, 9.0], [0.0, 2.0, 0.0]) for i in range(n)]


def _frames(n: int, laps: int = 1, *, entity: str | None = None) -> list[Frame]:
    out = []
    for i, c2w in enumerate(_poses(n, laps)):
        v = ray_cast(SCENE, K, c2w)
        f = Frame(f"f{i}", float(i), c2w, K, v.rgb, v.depth)
        if entity is not None:
            f.instances = np.zeros(v.depth.shape, np.int32)
            f.instances[14:22, 20:28] = 5
            f.instance_ids = {5: entity}
        out.append(f)
    return out


def _with_entity(path: Path, entity: str = "bob") -> None:
    store = Store(path)
    with store.transaction():
        store.insert_entity(entity, "person", entity.title(), 0.0)
    store.close()


def test_an_entity_track_is_the_median_of_its_pixels_and_position_at_is_the_last_sample(tmp_path):
    _with_entity(tmp_path)
    frames = _frames(6, entity="bob")
    with SpatialMemory(tmp_path) as sm:
        sm.add(frames)
        track = sm.track("bob", 1.0, 3.0)
        assert [s.t for s in track] == [1.0, 2.0, 3.0] and [s.frame for s in track] == ["f1", "f2", "f3"]
        f = frames[2]
        assert f.depth is not None and f.instances is not None
        expect = np.median(unproject(f.depth.astype(np.float64), K, f.c2w)[f.instances == 5], axis=0)
        assert np.allclose(track[1].position, expect) and track[1].pixels == 64
        at = sm.position_at("bob", 4.5)
        assert at is not None and at.frame == "f4"
        assert sm.position_at("bob", -1.0) is None
        with pytest.raises(BadInputError, match="track: entity: unknown entity 'carol'"):
            sm.track("carol")


def test_entity_pixels_stay_out_of_the_static_map(tmp_path):
    _with_entity(tmp_path)
    with_entity, plain = FrameSet(), FrameSet()
    for f in _frames(4, entity="bob"):
        with_entity.add(f)
        plain.add(Frame(f.id, f.t, f.c2w, f.k, f.rgb, f.depth))
    assert with_entity.map.hits.sum() < plain.map.hits.sum()
    # A reopened memory maps its frames again from the files: the entity's pixels must stay out then too.
    with SpatialMemory(tmp_path) as sm:
        sm.add(_frames(4, entity="bob"))
    conn = sqlite3.connect(tmp_path / "memory.db")
    with conn:
        conn.execute("DELETE FROM map_arrays")
    conn.close()
    with SpatialMemory(tmp_path) as sm:
        rebuilt, expected = sm.frames.map.in_key_order(), with_entity.map.in_key_order()
        assert np.array_equal(rebuilt["keys"], expected["keys"])
        assert np.array_equal(rebuilt["hits"], expected["hits"])


def test_a_frame_naming_an_unknown_entity_stores_nothing(tmp_path):
    _with_entity(tmp_path)
    frames = _frames(3, entity="bob")
    frames[2].instance_ids = {5: "nobody"}
    with SpatialMemory(tmp_path) as sm:
        with pytest.raises(BadInputError, match="frame 'f2': instance_ids: unknown entity 'nobody'"):
            sm.add(frames)
        assert len(sm.frames) == 0
    assert sqlite3.connect(tmp_path / "memory.db").execute("SELECT COUNT(*) FROM frames").fetchone() == (0,)


def _rows(path: Path) -> list[tuple]:
    conn = sqlite3.connect(path / "memory.db")
    try:
        return conn.execute("SELECT * FROM frames ORDER BY fid").fetchall()
    finally:
        conn.close()


def test_compression_archives_repeated_laps_and_restore_gives_back_every_row(tmp_path):
    frames = _frames(40, laps=4)  # the same 10 poses, walked four times
    with SpatialMemory(tmp_path) as sm:
        sm.add(frames)
        before = _rows(tmp_path)
        dry = sm.compress(dry_run=True)
        assert _rows(tmp_path) == before and not sm.archived.any()
        plan = sm.compress()
        assert np.array_equal(plan.archive, dry.archive)
        # Each pose's four copies see the same voxels equally well: two copies of each stay.
        assert plan.active_after == 20 and len(plan.archive) == 20
        kept = {f.split("f")[1] for f in np.array(sm.frames.ids)[~sm.archived]}
        assert len({int(i) % 10 for i in kept}) == 10  # every pose keeps a copy
        view = _poses(10)[3]
        assert all(not sm.archived[sm.frames.ids.index(r.id)] for r in sm.retrieve(view, K, 100.0, budget=8))
        with_archive = sm.retrieve(view, K, 100.0, budget=40, policy="recent", include_archive=True)
        assert len(with_archive) == 40
    with SpatialMemory(tmp_path) as sm:  # the archive flags are stored
        assert int(sm.archived.sum()) == 20
        assert sm.restore() == 20
    assert _rows(tmp_path) == before


CHILD = """
import sys
import numpy as np
import agentmem.spatial.world as world
from agentmem.spatial.camera import Intrinsics, look_at
from agentmem.spatial.frames import Frame
from agentmem.spatial.scenes import ray_cast, town

world.CHECKPOINT_EVERY = 5  # checkpoints are frequent, so a kill can land in one
k, scene = Intrinsics.from_fov(70.0, 48, 36), town(0, blocks=3)
views = []
for i in range(12):
    c2w = look_at([-14.0 + 28.0 * i / 11, 1.6, 9.0], [0.0, 2.0, 0.0])
    views.append((c2w, ray_cast(scene, k, c2w)))
with world.SpatialMemory(sys.argv[1]) as sm:
    n = 0
    while True:
        batch = [Frame(f"f{n + j}", float(n + j), views[(n + j) % 12][0], k, views[(n + j) % 12][1].rgb,
                       views[(n + j) % 12][1].depth) for j in range(3)]
        sm.add(batch)
        n += 3
        print(n, flush=True)
"""


@pytest.mark.parametrize("after_acks", [2, 9])
def test_a_sigkill_during_ingest_loses_no_acknowledged_frame_and_the_map_is_repaired_on_open(tmp_path, after_acks):
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD))
    db = tmp_path / "mem"
    child = subprocess.Popen([sys.executable, str(script), str(db)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    acked = 0
    for line in child.stdout:
        acked = int(line)
        if acked >= 3 * after_acks:
            break
    time.sleep(0.05 * after_acks)  # land somewhere in the next batch or checkpoint
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    with SpatialMemory(db) as sm:
        stored = list(sm.frames.ids)
        assert stored[:acked] == [f"f{i}" for i in range(acked)]
        assert len(stored) % 3 == 0  # batches are whole or absent
        fresh = FrameSet()
        for i, fid in enumerate(stored):
            rgb, depth = sm.pixels(i)
            fresh.add(Frame(fid, float(sm.frames.times[i]), sm.frames.c2w[i], K, rgb, depth))
        got, expected = sm.frames.map.in_key_order(), fresh.map.in_key_order()
        for name in ("keys", "hits", "obs_frame", "obs_score", "color"):
            assert np.array_equal(got[name], expected[name]), name


def test_frames_are_found_by_entity_and_time_range(tmp_path):
    _with_entity(tmp_path)
    frames = _frames(6)
    for f in frames[2:4]:
        f.instances = np.zeros((K.h, K.w), np.int32)
        f.instances[28:30, 20:22] = 1  # the street ahead: depth there
        f.instance_ids = {1: "bob"}
    with SpatialMemory(tmp_path) as sm:
        sm.add(frames)
        assert [f[0] for f in sm.find(t0=1.0, t1=4.0)] == ["f1", "f2", "f3", "f4"]
        assert [f[0] for f in sm.find(entity="bob")] == ["f2", "f3"]
        assert [f[0] for f in sm.find(entity="bob", t0=3.0)] == ["f3"]
