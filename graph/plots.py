"""Pictures: an entity's timeline, and the entity graph. matplotlib is imported only when drawing."""

from __future__ import annotations

from pathlib import Path

import networkx as nx

from graph.explore import Timeline


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_timeline(tl: Timeline, out: str | Path) -> Path:
    """Draw ``tl``: events as dots on one lane per location, facts and attribute values as bars."""
    plt = _pyplot()
    out = Path(out)
    lanes = list(dict.fromkeys(e.location or "(no location)" for e in tl.events))
    bars = [(f"{f['predicate']} {f['object']}", f["t_from"], f["t_to"]) for f in tl.facts]
    bars += [(f"{a['key']} = {a['value'][:28]}", a["t_from"], a["t_to"]) for a in tl.attributes]
    times = [e.t_start for e in tl.events] + [b[1] for b in bars] + [e.t_end for e in tl.events]
    lo, hi = (min(times), max(times)) if times else (0.0, 1.0)
    hi = hi if hi > lo else lo + 1.0
    rows = len(lanes) + len(bars)
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.42 * max(rows, 1)))
    for i, lane in enumerate(lanes):
        xs = [e.t_start for e in tl.events if (e.location or "(no location)") == lane]
        ax.scatter(xs, [i] * len(xs), s=18, color="tab:blue")
        arch = [e.t_start for e in tl.events if (e.location or "(no location)") == lane and e.archived]
        if arch:
            ax.scatter(arch, [i] * len(arch), s=18, color="tab:grey")
    for j, (_, t_from, t_to) in enumerate(bars):
        y = len(lanes) + j
        end = hi if t_to is None else t_to
        ax.barh(y, end - t_from, left=t_from, height=0.5, color="tab:orange" if j < len(tl.facts) else "tab:green")
    ax.set_yticks(range(rows), [*lanes, *(b[0] for b in bars)], fontsize=8)
    ax.set_xlim(lo - 0.02 * (hi - lo), hi + 0.02 * (hi - lo))
    ax.set_xlabel("story time (s)")
    ax.set_title(f"{tl.name} ({tl.entity}): {len(tl.events)} events, {len(tl.facts)} facts")
    ax.invert_yaxis()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_graph(G: nx.MultiDiGraph, out: str | Path, max_nodes: int = 150) -> Path:
    """Draw the entity-level graph of ``G``: relation edges (width by weight), colours by community."""
    plt = _pyplot()
    out = Path(out)
    H = nx.Graph()
    for n, d in G.nodes(data=True):
        if d.get("type") == "entity":
            H.add_node(n, label=d.get("label", n))
    for u, v, d in G.edges(data=True):
        if d.get("type") == "relation" and u in H and v in H and u != v:
            w = H.get_edge_data(u, v, {"weight": 0.0})["weight"] + float(d.get("weight", 1.0))
            H.add_edge(u, v, weight=w)
    if H.number_of_nodes() > max_nodes:
        keep = sorted(H.degree(weight="weight"), key=lambda p: (-p[1], p[0]))[:max_nodes]
        H = H.subgraph([n for n, _ in keep]).copy()
    colour = {}
    communities = sorted(c for c, d in G.nodes(data=True) if d.get("type") == "community")
    for i, c in enumerate(communities):
        for u, _, ed in G.in_edges(c, data=True):
            if ed.get("type") == "member_of":
                colour[u] = i % 9
    fig, ax = plt.subplots(figsize=(9, 7))
    if H.number_of_nodes():
        pos = nx.spring_layout(H, seed=0, weight="weight")
        widths = (
            [0.4 + 2.5 * d["weight"] / max(w for *_, w in H.edges(data="weight")) for *_, d in H.edges(data=True)]
            if H.number_of_edges()
            else []
        )
        nx.draw_networkx_edges(H, pos, ax=ax, width=widths, alpha=0.4)
        nx.draw_networkx_nodes(
            H, pos, ax=ax, node_size=120, cmap="tab10", vmin=0, vmax=9, node_color=[colour.get(n, 9) for n in H.nodes]
        )
        nx.draw_networkx_labels(H, pos, ax=ax, labels={n: H.nodes[n]["label"][:18] for n in H.nodes}, font_size=7)
    ax.set_title(f"entity graph: {H.number_of_nodes()} entities, {H.number_of_edges()} linked pairs")
    ax.axis("off")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
