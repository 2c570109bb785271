"""Spatial memory: posed RGB-D frames, a bounded voxel map, context frames chosen by view, renders with a hole mask.

The public surface, one module per job:

- :mod:`agentmem.spatial.world`: ``SpatialMemory``, the frames and map of one memory folder (add, retrieve,
  render, nearby, track, find, compress, restore);
- :mod:`agentmem.spatial.camera`: ``Intrinsics``, poses (``look_at``, ``pose_from_story``), projection;
- :mod:`agentmem.spatial.frames`: ``Frame``, one posed RGB-D frame, and ``FrameSet``;
- :mod:`agentmem.spatial.voxmap`: ``VoxelMap`` and ``MapConfig``, the static map;
- :mod:`agentmem.spatial.policies`: ``POLICIES``, the context-frame policies, and ``nearby``;
- :mod:`agentmem.spatial.render`: ``forward_warp``, ``forward_warp_path`` and ``prepare``;
- :mod:`agentmem.spatial.compress`: ``plan_compression``, which frames to archive;
- :mod:`agentmem.spatial.scenes`: the ray-cast town, ground truth for tests and benchmarks.

Importing the package imports none of them: each is imported where it is used.
"""
