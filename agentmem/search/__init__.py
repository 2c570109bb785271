"""Search layer: a :class:`~agentmem.search.query.Query` run over the store, fused from ranked signals.

Modules: :mod:`.query` (candidates, lexical, dense and image lists, the numbered steps of a query),
:mod:`.fusion` (presets and signals as data), :mod:`.resolution` (names, mentions, diverse picks),
:mod:`.entities` (merges followed to the canonical entity), :mod:`.hits` (a hit from an event).
"""
