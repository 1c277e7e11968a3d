"""The lexical index cache: the BM25 index of one store, loaded from its files when they pass their checks,
else rebuilt from the tokens stored in the collection, and reloaded when the store's generation moves.

A rebuild reads the collection page by page (tokens, texts and vectors), builds the BM25 matrix from a spill
file (:mod:`talentbot.lexical_build`) and writes the vectors and the passages straight to files
(:class:`talentbot.dense.VectorWriter`, :class:`talentbot.passage_copy.PassageWriter`): its memory does not
grow with the corpus beyond the index itself."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import threading
import time
from pathlib import Path

import numpy as np

from .collection_check import check_against_collection
from .config import Settings
from .dense import VECTORS_FILE, VectorWriter
from .heap import release_free_memory
from .lexical import LexicalIndex
from .lexical_build import BM25Builder
from .lexical_files import MANIFEST, IndexProblem
from .passage_copy import PassageWriter
from .store import ArticleRecord, Store

logger = logging.getLogger(__name__)

PAGE = 500  # chunks read from the collection per call in a rebuild: Chroma keeps ~50 KB a row of a call
TRIM_PAGES = 20  # pages read between two releases of the freed heap (heap.py)
CHECKED_FILE = "checked.json"  # beside a saved index (not one of its files): what a full check found
ARTICLES_FILE = "articles.json"  # beside it too: the article list at a generation (IndexCache.articles)
FRESH_S = 1.0  # seconds a check of the store's generation is reused by the searches that follow it


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_json(path: Path, data: dict) -> None:
    try:
        path.write_text(json.dumps(data), encoding="utf-8")
    except OSError as e:  # a read-only folder: the ids are compared again next time
        logger.debug("cannot record the index check in %s: %s", path, e)


class IndexCache:
    """The lexical index of ``store`` with its row maps, as one snapshot (:attr:`view`)."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        # One snapshot, replaced whole by refresh(), so a search running meanwhile never mixes an old index
        # with new row maps: (index, manifest, distinct article keys, row -> its article's place in them).
        self.view: tuple = (None, {}, np.array([], dtype=str), np.array([], dtype=np.int64))
        self._checked = 0.0
        self._lock = threading.Lock()

    @property
    def index(self) -> LexicalIndex | None:
        """The lexical index of the current snapshot."""
        return self.view[0]

    @property
    def index_dir(self) -> Path:
        """Where the lexical index of the store's current collection is saved."""
        return self.index_dir_for(self.store)

    def index_dir_for(self, store: Store) -> Path:
        return self.settings.store / "lexical" / store.name

    # ------------------------------------------------------------------------------ freshness
    def refresh(self, force: bool = False) -> None:
        """Reload (or rebuild from Chroma) the lexical index when the store's generation moved.
        A saved index is used only once it passes its checks (:meth:`load_checked`)."""
        now = time.monotonic()
        if not force and self.index is not None and now - self._checked < FRESH_S:
            return
        with self._lock:
            state = self.store.state()
            if self.settings.fusion != "lexical":  # a question vector of one model against another's vectors
                self.store.check_model(self.settings.model_label, state=state)
            generation = state.get("generation", 0)
            self._checked = now
            if self.index is not None and self.index.generation == generation and not force:
                return
            dirty = bool(state.get("dirty"))
            index = self.load_checked(generation, dirty) or self.rebuild_index(generation)
            codes: dict[str, int] = {}  # article key -> its code, in order of first row
            rows_code = np.fromiter(
                (codes.setdefault(cid.split(":", 1)[0], len(codes)) for cid in index.ids),
                dtype=np.int64,
                count=len(index.ids),
            )
            articles = np.array(list(codes), dtype=str)
            self.view = (index, self.articles(generation, dirty), articles, rows_code)
            release_free_memory()

    def articles(self, generation: int, dirty: bool) -> dict[str, ArticleRecord]:
        """The store's article list (its manifest) at ``generation``: read from :data:`ARTICLES_FILE` when it
        was saved there at that generation, for this collection, with no ingest under way then or now (2,500
        records read from Chroma took 0.2 s of a cold ``ask`` at 100,000 chunks); else from the store, and
        saved. Articles change only under an ingest, which marks the store dirty, then moves its generation."""
        path = self.index_dir / ARTICLES_FILE
        stamp = {"generation": generation, "collection": str(getattr(self.store.articles, "id", ""))}
        saved = None if dirty else _read_json(path)
        if isinstance(saved, dict) and all(saved.get(k) == v for k, v in stamp.items()):
            try:
                return {rec["key"]: ArticleRecord(**rec) for rec in saved["articles"]}
            except (TypeError, KeyError):  # written by another version: read the store
                pass
        manifest = self.store.manifest()
        if not dirty and not self.store.readonly and path.parent.is_dir():
            _write_json(path, {**stamp, "articles": [rec.__dict__ for rec in manifest.values()]})
        return manifest

    def load_checked(self, generation: int, dirty: bool = False) -> LexicalIndex | None:
        """The saved index when it is sound and belongs to the collection as it is now, else None (logged).

        Checked: the file checksums and the BM25 matrix's shapes (:meth:`LexicalIndex.load`), the
        generation, the chunk ids against the collection's, and sampled rows against their chunks' tokens
        and vectors. The ids are compared once per saved index: then :data:`CHECKED_FILE` records it, and
        later loads at the same generation, chunk count and collection, with no ingest under way
        (``dirty``), only compare the count (reading every id took 1.7 s at 100,000 chunks).
        """
        folder = self.index_dir
        try:
            index = LexicalIndex.load(folder)
            if index is None:
                logger.info("no lexical index at %s yet: building it from the collection", folder)
                return None
            if index.generation != generation:
                logger.info(
                    "the lexical index at %s is of generation %s, the store of %s: rebuilding it",
                    folder,
                    index.generation,
                    generation,
                )
                return None
            if (
                not index.copies_vectors
                and index.ids
                and not self.store.readonly
                and self.settings.fusion != "lexical"
            ):
                logger.info(
                    "the lexical index at %s was saved without a copy of the vectors (an older version): "
                    "rebuilding it once, so that searches within articles are exact and fast",
                    folder,
                )
                return None
            if not index.copies_passages and index.ids and not self.store.readonly:
                logger.info(
                    "the lexical index at %s was saved without a copy of the passages (an older version): "
                    "rebuilding it once, so that passages are read without asking Chroma",
                    folder,
                )
                return None
            vectors_of = None if self.store.readonly else self.vectors_of  # the read-only view has none
            stamp = self._stamp(folder, generation, len(index.ids))
            trusted = not dirty and _read_json(folder / CHECKED_FILE) == stamp
            if trusted and self.store.count() != len(index.ids):
                trusted = False  # the full comparison says what differs
            collection_ids = None if trusted else self.store.chunk_ids()
            check_against_collection(
                index.bm25,
                index.ids,
                collection_ids,
                self.store.get_chunks,
                index.vectors,
                vectors_of,
                index.passages,
            )
            if not trusted and not dirty and not self.store.readonly:
                _write_json(folder / CHECKED_FILE, stamp)
        except IndexProblem as e:
            logger.warning(
                "the lexical index at %s failed its check (%s): rebuilding it from the collection", folder, e
            )
            return None
        return index

    def _stamp(self, folder: Path, generation: int, count: int) -> dict:
        """What a full check of the index in ``folder`` found it to belong to."""
        try:
            manifest = hashlib.sha256((folder / MANIFEST).read_bytes()).hexdigest()
        except OSError:
            manifest = ""
        collection = str(getattr(self.store.chunks, "id", "")) if not self.store.readonly else ""
        return {"manifest": manifest, "generation": generation, "chunks": count, "collection": collection}

    def vectors_of(self, ids: list[str]) -> dict[str, object]:
        """The vectors stored with the chunks ``ids`` (what the saved copy was written from)."""
        return {cid: vec for cid, (_, _, vec) in self.store.chunk_vectors(ids).items()}

    def rebuild_index(self, generation: int, store: Store | None = None) -> LexicalIndex:
        """Build the BM25 index from the tokens stored in the collection of ``store`` (default: this
        retriever's), copy its vectors and passages, page by page, and save them beside that collection's
        name."""
        store = store or self.store
        folder = self.index_dir_for(store)
        staging = LexicalIndex.staging_for(folder)  # the matrix and the vectors are written there
        copy = staging is not None and not store.readonly  # the read-only view (full disk): no copies
        writer = VectorWriter(staging / VECTORS_FILE if staging is not None and copy else None)
        texts = PassageWriter(staging if copy else None)
        try:
            with BM25Builder() as builder:
                rows: list[dict] = []
                include = ("metadatas", "embeddings", "documents") if copy else ("metadatas",)
                for row in store.iter_chunks(include=include, page=PAGE):
                    rows.append(row)
                    if len(rows) >= PAGE:
                        _add_page(rows, builder, writer, texts)
                        rows = []
                        if len(builder.ids) % (PAGE * TRIM_PAGES) == 0:
                            release_free_memory()  # what Chroma's reads freed on its threads
                _add_page(rows, builder, writer, texts)
                del rows
                release_free_memory()
                writer.finish(len(builder.ids))
                texts.finish(len(builder.ids))
                index = LexicalIndex.from_builder(builder, generation, staging)
        except BaseException:
            texts.discard()
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
            raise
        try:
            index.save(folder)
        except OSError as e:  # read-only store or full disk: keep it in memory only
            logger.warning("cannot save the lexical index to %s: %s", folder, e)
        return index


def _add_page(rows: list[dict], builder: BM25Builder, vectors: VectorWriter, passages: PassageWriter) -> None:
    """One page of the collection's chunks into the BM25 build and the two copies."""
    builder.add([r["id"] for r in rows], [(r["metadata"] or {}).get("tokens", "").split() for r in rows])
    vectors.add([r.get("embedding") for r in rows])
    passages.add([r.get("document") for r in rows], [r["metadata"] for r in rows])
