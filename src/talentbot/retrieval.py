"""Retrieval stage: dense (Chroma) + lexical (jieba/BM25) candidates, fused by weighted RRF.

The fusion weights were chosen by measurement with `talentbot eval` (see docs/retrieval.md):
MiniLM is weak on Chinese, so the lexical ranking leads and the dense one breaks ties.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from .anchors import Anchors, Profiles, Scope, index_lookups, profiles, question_anchors, scope
from .config import Settings
from .dense import rows_within
from .dense import search as dense_search
from .embeddings import Embedder
from .index_cache import IndexCache
from .lexical import LexicalIndex, query_tokens
from .passages import Filters, Passage, TermGroup, coverage
from .store import ArticleRecord, Store
from .terms import expand, term_groups

__all__ = ["Filters", "Passage", "Retriever", "TalentRetriever", "TermGroup", "coverage"]

logger = logging.getLogger(__name__)

EMBED_THREADS = 4  # questions of concurrent searches embedded at once (the e5 engine queues them itself)
QUESTION_VECTORS = 64  # vectors of recent questions kept (a question is searched again within articles)
TERM_SCORES = 4  # BM25 score vectors of recent term lists kept, for the same searches again within articles
# While the question is still being embedded, the passages of the lexical ranking's first k + EARLY_EXTRA are
# read from the store: the fused first k nearly always come from them (the lexical ranking leads).
EARLY_EXTRA = 2


@dataclass
class Search:
    """What one search found: the passages, best first, and the seconds each stage took. Passed as
    ``trace`` to :meth:`TalentBot.stream`, it is filled with the passages the answer was drawn from.
    The question is embedded while the lexical search runs, and the lexical ranking's first passages are
    read meanwhile: ``embed`` is the wait for its vector after both, ``embed_run`` the embedding's own time,
    ``fetch`` both reads of passages."""

    passages: list[Passage] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def fuse(rankings: Sequence[tuple[float, Sequence[tuple[str, float]]]], rrf_k: int) -> dict[str, float]:
    """Weighted reciprocal-rank fusion: id -> the sum over ``rankings`` of weight / (rrf_k + rank), ranks from 1."""
    fused: dict[str, float] = {}
    for weight, ranking in rankings:
        for rank, (cid, _) in enumerate(ranking, 1):
            fused[cid] = fused.get(cid, 0.0) + weight / (rrf_k + rank)
    return fused


class Retriever:
    """Hybrid retriever over one store. Keeps the lexical index in memory and in sync."""

    def __init__(self, settings: Settings, store: Store, embedder: Embedder) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.cache = IndexCache(settings, store)
        self._profiles: tuple[dict, Profiles] | None = None  # anchors' per-article facts, per manifest
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None  # question embeddings (_embed_started)
        self._pool_pid = 0
        self._vectors: OrderedDict[str, Future[tuple[list[float], float]]] = OrderedDict()  # recent questions
        self._scores: OrderedDict[tuple[str, ...], tuple[LexicalIndex, np.ndarray]] = OrderedDict()

    @property
    def index(self) -> LexicalIndex | None:
        """The lexical index of the current snapshot (:class:`IndexCache`)."""
        return self.cache.index

    @property
    def _view(self) -> tuple:
        return self.cache.view

    @property
    def _manifest(self) -> dict[str, ArticleRecord]:
        return self.cache.view[1]

    @property
    def index_dir(self) -> Path:
        """Where the lexical index of the store's current collection is saved."""
        return self.cache.index_dir_for(self.store)

    def refresh(self, force: bool = False) -> None:
        """Reload (or rebuild) the lexical index when the store's generation moved (:class:`IndexCache`)."""
        self.cache.refresh(force)

    def rebuild_index(self, generation: int, store: Store | None = None) -> LexicalIndex:
        """Build and save the BM25 index of ``store``'s collection (default: this retriever's)."""
        return self.cache.rebuild_index(generation, store)

    @property
    def manifest(self) -> dict[str, ArticleRecord]:
        self.refresh()
        return self._manifest

    def chunks(self, ids: Sequence[str], index: LexicalIndex | None = None) -> dict[str, tuple[str, dict]]:
        """Chunk id -> (text, metadata) of those of ``ids`` in the store: from the copy saved with ``index``
        (default: the current snapshot's), which holds every chunk of its snapshot, else from Chroma."""
        index = index if index is not None else self.index
        copy = index.passages if index is not None else None
        if copy is None:
            return self.store.get_chunks(ids)
        out: dict[str, tuple[str, dict]] = {}
        try:
            for cid in ids:
                row = copy.get(cid)
                if row is not None:
                    out[cid] = row
        except ValueError as e:  # an unreadable line (the files passed their checksums on load)
            logger.warning("cannot read the saved passages (%s): reading them from the store", e)
            return self.store.get_chunks(ids)
        return out

    # -------------------------------------------------------------------------------- search
    def scope(self, question: str | Anchors) -> Scope:
        """The articles that match what ``question`` names (places, 《titles》, zones, years): see anchors.
        Takes the question, or its :class:`Anchors` when the caller has them already."""
        self.refresh()
        anchors = question if isinstance(question, Anchors) else question_anchors(question)
        if not anchors:
            return Scope()
        index, manifest, articles, rows_code = self._view
        articles_with, rarest = index_lookups(index, articles, rows_code)
        with self._lock:
            if self._profiles is None or self._profiles[0] is not manifest:
                self._profiles = (manifest, profiles(manifest))
            known = self._profiles[1]
        return scope(anchors, manifest, articles_with, rarest, known)

    def search(
        self,
        question: str,
        k: int | None = None,
        filters: Filters | None = None,
        terms: list[str] | None = None,
        within: set[str] | None = None,
    ) -> list[Passage]:
        """The ``k`` best passages for ``question``, best first. ``terms`` overrides its lexical terms;
        ``within`` limits the search to those article keys (a :class:`Scope`'s)."""
        return self.run(question, k, filters, terms, within).passages

    def run(
        self,
        question: str,
        k: int | None = None,
        filters: Filters | None = None,
        terms: list[str] | None = None,
        within: set[str] | None = None,
    ) -> Search:
        """:meth:`search`, with the seconds each stage took."""
        s = self.settings
        k = k or s.k
        self.refresh()
        index, manifest, articles, rows_code = self._view  # one snapshot for the whole search
        t = time.perf_counter
        timings: dict[str, float] = {}
        keys = None
        if filters is not None and filters.active:
            keys = [key for key, rec in manifest.items() if filters.matches(rec)]
        if within is not None:
            keys = [key for key in keys if key in within] if keys is not None else [*within & manifest.keys()]
            if not keys:
                return Search([], timings)
        embedding = self._embed_started(question) if s.fusion != "lexical" else None
        t0 = t()
        scoped = rows_within(articles, rows_code, keys) if keys is not None else None
        terms = terms if terms is not None else query_tokens(question)
        terms = expand(terms, index) if index is not None and index.ids else terms
        lex = self._lexical(index, terms, scoped, s.candidates) if s.fusion != "dense" else []
        timings["lexical"] = t() - t0
        t0 = t()
        rows: dict[str, tuple[str, dict]] = {}
        if embedding is not None and not embedding.done() and lex:  # the wait for the vector, put to use
            rows = self.chunks([cid for cid, _ in lex[: k + EARLY_EXTRA]], index)
        early = t() - t0
        dense: list[tuple[str, float]] = []
        if embedding is not None:
            t0 = t()
            vector, timings["embed_run"] = embedding.result()
            timings["embed"] = t() - t0  # the wait: the embedding ran beside the lexical search
            t0 = t()
            dense = dense_search(self.store, index, vector, s.candidates, keys, scoped)
            timings["dense"] = t() - t0
        t0 = t()
        fused = fuse([(s.lexical_weight, lex), (s.dense_weight, dense)], s.rrf_k)
        best = sorted(fused, key=fused.__getitem__, reverse=True)[:k]
        timings["fusion"] = t() - t0
        t0 = t()
        missing = [cid for cid in best if cid not in rows]
        if missing:
            rows.update(self.chunks(missing, index))
        passages = [Passage(cid, rows[cid][0], rows[cid][1], fused[cid]) for cid in best if cid in rows]
        groups = term_groups(terms, index) if index is not None and index.ids else []
        # the chunk both rankings put first: the refusal gate asks less word overlap of it (extractive.py)
        agreed = lex[0][0] if lex and dense and lex[0][0] == dense[0][0] else None
        for p in passages:
            p.terms, p.groups = terms, groups
            p.agreed = p.id == agreed
            p.coverage = coverage(groups, set(p.meta.get("tokens", "").split()))
        timings["fetch"] = t() - t0 + early
        return Search(passages, timings)

    def prefetch(self, question: str) -> None:
        """Start embedding ``question`` now (on a worker thread), for a search of it that follows."""
        if self.settings.fusion != "lexical":
            self._embed_started(question)

    def _embed_started(self, question: str) -> Future[tuple[list[float], float]]:
        """The question's vector and the seconds it took, computed on a worker thread while the lexical
        search runs (the embedding engine releases the GIL). The last few questions' embeddings are kept,
        finished or under way: an answer searches the same question again within single articles (parts,
        versions), and :meth:`prefetch` starts one before the search."""
        with self._lock:
            known = self._vectors.get(question)
            if known is not None and not (known.done() and known.exception() is not None):
                self._vectors.move_to_end(question)
                if not known.done():
                    return known  # started by prefetch: this search is its first use
                done: Future[tuple[list[float], float]] = Future()
                done.set_result((known.result()[0], 0.0))
                return done
            if self._pool is None or self._pool_pid != os.getpid():  # none yet, or forked: threads gone
                self._pool = ThreadPoolExecutor(EMBED_THREADS, thread_name_prefix="talentbot-embed")
                self._pool_pid = os.getpid()
                self._vectors.clear()
            pool = self._pool

            def embed() -> tuple[list[float], float]:
                t0 = time.perf_counter()
                vector = self.embedder.encode([question], query=True)[0].tolist()
                return vector, time.perf_counter() - t0

            future = pool.submit(embed)
            self._vectors[question] = future
            while len(self._vectors) > QUESTION_VECTORS:
                self._vectors.popitem(last=False)
        return future

    def _lexical(
        self, index: LexicalIndex | None, terms: list[str], rows: np.ndarray | None, n: int
    ) -> list[tuple[str, float]]:
        """The ``n`` best chunks by BM25 among ``rows`` of ``index`` (None: all), best first."""
        if index is None or not index.ids:
            return []
        scores = self._term_scores(index, terms)
        if rows is not None:
            scores = scores[rows]
        n = min(n, len(scores))
        if n <= 0:
            return []
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top], kind="stable")]
        at = top if rows is None else rows[top]
        return [(index.ids[i], float(s)) for i, s in zip(at, scores[top], strict=True) if s > 0]

    def _term_scores(self, index: LexicalIndex, terms: list[str]) -> np.ndarray:
        """BM25 scores of every chunk for ``terms``; the last few lists' are kept, as an answer searches the
        same question again within single articles (versions in force, parts of a question)."""
        key = tuple(terms)
        with self._lock:
            known = self._scores.get(key)
            if known is not None and known[0] is index:
                self._scores.move_to_end(key)
                return known[1]
        scores = index.scores(terms)
        scores.flags.writeable = False  # shared by the searches that reuse it
        with self._lock:
            for stale in [k for k, (of, _) in self._scores.items() if of is not index]:
                del self._scores[stale]  # of an index a refresh replaced: let it go
            self._scores[key] = (index, scores)
            while len(self._scores) > TERM_SCORES:
                self._scores.popitem(last=False)
        return scores


class TalentRetriever(BaseRetriever):
    """LangChain ``BaseRetriever`` over the hybrid search (for use in other LangChain chains)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: Retriever
    k: int = 4
    filters: Filters | None = None

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [
            Document(
                page_content=p.text, id=p.id, metadata={**p.meta, "score": p.score, "coverage": p.coverage}
            )
            for p in self.retriever.search(query, self.k, self.filters)
        ]
