"""Storage layer: the SQLite store and its schema, the context index of windows and groups, the vector index.

Only this layer (and the graph's :mod:`graph.persist`, :mod:`graph.tables` and :mod:`graph.journal` for its
tables) runs SQL or holds the connection. Higher layers call the :class:`~agentmem.storage.store.Store`'s
methods and this layer's functions with the store, and get typed rows back (dataclasses, named tuples).
Modules: :mod:`.store` (every table of events, entities, relations, media and vectors), :mod:`.schema` (DDL and
migrations), :mod:`.context` (window and group documents), :mod:`.lexical` (FTS5 BM25), :mod:`.filters`
(row-id reads for search), :mod:`.keyframes` (written-back frames), :mod:`.frames` (posed frames and map
checkpoints), :mod:`.paths` (stored file paths), :mod:`.vector_index` and :mod:`.index_probe` (the Chroma
index and its repair), :mod:`.vectors` (the in-process vector cache), :mod:`.sql` (bound ``IN`` lists).
"""
