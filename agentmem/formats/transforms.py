"""Posed frames from nerfstudio's ``transforms.json``, validated in full before anything is stored.

The layout: camera intrinsics ``fl_x``, ``fl_y``, ``cx``, ``cy``, ``w``, ``h`` at the
top level (each frame may override them), ``depth_unit_scale_factor`` (default
0.001: uint16 PNG depth in millimetres), and ``frames[]`` with ``file_path``,
``transform_matrix`` (camera-to-world, OpenGL axes), optional
``depth_file_path`` (a uint16 PNG scaled by the factor, or ``.npy`` metres),
optional ``mask_path`` (non-zero = dynamic: kept out of the static map),
a story pose ``pose: [x, y, z, yaw, pitch]`` (degrees, z up) in place of
``transform_matrix`` and ``fov`` (horizontal, degrees, with ``w`` and ``h``) in
place of the focal lengths, as stories give cameras,
optional ``instances_path`` (a PNG of integer instance labels, 0 = none) with
``instance_ids`` (label -> entity id: those pixels give the entity a 3D
position and stay out of the static map), and optional ``time`` in seconds
(default: the frame's position in the file). A frame's id is its ``file_path``
exactly as written.

Every problem is one :class:`~agentmem.errors.BadInputError` naming the file,
the frame and the field. Paths must stay inside the dataset folder unless
``allow_outside`` is given.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agentmem.errors import BadInputError, MediaNotFoundError
from agentmem.formats.documents import parse_json, read_text
from agentmem.spatial.camera import (
    MAX_TRANSLATION_M,
    Intrinsics,
    check_fov,
    check_intrinsics,
    check_pose,
    pose_from_story,
)
from agentmem.spatial.frames import Frame

INTRINSIC_KEYS = ("fl_x", "fl_y", "cx", "cy", "w", "h")
# Metric depth beyond this is taken for a unit mistake (millimetres read as metres, say).
MAX_DEPTH_M = 1000.0
# Metres per unit of PNG depth: 1e-6 (micrometres) to 10; outside it is a mistake, refused before any arithmetic.
DEPTH_SCALE_RANGE = (1e-6, 10.0)
# A transforms file lists frames, not pixels: 100 MB holds hundreds of thousands of them.
MAX_LAYOUT_BYTES = 100_000_000
# Longest path and path component as written (the common file-system limits, PATH_MAX and NAME_MAX).
MAX_PATH_CHARS, MAX_NAME_CHARS = 1024, 255


@dataclass(frozen=True)
class PosedFile:
    """One frame of a transforms file, as written, with resolved paths; pixels are read by :func:`read_frame`."""

    id: str
    t: float
    c2w: np.ndarray
    k: Intrinsics
    rgb_path: Path
    depth_path: Path | None
    depth_scale: float
    mask_path: Path | None
    instances_path: Path | None = None
    instance_ids: dict[int, str] | None = None


def _number(d: dict, key: str, where: str) -> float:
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise BadInputError(f"{where}: {key}: must be a finite number, got {v!r}")
    return float(v)


def _pose(frame: dict, where: str) -> np.ndarray:
    """``transform_matrix``, or a story pose ``pose: [x, y, z, yaw, pitch]`` (degrees; z up, as stories use)."""
    if "transform_matrix" in frame or "pose" not in frame:
        return check_pose(frame.get("transform_matrix"), where)
    pose = frame["pose"]
    if not isinstance(pose, list) or len(pose) != 5 or not all(_finite(v) for v in pose):
        raise BadInputError(f"{where}: pose: must be [x, y, z, yaw_deg, pitch_deg], got {pose!r}")
    if max(abs(v) for v in pose[:3]) > MAX_TRANSLATION_M:
        raise BadInputError(f"{where}: pose: position {pose[:3]} is beyond ±{MAX_TRANSLATION_M:g} m (wrong unit?)")
    return pose_from_story(*pose)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _intrinsics(top: dict, frame: dict, where: str) -> Intrinsics:
    """The frame's camera (its own fields over the top level's), bounded as :func:`check_intrinsics` says."""
    fov: Any = frame.get("fov", top.get("fov"))
    if fov is not None and frame.get("fl_x", top.get("fl_x")) is None:  # a story camera: horizontal fov in degrees
        w, h = frame.get("w", top.get("w")), frame.get("h", top.get("h"))
        if w is None or h is None:
            raise BadInputError(f"{where}: w: a camera given by fov needs the image size w and h")
        return check_fov(fov, w, h, where)
    merged = {k: frame.get(k, top.get(k)) for k in INTRINSIC_KEYS}
    missing = [k for k, v in merged.items() if v is None]
    if missing:
        raise BadInputError(f"{where}: {missing[0]}: missing intrinsics (give it at the top level or in the frame)")
    m = merged
    return check_intrinsics(m["fl_x"], m["fl_y"], m["cx"], m["cy"], m["w"], m["h"], where)


def _inside(root: Path, rel: Any, where: str, field: str, allow_outside: bool) -> Path:
    _check_path_text(rel, where, field)
    try:
        path = (root / rel).resolve()
        outside = not allow_outside and not path.is_relative_to(root.resolve())
        missing = not outside and not path.is_file()
    except (OSError, RuntimeError) as exc:  # a symlink loop (RuntimeError before Python 3.13), a name too long
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "a symbolic link loop?"
        raise BadInputError(f"{where}: {field}: cannot be resolved ({reason})") from None
    if outside:
        raise BadInputError(f"{where}: {field}: {rel!r} is outside the dataset folder (allow it explicitly)")
    if missing:
        raise MediaNotFoundError(f"{where}: {field}: no such file {rel!r}")
    return path


def _check_path_text(rel: Any, where: str, field: str) -> None:
    """A path as written: text without NUL or lone surrogates (no file can have those names), of sane length."""
    if not isinstance(rel, str) or not rel.strip():
        raise BadInputError(f"{where}: {field}: must be a non-empty path")
    if "\0" in rel:
        raise BadInputError(f"{where}: {field}: contains a NUL character")
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInputError(f"{where}: {field}: contains a lone surrogate (not a character): {rel[:60]!r}") from None
    if len(rel) > MAX_PATH_CHARS or max(len(part) for part in rel.split("/")) > MAX_NAME_CHARS:
        raise BadInputError(f"{where}: {field}: a path may have {MAX_PATH_CHARS} characters and {MAX_NAME_CHARS} "
                            f"per part, got {len(rel):,}")  # fmt: skip


def _frame_label(fid: Any, i: int) -> str:
    """How errors name a frame: its file_path, or its position when that is too long or unprintable to show."""
    ok = isinstance(fid, str) and len(fid) <= 200 and "\0" not in fid
    return f"frame {fid!r}" if ok else f"frames[{i}]"


def _read_layout(path: Path, no_frames: str) -> dict:
    """The JSON object of a transforms or views file, which must list frames."""
    data = parse_json(read_text(path, str(path), "transforms", max_bytes=MAX_LAYOUT_BYTES), str(path))
    if not isinstance(data, dict) or not isinstance(data.get("frames"), list) or not data["frames"]:
        raise BadInputError(f"{path}: frames: {no_frames}")
    return data


def _instance_ids(raw: Any, where: str) -> dict[int, str]:
    """``{"label": "entity id"}`` with positive integer labels."""
    if not isinstance(raw, dict) or not raw:
        raise BadInputError(f"{where}: instance_ids: instances_path needs an object of label -> entity id")
    out = {}
    for label, entity in raw.items():
        digits = str(label).isascii() and str(label).isdigit() and len(str(label)) <= 9  # int() of it is cheap
        if not digits or int(label) <= 0 or not isinstance(entity, str) or not entity:
            raise BadInputError(f"{where}: instance_ids: {label!r}: needs a positive integer label and an entity id")
        out[int(label)] = entity
    return out


def load_transforms(path: str | Path, *, allow_outside: bool = False) -> list[PosedFile]:
    """The frames of a transforms file, every field checked; nothing is read beyond the JSON and file existence."""
    path = Path(path)
    data = _read_layout(path, "must be a non-empty list")
    scale = data.get("depth_unit_scale_factor", 0.001)
    lo, hi = DEPTH_SCALE_RANGE
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not lo <= scale <= hi:
        raise BadInputError(f"{path}: depth_unit_scale_factor: must be metres per unit in [{lo:g}, {hi:g}], "
                            f"got {scale!r}")  # fmt: skip
    root = path.parent
    out: list[PosedFile] = []
    seen: set[str] = set()
    for i, f in enumerate(data["frames"]):
        where = f"{path}: frames[{i}]"
        if not isinstance(f, dict):
            raise BadInputError(f"{where}: must be an object")
        fid = f.get("file_path")
        where = f"{path}: {_frame_label(fid, i)}"
        rgb = _inside(root, fid, where, "file_path", allow_outside)
        if fid in seen:
            raise BadInputError(f"{where}: file_path: appears twice")
        seen.add(str(fid))
        c2w = _pose(f, where)
        t = _number(f, "time", where) if "time" in f else float(i)
        depth = f.get("depth_file_path")
        mask = f.get("mask_path")
        inst = f.get("instances_path")
        out.append(PosedFile(
            str(fid), t, c2w, _intrinsics(data, f, where), rgb,
            None if depth is None else _inside(root, depth, where, "depth_file_path", allow_outside),
            float(scale),
            None if mask is None else _inside(root, mask, where, "mask_path", allow_outside),
            None if inst is None else _inside(root, inst, where, "instances_path", allow_outside),
            None if inst is None else _instance_ids(f.get("instance_ids"), where),
        ))  # fmt: skip
    return out


def read_frame(p: PosedFile, where: str) -> Frame:
    """Read the pixels of ``p``, checking that the image decodes and that depth and mask match its size and units.

    Every image's size is checked from its header against the intrinsics before it is decoded, so a file that
    claims more pixels than the camera has is refused without allocating them.
    """
    with _opened(p.rgb_path, where, "file_path") as im:
        if im.size != (p.k.w, p.k.h):
            raise BadInputError(f"{where}: file_path: image is {im.width}x{im.height}, intrinsics say {p.k.w}x{p.k.h}")
        rgb = np.asarray(im.convert("RGB"))
    depth = None if p.depth_path is None else _read_depth(p, where)
    dynamic = None
    if p.mask_path is not None:
        with _opened(p.mask_path, where, "mask_path") as im:
            if im.size != (p.k.w, p.k.h):
                raise BadInputError(f"{where}: mask_path: size differs from the image")
            dynamic = np.asarray(im.convert("L")) > 0
    instances = None if p.instances_path is None else _read_instances(p, where)
    return Frame(p.id, p.t, p.c2w, p.k, rgb, depth, dynamic, instances, dict(p.instance_ids or {}), file_path=p.id,
                 source={"file": str(p.rgb_path)})  # fmt: skip


@contextmanager
def _opened(path: Path, where: str, field: str) -> Iterator[Any]:
    """The image at ``path`` opened for its header only; decoding in the block fails with one line naming ``field``."""
    from PIL import Image

    try:
        with warnings.catch_warnings():  # Pillow warns of (and then refuses) huge headers; both become our line
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadInputError(f"{where}: {field}: the image's header claims far too many pixels to decode") from None
    except (OSError, SyntaxError, ValueError, EOFError):  # Pillow's plugins raise all of these for broken files
        raise BadInputError(f"{where}: {field}: not a readable image") from None
    with im:
        try:
            yield im
        except BadInputError:
            raise
        except (OSError, SyntaxError, ValueError, EOFError):
            raise BadInputError(f"{where}: {field}: not a readable image") from None


def _read_instances(p: PosedFile, where: str) -> np.ndarray:
    assert p.instances_path is not None
    with _opened(p.instances_path, where, "instances_path") as im:
        labels = np.asarray(im) if im.size == (p.k.w, p.k.h) else None
    if labels is None or labels.ndim != 2 or labels.dtype.kind not in "ui":
        raise BadInputError(f"{where}: instances_path: must be a single-channel integer image of the frame's size")
    return labels.astype(np.int32)


def _read_depth(p: PosedFile, where: str) -> np.ndarray:
    assert p.depth_path is not None
    if p.depth_path.suffix.lower() == ".npy":
        d = _read_npy(p, where)
        _check_depth(d, where)  # before the cast to float32, which would warn of overflow
        return d.astype(np.float32)
    with _opened(p.depth_path, where, "depth_file_path") as im:
        _check_depth_size(im.width, im.height, p, where)
        raw = np.asarray(im)
    if raw.dtype != np.uint16 and raw.dtype != np.int32:
        raise BadInputError(f"{where}: depth_file_path: PNG depth must be 16-bit, got {raw.dtype} (wrong unit?)")
    depth = raw.astype(np.float32) * p.depth_scale
    _check_depth(depth, where)
    return depth


def _read_npy(p: PosedFile, where: str) -> np.ndarray:
    """A ``.npy`` depth whose header (read first) says float values of the image's size; then its values."""
    assert p.depth_path is not None
    npf = np.lib.format
    try:
        with p.depth_path.open("rb") as fh:
            version = npf.read_magic(fh)
            if version not in ((1, 0), (2, 0)):
                raise ValueError(f"version {version}")
            read_header = npf.read_array_header_1_0 if version == (1, 0) else npf.read_array_header_2_0
            shape, _, dtype = read_header(fh)
    except (OSError, ValueError, EOFError):
        raise BadInputError(f"{where}: depth_file_path: not a readable .npy array") from None
    if not np.issubdtype(dtype, np.floating):
        raise BadInputError(f"{where}: depth_file_path: .npy depth must be float metres, got {dtype}")
    if len(shape) != 2:
        raise BadInputError(f"{where}: depth_file_path: .npy depth must be a 2-D array, got shape {list(shape)}")
    _check_depth_size(shape[1], shape[0], p, where)
    try:
        return np.load(p.depth_path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        raise BadInputError(f"{where}: depth_file_path: not a readable .npy array") from None


def _check_depth_size(w: int, h: int, p: PosedFile, where: str) -> None:
    if (w, h) != (p.k.w, p.k.h):
        raise BadInputError(f"{where}: depth_file_path: depth is {w}x{h}, the image is {p.k.w}x{p.k.h}")


def _check_depth(depth: np.ndarray, where: str) -> None:
    if not np.isfinite(depth).all() or (depth < 0).any():
        raise BadInputError(f"{where}: depth_file_path: has negative or non-finite values")
    if depth.max(initial=0.0) > MAX_DEPTH_M:
        raise BadInputError(f"{where}: depth_file_path: values up to {depth.max():.4g} m: wrong unit or scale factor?")


@dataclass(frozen=True)
class ViewSpec:
    """A view to retrieve for or render: its ``file_path`` (a name; the image need not exist), pose, camera, time."""

    file_path: str
    c2w: np.ndarray
    k: Intrinsics
    t: float


def load_views(path: str | Path) -> list[ViewSpec]:
    """Views in the transforms layout; a view without ``time`` comes after every frame."""
    path = Path(path)
    data = _read_layout(path, "a views file needs at least one frame")
    out = []
    for i, f in enumerate(data["frames"]):
        where = f"{path}: frames[{i}]"
        if not isinstance(f, dict) or not isinstance(f.get("file_path"), str) or not f["file_path"].strip():
            raise BadInputError(f"{where}: file_path: must be a non-empty string")
        where = f"{path}: view {f['file_path']!r}"
        t = _number(f, "time", where) if "time" in f else math.inf
        out.append(ViewSpec(f["file_path"], _pose(f, where), _intrinsics(data, f, where), t))
    return out


def write_transforms(folder: str | Path, frames: list[Frame], *, depth: bool = True) -> Path:
    """Write ``frames`` as a nerfstudio dataset: ``images/NNNNN.png``, ``depth/NNNNN.png`` (uint16 millimetres)
    and ``transforms.json`` with shared intrinsics and per-frame ``time``; returns the transforms path.

    Every frame must have the same camera and carry ``rgb`` (and ``depth`` when ``depth``).
    """
    from PIL import Image

    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    if depth:
        (folder / "depth").mkdir(exist_ok=True)
    k = frames[0].k
    entries = []
    for i, f in enumerate(frames):
        if f.rgb is None or (depth and f.depth is None) or f.k != k:
            raise BadInputError(f"frame {f.id!r}: needs pixels{' and depth' if depth else ''} and the shared camera")
        name = f"images/{i:05d}.png"
        Image.fromarray(f.rgb).save(folder / name)
        entry: dict[str, Any] = {"file_path": name, "transform_matrix": np.asarray(f.c2w).tolist(), "time": f.t}
        if depth and f.depth is not None:
            dname = f"depth/{i:05d}.png"
            Image.fromarray(np.clip(np.round(f.depth * 1000), 0, 65535).astype(np.uint16)).save(folder / dname)
            entry["depth_file_path"] = dname
        if f.instances is not None:
            (folder / "instances").mkdir(exist_ok=True)
            iname = f"instances/{i:05d}.png"
            Image.fromarray(f.instances.astype(np.uint16)).save(folder / iname)
            entry["instances_path"] = iname
            entry["instance_ids"] = {str(label): e for label, e in sorted(f.instance_ids.items())}
        entries.append(entry)
    data = {"fl_x": k.fx, "fl_y": k.fy, "cx": k.cx, "cy": k.cy, "w": k.w, "h": k.h, "depth_unit_scale_factor": 0.001,
            "frames": entries}  # fmt: skip
    out = folder / "transforms.json"
    out.write_text(json.dumps(data, indent=1))
    return out
