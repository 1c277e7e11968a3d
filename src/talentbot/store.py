"""Store stage: Chroma (embedded PersistentClient, or a `chroma run` server through HttpClient).

Two collections: ``<name>`` holds the chunks (cosine space, vectors computed by us), and
``<name>_articles`` is the manifest: one record per article with its content hash and chunk count,
plus a ``__state__`` record (generation counter and a dirty flag used for crash repair) and, while an
ingest runs in server mode, an ``__ingest_lease__`` record (see :mod:`talentbot.store_lease`).

Failures of Chroma surface as :class:`StoreError` with a message saying what to do: an unreachable
server, a full disk, or a damaged embedded store (:class:`StoreCorruptError`, naming
``talentbot ingest --rebuild``). A damaged embedded store can still be rebuilt: :meth:`Store.reset`
then removes the files Chroma owns in the store folder and starts afresh.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from .config import Settings
from .errors import ConfigError, StoreCorruptError, StoreError, TalentBotError
from .store_files import (  # noqa: F401 - re-exported: tests and tools import them from here
    _OPEN_LOCK,
    SQLITE_FILE,
    _disk_full_error,
    _release_embedded,
    integrity_problem,
    low_disk,
    wipe_embedded,
)

logger = logging.getLogger(__name__)

STATE_ID = "__state__"
_ONE = [1.0]  # manifest records carry a 1-d placeholder vector: Chroma requires one

REBUILD_HINT = "run `talentbot ingest --rebuild` to index the documents again into a fresh store"


@dataclass
class ArticleRecord:
    """What the manifest knows of one ingested article."""

    key: str
    path: str
    title: str
    source: str
    date: str
    hash: str
    chunks: int
    region: str = ""

    @property
    def file(self) -> str:
        return self.path.replace("\\", "/").rsplit("/", 1)[-1]


def _first_line(e: BaseException) -> str:
    text = re.sub(r"\s*\(trace ID: [0-9a-f]+\)", "", str(e)).strip()
    return text.splitlines()[0].rstrip(".") if text else type(e).__name__


def _server_label(settings: Settings) -> str:
    """The server URL without credentials, for messages."""
    url = urlparse(settings.chroma_url or "")
    host = url.hostname or ""
    host = f"[{host}]" if ":" in host else host
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{host}{port}{url.path.rstrip('/')}"


def _server_target(settings: Settings) -> tuple[str, int, bool]:
    """(host argument, port, ssl) for ``chromadb.HttpClient``; ConfigError if the URL is unusable."""
    raw = settings.chroma_url or ""
    url = urlparse(raw)
    try:
        port = url.port
    except ValueError as e:  # a port that is not a number or out of range
        raise ConfigError(f"TALENTBOT_CHROMA_URL has a bad port for host {url.hostname}: {e}") from None
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ConfigError(f"TALENTBOT_CHROMA_URL '{raw}' is not an http(s) URL such as http://127.0.0.1:8000")
    if url.query or url.fragment or url.username or url.password:
        raise ConfigError(f"TALENTBOT_CHROMA_URL '{_server_label(settings)}' must not carry credentials, a query "
                          "or a fragment: give only scheme, host, port and (behind a proxy) a path")
    ssl = url.scheme == "https"
    port = port or (443 if ssl else 80)
    path = url.path.rstrip("/")
    if path:  # behind a reverse proxy: chromadb accepts a full URL as host and appends /api/v2 to its path
        host = url.hostname if ":" not in url.hostname else f"[{url.hostname}]"
        return f"{url.scheme}://{host}:{port}{path}", port, ssl
    return url.hostname, port, ssl


def open_client(settings: Settings):
    """A Chroma client for the settings: HttpClient when ``chroma_url`` is set, else PersistentClient."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        host, port, ssl = _server_target(settings)
        try:
            return chromadb.HttpClient(host=host, port=port, ssl=ssl, settings=chroma_settings)
        except Exception as e:  # noqa: BLE001 - chromadb raises bare Exceptions/ValueErrors for connection errors
            raise StoreError(
                f"cannot reach the Chroma server at {_server_label(settings)}: {_first_line(e)}. Start it with "
                "`chroma run --path DIR --host 127.0.0.1 --port 8000`, or fix TALENTBOT_CHROMA_URL / --chroma-url"
            ) from e
    folder = settings.store
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StoreError(f"cannot create the store folder {folder}: {e.strerror or e}") from e
    problem = integrity_problem(folder)
    if problem:
        raise StoreCorruptError(f"the vector store at {folder} is damaged ({problem}); {REBUILD_HINT}")
    try:
        with _OPEN_LOCK:  # chromadb creates its per-path System without a lock
            return chromadb.PersistentClient(path=str(folder), settings=chroma_settings)
    except Exception as e:  # noqa: BLE001 - chromadb surfaces sqlite damage as bare/internal errors
        _release_embedded(str(folder))  # else the failed System stays cached for this path
        left = low_disk(folder)
        if left:
            raise _disk_full_error(folder, "opening it", _first_line(e), left) from e
        problem = integrity_problem(folder, thorough=True)
        if problem:
            raise StoreCorruptError(f"the vector store at {folder} is damaged ({problem}); {REBUILD_HINT}") from e
        if (folder / SQLITE_FILE).exists():
            raise StoreCorruptError(f"the vector store at {folder} cannot be opened ({_first_line(e)}); "
                                    f"if it is damaged, {REBUILD_HINT}") from e
        raise StoreError(f"cannot open the vector store at {folder}: {_first_line(e)}") from e


def _collection_gone(e: Exception) -> bool:
    text = str(e).lower()
    return type(e).__name__ == "NotFoundError" or ("collection" in text and "does not exist" in text)


def _system_stopped(e: Exception) -> bool:
    """The embedded Chroma this client used was stopped (see :func:`_release_embedded`)."""
    return isinstance(e, AttributeError) and "bindings" in str(e)


def _guarded(action: str):
    """Turn Chroma/HTTP failures of a Store method into a StoreError saying what to do."""
    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(self: Store, *args, **kwargs):
            try:
                if self._stale:
                    self._reconnect()
                return fn(self, *args, **kwargs)
            except TalentBotError:
                raise
            except Exception as e:  # noqa: BLE001 - chromadb, httpx and sqlite errors have no common base
                if not (_collection_gone(e) or _system_stopped(e)):
                    raise self.failure(e, action) from e
                first = e
            # Another process rebuilt the store (dropped and re-created the collections), or this
            # process restarted its embedded Chroma after a failure: reopen, and try once more.
            logger.info("reopening %s (%s)", self.where, _first_line(first))
            try:
                if _system_stopped(first):
                    self._reconnect()
                else:
                    self._open()
                return fn(self, *args, **kwargs)
            except TalentBotError:
                raise
            except Exception as e:  # noqa: BLE001 - as above
                raise self.failure(e, action) from e
        return wrapper
    return decorate


class Store:
    """Chunk and manifest collections of one talentbot store.

    A damaged embedded store does not fail here: every use raises its :class:`StoreCorruptError`,
    except :meth:`reset`, so that ``ingest --rebuild`` can replace it.
    """

    def __init__(self, settings: Settings, client=None) -> None:
        self.settings = settings
        self.damage: StoreCorruptError | None = None
        self._client = None
        self._stale = False  # the embedded Chroma was restarted after a failure: reconnect before use
        try:
            self._client = client or open_client(settings)
            self._open()
        except StoreCorruptError as e:
            if settings.chroma_url or client is not None:
                raise
            self.damage = e  # raised by every use but reset()
            logger.info("%s", e)

    @property
    def client(self):
        self._usable()
        return self._client

    @property
    def chunks(self):
        self._usable()
        return self._chunks

    @property
    def articles(self):
        self._usable()
        return self._articles

    def _usable(self) -> None:
        if self.damage is not None:
            raise StoreCorruptError(str(self.damage))

    @property
    def where(self) -> str:
        return _server_label(self.settings) if self.settings.chroma_url else str(self.settings.store)

    def _reconnect(self) -> None:
        with _OPEN_LOCK:
            self._client = open_client(self.settings)
            self._open()
            self._stale = False

    def failure(self, e: Exception, action: str) -> StoreError:
        """The user-facing error for a failed Chroma call made while ``action``.

        An embedded Chroma is restarted after a failure: once a write has failed (a full disk),
        its connection pool can be left without free connections and the next write would wait
        forever. The next use of any Store on this folder opens a fresh one.
        """
        detail = _first_line(e)
        s = self.settings
        if not s.chroma_url:
            _release_embedded(str(s.store))
            self._stale = True
        if s.chroma_url:
            lost = any(w in f"{type(e).__name__} {detail}".lower()
                       for w in ("connect", "timeout", "timed out", "refused", "unreachable", "remoteprotocol"))
            if lost:
                return StoreError(f"lost the Chroma server at {self.where} while {action} ({detail}); check that "
                                  "`chroma run` is up, then try again")
            return StoreError(f"the Chroma server at {self.where} failed while {action}: {detail}")
        left = low_disk(s.store)
        if left or "disk is full" in detail or "No space left" in detail:
            return _disk_full_error(s.store, action, detail, left or "no space left")
        problem = integrity_problem(s.store, thorough=True)
        if problem:
            return StoreCorruptError(f"the vector store at {s.store} is damaged ({problem}); {REBUILD_HINT}")
        return StoreError(f"the vector store at {s.store} failed while {action}: {detail}")

    def _open(self) -> None:
        name = self.settings.collection
        try:
            self._chunks = self._client.get_or_create_collection(
                name, metadata={"hnsw:space": "cosine"}, embedding_function=None)
            self._articles = self._client.get_or_create_collection(
                f"{name}_articles", metadata={"hnsw:space": "cosine"}, embedding_function=None)
        except Exception as e:  # noqa: BLE001 - chromadb surfaces sqlite/HNSW damage as bare errors
            # a damaged file, a full disk or a lost server: failure() tells them apart
            raise self.failure(e, "opening its collections") from e
        self._base = int(self._articles.id.hex[:8], 16) << 20

    def reset(self) -> None:
        """Drop both collections and start empty (``ingest --rebuild``).

        An embedded store that is damaged, or whose collections cannot be dropped because it is,
        is replaced: the files Chroma owns in the store folder are removed (see :func:`wipe_embedded`).
        """
        if self.damage is None:
            try:
                self._drop_collections()
                self._open()
                return
            except Exception as e:  # noqa: BLE001 - decide below whether the store is damaged
                problem = None if self.settings.chroma_url else integrity_problem(self.settings.store, True)
                if self.settings.chroma_url or (problem is None and not isinstance(e, StoreCorruptError)):
                    if isinstance(e, TalentBotError):
                        raise
                    raise self.failure(e, "dropping the store") from e
                logger.warning("cannot drop the collections of %s (%s)", self.settings.store, problem or e)
        try:
            wipe_embedded(self.settings.store)
        except OSError as e:
            raise StoreError(f"cannot remove the damaged vector store files in {self.settings.store}: "
                             f"{e.strerror or e}; remove them by hand (chroma.sqlite3 and the UUID-named "
                             "folders), then run `talentbot ingest` again") from e
        self.damage = None
        self._client = open_client(self.settings)
        self._open()

    def _drop_collections(self) -> None:
        for name in (self.settings.collection, f"{self.settings.collection}_articles"):
            try:
                self._client.delete_collection(name)
            except (ValueError, KeyError) as e:  # chromadb raises NotFoundError(ValueError) when absent
                if "not" not in str(e).lower() and "does not exist" not in str(e).lower():
                    raise
                logger.debug("no collection %s to delete: %s", name, e)
            except Exception as e:  # noqa: BLE001 - NotFoundError type moved between chromadb versions
                if "not" not in str(e).lower():
                    raise

    # ------------------------------------------------------------------------------- state record
    @_guarded("reading its state")
    def state(self) -> dict[str, Any]:
        """The state record. A store without one starts at a generation derived from its collection's
        id, so that a lexical index saved for an earlier store in the same folder (before a rebuild)
        can never pass for this one's."""
        rec = self.get_record(STATE_ID)
        return json.loads(rec["json"]) if rec else {"generation": self._base, "dirty": False}

    @_guarded("writing its state")
    def set_state(self, **changes: Any) -> dict[str, Any]:
        state = {**self.state(), **changes}
        self.put_record(STATE_ID, {"kind": "state", "json": json.dumps(state)})
        return state

    # -------------------------------------------------------- bookkeeping records (state, ingest lease)
    @_guarded("reading a record")
    def get_record(self, record_id: str) -> dict[str, Any] | None:
        """Metadata of a bookkeeping record of the articles collection, or None."""
        got = self.articles.get(ids=[record_id], include=["metadatas"])
        return dict(got["metadatas"][0]) if got["ids"] else None

    @_guarded("writing a record")
    def put_record(self, record_id: str, meta: dict[str, Any]) -> None:
        self.articles.upsert(ids=[record_id], embeddings=[_ONE], documents=[""], metadatas=[meta])

    @_guarded("removing a record")
    def delete_record(self, record_id: str) -> None:
        self.articles.delete(ids=[record_id])

    # ----------------------------------------------------------------------------------- manifest
    @_guarded("reading the article list")
    def manifest(self) -> dict[str, ArticleRecord]:
        got = self.articles.get(where={"kind": "article"}, include=["metadatas"])
        out = {}
        for meta in got["metadatas"]:
            rec = ArticleRecord(**{k: meta.get(k, "") for k in ArticleRecord.__dataclass_fields__})
            rec.chunks = int(rec.chunks or 0)
            out[rec.key] = rec
        return out

    @_guarded("writing an article record")
    def put_article(self, rec: ArticleRecord) -> None:
        meta = {"kind": "article", **rec.__dict__}
        self.articles.upsert(ids=[rec.key], embeddings=[_ONE], documents=[rec.title], metadatas=[meta])

    @_guarded("removing an article")
    def remove_article(self, key: str) -> None:
        """Remove an article's chunks, then its manifest record."""
        self.chunks.delete(where={"article": key})
        self.articles.delete(ids=[key])

    # ------------------------------------------------------------------------------------- chunks
    @_guarded("writing passages")
    def write_chunks(self, ids: Sequence[str], vectors, texts: Sequence[str], metas: Sequence[dict]) -> None:
        """Upsert chunks in batches below Chroma's limit."""
        step = max(1, min(self.client.get_max_batch_size(), 1000))
        for i in range(0, len(ids), step):
            self.chunks.upsert(ids=list(ids[i:i + step]), embeddings=vectors[i:i + step],
                               documents=list(texts[i:i + step]), metadatas=list(metas[i:i + step]))

    @_guarded("removing old passages")
    def trim_chunks(self, key: str, keep: int) -> None:
        """Delete chunks of ``key`` whose ordinal is ``keep`` or more (left over from a longer version)."""
        self.chunks.delete(where={"$and": [{"article": key}, {"ordinal": {"$gte": keep}}]})

    @_guarded("counting passages")
    def count(self) -> int:
        return self.chunks.count()

    def iter_chunks(self, include: Sequence[str] = ("metadatas",), page: int = 5000) -> Iterator[dict]:
        """Yield every chunk as {'id', 'metadata', 'document'?}, paging through the collection."""
        offset = 0
        while True:
            got = self._page(list(include), page, offset)
            if not got["ids"]:
                return
            for i, cid in enumerate(got["ids"]):
                row = {"id": cid, "metadata": got["metadatas"][i] if got.get("metadatas") else {}}
                if got.get("documents"):
                    row["document"] = got["documents"][i]
                yield row
            offset += len(got["ids"])

    @_guarded("reading passages")
    def _page(self, include: list[str], limit: int, offset: int) -> dict:
        return self.chunks.get(include=include, limit=limit, offset=offset)

    @_guarded("reading passages")
    def get_chunks(self, ids: Sequence[str]) -> dict[str, tuple[str, dict]]:
        got = self.chunks.get(ids=list(ids), include=["documents", "metadatas"])
        return {cid: (doc, meta) for cid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True)}

    @_guarded("searching passages")
    def query(self, vector, n: int, keys: Sequence[str] | None = None) -> list[tuple[str, float]]:
        """Nearest chunks to ``vector`` as (id, cosine similarity), restricted to article ``keys``."""
        where = None
        if keys is not None:
            if not keys:
                return []
            where = {"article": {"$in": list(keys)}}
        n = min(n, self.count())
        if n <= 0:
            return []
        got = self.chunks.query(query_embeddings=[vector], n_results=n, where=where, include=["distances"])
        return [(cid, 1.0 - d) for cid, d in zip(got["ids"][0], got["distances"][0], strict=True)]
