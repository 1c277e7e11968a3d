"""The lexical index cache: the BM25 index of one store, loaded from its files when they pass their checks,
else rebuilt from the tokens stored in the collection, and reloaded when the store's generation moves."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np

from .config import Settings
from .lexical import LexicalIndex
from .lexical_files import IndexProblem, check_against_collection
from .store import Store

logger = logging.getLogger(__name__)


class IndexCache:
    """The lexical index of ``store`` with its row maps, as one snapshot (:attr:`view`)."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        # One snapshot, replaced whole by refresh(), so a search running meanwhile never mixes an old index
        # with new row maps: (index, manifest, article key of each row, distinct keys, row -> distinct key).
        self.view: tuple = (None, {}, np.array([]), np.array([]), np.array([], dtype=int))
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
        if not force and self.index is not None and now - self._checked < 1.0:
            return
        with self._lock:
            state = self.store.state()
            if self.settings.fusion != "lexical":  # a question vector of one model against another's vectors
                self.store.check_model(self.settings.model_label, state=state)
            generation = state.get("generation", 0)
            self._checked = now
            if self.index is not None and self.index.generation == generation and not force:
                return
            index = self.load_checked(generation) or self.rebuild_index(generation)
            rows_article = np.array([i.split(":", 1)[0] for i in index.ids])
            articles, rows_code = np.unique(rows_article, return_inverse=True)
            self.view = (index, self.store.manifest(), rows_article, articles, rows_code)

    def load_checked(self, generation: int) -> LexicalIndex | None:
        """The saved index when it is sound and belongs to the collection as it is now, else None (logged).

        Checked: the file checksums and the BM25 matrix's shapes (:meth:`LexicalIndex.load`), the
        generation, the chunk ids against the collection's, and sampled rows against their chunks' tokens.
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
            check_against_collection(index.bm25, index.ids, self.store.chunk_ids(), self.tokens_of)
        except IndexProblem as e:
            logger.warning(
                "the lexical index at %s failed its check (%s): rebuilding it from the collection", folder, e
            )
            return None
        return index

    def tokens_of(self, ids: list[str]) -> dict[str, list[str]]:
        """The lexical tokens stored with the chunks ``ids`` (what the index was built from)."""
        return {
            cid: (meta or {}).get("tokens", "").split()
            for cid, (_, meta) in self.store.get_chunks(ids).items()
        }

    def rebuild_index(self, generation: int, store: Store | None = None) -> LexicalIndex:
        """Build the BM25 index from the tokens stored in the collection of ``store`` (default: this
        retriever's), and save it beside that collection's name."""
        store = store or self.store
        ids, tokens = [], []
        for row in store.iter_chunks():
            ids.append(row["id"])
            tokens.append((row["metadata"] or {}).get("tokens", "").split())
        index = LexicalIndex.build(ids, tokens, generation)
        folder = self.index_dir_for(store)
        try:
            index.save(folder)
        except OSError as e:  # read-only store or full disk: keep it in memory only
            logger.warning("cannot save the lexical index to %s: %s", folder, e)
        return index
