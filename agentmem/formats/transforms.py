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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agentmem.errors import BadInputError, MediaNotFoundError
from agentmem.spatial.camera import Intrinsics, check_pose, pose_from_story
from agentmem.spatial.frames import Frame

INTRINSIC_KEYS = ("fl_x", "fl_y", "cx", "cy", "w", "h")
# Metric depth beyond this is taken for a unit mistake (millimetres read as metres, say).
MAX_DEPTH_M = 1000.0


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
    return pose_from_story(*pose)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _intrinsics(top: dict, frame: dict, where: str) -> Intrinsics:
    fov: Any = frame.get("fov", top.get("fov"))
    if fov is not None and frame.get("fl_x", top.get("fl_x")) is None:  # a story camera: horizontal fov in degrees
        if not _finite(fov) or not 0 < fov < 180:
            raise BadInputError(f"{where}: fov: must be a horizontal field of view in (0, 180) degrees, got {fov!r}")
        w: Any = frame.get("w", top.get("w"))
        h: Any = frame.get("h", top.get("h"))
        if not (_finite(w) and _finite(h) and w >= 1 and h >= 1):
            raise BadInputError(f"{where}: w: a camera given by fov needs the image size w and h")
        return Intrinsics.from_fov(float(fov), int(w), int(h))
    merged = {k: frame.get(k, top.get(k)) for k in INTRINSIC_KEYS}
    missing = [k for k, v in merged.items() if v is None]
    if missing:
        raise BadInputError(f"{where}: {missing[0]}: missing intrinsics (give it at the top level or in the frame)")
    vals = {k: _number(merged, k, where) for k in INTRINSIC_KEYS}
    if vals["fl_x"] <= 0 or vals["fl_y"] <= 0 or vals["w"] < 1 or vals["h"] < 1:
        raise BadInputError(f"{where}: fl_x, fl_y, w and h must be positive")
    return Intrinsics(vals["fl_x"], vals["fl_y"], vals["cx"], vals["cy"], int(vals["w"]), int(vals["h"]))


def _inside(root: Path, rel: Any, where: str, field: str, allow_outside: bool) -> Path:
    if not isinstance(rel, str) or not rel.strip():
        raise BadInputError(f"{where}: {field}: must be a non-empty path")
    path = (root / rel).resolve()
    if not allow_outside and not path.is_relative_to(root.resolve()):
        raise BadInputError(f"{where}: {field}: {rel!r} is outside the dataset folder (allow it explicitly)")
    if not path.is_file():
        raise MediaNotFoundError(f"{where}: {field}: no such file {rel!r}")
    return path


def _read_layout(path: Path, no_frames: str) -> dict:
    """The JSON object of a transforms or views file, which must list frames."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"{path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise BadInputError(f"{path}: line {exc.lineno}: not valid JSON: {exc.msg}") from None
    if not isinstance(data, dict) or not isinstance(data.get("frames"), list) or not data["frames"]:
        raise BadInputError(f"{path}: frames: {no_frames}")
    return data


def _instance_ids(raw: Any, where: str) -> dict[int, str]:
    """``{"label": "entity id"}`` with positive integer labels."""
    if not isinstance(raw, dict) or not raw:
        raise BadInputError(f"{where}: instance_ids: instances_path needs an object of label -> entity id")
    out = {}
    for label, entity in raw.items():
        if not str(label).isdigit() or int(label) <= 0 or not isinstance(entity, str) or not entity:
            raise BadInputError(f"{where}: instance_ids: {label!r}: needs a positive integer label and an entity id")
        out[int(label)] = entity
    return out


def load_transforms(path: str | Path, *, allow_outside: bool = False) -> list[PosedFile]:
    """The frames of a transforms file, every field checked; nothing is read beyond the JSON and file existence."""
    path = Path(path)
    data = _read_layout(path, "must be a non-empty list")
    scale = data.get("depth_unit_scale_factor", 0.001)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale < math.inf:
        raise BadInputError(f"{path}: depth_unit_scale_factor: must be a positive number, got {scale!r}")
    root = path.parent
    out: list[PosedFile] = []
    seen: set[str] = set()
    for i, f in enumerate(data["frames"]):
        where = f"{path}: frames[{i}]"
        if not isinstance(f, dict):
            raise BadInputError(f"{where}: must be an object")
        fid = f.get("file_path")
        where = f"{path}: frame {fid!r}" if isinstance(fid, str) else where
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
    """Read the pixels of ``p``, checking that the image decodes and that depth and mask match its size and units."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(p.rgb_path) as im:
            rgb = np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError):
        raise BadInputError(f"{where}: file_path: not a readable image") from None
    if rgb.shape[:2] != (p.k.h, p.k.w):
        raise BadInputError(
            f"{where}: file_path: image is {rgb.shape[1]}x{rgb.shape[0]}, intrinsics say {p.k.w}x{p.k.h}"
        )
    depth = None if p.depth_path is None else _read_depth(p, where)
    dynamic = None
    if p.mask_path is not None:
        try:
            with Image.open(p.mask_path) as im:
                dynamic = np.asarray(im.convert("L")) > 0
        except (OSError, UnidentifiedImageError):
            raise BadInputError(f"{where}: mask_path: not a readable image") from None
        if dynamic.shape != rgb.shape[:2]:
            raise BadInputError(f"{where}: mask_path: size differs from the image")
    instances = None if p.instances_path is None else _read_instances(p, rgb.shape[:2], where)
    return Frame(p.id, p.t, p.c2w, p.k, rgb, depth, dynamic, instances, dict(p.instance_ids or {}), file_path=p.id,
                 source={"file": str(p.rgb_path)})  # fmt: skip


def _read_instances(p: PosedFile, shape: tuple[int, ...], where: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    assert p.instances_path is not None
    try:
        with Image.open(p.instances_path) as im:
            labels = np.asarray(im)
    except (OSError, UnidentifiedImageError):
        raise BadInputError(f"{where}: instances_path: not a readable image") from None
    if labels.shape != shape or labels.dtype.kind not in "ui":
        raise BadInputError(f"{where}: instances_path: must be a single-channel integer image of the frame's size")
    return labels.astype(np.int32)


def _read_depth(p: PosedFile, where: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    assert p.depth_path is not None
    if p.depth_path.suffix.lower() == ".npy":
        try:
            d = np.load(p.depth_path, allow_pickle=False)
        except (OSError, ValueError):
            raise BadInputError(f"{where}: depth_file_path: not a readable .npy array") from None
        if not np.issubdtype(d.dtype, np.floating):
            raise BadInputError(f"{where}: depth_file_path: .npy depth must be float metres, got {d.dtype}")
        depth = d.astype(np.float32)
    else:
        try:
            with Image.open(p.depth_path) as im:
                raw = np.asarray(im)
        except (OSError, UnidentifiedImageError):
            raise BadInputError(f"{where}: depth_file_path: not a readable image") from None
        if raw.dtype != np.uint16 and raw.dtype != np.int32:
            raise BadInputError(f"{where}: depth_file_path: PNG depth must be 16-bit, got {raw.dtype} (wrong unit?)")
        depth = raw.astype(np.float32) * p.depth_scale
    if depth.shape != (p.k.h, p.k.w):
        raise BadInputError(f"{where}: depth_file_path: depth is {depth.shape[1]}x{depth.shape[0]}, "
                            f"the image is {p.k.w}x{p.k.h}")  # fmt: skip
    if not np.isfinite(depth).all() or (depth < 0).any():
        raise BadInputError(f"{where}: depth_file_path: has negative or non-finite values")
    if depth.max(initial=0.0) > MAX_DEPTH_M:
        raise BadInputError(f"{where}: depth_file_path: values up to {depth.max():.0f} m: wrong unit or scale factor?")
    return depth


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
