"""Store stage: Chroma (embedded PersistentClient, or a `chroma run` server through HttpClient).

Two collections: ``<name>`` holds the chunks (cosine space, vectors computed by us), and
``<name>_articles`` is the manifest: one record per article with its content hash and chunk count,
plus a ``__state__`` record (generation counter and a dirty flag used for crash repair).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from .config import Settings
from .errors import ConfigError, StoreCorruptError, StoreError

logger = logging.getLogger(__name__)

STATE_ID = "__state__"
_ONE = [1.0]  # manifest records carry a 1-d placeholder vector: Chroma requires one


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


def open_client(settings: Settings):
    """A Chroma client for the settings: HttpClient when ``chroma_url`` is set, else PersistentClient."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    try:
        if settings.chroma_url:
            url = urlparse(settings.chroma_url)
            if url.scheme not in ("http", "https") or not url.hostname:
                raise ConfigError(f"TALENTBOT_CHROMA_URL '{settings.chroma_url}' is not an http(s) URL")
            return chromadb.HttpClient(host=url.hostname, port=url.port or (443 if url.scheme == "https" else 80),
                                       ssl=url.scheme == "https", settings=chroma_settings)
        settings.store.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(settings.store), settings=chroma_settings)
    except ConfigError:
        raise
    except (ValueError, RuntimeError, OSError) as e:
        where = settings.chroma_url or settings.store
        raise StoreCorruptError(
            f"cannot open the vector store at {where}: {str(e).splitlines()[0]}. "
            "If it is damaged, run `talentbot ingest --rebuild`; for a server, check that `chroma run` is up."
        ) from e
    except Exception as e:  # noqa: BLE001 - chromadb raises bare Exceptions for connection/corruption
        where = settings.chroma_url or settings.store
        raise StoreError(f"cannot open the vector store at {where}: {str(e).splitlines()[0]}") from e


class Store:
    """Chunk and manifest collections of one talentbot store."""

    def __init__(self, settings: Settings, client=None) -> None:
        self.settings = settings
        self.client = client or open_client(settings)
        self._open()

    def _open(self) -> None:
        name = self.settings.collection
        try:
            self.chunks = self.client.get_or_create_collection(
                name, metadata={"hnsw:space": "cosine"}, embedding_function=None)
            self.articles = self.client.get_or_create_collection(
                f"{name}_articles", metadata={"hnsw:space": "cosine"}, embedding_function=None)
        except Exception as e:  # noqa: BLE001 - chromadb surfaces sqlite/HNSW damage as bare errors
            raise StoreCorruptError(
                f"the vector store is damaged ({str(e).splitlines()[0]}); run `talentbot ingest --rebuild`"
            ) from e

    def reset(self) -> None:
        """Drop both collections and start empty (``ingest --rebuild``)."""
        for name in (self.settings.collection, f"{self.settings.collection}_articles"):
            try:
                self.client.delete_collection(name)
            except (ValueError, KeyError) as e:  # chromadb raises NotFoundError(ValueError) when absent
                logger.debug("no collection %s to delete: %s", name, e)
            except Exception as e:  # noqa: BLE001 - NotFoundError type moved between chromadb versions
                if "not" not in str(e).lower():
                    raise
        self._open()

    # ------------------------------------------------------------------------------- state record
    def state(self) -> dict[str, Any]:
        got = self.articles.get(ids=[STATE_ID], include=["metadatas"])
        if got["ids"]:
            return json.loads(got["metadatas"][0]["json"])
        return {"generation": 0, "dirty": False}

    def set_state(self, **changes: Any) -> dict[str, Any]:
        state = {**self.state(), **changes}
        self.articles.upsert(ids=[STATE_ID], embeddings=[_ONE], documents=[""],
                             metadatas=[{"kind": "state", "json": json.dumps(state)}])
        return state

    # ----------------------------------------------------------------------------------- manifest
    def manifest(self) -> dict[str, ArticleRecord]:
        got = self.articles.get(where={"kind": "article"}, include=["metadatas"])
        out = {}
        for meta in got["metadatas"]:
            rec = ArticleRecord(**{k: meta.get(k, "") for k in ArticleRecord.__dataclass_fields__})
            rec.chunks = int(rec.chunks or 0)
            out[rec.key] = rec
        return out

    def put_article(self, rec: ArticleRecord) -> None:
        meta = {"kind": "article", **rec.__dict__}
        self.articles.upsert(ids=[rec.key], embeddings=[_ONE], documents=[rec.title], metadatas=[meta])

    def remove_article(self, key: str) -> None:
        """Remove an article's chunks, then its manifest record."""
        self.chunks.delete(where={"article": key})
        self.articles.delete(ids=[key])

    # ------------------------------------------------------------------------------------- chunks
    def write_chunks(self, ids: Sequence[str], vectors, texts: Sequence[str], metas: Sequence[dict]) -> None:
        """Upsert chunks in batches below Chroma's limit."""
        step = max(1, min(self.client.get_max_batch_size(), 1000))
        for i in range(0, len(ids), step):
            self.chunks.upsert(ids=list(ids[i:i + step]), embeddings=vectors[i:i + step],
                               documents=list(texts[i:i + step]), metadatas=list(metas[i:i + step]))

    def trim_chunks(self, key: str, keep: int) -> None:
        """Delete chunks of ``key`` whose ordinal is ``keep`` or more (left over from a longer version)."""
        self.chunks.delete(where={"$and": [{"article": key}, {"ordinal": {"$gte": keep}}]})

    def count(self) -> int:
        return self.chunks.count()

    def iter_chunks(self, include: Sequence[str] = ("metadatas",), page: int = 5000) -> Iterator[dict]:
        """Yield every chunk as {'id', 'metadata', 'document'?}, paging through the collection."""
        offset = 0
        while True:
            got = self.chunks.get(include=list(include), limit=page, offset=offset)
            if not got["ids"]:
                return
            for i, cid in enumerate(got["ids"]):
                row = {"id": cid, "metadata": got["metadatas"][i] if got.get("metadatas") else {}}
                if got.get("documents"):
                    row["document"] = got["documents"][i]
                yield row
            offset += len(got["ids"])

    def get_chunks(self, ids: Sequence[str]) -> dict[str, tuple[str, dict]]:
        got = self.chunks.get(ids=list(ids), include=["documents", "metadatas"])
        return {cid: (doc, meta) for cid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True)}

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
