"""The records of a store's articles collection: one per article (the manifest), and bookkeeping records
(the ``__state__`` record with the generation counter and the dirty flag, the ingest lease).

Also :func:`_guarded`, which turns Chroma's failures of every Store method into a user-facing error.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from .errors import ModelMismatchError
from .store_errors import REBUILD_HINT, Failure, chroma_errors, classify, untyped_http

if TYPE_CHECKING:
    from .store import Store

logger = logging.getLogger("talentbot.store")

STATE_ID = "__state__"
_ONE = [1.0]  # manifest records carry a 1-d placeholder vector: Chroma requires one
# Chroma writes its HNSW index to disk every ``sync_threshold`` additions and replays the later ones from its
# log in every process that opens the collection: 1,000 by default, which cost up to 0.4 s of each cold
# ``ask`` (a 10,000-chunk store left 721 to replay); at 100, at most 100 (0.04 s), and ingest is no slower.
HNSW_SYNC = 100
COLLECTION_METADATA = {"hnsw:space": "cosine", "hnsw:sync_threshold": HNSW_SYNC, "hnsw:batch_size": HNSW_SYNC}

_F = TypeVar("_F", bound=Callable[..., Any])


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
    places: str | None = (
        None  # division codes it names and those above them (anchors.place_codes); None: unknown
    )
    region_codes: str = ""  # codes of the regions it is about and those above them (regions.article_regions)
    effective: str = ""  # the dates it states of itself (policy_dates): when it takes effect, ISO
    adopted: str = ""
    amended: str = ""  # comma-joined, oldest first
    expires: str = ""
    repeals: str = ""  # titles of the documents it repeals, '；'-joined
    headings: str | None = (
        None  # its chapter headings in order, newline-joined; None: recorded before they were
    )

    @property
    def file(self) -> str:
        return self.path.replace("\\", "/").rsplit("/", 1)[-1]


def _guarded(action: str, write: bool = False) -> Callable[[_F], _F]:
    """Turn Chroma/HTTP failures of a Store method into a StoreError saying what to do (see
    :mod:`talentbot.store_errors`). A store open read-only (full disk) tries to open writable again before
    a ``write``, and every few seconds. A collection dropped under this reader (another process rebuilt the
    store) or an embedded Chroma this process restarted after a failure: reopen, and try once more."""

    def decorate(fn: _F) -> _F:
        @functools.wraps(fn)
        def wrapper(self: Store, *args: Any, **kwargs: Any) -> Any:
            for attempt in (1, 2):
                try:
                    if attempt == 1 and (self._stale or (self.readonly and (write or self._retry_due()))):
                        self._reconnect()
                    return fn(self, *args, **kwargs)
                except chroma_errors() as e:
                    kind = _failed(self, e, action, retry=attempt == 1)
                except (
                    Exception
                ) as e:  # only chromadb's bare Exception for an HTTP error (untyped_http) is kept
                    if not untyped_http(e):
                        raise
                    kind = _failed(self, e, action, retry=False)
                logger.info("reopening %s (%s)", self.where, kind.value)
                if kind is Failure.STOPPED:
                    self._reconnect()
                else:
                    self._open()
            raise AssertionError("unreachable: the second attempt returns or raises")

        return cast(_F, wrapper)

    return decorate


def _failed(store: Store, e: BaseException, action: str, retry: bool) -> Failure:
    """Raise the error for ``e`` (itself when it is no store failure), unless it is worth a reopen and a retry."""
    kind = classify(e)
    if kind is None:
        raise e
    if retry and kind in (Failure.GONE, Failure.STOPPED):
        return kind
    raise store.failure(e, action, kind) from e


class StoreRecords:
    """State, bookkeeping and article records (a part of :class:`talentbot.store.Store`)."""

    if TYPE_CHECKING:  # provided by Store
        _base: int

        @property
        def where(self) -> str: ...
        @property
        def chunks(self) -> Any: ...
        @property
        def articles(self) -> Any: ...

    # ------------------------------------------------------------------------------- state record
    @_guarded("reading its state")
    def state(self) -> dict[str, Any]:
        """The state record. A store without one starts at a generation derived from its collection's
        id, so that a lexical index saved for an earlier store in the same folder (before a rebuild)
        can never pass for this one's."""
        rec = self.get_record(STATE_ID)
        return json.loads(rec["json"]) if rec else {"generation": self._base, "dirty": False}

    def check_model(self, label: str, dim: int | None = None, state: dict[str, Any] | None = None) -> None:
        """Raise :class:`ModelMismatchError` when the store's vectors come from another embedding model than
        ``label`` (or have another length than ``dim``); a store that does not record its model and already
        holds articles (built before models were recorded) counts as another model."""
        state = self.state() if state is None else state
        built, built_dim = state.get("embedding_model"), state.get("embedding_dim")
        if built is None and self.manifest():
            problem = (
                "does not record which embedding model made its vectors (it was built by an older talentbot)"
            )
        elif built is not None and built != label:
            problem = f"was built with the embedding model '{built}', but the setting is '{label}'"
        elif dim is not None and built_dim is not None and built_dim != dim:
            problem = (
                f"holds {built_dim}-dimensional vectors, but the model '{label}' makes {dim}-dimensional ones"
            )
        else:
            return
        raise ModelMismatchError(
            f"the vector store at {self.where} {problem}; vectors of two models are never "
            f"mixed: {REBUILD_HINT}, or set TALENTBOT_EMBEDDING_MODEL back to the store's model"
        )

    def claim_model(self, label: str | None = None, dim: int | None = None) -> None:
        """:meth:`check_model`, then remember the model (and vector length) if the store does not record it yet;
        one read of the state. ``label`` None: the model the store records (a later batch of the same ingest)."""
        state = self.state()
        label = state.get("embedding_model", "") if label is None else label
        self.check_model(label, dim, state)
        if state.get("embedding_model") != label or (dim is not None and state.get("embedding_dim") != dim):
            self.set_state(embedding_model=label, **({"embedding_dim": dim} if dim is not None else {}))

    @_guarded("tuning its index", write=True)
    def tune_index(self) -> None:
        """Give collections made by earlier versions the HNSW sync settings of new ones (an ingest calls it)."""
        for col in (self.chunks, self.articles):
            hnsw = (getattr(col, "configuration_json", None) or {}).get("hnsw") or {}
            if hnsw.get("sync_threshold", HNSW_SYNC) > HNSW_SYNC:
                col.modify(configuration={"hnsw": {"sync_threshold": HNSW_SYNC, "batch_size": HNSW_SYNC}})

    @_guarded("writing its state", write=True)
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

    @_guarded("reading records")
    def records_of_kind(self, kind: str) -> dict[str, dict[str, Any]]:
        """Every bookkeeping record whose ``kind`` is ``kind``: id -> metadata."""
        got = self.articles.get(where={"kind": kind}, include=["metadatas"])
        return {rid: dict(meta) for rid, meta in zip(got["ids"], got["metadatas"], strict=True)}

    @_guarded("writing a record", write=True)
    def put_record(self, record_id: str, meta: dict[str, Any]) -> None:
        self.articles.upsert(ids=[record_id], embeddings=[_ONE], documents=[""], metadatas=[meta])

    @_guarded("removing a record", write=True)
    def delete_record(self, record_id: str) -> None:
        self.articles.delete(ids=[record_id])

    # ----------------------------------------------------------------------------------- manifest
    @_guarded("reading the article list")
    def manifest(self) -> dict[str, ArticleRecord]:
        got = self.articles.get(where={"kind": "article"}, include=["metadatas"])
        out: dict[str, ArticleRecord] = {}
        for meta in got["metadatas"]:
            rec = ArticleRecord(**{k: meta.get(k, "") for k in ArticleRecord.__dataclass_fields__})
            if "places" not in meta:  # recorded before place codes were: anchors fall back on the title
                rec.places = None
            if "headings" not in meta:  # recorded before headings were: read from the chunks (clarify)
                rec.headings = None
            rec.chunks = int(rec.chunks or 0)
            out[rec.key] = rec
        return out

    @_guarded("writing an article record", write=True)
    def put_article(self, rec: ArticleRecord) -> None:
        meta = {"kind": "article", **{k: v for k, v in rec.__dict__.items() if v is not None}}
        self.articles.upsert(ids=[rec.key], embeddings=[_ONE], documents=[rec.title], metadatas=[meta])

    @_guarded("removing an article", write=True)
    def remove_article(self, key: str) -> None:
        """Remove an article's chunks, then its manifest record."""
        self.chunks.delete(where={"article": key})
        self.articles.delete(ids=[key])
