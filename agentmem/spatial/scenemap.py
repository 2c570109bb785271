"""The contract of a static map: what a map must provide for the frame set, the ``map`` policy, compression,
checkpoints and export to work with it.

:class:`~agentmem.spatial.frames.FrameSet` takes any :class:`SceneMap` (a
:class:`~agentmem.spatial.voxmap.VoxelMap` unless told otherwise). A map is a set of *elements* (voxels, say),
each with a centre, a colour and a short list of the frames that observed it best. Who uses what:

- the frame set feeds it: :meth:`SceneMap.observe_many` with each frame's static surface points, their colours
  and observation scores (it reads ``config.max_depth`` to cut far depth first);
- the ``map`` policy (:func:`~agentmem.spatial.policies.map_votes`) asks :meth:`SceneMap.visible` for the elements
  a view sees and the image area each covers, reads their observers (``obs_frame``) and ``centres``, and uses
  ``config.voxel`` as the margin of its occlusion test;
- compression (:mod:`agentmem.spatial.compress`) reads ``obs_frame`` and ``obs_score``;
- checkpoints store :meth:`SceneMap.arrays` and give them back to :meth:`SceneMap.restore`;
- export (:func:`write_ply`) writes ``centres`` and ``color``;
- the memory's origin check (:mod:`agentmem.spatial.origin`) and ``stats`` read ``config``.

Coordinates are the frame set's: metres relative to the memory's origin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple, Protocol

import numpy as np

from agentmem.geometry import Intrinsics
from agentmem.spatial.voxmap import MapConfig


class Observation(NamedTuple):
    """One frame's static surface points (n, 3), their colours (n, 3) in [0, 1] and observation scores (n,)."""

    frame: int
    points: np.ndarray
    colors: np.ndarray
    scores: np.ndarray


class SceneMap(Protocol):
    """A static map of elements, each with a centre, a colour and its best observers (see the module docstring).

    Arrays have one row per element, in a fixed order between changes: ``centres`` (n, 3) float64, ``color``
    (n, 3) in [0, 1], ``obs_frame`` (n, k) frame numbers (-1: a free slot) and ``obs_score`` (n, k) their
    observation scores (higher is better; -inf: free). Frame numbers are the frame set's.
    """

    @property
    def config(self) -> MapConfig:
        """``voxel``: the element size in metres; ``max_depth``: the farthest depth mapped."""
        ...

    def __len__(self) -> int: ...

    @property
    def centres(self) -> np.ndarray: ...

    @property
    def color(self) -> np.ndarray: ...

    @property
    def obs_frame(self) -> np.ndarray: ...

    @property
    def obs_score(self) -> np.ndarray: ...

    def observe_many(self, observations: Sequence[Observation]) -> int:
        """Add the frames' observations, in order; returns how many elements are new."""
        ...

    def visible(self, k: Intrinsics, c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row numbers of the elements seen from ``c2w`` (occlusion by the map itself counted) and the image area,
        in pixels, each covers."""
        ...

    def arrays(self) -> dict[str, np.ndarray]:
        """Everything :meth:`restore` needs, as named arrays (a checkpoint)."""
        ...

    def restore(self, arrays: Mapping[str, np.ndarray]) -> bool:
        """Take the map from a checkpoint's arrays; ``False`` (and the map unchanged) when they are not this kind
        of map's, so that the frames are mapped again."""
        ...


def write_ply(scene_map: SceneMap, path: str, origin: np.ndarray) -> int:
    """Write the map's element centres, in world coordinates (the map's are relative to ``origin``), with their
    colours as an ASCII PLY point cloud; returns the number of points.

    Examples
    --------
    >>> import os, tempfile
    >>> from agentmem.spatial.voxmap import VoxelMap
    >>> vm = VoxelMap()
    >>> vm.observe(0, np.array([[0.1, 0.1, 0.1]]), np.array([[1.0, 0.5, 0.0]]), np.ones(1, np.float32))
    1
    >>> path = os.path.join(tempfile.mkdtemp(), "map.ply")
    >>> write_ply(vm, path, np.array([100.0, 0.0, 0.0])), open(path).read().splitlines()[-1]
    (1, '100.250 0.250 0.250 255 128 0')
    """
    pts = scene_map.centres + origin
    rgb = np.clip(np.round(scene_map.color * 255), 0, 255).astype(np.int64)
    with open(path, "x") as f:  # "x": never overwrite a file
        f.write(f"ply\nformat ascii 1.0\nelement vertex {len(pts)}\n")
        f.write("property float x\nproperty float y\nproperty float z\n")
        f.write("property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n")
        for p, c in zip(pts.tolist(), rgb.tolist(), strict=True):
            f.write(f"{p[0]:.3f} {p[1]:.3f} {p[2]:.3f} {c[0]} {c[1]} {c[2]}\n")
    return len(pts)
