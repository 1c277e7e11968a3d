"""Store stage: Chroma (embedded PersistentClient, or a `chroma run` server through HttpClient).

Two collections: ``<name>`` holds the chunks (cosine space, vectors computed by us), and
``<name>_articles`` is the manifest: one record per article with its content hash and chunk count,
plus a ``__state__`` record (generation counter and a dirty flag used for crash repair) and, while an
ingest runs in server mode, an ``__ingest_lease__`` record (see :mod:`talentbot.store_lease` and
:mod:`talentbot.store_records`). ``<name>`` is the configured collection until a rebuild, which fills
fresh collections aside and then switches a pointer to them (:mod:`talentbot.store_swap`).

On a full disk an embedded store is opened through a read-only view (:mod:`talentbot.store_readonly`):
questions are answered, writes fail with the full-disk error.

Failures of Chroma surface as :class:`StoreError` with a message saying what to do: an unreachable
server, a full disk, a read-only or forbidden folder, or a damaged embedded store (:class:`StoreCorruptError`,
naming ``talentbot ingest --rebuild``); :mod:`talentbot.store_errors` tells them apart by their types. An
error that is no failure of the store (a bug) is raised as it is. A damaged embedded store can still be rebuilt: :meth:`Store.reset`
then removes the files Chroma owns in the store folder and starts afresh.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

from .config import Settings
from .errors import StoreCorruptError, StoreError, TalentBotError
from .store_client import _server_label, _server_target, open_client  # noqa: F401 - _server_target: re-exported
from .store_errors import (
    REBUILD_HINT,
    Failure,
    chroma_errors,
    classify,
    first_line,
    local_error,
    server_error,
)
from .store_files import (  # noqa: F401 - re-exported: tests and tools import them from here
    _OPEN_LOCK,
    SQLITE_FILE,
    _disk_full_error,
    _release_embedded,
    integrity_problem,
    low_disk,
    wipe_embedded,
)
from .store_records import COLLECTION_METADATA, STATE_ID, ArticleRecord, StoreRecords, _guarded  # noqa: F401 - re-exported
from .store_swap import read_pointer

logger = logging.getLogger(__name__)

READONLY_RETRY_S = 10.0  # a store opened read-only (full disk) tries to open writable again this often


class Store(StoreRecords):
    """Chunk and manifest collections of one talentbot store.

    A damaged embedded store does not fail here: every use raises its :class:`StoreCorruptError`,
    except :meth:`reset`, so that ``ingest --rebuild`` can replace it.
    """

    def __init__(self, settings: Settings, client: Any = None, name: str | None = None) -> None:
        self.settings = settings
        self.damage: StoreCorruptError | None = None
        self._client: Any = None  # a chromadb client, or the read-only view (store_readonly)
        self._stale = False  # the embedded Chroma was restarted after a failure: reconnect before use
        self._fixed_name = name  # a staging store of a rebuild (store_swap); else the pointer decides
        self.name = name or settings.collection  # the chunk collection in use
        self._warned_dense = False
        try:
            self._client = client or open_client(settings)
            self._open()
            if self.readonly:
                self._log_mode()
        except StoreCorruptError as e:
            if settings.chroma_url or client is not None:
                raise
            self.damage = e  # raised by every use but reset()
            logger.info("%s", e)

    @property
    def client(self) -> Any:
        self._usable()
        return self._client

    @property
    def chunks(self) -> Any:
        self._usable()
        return self._chunks

    @property
    def articles(self) -> Any:
        self._usable()
        return self._articles

    @property
    def readonly(self) -> bool:
        """Whether the store is open through the read-only view (the disk is full)."""
        return bool(getattr(self._client, "readonly", False))

    def _retry_due(self) -> bool:
        return time.monotonic() - self._client.opened >= READONLY_RETRY_S

    def _usable(self) -> None:
        if self.damage is not None:
            raise StoreCorruptError(str(self.damage))

    @property
    def where(self) -> str:
        return _server_label(self.settings) if self.settings.chroma_url else str(self.settings.store)

    def _reconnect(self) -> None:
        was = self.readonly
        with _OPEN_LOCK:
            self._client = open_client(self.settings)
            self._open()
            self._stale = False
        if self.readonly != was:
            self._log_mode()

    def _log_mode(self) -> None:
        if self.readonly:
            logger.warning(
                "the disk holding the vector store %s is full (%s): answering from a read-only view "
                "of it; free some disk space before the next ingest",
                self.where,
                self._client.reason,
            )
        else:
            logger.warning("the vector store %s is writable again", self.where)

    def failure(self, e: BaseException, action: str, kind: Failure | None = None) -> StoreError:
        """The user-facing error for a failed Chroma call made while ``action`` (``kind``: what
        :func:`~talentbot.store_errors.classify` made of ``e``; one it does not know counts as another failure).

        An embedded Chroma is restarted after a failure: once a write has failed (a full disk),
        its connection pool can be left without free connections and the next write would wait
        forever. The next use of any Store on this folder opens a fresh one.
        """
        detail = first_line(e)
        kind = kind or classify(e) or Failure.OTHER
        s = self.settings
        if s.chroma_url:
            return server_error(kind, self.where, action, detail)
        _release_embedded(str(s.store))
        self._stale = True
        left = low_disk(s.store)
        if left or kind is Failure.NO_SPACE:
            return _disk_full_error(s.store, action, detail, left or "no space left")
        problem = integrity_problem(s.store, thorough=True)
        if problem:
            return StoreCorruptError(f"the vector store at {s.store} is damaged ({problem}); {REBUILD_HINT}")
        return local_error(kind, s.store, action, detail)

    def _open(self) -> None:
        try:
            name = (
                self._fixed_name
                or read_pointer(self._client, self.settings).get("active")
                or self.settings.collection
            )
            self._chunks = self._client.get_or_create_collection(
                name, metadata=COLLECTION_METADATA, embedding_function=None
            )
            self._articles = self._client.get_or_create_collection(
                f"{name}_articles", metadata=COLLECTION_METADATA, embedding_function=None
            )
        except (
            chroma_errors()
        ) as e:  # a damaged file, a full disk or a lost server: failure() tells them apart
            kind = classify(e)
            if kind is None:
                raise
            raise self.failure(e, "opening its collections", kind) from e
        self.name = name
        self._base = int(self._articles.id.hex[:8], 16) << 20

    def adopt(self, other: Store) -> None:
        """Use ``other``'s collections from now on (the switch at the end of a rebuild aside)."""
        self._chunks, self._articles, self._base, self.name = (
            other._chunks,
            other._articles,
            other._base,
            other.name,
        )

    def reset(self) -> None:
        """Drop both collections and start empty (``ingest --rebuild`` of a damaged store; a sound one is
        rebuilt aside and switched to, see :mod:`talentbot.store_swap`).

        An embedded store that is damaged, or whose collections cannot be dropped because it is,
        is replaced: the files Chroma owns in the store folder are removed (see :func:`wipe_embedded`).
        """
        if self.damage is None:
            try:
                self._drop_collections()
                self._open()
                return
            except chroma_errors() + (StoreError,) as e:  # decide below whether the store is damaged
                kind = None if isinstance(e, StoreError) else classify(e)
                if kind is None and not isinstance(e, StoreError):
                    raise
                problem = None if self.settings.chroma_url else integrity_problem(self.settings.store, True)
                damaged = problem is not None or kind is Failure.DAMAGED or isinstance(e, StoreCorruptError)
                if self.settings.chroma_url or not damaged:
                    if isinstance(e, TalentBotError):
                        raise
                    raise self.failure(e, "dropping the store", kind) from e
                logger.warning("cannot drop the collections of %s (%s)", self.settings.store, problem or e)
        try:
            wipe_embedded(self.settings.store)
        except OSError as e:
            raise StoreError(
                f"cannot remove the damaged vector store files in {self.settings.store}: "
                f"{e.strerror or e}; remove them by hand (chroma.sqlite3 and the UUID-named "
                "folders), then run `talentbot ingest` again"
            ) from e
        self.damage = None
        self._client = open_client(self.settings)
        self._open()

    def _drop_collections(self) -> None:
        for name in (self.name, f"{self.name}_articles"):
            try:
                self._client.delete_collection(name)
            except chroma_errors() as e:
                if classify(e) is not Failure.GONE:
                    raise
                logger.debug("no collection %s to delete: %s", name, e)

    # ------------------------------------------------------------------------------------- chunks
    @_guarded("writing passages", write=True)
    def write_chunks(
        self, ids: Sequence[str], vectors: Any, texts: Sequence[str], metas: Sequence[dict]
    ) -> None:
        """Upsert chunks in batches below Chroma's limit."""
        step = max(1, min(self.client.get_max_batch_size(), 1000))
        for i in range(0, len(ids), step):
            self.chunks.upsert(
                ids=list(ids[i : i + step]),
                embeddings=vectors[i : i + step],
                documents=list(texts[i : i + step]),
                metadatas=list(metas[i : i + step]),
            )

    @_guarded("removing old passages", write=True)
    def trim_chunks(self, key: str, keep: int) -> None:
        """Delete chunks of ``key`` whose ordinal is ``keep`` or more (left over from a longer version)."""
        self.chunks.delete(where={"$and": [{"article": key}, {"ordinal": {"$gte": keep}}]})

    @_guarded("counting passages")
    def count(self) -> int:
        return self.chunks.count()

    def chunk_ids(self, page: int = 5000) -> set[str]:
        """The ids of every chunk in the collection."""
        return {row["id"] for row in self.iter_chunks(include=(), page=page)}

    def iter_chunks(self, include: Sequence[str] = ("metadatas",), page: int = 5000) -> Iterator[dict]:
        """Yield every chunk as {'id', 'metadata', 'document'?, 'embedding'?}, paging through the collection."""
        offset = 0
        while True:
            got = self._page(list(include), page, offset)
            if not got["ids"]:
                return
            for i, cid in enumerate(got["ids"]):
                row = {"id": cid, "metadata": got["metadatas"][i] if got.get("metadatas") else {}}
                if got.get("documents"):
                    row["document"] = got["documents"][i]
                if got.get("embeddings") is not None and "embeddings" in include:
                    row["embedding"] = got["embeddings"][i]
                yield row
            offset += len(got["ids"])

    @_guarded("reading passages")
    def _page(self, include: list[str], limit: int, offset: int) -> dict:
        return self.chunks.get(include=include, limit=limit, offset=offset)

    @_guarded("reading passages")
    def chunk_vectors(self, ids: Sequence[str]) -> dict[str, tuple[str, dict, Any]]:
        """(text, metadata, vector) of those of the chunks ``ids`` that exist (ingest reuses unchanged vectors)."""
        if not ids:
            return {}
        got = self.chunks.get(ids=list(ids), include=["documents", "metadatas", "embeddings"])
        return {
            cid: (doc, meta, vec)
            for cid, doc, meta, vec in zip(
                got["ids"], got["documents"], got["metadatas"], got["embeddings"], strict=True
            )
        }

    @_guarded("reading passages")
    def get_chunks(self, ids: Sequence[str]) -> dict[str, tuple[str, dict]]:
        if not ids:  # Chroma refuses an empty list of ids
            return {}
        got = self.chunks.get(ids=list(ids), include=["documents", "metadatas"])
        return {
            cid: (doc, meta)
            for cid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
        }

    @_guarded("searching passages")
    def query(self, vector: Any, n: int, keys: Sequence[str] | None = None) -> list[tuple[str, float]]:
        """Nearest chunks to ``vector`` as (id, cosine similarity), restricted to article ``keys``."""
        if self.readonly:  # the HNSW files are Chroma's: the read-only view has no vector search
            if not self._warned_dense:
                logger.warning("the dense ranking is off while %s is open read-only (full disk)", self.where)
                self._warned_dense = True
            return []
        where = None
        if keys is not None:
            if not keys:
                return []
            where = {"article": {"$in": list(keys)}}
        if n <= 0:  # Chroma returns what it has when asked for more (a count() cost 8 ms at 100k chunks)
            return []
        got = self.chunks.query(query_embeddings=[vector], n_results=n, where=where, include=["distances"])
        return [(cid, 1.0 - d) for cid, d in zip(got["ids"][0], got["distances"][0], strict=True)]
