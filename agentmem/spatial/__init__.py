"""Spatial memory: posed RGB-D frames, a bounded voxel map, context frames chosen by view, renders with a hole mask.

The public surface, one module per job:

- :mod:`agentmem.spatial.world`: ``SpatialMemory``, the frames and map of one memory folder (add, retrieve,
  render, nearby, track, find, compress, restore, relink);
- :mod:`agentmem.spatial.camera`: the checks of incoming cameras (``check_pose``, ``check_intrinsics``,
  ``check_fov``, ``check_size`` and their bounds); cameras themselves (``Intrinsics``, ``Cameras``, poses and
  their conventions, projection) are :mod:`agentmem.geometry`'s;
- :mod:`agentmem.spatial.frames`: ``Frame``, one posed RGB-D frame, and ``FrameSet`` (cameras as arrays, the map);
- :mod:`agentmem.spatial.scenemap`: ``SceneMap``, what any static map provides, and ``write_ply``;
- :mod:`agentmem.spatial.voxmap`: ``VoxelMap`` and ``MapConfig``, the default static map;
- :mod:`agentmem.spatial.policies`: ``POLICIES`` (name -> ``Policy``), the context-frame policies, the story
  rule among them, ``choose`` and ``nearby``;
- :mod:`agentmem.spatial.params`: the policies' parameters, ``PolicyConfig`` (the scene's scale) and one config
  per policy, and ``parse_params``;
- :mod:`agentmem.spatial.render`: ``forward_warp``, ``forward_warp_path`` and ``prepare``;
- :mod:`agentmem.spatial.compress`: ``plan_compression``, which frames to archive;
- :mod:`agentmem.spatial.origin`: a memory's origin, and the range its map can hold;
- :mod:`agentmem.spatial.scenes`: the ray-cast town, ground truth for tests and benchmarks.

Importing the package imports none of them: each is imported where it is used.
"""
