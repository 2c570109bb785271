"""The relation graph of a memory, its hierarchy of summaries, and periodic compression.

Modules: :mod:`graph.build` (the graph from the store, incremental updates, the
networkx view), :mod:`graph.persist` (graph tables, GraphML / node-link JSON
export), :mod:`graph.relations` (facts, extractors, contradictions),
:mod:`graph.hierarchy` (episodes, arcs, communities), :mod:`graph.summaries`,
:mod:`graph.tables` and :mod:`graph.journal` (the graph's SQL),
:mod:`graph.compress` (compression), :mod:`graph.archive` (restore, run
history), :mod:`graph.search` (coarse-to-fine retrieval, graph expansion),
:mod:`graph.active` (the core ranking over the active tier),
:mod:`graph.explore` and :mod:`graph.plots`
(neighbours, paths, timelines, pictures), :mod:`graph.memory` (the
:class:`GraphMemory` facade) and :mod:`agentmem.cli.graph`.

The names below are imported on first use, so ``import graph`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "GraphMemory": "graph.memory",
    "GraphConfig": "graph.build",
    "UpdateReport": "graph.build",
    "load_graph": "graph.build",
    "update": "graph.build",
    "rebuild": "graph.build",
    "refresh": "graph.build",
    "CompressionPolicy": "graph.compress",
    "CompressionReport": "graph.compress",
    "RestoreReport": "graph.archive",
    "compress": "graph.compress",
    "restore": "graph.archive",
    "SegmentationRule": "graph.hierarchy",
    "ArcRule": "graph.hierarchy",
    "ExtractiveSummarizer": "graph.summaries",
    "TransformersSummarizer": "graph.summaries",
    "Summarizer": "graph.summaries",
    "Extractor": "graph.relations",
    "CoOccurrenceExtractor": "graph.relations",
    "Statement": "graph.relations",
    "FUNCTIONAL_PREDICATES": "graph.relations",
    "GraphSearchParams": "graph.search",
    "search": "graph.search",
    "export_graph": "graph.persist",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'graph' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
