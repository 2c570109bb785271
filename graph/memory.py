"""``GraphMemory``: a :class:`agentmem.Memory` whose graph stays in step on write and is compressed periodically.

Examples
--------
>>> import tempfile
>>> from agentmem import Memory
>>> gm = GraphMemory(Memory(tempfile.mkdtemp(), text_embedder=None, image_embedder=None))
>>> for eid, kind in (("mara", "character"), ("tomas", "character"), ("harbor", "location")):
...     _ = gm.mem.add_entity(eid, kind=kind)
>>> _ = gm.add_events([{"id": "e1", "t_start": 0, "text": "Mara and Tomas row out", "participants": ["mara", "tomas"],
...                     "location": "harbor"}])
>>> sorted((d["predicate"], u, v) for u, v, d in gm.view().edges(data=True) if d["type"] == "relation")
[('co_located', 'entity:mara', 'entity:harbor'), ('co_located', 'entity:tomas', 'entity:harbor'), \
('co_participates', 'entity:mara', 'entity:tomas')]
>>> gm.close()
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from agentmem.model import Event, Hit, Relation
from graph.archive import RestoreReport, restore
from graph.build import GraphConfig, UpdateReport, load_graph, refresh, update
from graph.compress import CompressionPolicy, CompressionReport, compress
from graph.persist import get_mark
from graph.relations import FactResult, add_fact


class GraphMemory:
    """A memory plus its relation graph.

    Parameters
    ----------
    memory : agentmem.Memory
        The memory (it stays the owner of the store).
    config : GraphConfig, optional
        Episode and arc rules, extractor, summarizer.
    policy : CompressionPolicy, optional
        When compression runs (``policy.every`` events; 0 = only on demand) and what it keeps active.
    """

    def __init__(self, memory, *, config: GraphConfig | None = None, policy: CompressionPolicy | None = None):
        self.mem = memory
        self.store = memory.store
        self.config = config or GraphConfig()
        self.policy = policy or CompressionPolicy()
        self._views: dict[bool, nx.MultiDiGraph] = {}
        self.last_compression: CompressionReport | None = None

    @classmethod
    def open(
        cls,
        directory: str | Path,
        *,
        config: GraphConfig | None = None,
        policy: CompressionPolicy | None = None,
        **memory_kwargs: Any,
    ) -> GraphMemory:
        from agentmem.memory import Memory

        return cls(Memory(directory, **memory_kwargs), config=config, policy=policy)

    def close(self) -> None:
        self.mem.close()

    def __enter__(self) -> GraphMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writes ---------------------------------------------------------------------------
    def add_events(
        self,
        events: Iterable[Event | dict[str, Any]],
        *,
        embeddings: np.ndarray | None = None,
        batch_size: int = 2000,
        progress: Callable[[int], None] | None = None,
    ) -> list[str]:
        """Store events, update the graph, and compress when ``policy.every`` events have arrived since the last run."""
        ids = self.mem.add_events(events, embeddings=embeddings, batch_size=batch_size, progress=progress)
        self.update()
        if self.policy.every and self.pending() >= self.policy.every:
            self.last_compression = self.compress()
        return ids

    def pending(self) -> int:
        """Events stored since the last compression."""
        top = self.store.max_event_rid()
        return int(top - get_mark(self.store, "compressed_rid"))

    def add_fact(
        self,
        subject: str,
        predicate: str,
        object: str,
        t_from: float = 0.0,
        t_to: float | None = None,
        evidence: Sequence[str] = (),
    ) -> FactResult:
        """State a fact (entities by id, name or alias); a contradicted functional fact is closed at ``t_from``."""
        from agentmem.errors import BadInputError

        s, o = self._stored_id(subject, "subject"), self._stored_id(object, "object")
        missing = sorted(set(evidence) - self.store.existing_event_ids(list(evidence)))
        if missing:
            raise BadInputError(f"fact evidence names unknown events {missing}")
        t_to = None if t_to is None else float(t_to)
        res = add_fact(
            self.store, Relation(s, predicate, o, float(t_from), t_to, list(evidence)), self.config.functional
        )
        self.update()
        return res

    def _stored_id(self, ref: str, role: str) -> str:
        return self.mem.stored_entity_id(ref, f"fact {role}")

    def update(self, progress: Callable[[int], None] | None = None) -> UpdateReport:
        """Bring the graph tables up to date with everything stored (any writer)."""
        return update(self.store, self.config, progress)

    def compress(self, *, dry_run: bool = False, communities: bool | None = None) -> CompressionReport:
        return compress(self.store, self.policy, dry_run=dry_run, config=self.config, communities=communities)

    def restore(self, **kwargs: Any) -> RestoreReport:
        """See :func:`graph.archive.restore`."""
        return restore(self.store, **kwargs)

    # -- reads ----------------------------------------------------------------------------
    def view(self, include_archive: bool = False) -> nx.MultiDiGraph:
        """The networkx view, kept and refreshed incrementally between calls."""
        self.update()
        G = self._views.get(include_archive)
        G = load_graph(self.store, include_archive=include_archive) if G is None else refresh(G, self.store)
        self._views[include_archive] = G
        return G

    def search(self, query: Any = None, /, **kwargs: Any) -> list[Hit]:
        """Coarse-to-fine search fused with the core ranking; see :func:`graph.search.search`."""
        from agentmem.search.query import Query
        from graph.search import search

        self.update()
        return search(self.mem, query if query is not None else Query(**kwargs))

    def relations(self, entity: str | None = None) -> list[Relation]:
        return self.store.relations(None if entity is None else self.store.member_ids(self.mem.resolve_entity(entity)))
