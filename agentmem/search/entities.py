"""Names to entities for search: the index of normalized aliases to canonical entity ids, kept per memory."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class AliasIndex:
    """Normalized alias -> canonical entity ids, rebuilt when an alias or a merge changes.

    One instance lives on each memory (``mem.cache_of(AliasIndex)``); merges are
    followed by the store's one rule (:meth:`agentmem.storage.store.Store.canonical_map`).
    """

    version: tuple[int, int, int] | None = None
    index: dict[str, set[str]] = field(default_factory=dict)

    def current(self, store) -> dict[str, set[str]]:
        version = store.alias_version()
        if version != self.version:
            canon = store.canonical_map()
            index: dict[str, set[str]] = {}
            for eid, _, norm in store.alias_rows():
                index.setdefault(norm, set()).add(canon.get(eid, eid))
            self.version, self.index = version, index
        return self.index


def alias_index(mem) -> dict[str, set[str]]:
    """The memory's alias index, up to date with its aliases and merges."""
    return mem.cache_of(AliasIndex).current(mem.store)
