"""A memory's origin: the point its map, policies and renders work from, so that geo-referenced captures work.

A UTM easting is about 600,000 m and a northing up to 9,300,000 m. Voxel keys pack
three 21-bit fields (±2**20 voxels: ±524,288 m at 0.5 m voxels), and renders
project in float32, whose steps at 600 km are 6 cm. So a memory keeps one
origin, chosen from the first camera it stores and rounded to whole kilometres
(readable, and a whole number of voxels), recorded in its store with those
frames and never changed. Stored poses stay as given (float64); the frame set
holds them relative to the origin, and views are made relative to it before
any map, policy or render work. A capture shifted by whole kilometres thus
gives the same map, the same choices and the same renders as the capture near
the origin, whenever its coordinates survive the shift in float64 exactly (they
do when they have no more fractional bits than the larger magnitude leaves).
A memory stored before origins existed has origin 0.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np

from agentmem.errors import BadInputError
from agentmem.spatial.camera import MAX_TRANSLATION_M
from agentmem.spatial.frames import Frame
from agentmem.spatial.voxmap import FIELD_RANGE, MapConfig

ORIGIN_KEY = "spatial_origin"
"""The store's meta key holding the origin, as the JSON list ``[x, y, z]`` in metres."""
ORIGIN_STEP_M = 1000.0


def choose_origin(c2w: np.ndarray) -> np.ndarray:
    """The origin of a memory whose first camera is ``c2w``: its position rounded to whole kilometres.

    Examples
    --------
    >>> m = np.eye(4); m[:3, 3] = (600_123.4, 4_500_600.0, -20.0)
    >>> choose_origin(m).tolist()
    [600000.0, 4501000.0, 0.0]
    """
    return np.round(np.asarray(c2w, np.float64)[:3, 3] / ORIGIN_STEP_M) * ORIGIN_STEP_M + 0.0  # no -0.0


def parse_origin(raw: str, where: str) -> np.ndarray:
    """The origin as the store records it (three finite numbers), or one line naming ``where``.

    Examples
    --------
    >>> parse_origin("[600000.0, 0.0, 4500000.0]", "mem").tolist()
    [600000.0, 0.0, 4500000.0]
    """
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = None
    ok = isinstance(value, list) and len(value) == 3
    if not ok or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        raise BadInputError(f"{where}: {ORIGIN_KEY}: must be three finite numbers, got {raw!r}")
    return np.array(value, np.float64)


def to_local(c2w: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """A copy of the pose (4, 4), or poses (..., 4, 4), with positions relative to ``origin``.

    Examples
    --------
    >>> m = np.eye(4); m[:3, 3] = (600_001.5, 2.0, 4_500_003.25)
    >>> to_local(m, np.array([600_000.0, 0.0, 4_500_000.0]))[:3, 3].tolist()
    [1.5, 2.0, 3.25]
    """
    out = np.array(c2w, dtype=np.float64)
    out[..., :3, 3] -= origin
    return out


def to_world(c2w: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """A copy of the pose (4, 4), or poses, relative to ``origin``, in world coordinates again."""
    out = np.array(c2w, dtype=np.float64)
    out[..., :3, 3] += origin
    return out


def map_range(config: MapConfig) -> float:
    """How far from the origin, in metres along each axis, a mapped point may lie: ``2**20`` voxels."""
    return FIELD_RANGE * config.voxel


def depth_reach(frame: Frame, config: MapConfig) -> float:
    """The farthest, in metres, any point the map takes from ``frame`` lies from its camera: its farthest mapped
    depth times its longest pixel ray (a ray's length is largest at an image corner); 0 without depth."""
    if frame.depth is None:
        return 0.0
    d = np.asarray(frame.depth)
    mapped = d[(d > 0) & (d < config.max_depth)]
    if not len(mapped):
        return 0.0
    k = frame.k
    du = np.array([0.0, k.w]) - k.cx
    dv = np.array([0.0, k.h]) - k.cy
    longest = math.sqrt(1.0 + float((du**2).max()) / k.fx**2 + float((dv**2).max()) / k.fy**2)
    return float(mapped.max()) * longest


def check_in_range(frames: Sequence[Frame], origin: np.ndarray, config: MapConfig) -> None:
    """Refuse, with one line naming the frame and the field, a frame whose camera lies beyond
    :data:`~agentmem.spatial.camera.MAX_TRANSLATION_M`, or whose camera or any point its depth puts in the map lies
    :func:`map_range` or farther from ``origin`` along an axis (such a point has no voxel key)."""
    limit = map_range(config)
    where = f"(the map reaches ±{limit:,.0f} m along each axis from the memory's origin {origin.tolist()} m)"
    for f in frames:
        pos = np.asarray(f.c2w, np.float64)[:3, 3]
        if not np.abs(pos).max() <= MAX_TRANSLATION_M:  # a NaN fails too
            raise BadInputError(f"frame {f.id!r}: transform_matrix: the camera at {pos.tolist()} m is beyond "
                                f"±{MAX_TRANSLATION_M:g} m (wrong unit?)")  # fmt: skip
        off = float(np.abs(pos - origin).max())
        if not off < limit:  # a NaN fails too
            raise BadInputError(f"frame {f.id!r}: transform_matrix: the camera at {pos.tolist()} m is too far {where}")
        reach = depth_reach(f, config)
        if not off + reach < limit:
            raise BadInputError(f"frame {f.id!r}: depth_file_path: points up to {reach:,.0f} m from the camera at "
                                f"{pos.tolist()} m may fall outside the map {where}")  # fmt: skip
