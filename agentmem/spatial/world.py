"""``SpatialMemory``: posed frames stored in a memory directory, their voxel map, context frames and renders.

Frames share the memory's SQLite file (``memory.db``, table ``frames``) and
keep their pixels by path; frames that arrive as arrays (from a generator) are
written under ``DIR/frames/`` first. A batch of frames is validated in full,
then stored in one transaction; the map is updated after the commit and
checkpointed (see :mod:`agentmem.storage.frames`), and a reopened memory maps
again whatever the checkpoint lacks.
"""

from __future__ import annotations

import json
import math
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agentmem.errors import BadInputError
from agentmem.spatial.camera import Intrinsics
from agentmem.spatial.compress import CompressionPlan, plan_compression
from agentmem.spatial.frames import REACH_GRID, Frame, FrameSet, entity_samples, moving, reach_of
from agentmem.spatial.policies import POLICIES, Choice, Target, choose, nearby
from agentmem.spatial.render import Rendered, Source, forward_warp
from agentmem.spatial.voxmap import ARRAYS, MapConfig
from agentmem.storage import frames as tables
from agentmem.storage.store import Store

CHECKPOINT_EVERY = 2000


@dataclass(frozen=True)
class TrackSample:
    """An entity seen in a frame: story time, world position (metres), pixels it covered, and the frame's id."""

    t: float
    position: tuple[float, float, float]
    pixels: int
    frame: str


@dataclass(frozen=True)
class Retrieved:
    """A chosen frame as the CLI prints it."""

    id: str
    file_path: str
    time: float
    score: float
    reason: str


class SpatialMemory:
    """The frames and static map of one memory directory."""

    def __init__(self, directory: str | Path, *, config: MapConfig | None = None, store: Store | None = None):
        self.dir = Path(directory)
        self.store = store or Store(self.dir)
        self._own_store = store is None
        self.frames = FrameSet(config)
        self._rgb: list[str] = []
        self._depth: list[tuple[str | None, float]] = []
        self._mask: list[str | None] = []
        self._fids: list[int] = []
        self._numbers: dict[str, int] = {}
        self._places: dict[str, list[int]] = {}  # source["location"] -> frame numbers (story keyframes)
        self.archived = np.zeros(0, bool)
        self._unsaved = 0
        self._last_fid = 0
        self._load()

    def close(self) -> None:
        if self._unsaved:
            self.checkpoint()
        if self._own_store:
            self.store.close()

    def __enter__(self) -> SpatialMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- loading ----------------------------------------------------------------------------
    def _load(self) -> None:
        arrays, upto = tables.load_map(self.store.conn)
        if arrays and all(n in arrays for n in ARRAYS):
            self.frames.map.restore(arrays)
        else:
            upto = 0
        self._catch_up(upto, {})

    def _catch_up(self, mapped_upto: int, mine: dict[str, Frame]) -> dict[int, int]:
        """Append every frame stored after the last one this process knows, in storage order (other processes'
        too), and map those the checkpoint lacks; ``mine`` gives frames whose pixels are in memory. Returns
        stored id (fid) -> frame number."""
        out: dict[int, int] = {}
        to_map: list[tuple[int, Frame]] = []
        flags: list[bool] = []
        for r in tables.frame_rows(self.store.conn, self._last_fid):
            frame = mine.get(r[1]) or _frame_of(r)
            self._remember(r[5], r[6], r[7], r[8])
            flags.append(bool(r[10]))
            i = self.frames.add(
                Frame(frame.id, frame.t, frame.c2w, frame.k, file_path=frame.file_path), has_depth=r[6] is not None
            )
            if r[11] is not None:
                self.frames.set_reach(i, np.frombuffer(r[11], "<f2").reshape(REACH_GRID).astype(np.float32))
            if r[0] > mapped_upto and r[6] is not None:
                to_map.append((i, frame if frame.depth is not None else self._pixels_of(i, frame)))
            self._last_fid = r[0]
            self._fids.append(r[0])
            self._numbers[r[1]] = i
            if '"location"' in r[9]:
                self._places.setdefault(str(json.loads(r[9])["location"]), []).append(i)
            out[r[0]] = i
            if len(to_map) == 256:  # a bounded batch: pixels of many frames are not all held at once
                self._map(to_map)
        self._map(to_map)
        self.archived = np.concatenate([self.archived, np.array(flags, bool)])
        return out

    def _map(self, batch: list[tuple[int, Frame]]) -> None:
        self.frames.map_frames(batch)
        self._unsaved += len(batch)
        batch.clear()

    def _remember(self, rgb_path: str, depth_path: str | None, scale: float, mask_path: str | None) -> None:
        self._rgb.append(rgb_path)
        self._depth.append((depth_path, scale))
        self._mask.append(mask_path)

    def _pixels_of(self, i: int, frame: Frame) -> Frame:
        from PIL import Image

        rgb, depth = self.pixels(i)
        dynamic, mask = None, self._mask[i]
        if mask is not None:
            with Image.open(mask) as im:
                dynamic = np.asarray(im.convert("L")) > 0
        return Frame(frame.id, frame.t, frame.c2w, frame.k, rgb, depth, dynamic)

    def number_of(self, frame_id: str) -> int:
        """The frame number (position in :attr:`frames`) of a stored frame id."""
        if frame_id not in self._numbers:
            raise BadInputError(f"frame {frame_id!r}: not stored in this memory")
        return self._numbers[frame_id]

    def pixels(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        """RGB and metric depth of frame number ``i``, read from its files."""
        from PIL import Image

        with Image.open(self._rgb[i]) as im:
            rgb = np.asarray(im.convert("RGB"))
        path, scale = self._depth[i]
        if path is None:
            return rgb, None
        if path.endswith(".npy"):
            return rgb, np.load(path, allow_pickle=False).astype(np.float32)
        with Image.open(path) as im:
            return rgb, np.asarray(im).astype(np.float32) * scale

    # -- writing ----------------------------------------------------------------------------
    def add(self, frames: Sequence[Frame], *, paths: Sequence[tuple[str, str | None, float, str | None]] | None = None,
            copy: bool = False) -> list[int]:  # fmt: skip
        """Store ``frames`` in one transaction and map them; returns their frame numbers.

        ``paths`` gives each frame's stored (rgb path, depth path, depth scale, mask path); with ``copy`` those
        files are first copied, byte for byte, under ``DIR/frames/`` and the copies are stored. Without ``paths``
        the frames' arrays are written there.
        """
        ids = [f.id for f in frames]
        if len(set(ids)) != len(ids):
            raise BadInputError("frames: an id appears twice in one batch")
        dup = tables.existing_frame_ids(self.store.conn, ids)
        if dup:
            raise BadInputError(f"frame {sorted(dup)[0]!r}: id: already stored in this memory")
        positions = [self._positions(f) for f in frames]
        reach = [None if f.depth is None else reach_of(f.depth).astype("<f2").tobytes() for f in frames]
        if paths is None:
            paths = [self._write_pixels(f) for f in frames]
        else:  # entity pixels stay out of the map when it is rebuilt from the files: keep them in a mask of ours
            paths = [p if f.instances is None else (*p[:3], self._write_mask(f)) for f, p in zip(frames, paths)]
            if copy:
                paths = [self._copy_in(p) for p in paths]
        rows = [
            (f.id, f.t, np.asarray(f.c2w, "<f8").tobytes(), json.dumps(_k_list(f.k)), p[0], p[1], p[2], p[3],
             json.dumps(f.source))
            for f, p in zip(frames, paths, strict=True)
        ]  # fmt: skip
        with self.store.transaction():
            fids = tables.insert_frames(self.store.conn, rows, reach, positions)
        numbers = self._catch_up(0, {f.id: f for f in frames})
        if self._unsaved >= CHECKPOINT_EVERY:
            self.checkpoint()
        return [numbers[f] for f in fids]

    def _positions(self, f: Frame) -> list[tables.Position]:
        """The entities ``f``'s instance map shows, with their 3D positions; every id must name a stored entity."""
        for entity in f.instance_ids.values():
            if not self.store.entity_exists(entity):
                raise BadInputError(f"frame {f.id!r}: instance_ids: unknown entity {entity!r}")
        return [
            (self.store.canonical(e), f.t, float(p[0]), float(p[1]), float(p[2]), n) for e, p, n in entity_samples(f)
        ]

    def _write_pixels(self, f: Frame) -> tuple[str, str | None, float, str | None]:
        from PIL import Image

        if f.rgb is None:
            raise BadInputError(f"frame {f.id!r}: rgb: a frame given as arrays needs its pixels")
        folder = self.dir / "frames"
        folder.mkdir(parents=True, exist_ok=True)
        stem = uuid.uuid4().hex  # unique across processes writing to one memory
        rgb = folder / f"{stem}.png"
        Image.fromarray(f.rgb).save(rgb, compress_level=1)  # fast to write; PNG stays lossless
        depth = None
        if f.depth is not None:
            depth = folder / f"{stem}.depth.npy"
            np.save(depth, f.depth.astype(np.float32), allow_pickle=False)
        return str(rgb), None if depth is None else str(depth), 1.0, self._write_mask(f, stem)

    def _copy_in(self, p: tuple[str, str | None, float, str | None]) -> tuple[str, str | None, float, str | None]:
        """Byte copies of a frame's files under ``DIR/frames`` (new names: nothing there is overwritten)."""
        folder = self.dir / "frames"
        folder.mkdir(parents=True, exist_ok=True)
        stem = uuid.uuid4().hex

        def one(path: str | None, tag: str) -> str | None:
            if path is None or Path(path).parent == folder:  # a file of ours already
                return path
            dest = folder / f"{stem}{tag}{Path(path).suffix}"
            shutil.copyfile(path, dest)
            return str(dest)

        return str(one(p[0], "")), one(p[1], ".depth"), p[2], one(p[3], ".mask")

    def _write_mask(self, f: Frame, stem: str | None = None) -> str | None:
        """The frame's moving pixels (dynamic mask and entity instances) as a PNG under ``DIR/frames``, if any."""
        from PIL import Image

        still = moving(f)
        if not still.any():
            return None
        folder = self.dir / "frames"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{stem or uuid.uuid4().hex}.mask.png"
        Image.fromarray(still.astype(np.uint8) * 255).save(path)
        return str(path)

    def checkpoint(self) -> None:
        """Store the map's arrays, covering every frame so far, in one transaction."""
        arrays = {n: getattr(self.frames.map, n) for n in ARRAYS}
        with self.store.transaction():
            tables.save_map(self.store.conn, arrays, self._last_fid)
        self._unsaved = 0

    # -- reading ----------------------------------------------------------------------------
    def retrieve(self, c2w: np.ndarray, k: Intrinsics, t: float, *, budget: int = 8, policy: str | None = None,
                 include_archive: bool = False) -> list[Retrieved]:  # fmt: skip
        """The context frames for a view: at most ``budget``, none later than ``t``, each with score and reason."""
        if policy is not None and policy not in POLICIES:
            raise BadInputError(f"unknown policy {policy!r}; choose one of {sorted(POLICIES)}")
        chosen = self._choose(Target(c2w, k, t), budget, policy, include_archive)
        return [
            Retrieved(self.frames.ids[c.frame], self.frames.ids[c.frame], float(self.frames.times[c.frame]), c.score,
                      c.reason)
            for c in chosen
        ]  # fmt: skip

    def _choose(self, target: Target, budget: int, policy: str | None, include_archive: bool) -> list[Choice]:
        if not len(self.frames):
            return []
        if not include_archive and self.archived.any():
            target = Target(target.c2w, target.k, target.t, ~self.archived)
        return choose(self.frames, target, budget, policy)

    def nearby(self, c2w: np.ndarray, k: Intrinsics, t: float, *, places: Sequence[str] | None = None,
               keep: int = 256) -> list[str]:  # fmt: skip
        """Ids of the active frames whose camera can see near the view (facing it, within 60 m), at or before
        ``t``, nearest pose first, at most ``keep``; with ``places``, only frames whose source names one of them
        as its ``location`` (as the story Director's keyframes do)."""
        if not len(self.frames):
            return []
        allowed = ~self.archived
        if places is not None:
            tagged = np.zeros(len(self.frames), bool)
            for place in places:
                tagged[self._places.get(place, [])] = True
            allowed &= tagged
        return [self.frames.ids[i] for i in nearby(self.frames, Target(c2w, k, t, allowed), keep)]

    def has_place(self, places: Sequence[str]) -> bool:
        """Whether any frame's source names one of ``places`` as its location."""
        return any(p in self._places for p in places)

    def render(self, c2w: np.ndarray, k: Intrinsics, t: float, *, budget: int = 4, policy: str | None = None
               ) -> Rendered:  # fmt: skip
        """Memory rendered into the view: the chosen frames forward-warped, with the mask of what is covered."""
        chosen = self._choose(Target(c2w, k, t), budget, policy, False)
        sources = []
        for c in chosen:
            rgb, depth = self.pixels(c.frame)
            if depth is not None:
                sources.append(Source(rgb, depth, self.frames.intrinsics[c.frame], self.frames.c2w[c.frame]))
        return forward_warp(sources, k, c2w)

    # -- what to keep ------------------------------------------------------------------------
    def compress(self, *, dry_run: bool = False, enough: int = 2, key_change: float = 10.0) -> CompressionPlan:
        """Archive the frames whose every map voxel stays seen, at least as well, by ``enough`` active frames
        (keyframes stay; :mod:`agentmem.spatial.compress`). With ``dry_run`` nothing is written."""
        plan = plan_compression(self.frames, ~self.archived, enough=enough, key_change=key_change)
        if not dry_run and len(plan.archive):
            with self.store.transaction():
                tables.set_frames_archived(self.store.conn, [self._fids[i] for i in plan.archive], True)
            self.archived[plan.archive] = True
        return plan

    def restore(self) -> int:
        """Make every archived frame active again; returns how many."""
        back = np.nonzero(self.archived)[0]
        if len(back):
            with self.store.transaction():
                tables.set_frames_archived(self.store.conn, [self._fids[i] for i in back], False)
            self.archived[back] = False
        return len(back)

    # -- entity tracks ----------------------------------------------------------------------
    def track(self, entity: str, t0: float = -math.inf, t1: float = math.inf, *, include_archive: bool = False
              ) -> list[TrackSample]:  # fmt: skip
        """The 3D positions of ``entity`` (an id, merges followed) seen between ``t0`` and ``t1``, by time."""
        if not self.store.entity_exists(entity):
            raise BadInputError(f"track: entity: unknown entity {entity!r}")
        rows = tables.entity_positions(
            self.store.conn, self.store.member_ids(self.store.canonical(entity)), t0, t1,
            include_archive=include_archive,
        )  # fmt: skip
        return [TrackSample(r[1], (r[2], r[3], r[4]), r[5], r[6]) for r in rows]

    def find(self, *, entity: str | None = None, t0: float = -math.inf, t1: float = math.inf,
             include_archive: bool = False) -> list[tuple[str, float, dict]]:  # fmt: skip
        """(id, time, source) of the frames in ``[t0, t1]``, only those showing ``entity`` if given, by time."""
        members = None
        if entity is not None:
            if not self.store.entity_exists(entity):
                raise BadInputError(f"frames: entity: unknown entity {entity!r}")
            members = self.store.member_ids(self.store.canonical(entity))
        rows = tables.find_frames(self.store.conn, members, t0, t1, include_archive)
        return [(r[0], float(r[1]), json.loads(r[2])) for r in rows]

    def position_at(self, entity: str, t: float) -> TrackSample | None:
        """Where ``entity`` was as of ``t``: its last sample at or before ``t`` (``None`` if never seen by then)."""
        got = self.track(entity, -math.inf, t)
        return got[-1] if got else None

    def stats(self) -> dict[str, float | int]:
        return {
            "frames": len(self.frames),
            "frames_with_depth": int(self.frames.has_depth.sum()),
            "archived_frames": int(self.archived.sum()),
            "map_voxels": len(self.frames.map),
            "voxel_m": self.frames.map.config.voxel,
        }


def _k_list(k: Intrinsics) -> list[float]:
    return [k.fx, k.fy, k.cx, k.cy, k.w, k.h]


def _frame_of(r: tuple) -> Frame:
    fx, fy, cx, cy, w, h = json.loads(r[4])
    c2w = np.frombuffer(r[3], dtype="<f8").reshape(4, 4).copy()
    return Frame(r[1], float(r[2]), c2w, Intrinsics(fx, fy, cx, cy, int(w), int(h)), file_path=r[1])
