"""The Chroma vector index, kept in step with SQLite through the outbox.

SQLite holds every vector; Chroma is a derived index. Writes queue index work
in the outbox in the same transaction as the data. :func:`sync` drains the
outbox with idempotent upserts and acknowledges only what Chroma accepted, so
a crash at any point leaves work to redo, never a lost or doubled record.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from agentmem.errors import StoreError
from agentmem.storage.blobs import blob_to_array
from agentmem.storage.sql import marks
from agentmem.storage.store import Store

COLLECTIONS = {"text": "agentmem_events_text", "image": "agentmem_media_image"}


TOKEN_ENV = "AGENTMEM_CHROMA_TOKEN"


class IndexUnavailableError(StoreError):
    """The vector index cannot be reached or refused us; SQLite still holds every write."""


@dataclass(frozen=True)
class IndexConfig:
    """Where the index lives: embedded under the memory directory, or a server URL (with its token)."""

    url: str | None = None
    token: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, value: str | None, token: str | None = None) -> IndexConfig:
        if value in (None, "", "embedded"):
            return cls(None)
        u = urlparse(value)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise StoreError(f"chroma url {value!r}: use http://HOST:PORT or 'embedded'")
        return cls(value, token or None)


@dataclass(frozen=True)
class Horizon:
    """What an embedded client can see: vectors acknowledged before the first client of its folder in this process
    connected (see :class:`_Loaded`).

    Another process's later writes reach the files but not this process's
    loaded HNSW, so queries score every row id above ``max_rid`` and every
    ``pending`` one exactly.
    """

    max_rid: int
    pending: frozenset[int]


@dataclass
class _Loaded:
    """The Chroma system this process shares for one embedded index folder.

    Chroma keeps one system per path in a process until its last client
    closes, and a client opened meanwhile reads that system's loaded HNSW. So
    what a client can see is fixed when the system starts, not when the client
    connects: every client of the folder takes the horizon of the first.
    """

    clients: int = 0
    horizon: Horizon | None = None


_LOADED: dict[str, _Loaded] = {}
_LOADED_LOCK = threading.Lock()


@dataclass(frozen=True)
class SyncReport:
    applied: int
    remaining: int
    seconds: float


class ChromaIndex:
    """Lazily connected Chroma client with one collection per modality."""

    def __init__(self, directory: Path, config: IndexConfig, namespace: str = "", store: Store | None = None):
        self.directory = Path(directory) / "chroma"
        self.config = config
        self._client = None
        self._cols: dict[str, object] = {}
        # One server may hold many memories: their collections are told apart by the memory's uid.
        self.namespace = namespace
        self._store = store
        self.horizon: Horizon | None = None
        self._users = self.directory.with_name("chroma.users")
        self._me: Path | None = None
        self._loaded_key: str | None = None
        # What the check after another process's crash found, if this client ran one (agentmem.storage.index_probe).
        self.recovered: dict | None = None

    def _connect(self):
        if self._client is None:
            if self.config.url is None:
                self._client = self._embedded_client()
            else:
                self._client = self._guard("connect", self._http_client)
        return self._client

    def _embedded_client(self):
        import chromadb
        from chromadb.config import Settings

        # The resolved path is both Chroma's key for the shared system and ours.
        key = str(self.directory.resolve())
        with _LOADED_LOCK:
            loaded = _LOADED.get(key, _Loaded())
            if self._store is not None:
                self.recovered = self._recover_after_crash()
                if loaded.horizon is None:
                    # Taken before the system starts: whatever is acknowledged after this, it may not have loaded.
                    loaded.horizon = Horizon(self._store.max_vector_rid(), frozenset(self._store.outbox_refs("text")))
                self.horizon = loaded.horizon
            client = chromadb.PersistentClient(path=key, settings=Settings(anonymized_telemetry=False))
            loaded.clients += 1
            _LOADED[key] = loaded
            self._loaded_key = key
        if self._store is not None:
            self._users.mkdir(exist_ok=True)
            self._me = self._users / f"{os.getpid()}-{id(self)}"
            self._me.touch()
        return client

    def _recover_after_crash(self) -> dict | None:
        """Check the index in a child process when a process that used it ended without closing it.

        Every process using the embedded index leaves a marker in ``chroma.users/`` until it closes the index.
        A marker of a process that no longer runs means it died (SIGKILL, a crash) and may have torn Chroma's
        files, which can crash the next process that writes to them. The check is
        :func:`agentmem.storage.index_probe.repair_in_child`; a broken index is moved aside and requeued from SQLite.
        """
        from agentmem.storage.index_probe import repair_in_child

        dead = [p for p in self._users.glob("*") if not _running(p.name)] if self._users.exists() else []
        if not dead:
            return None
        result = (
            repair_in_child(self._store.dir) if self._store is not None and self.directory.exists() else {"fixed": {}}
        )
        if "problem" in result and self._store is not None:
            result["moved_to"] = str(self.quarantine())
            self._store.requeue_all_vectors()
        for p in dead:
            p.unlink(missing_ok=True)
        return result

    def _http_client(self):
        import chromadb
        from chromadb.config import Settings

        auth = {}
        if self.config.token:
            auth = {
                "chroma_client_auth_provider": "chromadb.auth.token_authn.TokenAuthClientProvider",
                "chroma_client_auth_credentials": self.config.token,
            }
        u = urlparse(self.config.url)
        return chromadb.HttpClient(
            host=u.hostname,
            port=u.port or 8000,
            ssl=u.scheme == "https",
            settings=Settings(anonymized_telemetry=False, **auth),
        )

    def _guard(self, what: str, fn, *args, **kwargs):
        """Run a call on the server, turning any failure into one :class:`IndexUnavailableError`."""
        if self.config.url is None:
            return fn(*args, **kwargs)
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - httpx, chromadb and ValueError all mean "the server failed us"
            self._client, self._cols = None, {}
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            hint = ""
            if any(w in text.lower() for w in ("forbidden", "unauthorized", "auth", "401", "403")):
                hint = f"; the server wants a token: pass --chroma-token or set {TOKEN_ENV}"
            raise IndexUnavailableError(f"chroma server {self.config.url}: {what} failed ({text}){hint}") from None

    def collection(self, modality: str):
        if modality not in self._cols:
            name = COLLECTIONS[modality] + self.namespace
            client = self._connect()
            self._cols[modality] = self._guard(
                "open collection",
                client.get_or_create_collection,
                name,
                embedding_function=None,
                configuration={"hnsw": {"space": "cosine"}},
            )
        return self._cols[modality]

    def upsert(self, modality: str, ids: list[str], vecs: np.ndarray) -> None:
        col = self.collection(modality)
        self._guard("upsert", col.upsert, ids=ids, embeddings=vecs)

    def delete(self, modality: str, ids: list[str]) -> None:
        if ids:
            col = self.collection(modality)
            self._guard("delete", col.delete, ids=ids)

    def query(self, modality: str, vec: np.ndarray, n: int) -> list[tuple[int, float]]:
        """(ref, cosine similarity) of the ``n`` nearest, best first."""
        col = self.collection(modality)
        count = self._guard("count", col.count)
        if count == 0:
            return []
        res = self._guard(
            "query",
            col.query,
            query_embeddings=[vec.astype(np.float32)],
            n_results=min(n, count),
            include=["distances"],
        )
        return [(int(i), 1.0 - float(d)) for i, d in zip(res["ids"][0], res["distances"][0])]

    def count(self, modality: str) -> int:
        col = self.collection(modality)
        return int(self._guard("count", col.count))

    def all_ids(self, modality: str) -> set[int]:
        col = self.collection(modality)
        out: set[int] = set()
        offset, page = 0, 5000
        while True:
            got = self._guard("list ids", col.get, include=[], limit=page, offset=offset)["ids"]
            out.update(int(i) for i in got)
            if len(got) < page:
                return out
            offset += page

    def vectors_of(self, modality: str, ids: list[str]) -> dict[int, np.ndarray]:
        """The vectors the index holds for ``ids`` (what a probe compares with SQLite)."""
        col = self.collection(modality)
        got = self._guard("get", col.get, ids=ids, include=["embeddings"])
        return {int(i): np.asarray(v, dtype=np.float32) for i, v in zip(got["ids"], got["embeddings"])}

    def reset(self) -> None:
        """Drop the index; it is derived data and is rebuilt from SQLite."""
        client = self._connect()
        for modality in COLLECTIONS:
            try:
                client.delete_collection(COLLECTIONS[modality] + self.namespace)
            except Exception:  # noqa: BLE001 - chroma raises different types for a missing collection
                pass
        self._cols.clear()

    def quarantine(self) -> Path | None:
        """Move an embedded index that is broken aside, keeping it for inspection."""
        if self.config.url is not None or not self.directory.exists():
            return None
        self.release()
        dest = self.directory.with_name(f"chroma.broken-{time.time_ns()}")
        shutil.move(str(self.directory), dest)
        return dest

    def release(self) -> None:
        """Close the client. Chroma shares one system per path in a process until its last client closes; left
        open, the next client writes through old files (after a quarantine: "attempt to write a readonly
        database") and every memory ever opened keeps its index loaded."""
        if self._client is not None:
            self._client.close()
        if self._loaded_key is not None:
            _closed_client(self._loaded_key)
        if self._me is not None:
            self._me.unlink(missing_ok=True)
        self._client, self._cols, self.horizon, self._me, self._loaded_key = None, {}, None, None, None


def _closed_client(key: str) -> None:
    """Count one client of ``key`` closed; with the last one Chroma stops the system, so the next loads afresh."""
    with _LOADED_LOCK:
        loaded = _LOADED[key]
        loaded.clients -= 1
        if loaded.clients == 0:
            del _LOADED[key]


def _running(marker: str) -> bool:
    """Whether the process that left ``marker`` (``PID-...``) still runs."""
    try:
        os.kill(int(marker.split("-", 1)[0]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


def _vectors_for(store: Store, collection: str, refs: list[int]) -> dict[int, np.ndarray]:
    table = "events WHERE rid" if collection == "text" else "media WHERE id"
    key = "rid" if collection == "text" else "id"
    out: dict[int, np.ndarray] = {}
    for i in range(0, len(refs), 500):
        chunk = refs[i : i + 500]
        ph = marks(len(chunk))
        for ref, blob in store.conn.execute(f"SELECT {key}, vec FROM {table} IN ({ph}) AND vec IS NOT NULL", chunk):
            out[int(ref)] = blob_to_array(blob)
    return out


def sync(store: Store, index: ChromaIndex, *, batch: int = 2000, progress=None) -> SyncReport:
    """Apply queued index work in order; returns how much was applied and what is left."""
    t0 = time.perf_counter()
    applied = 0
    while True:
        rows = store.outbox_batch(batch)
        if not rows:
            break
        for collection in ("text", "image"):
            ups = [ref for _, op, col, ref in rows if col == collection and op == "upsert"]
            dels = [ref for _, op, col, ref in rows if col == collection and op == "delete"]
            vecs = _vectors_for(store, collection, list(dict.fromkeys(ups)))
            if vecs:
                keys = list(vecs)
                index.upsert(collection, [str(k) for k in keys], np.stack([vecs[k] for k in keys]))
            index.delete(collection, [str(d) for d in dels])
        store.ack_outbox([seq for seq, _, _, _ in rows])
        applied += len(rows)
        if progress is not None:
            progress(len(rows))
    return SyncReport(applied=applied, remaining=store.outbox_size(), seconds=time.perf_counter() - t0)


def reconcile(store: Store, index: ChromaIndex) -> dict[str, int]:
    """Queue whatever the index lacks and drop what it has extra, by comparing ids with SQLite."""
    fixed: dict[str, int] = {}
    for collection, sql in (
        ("text", "SELECT rid FROM events WHERE vec IS NOT NULL"),
        ("image", "SELECT id FROM media WHERE vec IS NOT NULL"),
    ):
        truth = {int(r[0]) for r in store.conn.execute(sql)}
        have = index.all_ids(collection)
        pending = set(store.outbox_refs(collection))
        missing = sorted(truth - have - pending)
        extra = sorted(have - truth)
        with store.transaction():
            for ref in missing:
                store.enqueue("upsert", collection, ref)
            for ref in extra:
                store.enqueue("delete", collection, ref)
        fixed[f"{collection}_missing"] = len(missing)
        fixed[f"{collection}_extra"] = len(extra)
    return fixed


def rebuild(store: Store, index: ChromaIndex) -> SyncReport:
    """Drop the index (or move an unreadable embedded one aside) and rebuild it from SQLite."""
    try:
        index.reset()
    except Exception:  # noqa: BLE001 - an unreadable embedded index is moved aside instead
        index.quarantine()
    store.requeue_all_vectors()
    return sync(store, index)


def repair(store: Store, index: ChromaIndex) -> dict[str, int | str]:
    """Probe the index, then compare its ids with SQLite and repair what differs (:mod:`agentmem.storage.index_probe`).

    An embedded index is checked and repaired in a child process; one that
    answers wrongly, fails, or crashes that process is moved aside
    (``chroma.broken-*``) and rebuilt from SQLite.
    """
    from agentmem.storage.index_probe import repair_in_child, repair_in_process

    if index.config.url is not None:
        result = repair_in_process(store, index)
    elif index.directory.exists():
        index.release()  # the child writes; this process reconnects afterwards and sees its work
        result = repair_in_child(store.dir)
    else:
        result = {"fixed": reconcile(store, index)}
        sync(store, index)
    if "problem" not in result:
        return result["fixed"]
    if index.config.url is not None:
        raise IndexUnavailableError(
            f"the index on {index.config.url} is wrong ({result['problem']}); run `agentmem index rebuild`"
        )
    moved = index.quarantine()
    report = rebuild(store, index)
    return {"rebuilt": report.applied, "quarantined": 1 if moved else 0, "error": result["problem"][:200]}
