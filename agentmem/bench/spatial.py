"""Spatial memory benchmark: which context frames each policy gives back to a new view, against an oracle.

Ground truth comes from :mod:`agentmem.spatial.scenes`: a town ray-cast with exact
depth and pose. Each trajectory is walked frame by frame into a
:class:`~agentmem.spatial.frames.FrameSet`; then views later in the walk (not
in memory themselves, with everything before them in memory) ask each policy
for ``k`` frames. Scores, all on the same views in the same run:

- **coverage@k**: of the view's surface points that memory holds (seen, unoccluded, by some earlier frame),
  the share the chosen frames see;
- the **oracle**: greedy set cover with the true visibility of every earlier frame;
- **render**: the chosen frames forward-warped into the view: coverage of what memory holds, PSNR on the
  covered pixels, and false cover (covered pixels that no earlier frame saw).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from agentmem.spatial.camera import Intrinsics, look_at, project, unproject
from agentmem.spatial.frames import Frame, FrameSet
from agentmem.spatial.policies import POLICIES, Target, choose
from agentmem.spatial.render import Source, forward_warp
from agentmem.spatial.scenes import Scene, View, ray_cast, town

EYE = 1.6


def _street_loop(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    corners = [(-18.0, -18.0), (18.0, -18.0), (18.0, 18.0), (-18.0, 18.0)]
    out = []
    for i in range(n):
        s = 4 * i / n
        a, b = corners[int(s) % 4], corners[(int(s) + 1) % 4]
        f = s - int(s)
        p = np.array([a[0] + f * (b[0] - a[0]), EYE, a[1] + f * (b[1] - a[1])])
        d = np.array([b[0] - a[0], 0.0, b[1] - a[1]])
        d /= np.linalg.norm(d)
        sway = 0.35 * math.sin(i * 0.13)
        look = np.array(
            [d[0] * math.cos(sway) - d[2] * math.sin(sway), 0.0, d[0] * math.sin(sway) + d[2] * math.cos(sway)]
        )
        out.append((p, p + look))
    return out


def _out_and_back(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for i in range(n):
        f = i / (n - 1)
        x = -30 + 60 * (2 * f if f < 0.5 else 2 - 2 * f)
        sign = 1.0 if f < 0.5 else -1.0
        yaw = 0.6 * math.sin(i * 0.11)
        p = np.array([x, EYE, 6.0])
        look = np.array([sign * math.cos(yaw), 0.0, math.sin(yaw)])
        out.append((p, p + look))
    return out


def _rotate_and_return(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for i in range(n):
        f = i / n
        x = -18 + 36 * min(f * 3, 1.0) if f < 2 / 3 else 18 - 36 * (f - 2 / 3) * 3
        ang = 2 * math.pi * f * 2
        p = np.array([x, EYE, -6.0])
        out.append((p, p + np.array([math.cos(ang), 0.0, math.sin(ang)])))
    return out


def _behind_occluder(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """First look at the plaza from the south street; later stand north of a building, facing it, so the plaza is
    in the frustum but hidden: a frustum rule without depth picks the early frames, which show the plaza."""
    out = []
    half = n // 2
    for i in range(half):
        p = np.array([-20 + 40 * i / half, EYE, 18.0])
        out.append((p, np.array([0.0, EYE, 0.0]) + np.array([0.0, 0.0, 0.5 * math.sin(i * 0.1)])))
    for i in range(n - half):
        p = np.array([-20 + 40 * i / (n - half), EYE, -18.0])
        out.append((p, np.array([p[0] * 0.3, EYE, 10.0])))
    return out


def _random_walk(n: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    nodes = [-18.0, -6.0, 6.0, 18.0]
    cur = np.array([nodes[0], nodes[0]])
    out: list[tuple[np.ndarray, np.ndarray]] = []
    while len(out) < n:
        axis = rng.integers(2)
        nxt = cur.copy()
        nxt[axis] = nodes[int(rng.integers(len(nodes)))]
        if np.array_equal(nxt, cur):
            continue
        steps = max(2, int(np.abs(nxt - cur).sum() / 0.6))
        for s in range(steps):
            q = cur + (nxt - cur) * s / steps
            d = nxt - cur
            d = d / max(np.linalg.norm(d), 1e-9)
            p = np.array([q[0], EYE, q[1]])
            out.append((p, p + np.array([d[0], 0.0, d[1]])))
        cur = nxt
    return out[:n]


TRAJECTORIES = {
    "loop": lambda n, seed: _street_loop(n),
    "out_and_back": lambda n, seed: _out_and_back(n),
    "rotate_and_return": lambda n, seed: _rotate_and_return(n),
    "behind_occluder": lambda n, seed: _behind_occluder(n),
    "random_walk": _random_walk,
}


@dataclass
class Walk:
    scene: Scene
    k: Intrinsics
    poses: list[np.ndarray]
    views: list[View]


def make_walk(name: str, n: int = 400, *, seed: int = 0, w: int = 160, h: int = 120, aa: int = 2) -> Walk:
    """The trajectory ``name`` of ``n`` frames through the town, ray-cast (``aa`` x ``aa`` rays per pixel)."""
    scene = town(seed)
    k = Intrinsics.from_fov(70.0, w, h)
    poses = [look_at(p, q) for p, q in TRAJECTORIES[name](n, seed)]
    return Walk(scene, k, poses, [ray_cast(scene, k, c2w, aa=aa) for c2w in poses])


def visible_in(points: np.ndarray, view: View, k: Intrinsics, c2w: np.ndarray, tol: float = 0.05) -> np.ndarray:
    """Whether each world point is seen, unoccluded, by a frame with this depth (relative depth tolerance)."""
    u, v, z = project(points, k, c2w)
    ui, vi = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
    inside = (z > 1e-3) & (ui >= 0) & (ui < k.w) & (vi >= 0) & (vi < k.h)
    ok = np.zeros(len(points), bool)
    d = view.depth[vi[inside], ui[inside]]
    ok[inside] = (d > 0) & (np.abs(d - z[inside]) <= tol * z[inside] + 0.05)
    return ok


@dataclass
class SpatialScores:
    """Mean coverage@k per policy (and ``oracle``), and per policy the render's coverage, PSNR and false cover."""

    coverage: dict[str, dict[int, float]] = field(default_factory=dict)
    render: dict[str, dict[str, float]] = field(default_factory=dict)


def revisit_targets(walk: Walk, targets: int, seed: int = 0) -> list[tuple[np.ndarray, float]]:
    """Views later in the walk of places seen earlier: each at a pose of the first half (moved up to 1 m, turned
    up to 25 degrees), asked at a time in the second half, so everything before that time is in memory."""
    rng = np.random.default_rng(seed)
    n = len(walk.poses)
    out = []
    for t in np.linspace(n // 2, n - 1, targets).astype(int):
        base = walk.poses[int(rng.integers(0, n // 2))]
        eye = base[:3, 3] + rng.uniform(-1.0, 1.0, 3) * np.array([1.0, 0.0, 1.0])
        fwd = -base[:3, 2]
        a = np.radians(rng.uniform(-25.0, 25.0))
        turned = np.array([fwd[0] * np.cos(a) - fwd[2] * np.sin(a), fwd[1], fwd[0] * np.sin(a) + fwd[2] * np.cos(a)])
        out.append((look_at(eye, eye + turned), float(t) - 0.5))
    return out


def evaluate(walk: Walk, *, targets: int = 40, ks: tuple[int, ...] = (1, 4, 8), stride: int = 4,
             render_k: int = 4, seed: int = 0) -> SpatialScores:  # fmt: skip
    """Coverage@k and render scores (of ``render_k`` frames) of every policy and the oracle, on ``targets``
    revisits (see :func:`revisit_targets`)."""
    names = [*POLICIES, "oracle"]
    cov: dict[str, dict[int, list[float]]] = {p: {k: [] for k in ks} for p in names}
    rend: dict[str, dict[str, list[float]]] = {p: {"coverage": [], "psnr": [], "false_cover": []} for p in names}
    fs = FrameSet()
    added = 0
    for c2w, t in revisit_targets(walk, targets, seed):
        while added < t:
            v = walk.views[added]
            fs.add(Frame(str(added), float(added), walk.poses[added], walk.k, v.rgb, v.depth))
            added += 1
        truth = ray_cast(walk.scene, walk.k, c2w)
        _score_target(walk, fs, truth, c2w, t, added, ks, stride, cov, rend, render_k)
    scores = SpatialScores()
    scores.coverage = {p: {k: float(np.mean(v)) for k, v in per.items()} for p, per in cov.items()}
    scores.render = {p: {m: float(np.mean(v)) if v else 0.0 for m, v in per.items()} for p, per in rend.items()}
    return scores


def _oracle(vis: np.ndarray, k: int) -> list[int]:
    covered = np.zeros(vis.shape[1], bool)
    out = []
    for _ in range(k):
        f = int(np.argmax((vis & ~covered).sum(axis=1)))
        out.append(f)
        covered |= vis[f]
    return out


def _score_target(walk, fs, view, c2w, t, ti, ks, stride, cov, rend, render_k) -> None:
    pts = unproject(view.depth.astype(np.float64), walk.k, c2w)[::stride, ::stride].reshape(-1, 3)
    seen = view.depth[::stride, ::stride].reshape(-1) > 0
    pts = pts[seen]
    vis = np.stack([visible_in(pts, walk.views[f], walk.k, walk.poses[f]) for f in range(ti)])
    held = vis.any(axis=0)
    if held.sum() == 0:
        return
    target = Target(c2w, walk.k, t)
    picks = {name: {k: [c.frame for c in choose(fs, target, k, name)] for k in {*ks, render_k}} for name in POLICIES}
    picks["oracle"] = {k: _oracle(vis, k) for k in {*ks, render_k}}
    for name, per in picks.items():
        for k in ks:
            got = vis[per[k]].any(axis=0) if per[k] else np.zeros(len(pts), bool)
            cov[name][k].append(float((got & held).sum() / held.sum()))
    full = unproject(view.depth.astype(np.float64), walk.k, c2w).reshape(-1, 3)
    fseen = view.depth.reshape(-1) > 0
    fheld = np.zeros(len(full), bool)
    for f in range(ti):
        fheld[fseen] |= visible_in(full[fseen], walk.views[f], walk.k, walk.poses[f])
    for name, per in picks.items():
        sources = [Source(walk.views[f].rgb, walk.views[f].depth, walk.k, walk.poses[f]) for f in per[render_k]]
        _score_render(forward_warp(sources, walk.k, c2w), view, fheld, rend[name])


def _score_render(r, view: View, fheld: np.ndarray, out: dict[str, list[float]]) -> None:
    mask = r.mask.reshape(-1)
    out["coverage"].append(float((mask & fheld).sum() / max(fheld.sum(), 1)))
    out["false_cover"].append(float((mask & ~fheld).sum() / max(mask.sum(), 1)))
    if (mask & fheld).any():
        a = r.rgb.reshape(-1, 3)[mask & fheld].astype(np.float64)
        b = view.rgb.reshape(-1, 3)[mask & fheld].astype(np.float64)
        mse = max(float(((a - b) ** 2).mean()), 1e-6)
        out["psnr"].append(10 * math.log10(255.0**2 / mse))


def run_walks(names: list[str], frames: int, targets: int, progress=None) -> dict[str, SpatialScores]:
    """:func:`evaluate` on each named trajectory of ``frames`` frames."""
    out = {}
    for name in names:
        if progress:
            progress(f"{name}: ray-casting {frames} frames, scoring {targets} revisits")
        out[name] = evaluate(make_walk(name, frames), targets=targets)
    return out


def format_walks(res: dict[str, SpatialScores], k: int = 4) -> str:
    """Coverage@k per policy and walk, with the default policy's share of the oracle, then render scores."""
    names = [*POLICIES, "oracle"]
    lines = [f"coverage@{k}".ljust(18) + "".join(n.rjust(9) for n in names) + "  map/oracle"]
    for walk, s in res.items():
        row = "".join(f"{s.coverage[n][k]:9.3f}" for n in names)
        lines.append(walk.ljust(18) + row + f"  {s.coverage['map'][k] / max(s.coverage['oracle'][k], 1e-9):10.3f}")
    lines.append("")
    lines.append("render (4 frames)   policy     coverage  PSNR dB  false cover")
    for walk, s in res.items():
        for n in names:
            r = s.render[n]
            lines.append(f"{walk:<19} {n:<10} {r['coverage']:8.3f} {r['psnr']:8.2f} {r['false_cover']:12.4f}")
    return "\n".join(lines)


def plot_walks(res: dict[str, SpatialScores], path) -> None:
    """Bars of coverage@1/4/8 per policy for each walk, and render PSNR per policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [*POLICIES, "oracle"]
    fig, axes = plt.subplots(1, len(res) + 1, figsize=(3.2 * (len(res) + 1), 3.4), squeeze=False)
    for ax, (walk, s) in zip(axes[0], res.items(), strict=False):
        x = np.arange(len(names))
        for j, k in enumerate(sorted(next(iter(s.coverage.values())))):
            ax.bar(x + (j - 1) * 0.27, [s.coverage[n][k] for n in names], 0.27, label=f"@{k}")
        ax.set_xticks(x, names, rotation=60, fontsize=7)
        ax.set_ylim(0, 1.02)
        ax.set_title(walk.replace("_", " "), fontsize=9)
    axes[0][0].set_ylabel("coverage of what memory holds")
    axes[0][0].legend(fontsize=7)
    last = axes[0][-1]
    for walk, s in res.items():
        last.plot(names, [s.render[n]["psnr"] for n in names], marker="o", label=walk.replace("_", " "))
    last.axhline(25.0, color="grey", ls="--", lw=0.8)
    last.set_title("render PSNR (covered pixels)", fontsize=9)
    last.tick_params(axis="x", rotation=60, labelsize=7)
    last.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
