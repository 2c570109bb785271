"""Names to entities: the alias index search reads, and a newly declared entity resolved against the stored ones.

A new id whose name, alias or description matches a stored entity is kept as its
own record and merged into that entity (the merge is recorded and can be undone).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from agentmem.model import EntityDecl, MediaRef
from agentmem.names import normalize_name
from agentmem.search.resolution import best_match, select_diverse

if TYPE_CHECKING:
    from agentmem.memory import Memory

# Most vectors kept per entity and modality (the most diverse ones).
TEXT_VECTOR_CAP = 8
IMAGE_VECTOR_CAP = 16


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


def alias_index(mem: Memory) -> dict[str, set[str]]:
    """The memory's alias index, up to date with its aliases and merges."""
    return mem.cache_of(AliasIndex).current(mem.store)


def apply_entity(store, d: EntityDecl, desc_vec: np.ndarray | None, media_vecs: list) -> None:
    """Store one validated entity declaration (inside the caller's transaction); a new id that matches a stored
    entity by name, alias or description is kept as its own record and merged into it."""
    now, t = time.time(), float(d.t)
    new = not store.entity_exists(d.id)
    kind, name = (d.kind or "other", d.name or d.id) if new else (d.kind, d.name)
    match = None
    if new and d.resolve:
        match = match_new_entity(store, d.id, d.kind or "other", [d.name or d.id, *d.aliases], desc_vec)
    if new:
        store.insert_entity(d.id, kind, name, now)
    else:
        store.touch_entity(d.id, now, kind=kind, name=name)
    for a in dict.fromkeys(x for x in [d.id, name, *d.aliases] if x):
        if normalize_name(a):
            store.add_alias(d.id, a, normalize_name(a))
    for key, value in d.attributes.items():
        store.set_attribute(d.id, key, str(value), t, "declared")
    if desc_vec is not None:
        store.add_entity_vector(d.id, "text", desc_vec, "description", t)
        cap_vectors(store, d.id, "text", TEXT_VECTOR_CAP)
    for m, vec in zip(d.media, media_vecs):
        store.add_media("entity", d.id, MediaRef(m.path, m.t, m.caption, m.kind, vec))
        if vec is not None:
            store.add_entity_vector(d.id, "image", np.asarray(vec), m.path or "", m.t)
    cap_vectors(store, d.id, "image", IMAGE_VECTOR_CAP)
    if match is not None:
        store.record_merge(d.id, match.entity_id, f"{match.stage} match on write", match.score, now)


def match_new_entity(store, id: str, kind: str, names: list[str], vec: np.ndarray | None):
    """The stored entity a new declaration names (:func:`agentmem.search.resolution.best_match`), if any."""
    cands: dict[str, list[str]] = {}
    kinds: dict[str, str] = {}
    for eid, k, _ in store.canonical_entities():
        kinds[eid] = k
        cands[eid] = []
    for eid, _, norm in store.alias_rows():
        if eid in cands:
            cands[eid].append(norm)
    vectors = {}
    if vec is not None:
        for eid in cands:
            vs = store.entity_vectors([eid], "text")
            if vs:
                vectors[eid] = max((v for _, v, _ in vs), key=lambda v: float(np.dot(v, vec)))
    return best_match(names, cands, kind=kind, kinds=kinds, vector=vec, vectors=vectors)


def cap_vectors(store, entity_id: str, modality: str, cap: int) -> None:
    """Keep at most ``cap`` of the entity's vectors of ``modality``, the most diverse."""
    rows = store.entity_vectors([entity_id], modality)
    keep = set(select_diverse([v for _, v, _ in rows], cap))
    store.delete_entity_vectors(r[0] for i, r in enumerate(rows) if i not in keep)
