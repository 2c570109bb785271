"""Storage layer: the SQLite store and its schema, the context index of windows and groups, the vector index.

Only this layer (and :mod:`graph.persist` for the graph's tables) runs SQL. Modules: :mod:`.store` (every
table of events, entities, relations, media and vectors), :mod:`.schema` (DDL and migrations),
:mod:`.context` (window and group documents), :mod:`.vector_index` and :mod:`.index_probe` (the Chroma
index and its repair), :mod:`.vectors` (the in-process vector cache), :mod:`.sql` (bound ``IN`` lists).
"""
