"""The graph's rows in the store's SQLite, and its export to GraphML and node-link JSON.

Node ids carry their type: ``entity:mara``, ``event:e01``, ``episode:3``,
``arc:1``, ``community:0``. Entity and event nodes are the ``entities`` and
``events`` tables themselves; ``graph_nodes`` holds the episodes, arcs and
communities, ``graph_edges`` the relation, summarizes and member_of edges, and
``graph_event_episode`` which episode each event belongs to (the episode's
``summarizes`` edges to its events). Nothing is pickled: vectors are float32
blobs, structured fields are JSON text.

Every write bumps ``seq`` (kept in ``meta``), and each written row carries the
``seq`` of its write, so an in-memory view can catch up by reading the rows
newer than the last one it saw.

Examples
--------
>>> node_id("episode", 3), split_node_id("event:conv-26:D1:3")
('episode:3', ('event', 'conv-26:D1:3'))
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np

from agentmem.storage.blobs import blob_to_vec, vec_to_blob
from agentmem.storage.sql import rows_in

if TYPE_CHECKING:
    from agentmem.storage.store import Store

NULL_PROV = "'{}'"
_NODE_COLS = "id, type, level, label, t_start, t_end, summary, vec, data, parent, archived"
_EDGE_COLS = "id, src, dst, type, predicate, t_from, t_to, weight, evidence, t_last, archived"


def node_id(kind: str, key: str | int) -> str:
    """The graph id of a record: its type, a colon, its own id."""
    return f"{kind}:{key}"


def split_node_id(nid: str) -> tuple[str, str]:
    """(type, own id) of a graph id; event ids may themselves contain colons."""
    kind, _, key = nid.partition(":")
    return kind, key


@dataclass
class GraphNode:
    """An episode, arc or community: a parent with a summary, or a group of entities."""

    id: str
    type: str
    level: int
    label: str
    t_start: float | None = None
    t_end: float | None = None
    summary: str = ""
    vec: np.ndarray | None = None
    data: dict[str, Any] = field(default_factory=dict)
    parent: str | None = None
    archived: bool = False


@dataclass
class GraphEdge:
    """A typed edge; ``relation`` edges carry a predicate, a validity interval, a weight and evidence."""

    src: str
    dst: str
    type: str
    predicate: str = ""
    t_from: float = 0.0
    t_to: float | None = None
    weight: float = 1.0
    evidence: list[str] = field(default_factory=list)
    t_last: float = 0.0
    archived: bool = False
    id: int | None = None

    @property
    def key(self) -> tuple[str, str, str, str, float]:
        return (self.src, self.type, self.predicate, self.dst, self.t_from)


@dataclass
class EventRecord:
    """What the graph reads of a stored event: the row, its participants and its text vector."""

    rid: int
    id: str
    t_start: float
    t_end: float
    text: str
    participants: list[str] = field(default_factory=list)
    location: str | None = None
    group: str | None = None
    vec: np.ndarray | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    archived: bool = False


def read_events(
    store: Store,
    where: str,
    args: Sequence[Any] = (),
    *,
    order: str = "e.rid",
    limit: int | None = None,
    provenance: bool = True,
) -> list[EventRecord]:
    """Events matching an SQL condition on ``events e``, with participants (stored ids, in id order).

    For the graph's storage modules: the others call the named reads of :mod:`graph.tables`.
    """
    sql = (
        f"SELECT e.rid, e.id, e.t_start, e.t_end, e.text, e.location, e.grp, e.vec, "
        f"{'e.provenance' if provenance else NULL_PROV}, e.archived FROM events e WHERE {where} ORDER BY {order}"
    )
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    rows = store.conn.execute(sql, list(args)).fetchall()
    out = [
        EventRecord(
            rid=r[0],
            id=r[1],
            t_start=r[2],
            t_end=r[3],
            text=r[4],
            location=r[5],
            group=r[6],
            vec=blob_to_vec(r[7]),
            provenance=json.loads(r[8]) if provenance else {},
            archived=bool(r[9]),
        )
        for r in rows
    ]
    by_rid = {e.rid: e for e in out}
    rids = sorted(by_rid)
    # Consecutive rids are the common case (a batch); a range scan of the rid index beats a long IN list.
    part: Iterable[tuple]
    if rids and rids[-1] - rids[0] < 4 * len(rids):
        part = store.conn.execute(
            "SELECT rid, entity_id FROM event_entities WHERE role='participant' "
            "AND rid BETWEEN ? AND ? ORDER BY rid, entity_id",
            (rids[0], rids[-1]),
        )
    else:
        part = rows_in(
            store.conn,
            "SELECT rid, entity_id FROM event_entities WHERE role='participant' AND rid IN ({in}) "
            "ORDER BY rid, entity_id",
            rids,
        )
    for rid, ent in part:
        if rid in by_rid:
            by_rid[rid].participants.append(ent)
    return out


# -- counters and watermarks ------------------------------------------------------
def get_mark(store: Store, name: str, default: float = 0) -> float:
    row = store.conn.execute("SELECT value FROM meta WHERE key=?", (f"graph.{name}",)).fetchone()
    return default if row is None else float(row[0])


def set_mark(store: Store, name: str, value: float) -> None:
    store.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (f"graph.{name}", repr(value)))


def bump_seq(store: Store) -> int:
    """The next write sequence number (call inside the write's transaction)."""
    seq = int(get_mark(store, "seq")) + 1
    set_mark(store, "seq", seq)
    return seq


# -- nodes ----------------------------------------------------------------------------
def write_nodes(store: Store, nodes: Iterable[GraphNode], seq: int) -> int:
    rows = [
        (
            n.id,
            n.type,
            n.level,
            n.label,
            n.t_start,
            n.t_end,
            n.summary,
            vec_to_blob(n.vec),
            json.dumps(n.data, sort_keys=True),
            n.parent,
            int(n.archived),
            seq,
        )
        for n in nodes
    ]
    store.conn.executemany(
        f"INSERT INTO graph_nodes({_NODE_COLS}, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(id) DO UPDATE SET type=excluded.type, level=excluded.level, label=excluded.label, "
        "t_start=excluded.t_start, t_end=excluded.t_end, summary=excluded.summary, vec=excluded.vec, "
        "data=excluded.data, parent=excluded.parent, archived=excluded.archived, seq=excluded.seq",
        rows,
    )
    return len(rows)


def _node(r: Sequence[Any]) -> GraphNode:
    return GraphNode(
        id=r[0],
        type=r[1],
        level=r[2],
        label=r[3],
        t_start=r[4],
        t_end=r[5],
        summary=r[6],
        vec=blob_to_vec(r[7]),
        data=json.loads(r[8]),
        parent=r[9],
        archived=bool(r[10]),
    )


def read_nodes(store: Store, where: str = "1=1", args: Sequence[Any] = ()) -> list[GraphNode]:
    """Nodes matching an SQL condition on ``graph_nodes``, in (level, t_start, id) order (see :func:`read_events`)."""
    rows = store.conn.execute(
        f"SELECT {_NODE_COLS} FROM graph_nodes WHERE {where} ORDER BY level, t_start, id", list(args)
    ).fetchall()
    return [_node(r) for r in rows]


# -- edges ----------------------------------------------------------------------------
def delete_edge(store: Store, edge_id: int) -> None:
    store.conn.execute("DELETE FROM graph_edges WHERE id=?", (edge_id,))


def write_edges(store: Store, edges: Iterable[GraphEdge], seq: int) -> int:
    """Insert edges, or update the row with the same key (src, type, predicate, dst, t_from)."""
    rows = [
        (
            e.src,
            e.dst,
            e.type,
            e.predicate,
            e.t_from,
            e.t_to,
            e.weight,
            json.dumps(e.evidence),
            e.t_last,
            int(e.archived),
            seq,
        )
        for e in edges
    ]
    store.conn.executemany(
        "INSERT INTO graph_edges(src, dst, type, predicate, t_from, t_to, weight, evidence, t_last, archived, seq) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(src, type, predicate, dst, t_from) DO UPDATE SET "
        "t_to=excluded.t_to, weight=excluded.weight, evidence=excluded.evidence, t_last=excluded.t_last, "
        "archived=excluded.archived, seq=excluded.seq",
        rows,
    )
    return len(rows)


def _edge(r: Sequence[Any]) -> GraphEdge:
    return GraphEdge(
        id=r[0],
        src=r[1],
        dst=r[2],
        type=r[3],
        predicate=r[4],
        t_from=r[5],
        t_to=r[6],
        weight=r[7],
        evidence=json.loads(r[8]),
        t_last=r[9],
        archived=bool(r[10]),
    )


def read_edges(store: Store, where: str = "1=1", args: Sequence[Any] = ()) -> list[GraphEdge]:
    """Edges matching an SQL condition on ``graph_edges``, in insertion order (see :func:`read_events`)."""
    rows = store.conn.execute(f"SELECT {_EDGE_COLS} FROM graph_edges WHERE {where} ORDER BY id", list(args)).fetchall()
    return [_edge(r) for r in rows]


# -- export ---------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """A value GraphML can hold: numbers, strings and booleans as they are, the rest as JSON."""
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.ndarray):
        return json.dumps([round(float(x), 6) for x in value])
    return json.dumps(value, sort_keys=True, default=str)


def _plain_attrs(attrs: dict[str, Any], drop: Iterable[str]) -> dict[str, Any]:
    skip = set(drop)
    return {k: _plain(v) for k, v in attrs.items() if v is not None and k not in skip}


def export_graph(G: nx.MultiDiGraph, path: str | Path, fmt: str | None = None, *, vectors: bool = False) -> Path:
    """Write ``G`` as GraphML (``.graphml``) or node-link JSON (``.json``).

    List and dict attributes are stored as JSON strings (GraphML holds only
    scalars); ``None`` attributes are left out, and so are vectors unless
    ``vectors`` is true. Both files read back with networkx.

    Examples
    --------
    >>> import tempfile, os
    >>> G = nx.MultiDiGraph()
    >>> G.add_edge("entity:a", "entity:b", key=0, type="relation", predicate="holds", evidence=["e1"])
    0
    >>> p = export_graph(G, os.path.join(tempfile.mkdtemp(), "g.graphml"))
    >>> H = nx.read_graphml(p, force_multigraph=True)
    >>> [json.loads(d["evidence"]) for _, _, d in H.edges(data=True)]
    [['e1']]
    """
    path = Path(path)
    fmt = fmt or ("json" if path.suffix == ".json" else "graphml")
    drop = () if vectors else ("vec",)
    H = nx.MultiDiGraph()
    H.graph.update(_plain_attrs(G.graph, drop))
    for n, attrs in G.nodes(data=True):
        H.add_node(n, **_plain_attrs(attrs, drop))
    for u, v, k, attrs in G.edges(keys=True, data=True):
        H.add_edge(u, v, key=k, **_plain_attrs(attrs, drop))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if fmt == "graphml":
        nx.write_graphml(H, tmp)
    elif fmt == "json":
        tmp.write_text(json.dumps(nx.node_link_data(H, edges="edges"), indent=1))
    else:
        from agentmem.errors import BadInputError

        raise BadInputError(f"unknown export format {fmt!r}; use graphml or json")
    tmp.replace(path)
    return path


def read_node_link(path: str | Path) -> nx.MultiDiGraph:
    """Read a node-link JSON file written by :func:`export_graph`."""
    return nx.node_link_graph(json.loads(Path(path).read_text()), directed=True, multigraph=True, edges="edges")
