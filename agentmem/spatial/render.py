"""Memory rendered into a new view: chosen frames forward-warped with a depth test, and the mask of holes.

For a target pose this gives what GEN3C and "Long-term Spatial Memory"
condition on: RGB, z-depth and a mask of the pixels memory covers. Steps:

1. drop *flying pixels*: a source pixel on a depth discontinuity (see
   :func:`edge_mask`), where its depth may mix two surfaces, is left out;
2. unproject every other pixel with depth and project it into the target;
3. splat it over the target pixels its footprint covers (the square spanned by
   where its neighbouring source pixels land), nearest surface winning (a z-buffer);
4. the pixels no point reached are holes, exactly what a generator must invent.

:func:`forward_warp_path` renders many target poses in one pass (a chunk of the world loop): every array
operation then serves all of them, in float32, with channels first so that numpy runs along contiguous rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agentmem.geometry import Intrinsics, project_rows, unproject


@dataclass(frozen=True)
class Rendered:
    """RGB (h, w, 3) uint8, z-depth (h, w) float32 (0 = hole), and ``mask`` (h, w) bool: memory covers the pixel."""

    rgb: np.ndarray
    depth: np.ndarray
    mask: np.ndarray


@dataclass(frozen=True)
class Source:
    """A frame to warp: its pixels, z-depth (0 = unknown), camera and pose."""

    rgb: np.ndarray
    depth: np.ndarray
    k: Intrinsics
    c2w: np.ndarray


def edge_mask(depth: np.ndarray, tol: float = 0.02) -> np.ndarray:
    """Pixels on depth discontinuities, or without depth.

    Inverse depth is affine in the pixel coordinates on any plane, so its second difference is ~0 on smooth
    surfaces, slanted ones included, and large where two surfaces meet in the image. A pixel whose second
    difference along x or y exceeds ``tol`` times its own inverse depth is flagged.

    Examples
    --------
    >>> d = np.ones((3, 4), np.float32); d[:, 2:] = 5.0
    >>> edge_mask(d).astype(int).tolist()
    [[0, 1, 1, 0], [0, 1, 1, 0], [0, 1, 1, 0]]
    >>> bool(edge_mask(np.tile(np.linspace(1.0, 20.0, 8) ** -1, (3, 1))).any())  # a slanted plane: no edge
    False
    """
    inv = np.where(depth > 0, 1.0 / np.maximum(depth, 1e-9), 0.0)
    bend = np.zeros_like(inv)  # the image border has one neighbour only: no second difference there
    bend[:, 1:-1] = np.abs(inv[:, :-2] - 2 * inv[:, 1:-1] + inv[:, 2:])
    bend[1:-1, :] = np.maximum(bend[1:-1, :], np.abs(inv[:-2, :] - 2 * inv[1:-1, :] + inv[2:, :]))
    return (bend > tol * inv) | (depth <= 0)


@dataclass(frozen=True)
class Prepared:
    """Sources with what every warp of them needs, whatever the target, computed once for many targets (a chunk's
    poses). Per source: its size, its kept pixels (not on a depth edge), their world points (3, h * w) and each
    pixel's index (h, w) in the flat arrays. Over all
    sources, each padded (see :data:`_PAD`) and flattened one after another from ``offset``, rows ``stride`` long:
    ``texel`` (4, n: inverse depth, then colour) and ``slope`` (2, n: the inverse depth's gradients along columns
    and rows), float32. Channels come first: numpy runs fastest along long contiguous rows."""

    sizes: list[tuple[int, int]]
    keep: list[np.ndarray]
    world: list[np.ndarray]
    index: list[np.ndarray]
    offset: np.ndarray
    stride: np.ndarray
    texel: np.ndarray
    slope: np.ndarray


# A colour is read back from the 2x2 source pixels around a spot up to one pixel from a kept pixel (the first
# before it, the second after): padding of 1 before and 2 after, with inverse depth 0 (never the same surface),
# lets every read stay inside its own source without clipping.
_PAD = ((1, 2), (1, 2))


def prepare(sources: Sequence[Source], edge_tol: float = 0.02) -> Prepared:
    """The target-independent part of warping ``sources`` (see :class:`Prepared`)."""
    keep, world, texel, slope = [], [], [], []
    for s in sources:
        inv = np.where(s.depth > 0, 1.0 / np.maximum(s.depth, 1e-9), 0.0).astype(np.float32)
        d_r, d_c = _gradient(inv)
        keep.append(~edge_mask(s.depth, edge_tol))
        world.append(unproject(s.depth.astype(np.float64), s.k, s.c2w).reshape(-1, 3).T.astype(np.float32))
        texel.append(np.pad(np.stack([inv, *np.moveaxis(s.rgb.astype(np.float32), -1, 0)]), ((0, 0), *_PAD)))
        slope.append(np.pad(np.stack([d_c, d_r]), ((0, 0), *_PAD)))
    offset = np.cumsum([0] + [t[0].size for t in texel])[:-1].astype(np.int64)
    stride = np.array([s.k.w + sum(_PAD[1]) for s in sources], np.int64)
    index = [o + (np.arange(s.k.h)[:, None] + _PAD[0][0]) * st + np.arange(s.k.w) + _PAD[1][0]
             for s, o, st in zip(sources, offset, stride, strict=True)]  # fmt: skip
    if not sources:
        return Prepared([], [], [], [], offset, stride, np.zeros((4, 0), np.float32), np.zeros((2, 0), np.float32))
    return Prepared([(s.k.h, s.k.w) for s in sources], keep, world, index, offset, stride,
                    np.concatenate([t.reshape(4, -1) for t in texel], axis=1),
                    np.concatenate([t.reshape(2, -1) for t in slope], axis=1))  # fmt: skip


def forward_warp(sources: Sequence[Source] | Prepared, k: Intrinsics, c2w: np.ndarray, *, edge_tol: float = 0.02,
                 max_splat: int = 3) -> Rendered:  # fmt: skip
    """Warp ``sources`` into the view ``c2w`` with camera ``k``; the nearest surface wins each pixel."""
    return forward_warp_path(sources, k, np.asarray(c2w)[None], edge_tol=edge_tol, max_splat=max_splat)[0]


def forward_warp_path(sources: Sequence[Source] | Prepared, k: Intrinsics, c2ws: np.ndarray, *,
                      edge_tol: float = 0.02, max_splat: int = 3) -> list[Rendered]:  # fmt: skip
    """:func:`forward_warp` into every pose of ``c2ws`` (T, 4, 4), in one pass over all of them (one array
    operation serves every pose, which is what makes a chunk's guidance cheap)."""
    n_poses, hw = len(c2ws), k.w * k.h
    rgb = np.zeros((3, n_poses * hw), np.uint8)
    depth = np.zeros(n_poses * hw, np.float32)
    prepared = sources if isinstance(sources, Prepared) else prepare(sources, edge_tol)
    pts = _warp_points(prepared, k, np.asarray(c2ws, np.float64), max_splat)
    if pts is not None:
        smp = _samples(pts, k, n_poses)
        win = _nearest_then_sharpest(smp, n_poses * hw)
        pix, idx = smp.pix[win], smp.idx[win]
        rgb[:, pix] = _colours(pts, prepared, idx, *_offsets(pts, k, pix, idx))
        depth[pix] = smp.z[win]
    images = np.moveaxis(rgb.reshape(3, n_poses, k.h, k.w), 0, -1)
    depths = depth.reshape(n_poses, k.h, k.w)
    return [Rendered(np.ascontiguousarray(images[t]), depths[t], depths[t] > 0) for t in range(n_poses)]


@dataclass(frozen=True)
class _Points:
    """The kept source pixels of every source that land near each target image, flattened (float32).

    Per point: the target ``pose``; where it lands (``u``, ``v``) and the inverse depth there (``iz``); the local
    map from target to source pixel offsets (``jinv``, 4 rows: the 2x2 matrix) and the inverse depth's gradient
    in source pixels (``giz``, 2 rows); its source (``src``) and its index in the flat arrays of
    :class:`Prepared` (``own``); how many target pixels one source pixel spans (``stretch``); and its splat, the
    ``size`` by ``size`` target pixels centred on it, from column ``x0`` and row ``y0``."""

    pose: np.ndarray
    u: np.ndarray
    v: np.ndarray
    iz: np.ndarray
    jinv: np.ndarray
    giz: np.ndarray
    src: np.ndarray
    own: np.ndarray
    stretch: np.ndarray
    x0: np.ndarray
    y0: np.ndarray
    size: np.ndarray


def _warp_points(prepared: Prepared, k: Intrinsics, c2ws: np.ndarray, max_splat: int) -> _Points | None:
    parts = [_source_points(n, prepared, k, c2ws, max_splat) for n in range(len(prepared.keep))]
    if not parts or not sum(len(p[0]) for p in parts):
        return None
    return _Points(*(np.concatenate(a, axis=-1) for a in zip(*parts, strict=True)))


def _source_points(n: int, prepared: Prepared, k: Intrinsics, c2ws: np.ndarray, max_splat: int) -> list:
    """One source's part of :class:`_Points`: its kept pixels in front of each target camera whose splat can
    reach the image (the rest cannot change the render, so they are dropped before the per-point work)."""
    h, w = prepared.sizes[n]
    u, v, z = (a.reshape(-1, h, w) for a in project_rows(prepared.world[n], k, c2ws))
    # Points at or behind a target camera project to huge or undefined places; ``ok`` leaves them out.
    with np.errstate(invalid="ignore", over="ignore"):
        ok = prepared.keep[n] & (z > 1e-3) & (u > -max_splat) & (u < k.w + max_splat)
        ok &= (v > -max_splat) & (v < k.h + max_splat)
        iz = 1.0 / np.where(z > 1e-3, z, 1.0)
        # The first-order map between source and target pixels: exact on planes up to perspective.
        du_r, du_c = _gradient(u)
        dv_r, dv_c = _gradient(v)
        giz_r, giz_c = _gradient(iz)
        det = du_c * dv_r - du_r * dv_c
        ok &= np.abs(det) > 1e-6
        size = np.clip(_footprint(u, v), 1, max_splat)[ok]
    det = det[ok]  # boolean selection is much cheaper than fancy indexing
    jinv = np.stack([dv_r[ok], -du_r[ok], -dv_c[ok], du_c[ok]]) / det
    pose = np.broadcast_to(np.arange(len(c2ws), dtype=np.int32)[:, None, None], ok.shape)[ok]
    half = (size - 1) / 2
    return [pose, u[ok], v[ok], iz[ok], jinv, np.stack([giz_c[ok], giz_r[ok]]), np.full(len(pose), n, np.int32),
            np.broadcast_to(prepared.index[n], ok.shape)[ok], np.abs(det), np.floor(u[ok] - half),
            np.floor(v[ok] - half), size.astype(np.int8)]  # fmt: skip


def _gradient(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Derivatives along rows and along columns of images (..., h, w): central differences, one-sided at the
    border, as :func:`numpy.gradient` gives them."""
    d_r, d_c = np.empty_like(a), np.empty_like(a)
    d_r[..., 1:-1, :] = (a[..., 2:, :] - a[..., :-2, :]) * 0.5
    d_r[..., 0, :], d_r[..., -1, :] = a[..., 1, :] - a[..., 0, :], a[..., -1, :] - a[..., -2, :]
    d_c[..., 1:-1] = (a[..., 2:] - a[..., :-2]) * 0.5
    d_c[..., 0], d_c[..., -1] = a[..., 1] - a[..., 0], a[..., -1] - a[..., -2]
    return d_r, d_c


@dataclass(frozen=True)
class _Samples:
    """Every (target pixel, point) pair of a point's square footprint: the pixel (``pix``, over all poses; dead
    samples, outside the image or without depth, have the pixel one past the last), the point (``idx``), the
    depth at the pixel's centre through the point's local map (``z``) and the sample's ``key`` for the z-buffer:
    the point's stretch, plus a penalty above any stretch when the centre lies ``far`` (over 0.75 source pixels)
    from the point, where the first-order local map is least trusted."""

    pix: np.ndarray
    idx: np.ndarray
    z: np.ndarray
    key: np.ndarray


def _samples(pts: _Points, k: Intrinsics, n_poses: int) -> _Samples:
    """The :class:`_Samples` of every point's splat, for :func:`_nearest_then_sharpest`."""
    dead = n_poses * k.w * k.h  # the pixel index given to samples outside the image or without depth
    index = np.int32 if dead < 2**31 else np.int64
    penalty = np.float32(1.0) + pts.stretch.max()
    parts = []
    for s in range(1, int(pts.size.max()) + 1):
        sel = np.flatnonzero(pts.size == s).astype(np.int32)
        if not len(sel):
            continue
        u, v, iz, stretch = pts.u[sel], pts.v[sel], pts.iz[sel], pts.stretch[sel]
        j0, j1, j2, j3 = np.take(pts.jinv, sel, axis=1)
        g0, g1 = np.take(pts.giz, sel, axis=1)
        # From the splat's first pixel (u0, v0), the offsets to a pixel centre and through the local map grow by
        # whole steps.
        u0, v0 = pts.x0[sel], pts.y0[sel]
        du, dv = u0 + np.float32(0.5) - u, v0 + np.float32(0.5) - v
        dc0, dr0 = j0 * du + j1 * dv, j2 * du + j3 * dv
        pix0 = pts.pose[sel].astype(index) * (k.w * k.h) + (v0 * k.w + u0).astype(index)
        cols = [(u0 >= -o) & (u0 < k.w - o) for o in range(s)]
        rows = [(v0 >= -o) & (v0 < k.h - o) for o in range(s)]
        for oy in range(s):
            for ox in range(s):
                dc, dr = dc0 + (j0 * ox + j1 * oy), dr0 + (j2 * ox + j3 * oy)
                far = np.maximum(np.abs(dc), np.abs(dr)) > 0.75
                at = iz + g0 * np.clip(dc, -1.0, 1.0) + g1 * np.clip(dr, -1.0, 1.0)
                pix = np.where(cols[ox] & rows[oy] & (at > 1e-9), pix0 + (oy * k.w + ox), dead)
                parts.append((pix, sel, 1.0 / np.maximum(at, np.float32(1e-9)), far * penalty + stretch))
    return _Samples(*(np.concatenate(a) for a in zip(*parts, strict=True)))


def _offsets(pts: _Points, k: Intrinsics, pix: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For samples (target ``pix``, point ``idx``): the offset, in source pixels, from the point to the pixel's
    centre through the point's local map, clipped to one pixel."""
    at = pix % (k.w * k.h)
    du = (at % k.w).astype(np.float32) + np.float32(0.5) - pts.u[idx]
    dv = (at // k.w).astype(np.float32) + np.float32(0.5) - pts.v[idx]
    j0, j1, j2, j3 = np.take(pts.jinv, idx, axis=1)
    return np.clip(j0 * du + j1 * dv, -1.0, 1.0), np.clip(j2 * du + j3 * dv, -1.0, 1.0)


def _colours(pts: _Points, prepared: Prepared, idx: np.ndarray, dc: np.ndarray, dr: np.ndarray) -> np.ndarray:
    """Colour (3, n) read back at each winning sample's spot (``dc``, ``dr`` source pixels from its own pixel):
    bilinear over the four source pixels around it, each only if it lies on the same surface (its inverse depth
    within 2% of the plane through the sample's own pixel); the sample's own pixel when none is."""
    own, stride = pts.own[idx], prepared.stride[pts.src[idx]]
    mine, (gc, gr) = np.take(prepared.texel, own, axis=1), np.take(prepared.slope, own, axis=1)
    iz0 = mine[0]
    ec, er = np.floor(dc), np.floor(dr)  # the spot's upper-left source pixel, relative to its own
    ac, ar = dc - ec, dr - er
    corner = own + ec.astype(np.int64) + er.astype(np.int64) * stride
    acc = np.zeros((4, len(idx)), np.float32)  # the weight, then the weighted colour
    for oc, orow in ((0, 0), (1, 0), (0, 1), (1, 1)):
        there = np.take(prepared.texel, corner + oc + orow * stride, axis=1)
        inv = there[0]
        same = (np.abs(inv - (iz0 + gc * (ec + oc) + gr * (er + orow))) <= 0.02 * iz0) & (inv > 0)
        there[0] = 1.0
        acc += there * ((ac if oc else 1 - ac) * (ar if orow else 1 - ar) * same)
    out = np.where(acc[0] > 1e-6, acc[1:] / np.maximum(acc[0], 1e-12), mine[1:])
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _nearest_then_sharpest(smp: _Samples, n: int) -> np.ndarray:
    """Indices of the winning sample of each covered target pixel (of ``n``; samples at pixel ``n`` are dead):
    among the samples on its nearest surface (within 2% of the nearest depth), the least key (one read close to
    its own source pixel, from the least stretched source pixel: the sharpest view of it); ties go to the first
    sample."""
    zmin = np.full(n + 1, np.inf, np.float32)
    np.minimum.at(zmin, smp.pix, smp.z)
    near = smp.z <= zmin[smp.pix] * 1.02 + 0.02
    # The least key, then the first sample, in one pass: a non-negative float32's bits order as its value does,
    # so the key goes in the high 32 bits and the sample's index in the low ones.
    key = np.where(near, smp.key, np.inf).astype(np.float32)
    packed = (key.view(np.int32).astype(np.int64) << 32) | np.arange(len(key))
    best = np.full(n + 1, np.iinfo(np.int64).max)
    np.minimum.at(best, smp.pix, packed)
    best = best[:n]
    return best[best < np.iinfo(np.int64).max] & 0xFFFFFFFF


def _footprint(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Side, in target pixels, of the square each source pixel must cover: how far its right and lower neighbours
    land from it (a surface seen more closely or more frontally than in the source is stretched, often more in
    one direction, as the ground is)."""
    span = np.ones(u.shape, np.float32)
    with np.errstate(invalid="ignore"):
        dx = np.maximum(np.abs(u[..., 1:] - u[..., :-1]), np.abs(v[..., 1:] - v[..., :-1]))
        dy = np.maximum(np.abs(u[..., 1:, :] - u[..., :-1, :]), np.abs(v[..., 1:, :] - v[..., :-1, :]))
    span[..., :-1] = np.fmax(span[..., :-1], dx)
    span[..., :-1, :] = np.fmax(span[..., :-1, :], dy)
    return np.ceil(span - np.float32(1e-3))  # 1.0000001 is one pixel
