"""The :class:`Memory`: one directory holding entity slots, events, relations and their index.

Examples
--------
>>> import tempfile
>>> from agentmem import Memory
>>> mem = Memory(tempfile.mkdtemp(), text_embedder=None)
>>> mem.add_entity("mara", kind="character", name="Mara", aliases=["the keeper"],
...                attributes={"coat": "yellow raincoat"})
'mara'
>>> mem.set_attribute("the keeper", "coat", "red raincoat", t=40)
>>> mem.state_at("mara", 10)["coat"], mem.state_at("mara", 50)["coat"]
('yellow raincoat', 'red raincoat')
>>> mem.close()
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np

from agentmem.encoders.embedders import (
    DescriptorImageEmbedder,
    ImageEmbedder,
    SentenceTransformerEmbedder,
    TextEmbedder,
)
from agentmem.errors import BadInputError, IndexWarning, NotFoundError, StoreError, UnknownEntityError
from agentmem.facts import store_fact
from agentmem.formats.records import check_id, parse_event, search_text
from agentmem.model import ENTITY_KINDS, EntityDecl, EntitySlot, Event, Hit, MediaRef, Merge, Relation
from agentmem.search.entities import apply_entity
from agentmem.storage.context import rebuild_context, refresh_context
from agentmem.storage.store import Store
from agentmem.storage.vector_index import TOKEN_ENV, ChromaIndex, IndexConfig, SyncReport, rebuild, repair, sync
from agentmem.storage.vectors import VectorCache

C = TypeVar("C")

_DEFAULT = object()


class Memory:
    """A durable multimodal memory in one directory.

    Parameters
    ----------
    directory : str or Path
        The memory's directory; created if missing.
    text_embedder : TextEmbedder or None, optional
        Defaults to all-MiniLM-L6-v2 from the offline package (loaded lazily
        on first use). ``None`` disables dense text search.
    image_embedder : ImageEmbedder or None, optional
        Defaults to :class:`~agentmem.encoders.embedders.DescriptorImageEmbedder`.
    chroma_url : str, optional
        ``http://HOST:PORT`` of a ``chroma run`` server; embedded by default.
        The choice is remembered in the directory.
    chroma_token : str, optional
        Token for a server started with Chroma's token authentication;
        defaults to ``$AGENTMEM_CHROMA_TOKEN``. Never stored.
    auto_sync : bool
        Apply index work right after each write. With ``False``, the index
        catches up on :meth:`sync_index`; queries still see every event.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        text_embedder: TextEmbedder | None | object = _DEFAULT,
        image_embedder: ImageEmbedder | None | object = _DEFAULT,
        chroma_url: str | None = None,
        chroma_token: str | None = None,
        auto_sync: bool = True,
    ):
        self.dir = Path(directory)
        self.store = Store(self.dir)
        self.text: TextEmbedder | None = (
            SentenceTransformerEmbedder() if text_embedder is _DEFAULT else cast("TextEmbedder | None", text_embedder)
        )
        self.image: ImageEmbedder | None = (
            DescriptorImageEmbedder() if image_embedder is _DEFAULT else cast("ImageEmbedder | None", image_embedder)
        )
        self._check_embedders()
        url = chroma_url if chroma_url is not None else self.store.get_meta("chroma_url")
        config = IndexConfig.parse(url, chroma_token or os.environ.get(TOKEN_ENV))
        with self.store.transaction():
            self.store.set_meta("chroma_url", config.url or "")
        namespace = "_" + (self.store.get_meta("uid") or "") if config.url else ""
        self.index = ChromaIndex(self.dir, config, namespace, store=self.store)
        self.auto_sync = auto_sync
        self.vectors = VectorCache(self.store)
        # Caches of derived read data, one per cache class; each is owned and validated by the code that uses it.
        self._caches: dict[type, Any] = {}
        self._worker: ThreadPoolExecutor | None = None

    def cache_of(self, kind: type[C]) -> C:
        """This memory's instance of cache class ``kind``, made on first use.

        The class belongs to the code that reads through it (the alias index of
        the search layer, the graph's active vectors); the memory only keeps one
        per open memory, so caches live and die with it.
        """
        found = self._caches.get(kind)
        if found is None:
            found = self._caches[kind] = kind()
        return found

    def _check_embedders(self) -> None:
        with self.store.transaction():
            if self.store.get_meta("uid") is None:
                self.store.set_meta("uid", f"{time.time_ns():x}")
            for key, emb in (("text_embedder", self.text), ("image_embedder", self.image)):
                if emb is None:
                    continue
                saved = self.store.get_meta(key)
                if saved is None:
                    self.store.set_meta(key, emb.name)
                elif saved != emb.name:
                    raise StoreError(
                        f"{self.dir} was built with {key} {saved!r}, not {emb.name!r}: "
                        "open it with the same embedder, or rebuild it into a new directory"
                    )

    def close(self) -> None:
        if self._worker is not None:
            self._worker.shutdown(wait=True)
            self._worker = None
        self.index.release()
        self.store.close()

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future:
        """Run ``fn(*args)`` on this memory's worker thread (created on first use).

        Queries embed their text there while SQLite ranks lexically: both
        release the GIL for their heavy parts, so on two cores they overlap.
        """
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agentmem")
        return self._worker.submit(fn, *args)

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- entities -------------------------------------------------------------
    def add_entity(
        self,
        id: str,
        *,
        kind: str | None = None,
        name: str | None = None,
        aliases: Sequence[str] = (),
        attributes: dict[str, str] | None = None,
        media: Sequence[MediaRef] = (),
        t: float = 0.0,
        resolve: bool = True,
    ) -> str:
        """Declare or update an entity; returns the canonical id it resolves to.

        A new id whose name or alias matches an existing entity (see
        :mod:`agentmem.search.resolution`) is kept as its own record and merged into
        that entity; the merge is recorded and :meth:`split` undoes it.
        """
        decl = EntityDecl(id, kind, name, tuple(aliases), dict(attributes or {}), tuple(media), t, resolve)
        self.write(entities=[decl])
        return self.store.canonical(id)

    def write(
        self,
        *,
        entities: Sequence[EntityDecl] = (),
        events: Iterable[Event | dict[str, Any]] = (),
        relations: Sequence[Relation] = (),
        embeddings: np.ndarray | None = None,
        batch_size: int = 2000,
        progress: Callable[[int], None] | None = None,
    ) -> list[str]:
        """Store entities, then events, then relations, in one transaction; returns the event ids.

        Everything is validated and embedded first, without holding the write
        lock; then one transaction writes it all, or nothing if any part is
        refused (an unknown entity, an event id stored with other content, ...).
        Index work is applied after the commit.
        """
        # 1. Validate and embed, outside the lock.
        ents = [self._prepare_entity(d) for d in entities]
        evs = self._parse_events(events)
        if embeddings is not None and len(embeddings) != len(evs):
            raise BadInputError(f"embeddings has {len(embeddings)} rows for {len(evs)} events")
        vecs = embeddings if embeddings is not None else self._embed_events(evs, batch_size, progress)
        media_vecs = [self._embed_media(e.media) for e in evs]
        self._check_immutable(evs)
        # 2. Write it all in one transaction.
        with self.store.transaction():
            for prepared in ents:
                apply_entity(self.store, *prepared)
            self._resolve_event_entities(evs)
            self._write_events(evs, vecs, media_vecs)
            for r in relations:
                self._apply_relation(r)
        if progress is not None and embeddings is not None:
            progress(len(evs))
        # 3. Index work, after the commit.
        if self.auto_sync:
            self._sync_after_write()
        return [e.id for e in evs]

    def _prepare_entity(self, d: EntityDecl) -> tuple[EntityDecl, np.ndarray | None, list]:
        check_id(d.id, f"entity {d.id!r}")
        if d.kind is not None and d.kind not in ENTITY_KINDS:
            raise BadInputError(f"entity {d.id!r}: kind must be one of {list(ENTITY_KINDS)}, got {d.kind!r}")
        media_vecs = self._embed_media(list(d.media))
        exists = self.store.entity_exists(d.id)
        described = not exists or "appearance" in d.attributes or "description" in d.attributes
        name = d.name or (d.id if not exists else self.store.entity_name(d.id))
        desc_vec = self._entity_text_vector(name, d.attributes) if described else None
        return d, desc_vec, media_vecs

    def _entity_text_vector(self, name: str, attributes: dict[str, str]) -> np.ndarray | None:
        if self.text is None:
            return None
        desc = attributes.get("appearance") or attributes.get("description")
        return self.text.embed([f"{name}. {desc}" if desc else name])[0]

    def resolve_entity(self, ref: str) -> str:
        """Canonical id of an entity given by id, name or alias."""
        return self.store.resolve_entity(ref)

    def stored_entity_id(self, ref: str, where: str) -> str:
        """The stored id a record should reference: the id itself if it exists, else the one ``ref`` resolves to.

        An unknown or ambiguous ``ref`` is an :class:`UnknownEntityError` that names ``where``.
        """
        if self.store.entity_exists(ref):
            return ref
        try:
            return self.resolve_entity(ref)
        except UnknownEntityError as exc:
            raise UnknownEntityError(f"{where}: {exc}") from None

    def set_attribute(self, entity: str, key: str, value: str, t: float, source: str | None = None) -> None:
        """Give ``entity`` the attribute ``value`` from story time ``t`` on."""
        eid = self.resolve_entity(entity)
        with self.store.transaction():
            self.store.set_attribute(eid, key, str(value), float(t), source)
            self.store.touch_entity(eid, time.time())

    def entity(self, ref: str) -> EntitySlot:
        return self.store.entity_slot(self.resolve_entity(ref))

    def entities(self, kind: str | None = None) -> list[EntitySlot]:
        return [self.store.entity_slot(eid) for eid, k, _ in self.store.canonical_entities() if kind in (None, k)]

    def state_at(self, entity: str, t: float) -> dict[str, str]:
        """Attribute values of ``entity`` valid at story time ``t``."""
        return self.entity(entity).state_at(float(t))

    def merge(self, source: str, target: str, reason: str = "manual") -> Merge:
        """Merge entity ``source`` into ``target``; undo with :meth:`split`."""
        s, tgt = self.resolve_entity(source), self.resolve_entity(target)
        if s == tgt:
            raise BadInputError(f"{source!r} and {target!r} are already the same entity ({s})")
        with self.store.transaction():
            mid = self.store.record_merge(s, tgt, reason, 1.0, time.time())
        return self.store.merge(mid)

    def split(self, merge_id: int) -> Merge:
        """Undo a recorded merge: the source entity and its events stand alone again."""
        with self.store.transaction():
            return self.store.undo_merge(merge_id, time.time())

    def merges(self) -> list[Merge]:
        return self.store.merges()

    # -- events ---------------------------------------------------------------
    def add_events(
        self,
        events: Iterable[Event | dict[str, Any]],
        *,
        embeddings: np.ndarray | None = None,
        batch_size: int = 2000,
        progress: Callable[[int], None] | None = None,
    ) -> list[str]:
        """Store events durably, all or none; returns their ids in input order.

        Every event is validated, embedded and its entities resolved before
        one transaction writes them all: when this returns, every event is on
        disk, and when it raises, none is. Ids already stored are skipped if
        identical and rejected if different (events are immutable).

        Parameters
        ----------
        embeddings : ndarray, optional
            Precomputed unit text vectors, one row per event (skips the embedder).
        batch_size : int
            Texts embedded per call to the text embedder.
        """
        return self.write(events=events, embeddings=embeddings, batch_size=batch_size, progress=progress)

    def _parse_events(self, events: Iterable[Event | dict[str, Any]]) -> list[Event]:
        evs = [e if isinstance(e, Event) else parse_event(e, f"event {i}") for i, e in enumerate(events)]
        seen: set[str] = set()
        for e in evs:
            if e.id in seen:
                raise BadInputError(f"event id {e.id!r} appears twice in one ingest")
            seen.add(e.id)
        return evs

    def _resolve_event_entities(self, evs: list[Event]) -> None:
        cache: dict[str, str] = {}

        def raw(ref: str, where: str) -> str:
            if ref not in cache:
                cache[ref] = self.stored_entity_id(ref, where)
            return cache[ref]

        for e in evs:
            e.participants = [raw(p, f"event {e.id} participants") for p in e.participants]
            if e.location is not None:
                e.location = raw(e.location, f"event {e.id} location")

    def _check_immutable(self, evs: list[Event]) -> set[str]:
        """The ids already stored; refuses one stored with other content (checked again inside the transaction)."""
        existing = self.store.existing_event_ids([e.id for e in evs])
        if not existing:
            return existing
        old = self.store.events_by_rid([self.store.rid_of(i) for i in existing])
        by_id = {o.id: o for o in old.values()}
        for e in evs:
            if e.id in existing and (by_id[e.id].text, by_id[e.id].t_start) != (e.text, e.t_start):
                raise BadInputError(f"event {e.id!r} is already stored with other content; events are immutable")
        return existing

    def _embed_events(
        self, evs: list[Event], batch_size: int, progress: Callable[[int], None] | None
    ) -> np.ndarray | None:
        if self.text is None or not evs:
            return None
        parts = []
        for start in range(0, len(evs), batch_size):
            chunk = evs[start : start + batch_size]
            parts.append(self.text.embed([search_text(e) for e in chunk]))
            if progress is not None:
                progress(len(chunk))
        return np.concatenate(parts)

    def _embed_media(self, media: list[MediaRef]) -> list[list[float] | None]:
        paths = [m.path for m in media if m.path and m.embedding is None]
        vecs = iter(self.image.embed_images(paths)) if (paths and self.image is not None) else iter(())
        out: list[list[float] | None] = []
        for m in media:
            if m.embedding is not None:
                out.append(m.embedding)
            elif m.path and self.image is not None:
                out.append(next(vecs).tolist())
            else:
                out.append(None)
        return out

    def _write_events(self, evs: list[Event], vecs: np.ndarray | None, media_vecs: list[list]) -> None:
        """Insert the new events, inside the caller's transaction."""
        if not evs:
            return
        existing = self._check_immutable(evs)
        now = time.time()
        fresh = [i for i, e in enumerate(evs) if e.id not in existing]
        for i in fresh:
            evs[i].ingested_at = now
        new_rids = self.store.insert_events(
            [(evs[i], search_text(evs[i]), None if vecs is None else vecs[i]) for i in fresh]
        )
        for i in fresh:
            e = evs[i]
            for m, mv in zip(e.media, media_vecs[i]):
                mid = self.store.add_media("event", e.id, MediaRef(m.path, m.t, m.caption, m.kind, mv))
                if mv is not None:
                    self.store.enqueue("upsert", "image", mid)
        if new_rids:
            added = [evs[i] for i in fresh]
            self.store.note_times(max(e.t_end - e.t_start for e in added), max(e.t_end for e in added))
        refresh_context(self.store, new_rids)

    def event(self, event_id: str) -> Event:
        rid = self.store.rid_of(event_id)
        return self.store.events_by_rid([rid])[rid]

    def add_relation(self, relation: Relation) -> int:
        """Store a fact about two entities (the relation graph builds on these); returns its row id."""
        with self.store.transaction():
            return self._apply_relation(relation)

    def _apply_relation(self, relation: Relation) -> int:
        s = self.stored_entity_id(relation.subject, "relation subject")
        o = self.stored_entity_id(relation.object, "relation object")
        r = Relation(s, relation.predicate, o, relation.t_from, relation.t_to, relation.evidence, relation.weight)
        return store_fact(self.store, r)[0]

    # -- index ----------------------------------------------------------------
    def _sync_after_write(self) -> None:
        """Apply index work right after a commit. The write stands whatever the index does: SQLite is the truth
        and the outbox keeps the work until the index takes it."""
        try:
            self.sync_index()
        except Exception as exc:  # noqa: BLE001 - any index failure here must not turn a committed write into an error
            warnings.warn(
                f"stored, but not yet indexed: {exc}; the index catches up on the next write or "
                "`agentmem index sync`, and queries read the vectors from SQLite meanwhile",
                IndexWarning,
                stacklevel=3,
            )

    def sync_index(self, progress: Callable[[int], None] | None = None) -> SyncReport:
        """Apply queued vector-index work (Chroma catches up with SQLite)."""
        return sync(self.store, self.index, progress=progress)

    def reconcile_index(self) -> dict[str, int | str]:
        """Probe the index, compare its ids with SQLite and repair; see :func:`agentmem.storage.vector_index.repair`."""
        return repair(self.store, self.index)

    def rebuild_index(self) -> SyncReport:
        """Rebuild the derived indexes from SQLite: the context index (windows, groups), then the vectors."""
        rebuild_context(self.store)
        return rebuild(self.store, self.index)

    # -- queries --------------------------------------------------------------
    def query(self, query: Any = None, /, **kwargs: Any) -> list[Hit]:
        """Search the memory; see :class:`agentmem.search.query.Query` for the fields."""
        from agentmem.search.query import Query, run_query

        q = query if query is not None else Query(**kwargs)
        return run_query(self, q)

    def stats(self) -> dict[str, Any]:
        counts = self.store.counts()
        t_min, t_max = self.store.time_span()
        return {
            **counts,
            "t_min": t_min,
            "t_max": t_max,
            "text_embedder": self.store.get_meta("text_embedder"),
            "image_embedder": self.store.get_meta("image_embedder"),
            "index": self.index.config.url or "embedded",
            "schema_version": int(self.store.get_meta("schema_version") or 0),
            "directory": str(self.dir),
        }

    def get_events(self, ids: Sequence[str]) -> list[Event]:
        rids = [self.store.rid_of(i) for i in ids]
        by = self.store.events_by_rid(rids)
        return [by[r] for r in rids]


__all__ = ["IndexWarning", "Memory", "NotFoundError", "search_text"]
