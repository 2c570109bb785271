"""``SpatialMemory``: posed frames stored in a memory directory, their voxel map, context frames and renders.

Frames share the memory's SQLite file (``memory.db``, table ``frames``) and
keep their pixels by path; frames that arrive as arrays (from a generator) are
written under ``DIR/frames/`` first. Paths of files inside DIR are stored
relative to it, others absolute (:mod:`agentmem.storage.paths`), so DIR works
from any working directory and after a move. A batch of frames is validated in
full, then stored in one transaction; the map is updated after the commit and
checkpointed (see :mod:`agentmem.storage.frames`), and a reopened memory maps
again whatever the checkpoint lacks. Poses are stored as given; the frame set,
map, policies and renders work relative to the memory's origin
(:mod:`agentmem.spatial.origin`), and views are made relative to it first.
"""

from __future__ import annotations

import json
import math
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from agentmem.errors import BadInputError, UnknownEntityError
from agentmem.geometry import Intrinsics
from agentmem.spatial.compress import CompressionPlan, plan_compression
from agentmem.spatial.frames import REACH_GRID, Frame, FrameSet, entity_samples, moving, reach_of
from agentmem.spatial.origin import ORIGIN_KEY, check_in_range, choose_origin, parse_origin, to_local, to_world
from agentmem.spatial.params import PolicyConfig
from agentmem.spatial.policies import Choice, Target, choose, nearby, policy_named
from agentmem.spatial.render import Rendered, Source, forward_warp
from agentmem.spatial.scenemap import SceneMap
from agentmem.spatial.voxmap import MapConfig
from agentmem.storage import frames as tables
from agentmem.storage import paths
from agentmem.storage.paths import to_stored
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
    """The frames and static map of one memory directory; the map is ``scene_map`` when given (any
    :class:`~agentmem.spatial.scenemap.SceneMap`), else a voxel map with ``config``."""

    def __init__(self, directory: str | Path, *, config: MapConfig | None = None, store: Store | None = None,
                 scene_map: SceneMap | None = None):  # fmt: skip
        self.dir = Path(directory)
        self.store = store or Store(self.dir)
        self._own_store = store is None
        self.frames = FrameSet(config, scene_map=scene_map)
        self._rgb: list[str] = []
        self._depth: list[tuple[str | None, float]] = []
        self._mask: list[str | None] = []
        self._fids: list[int] = []
        self._numbers: dict[str, int] = {}
        self._places: dict[str, list[int]] = {}  # source["location"] -> frame numbers (story keyframes)
        self.archived = np.zeros(0, bool)
        self._unsaved = 0
        self._last_fid = 0
        self._origin: np.ndarray | None = None  # unknown until a frame is stored (agentmem.spatial.origin)
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
        arrays, upto = tables.load_map(self.store)
        if not (arrays and self.frames.map.restore(arrays)):  # none, or another kind of map's: map the frames again
            upto = 0
        self._catch_up(upto, {})

    def _catch_up(self, mapped_upto: int, mine: dict[str, Frame]) -> dict[int, int]:
        """Append every frame stored after the last one this process knows, in storage order (other processes'
        too), and map those the checkpoint lacks; ``mine`` gives frames whose pixels are in memory. Returns
        stored id (fid) -> frame number."""
        out: dict[int, int] = {}
        to_map: list[tuple[int, Frame]] = []
        flags: list[bool] = []
        rows = tables.frame_rows(self.store, self._last_fid)
        if rows and self._origin is None:
            self._origin = self._stored_origin()
        for r in rows:
            frame = mine.get(r.id) or _frame_of(r)
            frame = replace(frame, c2w=self.local(frame.c2w))  # the frame set, map and policies work locally
            self._remember(r.rgb_path, r.depth_path, r.depth_scale, r.mask_path)
            flags.append(r.archived)
            i = self.frames.add(
                Frame(frame.id, frame.t, frame.c2w, frame.k, file_path=frame.file_path),
                has_depth=r.depth_path is not None,
            )
            if r.reach is not None:
                self.frames.set_reach(i, np.frombuffer(r.reach, "<f2").reshape(REACH_GRID).astype(np.float32))
            if r.fid > mapped_upto and r.depth_path is not None:
                to_map.append((i, frame if frame.depth is not None else self._pixels_of(i, frame)))
            self._last_fid = r.fid
            self._fids.append(r.fid)
            self._numbers[r.id] = i
            if "location" in r.source:
                self._places.setdefault(str(r.source["location"]), []).append(i)
            out[r.fid] = i
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
            with Image.open(self._file(i, "mask_path", mask)) as im:
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

        with Image.open(self._file(i, "rgb_path", self._rgb[i])) as im:
            rgb = np.asarray(im.convert("RGB"))
        stored, scale = self._depth[i]
        if stored is None:
            return rgb, None
        path = self._file(i, "depth_path", stored)
        if path.endswith(".npy"):
            return rgb, np.load(path, allow_pickle=False).astype(np.float32)
        with Image.open(path) as im:
            return rgb, np.asarray(im).astype(np.float32) * scale

    def _file(self, i: int, field: str, stored: str) -> str:
        """Where a stored path of frame ``i`` is now (an owned one inside the memory folder, wherever that moved);
        one line naming the frame, field and path when the file is missing."""
        return str(paths.existing_file(stored, self.store.root, f"frame {self.frames.ids[i]!r}", field))

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
        dup = tables.existing_frame_ids(self.store, ids)
        if dup:
            raise BadInputError(f"frame {sorted(dup)[0]!r}: id: already stored in this memory")
        origin = self._origin_for(frames)
        check_in_range(frames, origin, self.frames.map.config)
        positions = [self._positions(f) for f in frames]
        if paths is None:
            paths = [self._write_pixels(f) for f in frames]
        else:  # entity pixels stay out of the map when it is rebuilt from the files: keep them in a mask of ours
            paths = [p if f.instances is None else (*p[:3], self._write_mask(f)) for f, p in zip(frames, paths)]
            if copy:
                paths = [self._copy_in(p) for p in paths]
        records = [self._record(f, p) for f, p in zip(frames, paths, strict=True)]
        with self.store.transaction():
            self._settle_origin(origin, frames)
            fids = tables.insert_frames(self.store, records, positions)
        numbers = self._catch_up(0, {f.id: f for f in frames})
        if self._unsaved >= CHECKPOINT_EVERY:
            self.checkpoint()
        return [numbers[f] for f in fids]

    def _record(self, f: Frame, p: tuple[str, str | None, float, str | None]) -> tables.FrameRecord:
        """What is stored of frame ``f`` with its files ``p``: the paths as stored, and its reach."""
        reach = None if f.depth is None else reach_of(f.depth).astype("<f2").tobytes()
        rgb = to_stored(p[0], self.store.root)
        return tables.FrameRecord(f.id, f.t, f.c2w, _k_list(f.k), rgb, self._stored(p[1]), p[2], self._stored(p[3]),
                                  f.source, reach)  # fmt: skip

    # -- the origin (agentmem.spatial.origin) ---------------------------------------------------------
    @property
    def origin(self) -> np.ndarray:
        """The point, in world metres, that the frame set's poses and the map's voxels are relative to."""
        return np.zeros(3) if self._origin is None else self._origin

    def local(self, c2w: np.ndarray) -> np.ndarray:
        """World pose(s) made relative to :attr:`origin`, as the frame set, map, policies and renders take them."""
        return to_local(c2w, self.origin)

    def pose(self, i: int) -> np.ndarray:
        """The world pose of frame number ``i``."""
        return to_world(self.frames.c2w[i], self.origin)

    def _stored_origin(self) -> np.ndarray | None:
        """The recorded origin; 0 for a memory whose frames predate origins; ``None`` while it has no frame."""
        raw = self.store.get_meta(ORIGIN_KEY)
        if raw is not None:
            return parse_origin(raw, str(self.dir))
        return np.zeros(3) if tables.has_frames(self.store) else None

    def _origin_for(self, frames: Sequence[Frame]) -> np.ndarray:
        """The memory's origin, or for its first frames the one they will record."""
        if self._origin is None:
            self._origin = self._stored_origin()  # another process may have stored frames since this one opened
        if self._origin is not None:
            return self._origin
        return choose_origin(frames[0].c2w) if frames else np.zeros(3)

    def _settle_origin(self, origin: np.ndarray, frames: Sequence[Frame]) -> None:
        """In the write's transaction: record ``origin`` with a memory's first frames, or, when another process
        stored first frames meanwhile, check the batch against the origin they recorded."""
        stored = self._stored_origin()
        if stored is None:
            self.store.set_meta(ORIGIN_KEY, json.dumps(origin.tolist()))
        elif not np.array_equal(stored, origin):
            check_in_range(frames, stored, self.frames.map.config)
        self._origin = origin if stored is None else stored

    def _positions(self, f: Frame) -> list[tables.Position]:
        """The entities ``f``'s instance map shows, with their 3D positions; every id must name a stored entity."""
        for entity in f.instance_ids.values():
            if not self.store.entity_exists(entity):
                raise BadInputError(f"frame {f.id!r}: instance_ids: unknown entity {entity!r}")
        return [
            tables.Position(self.store.canonical(e), f.t, float(p[0]), float(p[1]), float(p[2]), n)
            for e, p, n in entity_samples(f)
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

    def _stored(self, path: str | None) -> str | None:
        """A path as stored: relative to the memory folder when inside it, else absolute (agentmem.storage.paths)."""
        return None if path is None else paths.to_stored(path, self.store.root)

    def _copy_in(self, p: tuple[str, str | None, float, str | None]) -> tuple[str, str | None, float, str | None]:
        """Byte copies of a frame's files under ``DIR/frames`` (new names: nothing there is overwritten)."""
        folder = self.dir / "frames"
        folder.mkdir(parents=True, exist_ok=True)
        stem = uuid.uuid4().hex

        def one(path: str | None, tag: str) -> str | None:
            if path is None or Path(path).resolve().parent == folder.resolve():  # a file of ours already
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
        arrays = self.frames.map.arrays()
        with self.store.transaction():
            tables.save_map(self.store, arrays, self._last_fid)
        self._unsaved = 0

    # -- reading ----------------------------------------------------------------------------
    def retrieve(self, c2w: np.ndarray, k: Intrinsics, t: float, *, budget: int = 8, policy: str | None = None,
                 include_archive: bool = False, config: PolicyConfig | None = None) -> list[Retrieved]:  # fmt: skip
        """The context frames for a view: at most ``budget``, none later than ``t``, each with score and reason;
        ``config`` sets the policy's parameters (its config type, :mod:`agentmem.spatial.params`)."""
        if policy is not None:
            policy_named(policy)  # an unknown name is refused even when memory is empty
        chosen = self._choose(Target(self.local(c2w), k, t), budget, policy, include_archive, config)
        return [
            Retrieved(self.frames.ids[c.frame], self.frames.ids[c.frame], float(self.frames.times[c.frame]), c.score,
                      c.reason)
            for c in chosen
        ]  # fmt: skip

    def _choose(self, target: Target, budget: int, policy: str | None, include_archive: bool,
                config: PolicyConfig | None = None) -> list[Choice]:  # fmt: skip
        if not len(self.frames):
            return []
        if not include_archive and self.archived.any():
            target = Target(target.c2w, target.k, target.t, ~self.archived)
        return choose(self.frames, target, budget, policy, config)

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
        found = nearby(self.frames, Target(self.local(c2w), k, t, allowed), PolicyConfig(keep=keep))
        return [self.frames.ids[i] for i in found]

    def has_place(self, places: Sequence[str]) -> bool:
        """Whether any frame's source names one of ``places`` as its location."""
        return any(p in self._places for p in places)

    def render(self, c2w: np.ndarray, k: Intrinsics, t: float, *, budget: int = 4, policy: str | None = None,
               config: PolicyConfig | None = None) -> Rendered:  # fmt: skip
        """Memory rendered into the view: the chosen frames forward-warped, with the mask of what is covered."""
        c2w = self.local(c2w)  # float32 render passes need coordinates near the map's (6 cm steps at 600 km)
        chosen = self._choose(Target(c2w, k, t), budget, policy, False, config)
        cameras = self.frames.cameras
        sources = []
        for c in chosen:
            rgb, depth = self.pixels(c.frame)
            if depth is not None:
                sources.append(Source(rgb, depth, cameras.intrinsics(c.frame), cameras.c2w[c.frame]))
        return forward_warp(sources, k, c2w)

    # -- what to keep ------------------------------------------------------------------------
    def compress(self, *, dry_run: bool = False, enough: int = 2, key_change: float = 10.0) -> CompressionPlan:
        """Archive the frames whose every map voxel stays seen, at least as well, by ``enough`` active frames
        (keyframes stay; :mod:`agentmem.spatial.compress`). With ``dry_run`` nothing is written."""
        plan = plan_compression(self.frames, ~self.archived, enough=enough, key_change=key_change)
        if not dry_run and len(plan.archive):
            with self.store.transaction():
                tables.set_frames_archived(self.store, [self._fids[i] for i in plan.archive], True)
            self.archived[plan.archive] = True
        return plan

    def restore(self) -> int:
        """Make every archived frame active again; returns how many."""
        back = np.nonzero(self.archived)[0]
        if len(back):
            with self.store.transaction():
                tables.set_frames_archived(self.store, [self._fids[i] for i in back], False)
            self.archived[back] = False
        return len(back)

    def relink(self, old: str, new: str, *, dry_run: bool = False) -> paths.RelinkPlan:
        """Re-point every referenced (absolute) path under the prefix ``old`` to ``new``, frames and media alike.
        Every new file is checked before anything is written (one line names the first missing one), then every
        row changes in one transaction; with ``dry_run`` nothing is written. Returns what changed."""
        plan = paths.relink(self.store, old, new, dry_run=dry_run)
        if not dry_run:
            numbers = {fid: i for i, fid in enumerate(self._fids)}
            for fid, _, moved in plan.frames:
                i = numbers.get(fid)
                if i is not None:  # a frame this process has read: read its pixels from the new place
                    self._rgb[i] = moved.get("rgb_path", self._rgb[i])
                    self._depth[i] = (moved.get("depth_path", self._depth[i][0]), self._depth[i][1])
                    self._mask[i] = moved.get("mask_path", self._mask[i])
        return plan

    # -- entity tracks ----------------------------------------------------------------------
    def track(self, entity: str, t0: float = -math.inf, t1: float = math.inf, *, include_archive: bool = False
              ) -> list[TrackSample]:  # fmt: skip
        """The 3D positions of ``entity`` (an id, name or alias; merges followed) between ``t0`` and ``t1``, by time."""
        rows = tables.entity_positions(
            self.store, self.store.member_ids(self.entity_id(entity, "track")), t0, t1, include_archive=include_archive
        )
        return [TrackSample(r.t, (r.x, r.y, r.z), r.pixels, r.frame) for r in rows]

    def find(self, *, entity: str | None = None, t0: float = -math.inf, t1: float = math.inf,
             include_archive: bool = False) -> list[tuple[str, float, dict]]:  # fmt: skip
        """(id, time, source) of the frames in ``[t0, t1]``, only those showing ``entity`` if given, by time."""
        members = None
        if entity is not None:
            members = self.store.member_ids(self.entity_id(entity, "frames"))
        rows = tables.find_frames(self.store, members, t0, t1, include_archive)
        return [(r.id, float(r.t), r.source) for r in rows]

    def entity_id(self, ref: str, where: str = "entity") -> str:
        """The canonical id ``ref`` names (an id, name or alias), or one line naming ``where`` and the field."""
        try:
            return self.store.resolve_entity(ref)
        except UnknownEntityError as exc:
            raise UnknownEntityError(f"{where}: entity: {exc}") from None

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


def _frame_of(r: tables.FrameRow) -> Frame:
    fx, fy, cx, cy, w, h = r.intrinsics
    return Frame(r.id, float(r.t), r.c2w, Intrinsics(fx, fy, cx, cy, int(w), int(h)), file_path=r.id)
