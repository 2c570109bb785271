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

from collections.abc import Sequence
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


@dataclass(frozen=True)
class Prepared:
    """A source with what every warp of it needs, whatever the target: its kept pixels (not on a depth edge),
    their world points (h * w, 3), its inverse depth and that depth's gradients along rows and columns."""

    source: Source
    keep: np.ndarray
    world: np.ndarray
    inv: np.ndarray
    g_r: np.ndarray
    g_c: np.ndarray


def prepare(sources: Sequence[Source | Prepared], edge_tol: float = 0.02) -> list[Prepared]:
    """The target-independent part of warping ``sources``, done once for many targets (a chunk's poses)."""
    out = []
    for s in sources:
        if isinstance(s, Prepared):
            out.append(s)
            continue
        inv = np.where(s.depth > 0, 1.0 / np.maximum(s.depth, 1e-9), 0.0)
        g_r, g_c = _gradient(inv)
        world = unproject(s.depth.astype(np.float64), s.k, s.c2w).reshape(-1, 3)
        out.append(Prepared(s, ~edge_mask(s.depth, edge_tol), world, inv, g_r, g_c))
    return out


def forward_warp(sources: Sequence[Source | Prepared], k: Intrinsics, c2w: np.ndarray, *, edge_tol: float = 0.02,
                 max_splat: int = 3) -> Rendered:  # fmt: skip
    """Warp ``sources`` into the view ``c2w`` with camera ``k``; the nearest surface wins each pixel."""
    rgb = np.zeros((k.h, k.w, 3), np.uint8)
    depth = np.zeros((k.h, k.w), np.float32)
    prepared = prepare(sources, edge_tol)
    pts = _warp_points(prepared, k, c2w, max_splat)
    if pts is None:
        return Rendered(rgb, depth, np.zeros((k.h, k.w), bool))
    pix, idx = _splat(pts, k)
    dc, dr, z, far = _at_centres(pts, pix, idx, k)
    win = _nearest_then_sharpest(pix, z, pts.stretch[idx], far, k.w * k.h)
    rgb.reshape(-1, 3)[pix[win]] = _colours(pts, prepared, idx[win], dc[win], dr[win])
    depth.reshape(-1)[pix[win]] = z[win]
    return Rendered(rgb, depth, depth > 0)


@dataclass(frozen=True)
class _Points:
    """The kept source pixels of every source, flattened: where each lands in the target (``u``, ``v``), the
    inverse depth there, the local map from target to source pixel offsets (``jinv``, 2x2) and the inverse depth's
    gradient in source pixels, the source pixel (``src``, ``col``, ``row``), how many target pixels one source
    pixel spans (``stretch``) and the side of its square splat (``size``)."""

    u: np.ndarray
    v: np.ndarray
    iz: np.ndarray
    jinv: np.ndarray
    giz: np.ndarray
    src: np.ndarray
    col: np.ndarray
    row: np.ndarray
    stretch: np.ndarray
    size: np.ndarray


def _warp_points(prepared: list[Prepared], k: Intrinsics, c2w: np.ndarray, max_splat: int):
    parts: list[list[np.ndarray]] = []
    for n, p in enumerate(prepared):
        ok = p.keep.copy()
        u, v, z = (a.reshape(p.keep.shape) for a in project(p.world, k, c2w))
        ok &= z > 1e-3
        iz = 1.0 / np.where(z > 1e-3, z, 1.0)
        # The first-order map between source and target pixels: exact on planes up to perspective.
        du_r, du_c = _gradient(u)
        dv_r, dv_c = _gradient(v)
        det = du_c * dv_r - du_r * dv_c
        ok &= np.abs(det) > 1e-6
        safe = np.where(ok, det, 1.0)
        jinv = np.stack([dv_r, -du_r, -dv_c, du_c], axis=-1) / safe[..., None]
        giz_r, giz_c = _gradient(iz)
        row, col = np.nonzero(ok)
        size = np.clip(_footprint(u, v), 1, max_splat).astype(np.int64)
        parts.append([u[ok], v[ok], iz[ok], jinv[ok], np.stack([giz_c[ok], giz_r[ok]], axis=1),
                      np.full(len(row), n), col, row, np.abs(det[ok]), size[ok]])  # fmt: skip
    if not parts or not sum(len(p[0]) for p in parts):
        return None
    return _Points(*(np.concatenate(a) for a in zip(*parts, strict=True)))


def _gradient(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Derivatives along rows and along columns (central differences, one-sided at the border)."""
    d_r, d_c = np.gradient(a)
    return np.asarray(d_r), np.asarray(d_c)


def _at_centres(pts: _Points, pix: np.ndarray, idx: np.ndarray, k: Intrinsics):
    """Per sample: the offset, in source pixels, from its point to the covered target pixel's centre through the
    point's local map (clipped to one pixel), the depth there, and whether the offset was ``far`` (over 0.75)."""
    du = pix % k.w + 0.5 - pts.u[idx]
    dv = pix // k.w + 0.5 - pts.v[idx]
    jinv = pts.jinv[idx]
    dc = jinv[:, 0] * du + jinv[:, 1] * dv
    dr = jinv[:, 2] * du + jinv[:, 3] * dv
    far = np.maximum(np.abs(dc), np.abs(dr)) > 0.75
    dc, dr = np.clip(dc, -1.0, 1.0), np.clip(dr, -1.0, 1.0)
    giz = pts.giz[idx]
    iz = pts.iz[idx] + giz[:, 0] * dc + giz[:, 1] * dr
    z = np.where(iz > 1e-9, 1.0 / np.maximum(iz, 1e-9), 0.0)
    return dc, dr, z, far


def _colours(pts: _Points, sources: list[Prepared], idx: np.ndarray, dc: np.ndarray, dr: np.ndarray) -> np.ndarray:
    """Colour read back at each winning sample's spot: bilinear over the four source pixels around it, each only
    if it lies on the same surface."""
    col = np.zeros((len(idx), 3), np.uint8)
    for n, s in enumerate(sources):
        sel = np.nonzero(pts.src[idx] == n)[0]
        c0, r0 = pts.col[idx[sel]], pts.row[idx[sel]]
        col[sel] = _bilinear(s, c0, r0, c0 + dc[sel], r0 + dr[sel])
    return col


def _bilinear(p: Prepared, c0: np.ndarray, r0: np.ndarray, c: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Colour of the source at fractional pixel (c, r), from the neighbours on the same surface as pixel (c0, r0)
    (their inverse depth within 2% of that surface's plane through it); the pixel (c0, r0) itself when none is."""
    s, inv = p.source, p.inv
    iz0, gc, gr = inv[r0, c0], p.g_c[r0, c0], p.g_r[r0, c0]
    fc, fr = np.floor(c).astype(np.int64), np.floor(r).astype(np.int64)
    acc = np.zeros((len(c), 3))
    total = np.zeros(len(c))
    for oc, orow in ((0, 0), (1, 0), (0, 1), (1, 1)):
        cc, rr = np.clip(fc + oc, 0, s.k.w - 1), np.clip(fr + orow, 0, s.k.h - 1)
        w = np.maximum(1.0 - np.abs(c - cc), 0.0) * np.maximum(1.0 - np.abs(r - rr), 0.0)
        expect = iz0 + gc * (cc - c0) + gr * (rr - r0)
        same = (inv[rr, cc] > 0) & (np.abs(inv[rr, cc] - expect) <= 0.02 * iz0)
        w = np.where(same, w, 0.0)
        acc += w[:, None] * s.rgb[rr, cc]
        total += w
    own = s.rgb[r0, c0].astype(np.float64)
    out = np.where(total[:, None] > 1e-6, acc / np.maximum(total, 1e-12)[:, None], own)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _nearest_then_sharpest(pix: np.ndarray, z: np.ndarray, stretch: np.ndarray, far: np.ndarray, n: int
                           ) -> np.ndarray:  # fmt: skip
    """Indices of the winning sample of each covered target pixel: among the samples on its nearest surface
    (within 2% of the nearest depth), one read close to its own source pixel (not ``far``: the local map is
    first-order), from the least stretched source pixel (the sharpest view of it)."""
    live = np.nonzero(z > 0)[0]
    zmin = np.full(n, np.inf)
    np.minimum.at(zmin, pix[live], z[live])
    live = live[z[live] <= zmin[pix[live]] * 1.02 + 0.02]
    key = far[live] * (1.0 + stretch[live].max(initial=0.0)) + stretch[live]
    best = np.full(n, np.inf)
    np.minimum.at(best, pix[live], key)
    live = live[key == best[pix[live]]]
    _, first = np.unique(pix[live], return_index=True)  # ties: one sample per pixel
    return live[first]


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


def _splat(pts: _Points, k: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """Every (target pixel index, point index) pair of a point's square footprint inside the image."""
    pix, idx = [], []
    for s in np.unique(pts.size):
        sel = np.nonzero(pts.size == s)[0]
        # The footprint is centred on the point: offsets -(s-1)/2 .. (s-1)/2 around its pixel centre.
        offs = np.arange(int(s)) - (int(s) - 1) / 2.0
        for dy in offs:
            for dx in offs:
                uu = np.floor(pts.u[sel] + dx).astype(np.int64)
                vv = np.floor(pts.v[sel] + dy).astype(np.int64)
                inside = (uu >= 0) & (uu < k.w) & (vv >= 0) & (vv < k.h)
                pix.append(vv[inside] * k.w + uu[inside])
                idx.append(sel[inside])
    return np.concatenate(pix), np.concatenate(idx)
