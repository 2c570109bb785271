"""Memory rendered into a new view: chosen frames forward-warped with a depth test, and the mask of holes.

For a target pose this gives what GEN3C and "Long-term Spatial Memory"
condition on: RGB, z-depth and a mask of the pixels memory covers. Steps:

1. drop *flying pixels*: a source pixel on a depth discontinuity (see
   :func:`edge_mask`), where its depth may mix two surfaces, is left out;
2. unproject every other pixel with depth and project it into the target;
3. splat it over the target pixels its footprint covers (the square spanned by
   where its neighbouring source pixels land), nearest surface winning (a z-buffer);
4. the pixels no point reached are holes, exactly what a generator must invent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agentmem.spatial.camera import Intrinsics, project, unproject


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


def forward_warp(sources: list[Source], k: Intrinsics, c2w: np.ndarray, *, edge_tol: float = 0.02,
                 max_splat: int = 3) -> Rendered:  # fmt: skip
    """Warp ``sources`` into the view ``c2w`` with camera ``k``; the nearest surface wins each pixel."""
    us, vs, zs, cols, sizes = [], [], [], [], []
    for s in sources:
        ok = ~edge_mask(s.depth, edge_tol)
        pts = unproject(s.depth.astype(np.float64), s.k, s.c2w)
        u, v, z = (a.reshape(s.depth.shape) for a in project(pts.reshape(-1, 3), k, c2w))
        ok &= z > 1e-3
        size = _footprint(u, v)
        us.append(u[ok])
        vs.append(v[ok])
        zs.append(z[ok])
        cols.append(s.rgb[ok])
        sizes.append(np.clip(size[ok], 1, max_splat).astype(np.int64))
    rgb = np.zeros((k.h, k.w, 3), np.uint8)
    depth = np.zeros((k.h, k.w), np.float32)
    if not us:
        return Rendered(rgb, depth, np.zeros((k.h, k.w), bool))
    u, v, z, col, size = (np.concatenate(a) for a in (us, vs, zs, cols, sizes))
    pix, zz, cc = _splat(u, v, z, col, size, k)
    order = np.lexsort((zz, pix))
    pix, zz, cc = pix[order], zz[order], cc[order]
    first = np.r_[True, pix[1:] != pix[:-1]]
    flat_rgb = rgb.reshape(-1, 3)
    flat_depth = depth.reshape(-1)
    flat_rgb[pix[first]] = cc[first]
    flat_depth[pix[first]] = zz[first]
    return Rendered(rgb, depth, depth > 0)


def _footprint(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Side, in target pixels, of the square each source pixel must cover: how far its right and lower neighbours
    land from it (a surface seen more closely or more frontally than in the source is stretched, often more in
    one direction, as the ground is)."""
    span = np.ones(u.shape)
    with np.errstate(invalid="ignore"):
        dx = np.maximum(np.abs(u[:, 1:] - u[:, :-1]), np.abs(v[:, 1:] - v[:, :-1]))
        dy = np.maximum(np.abs(u[1:, :] - u[:-1, :]), np.abs(v[1:, :] - v[:-1, :]))
    span[:, :-1] = np.fmax(span[:, :-1], dx)
    span[:-1, :] = np.fmax(span[:-1, :], dy)
    return np.ceil(span - 1e-3)  # 1.0000001 is one pixel


def _splat(u: np.ndarray, v: np.ndarray, z: np.ndarray, col: np.ndarray, size: np.ndarray, k: Intrinsics):
    """Target pixel index, depth and colour of every pixel each point's square footprint covers."""
    pix, zz, cc = [], [], []
    for s in np.unique(size):
        sel = size == s
        # The footprint is centred on the point: offsets -(s-1)/2 .. (s-1)/2 around its pixel centre.
        offs = np.arange(int(s)) - (int(s) - 1) / 2.0
        for dy in offs:
            for dx in offs:
                uu = np.floor(u[sel] + dx).astype(np.int64)
                vv = np.floor(v[sel] + dy).astype(np.int64)
                inside = (uu >= 0) & (uu < k.w) & (vv >= 0) & (vv < k.h)
                pix.append(vv[inside] * k.w + uu[inside])
                zz.append(z[sel][inside])
                cc.append(col[sel][inside])
    return np.concatenate(pix), np.concatenate(zz), np.concatenate(cc)
