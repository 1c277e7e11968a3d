"""``TalentBot``: the one core object. The CLI and the web UI only parse input, call it and render."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .answer import Answer, AnswerEvent, Event, TextEvent
from .chain import build_chain, final_answer
from .condense import History
from .config import Settings, load_settings
from .errors import EmptyStoreError, InputError, StoreLockedError, TalentBotError
from .ingest import IngestReport, Progress, run_ingest
from .retrieval import Filters, Retriever, Search, TalentRetriever
from .store import ArticleRecord, Store
from .store_swap import clear_abandoned, discard, start_staging, switch_to

if TYPE_CHECKING:
    from langchain_core.runnables import Runnable

    from .embeddings import Embedder
    from .llm import LLMAnswerer
    from .store_lease import IngestLease

logger = logging.getLogger(__name__)

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_WORDY = re.compile(r"[\w\u4e00-\u9fff]", re.U)


class TalentBot:
    """Ingest documents and answer questions about them with cited passages.

    ``TalentBot(settings)`` or ``TalentBot(store="vectorstore", k=4)``: keyword arguments override
    settings. Heavy parts (model, store, index) are opened on first use.
    """

    def __init__(self, settings: Settings | None = None, **overrides: Any) -> None:
        if settings is None or overrides:  # validated: a bad value raises ConfigError naming it
            settings = load_settings(settings, **overrides)
        self.settings = settings
        self._store: Store | None = None
        self._embedder: Embedder | None = None
        self._retriever: Retriever | None = None
        self._chain: Runnable | None = None
        self._llm: LLMAnswerer | None = None
        self._open_lock = threading.RLock()

    # ------------------------------------------------------------------------------ components
    @property
    def store(self) -> Store:
        with self._open_lock:
            if self._store is None:
                self._store = Store(self.settings)
            return self._store

    @property
    def embedder(self) -> Embedder:
        with self._open_lock:
            if self._embedder is None:
                from .embeddings import Embedder

                s = self.settings
                self._embedder = Embedder(
                    s.model_name, s.device, s.embed_batch_size, s.embed_bf16, s.model_cache
                )
            return self._embedder

    @property
    def retriever(self) -> Retriever:
        with self._open_lock:
            if self._retriever is None:
                self._retriever = Retriever(self.settings, self.store, self.embedder)
            return self._retriever

    @property
    def llm(self) -> LLMAnswerer | None:
        """The optional LLM answerer, or None in extractive mode."""
        with self._open_lock:
            if self._llm is None and self.settings.llm_base_url:
                from .llm import LLMAnswerer

                self._llm = LLMAnswerer(self.settings)
            return self._llm

    @property
    def chain(self) -> Runnable:
        """The LCEL chain (a LangChain Runnable) behind ``ask`` and ``stream``."""
        with self._open_lock:
            if self._chain is None:
                self._chain = build_chain(self.settings, self.retriever, self.llm)
            return self._chain

    def as_retriever(self, k: int | None = None, filters: Filters | None = None) -> TalentRetriever:
        """The hybrid retrieval as a LangChain ``BaseRetriever``."""
        return TalentRetriever(retriever=self.retriever, k=k or self.settings.k, filters=filters)

    # ----------------------------------------------------------------------------------- ingest
    def ingest(
        self,
        paths: Sequence[str | Path] | None = None,
        rebuild: bool = False,
        progress: Progress | None = None,
    ) -> IngestReport:
        """Index new and changed files under ``paths`` (default: the corpus folder); remove deleted ones."""
        from filelock import FileLock, Timeout

        roots = [Path(p) for p in (paths or [self.settings.corpus])]
        missing = [str(p) for p in roots if not p.exists()]
        if missing:
            raise InputError(f"no such file or folder: {', '.join(missing)}")
        lock_dir = self.settings.store
        lock_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(lock_dir / ".ingest.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout as e:
            raise StoreLockedError(
                f"another ingest is running on {lock_dir}; wait for it to finish, then run this again"
            ) from e
        try:
            lease = self._take_lease() if self.settings.chroma_url else None
            try:
                if self.store.damage is None:
                    clear_abandoned(self.store)
                if rebuild and self.store.damage is None:
                    report = self._rebuild_aside(roots, progress)
                else:  # a damaged store cannot answer anyway: reset() replaces its files first
                    report = run_ingest(self.store, self.embedder, self.settings, roots, rebuild, progress)
            finally:
                if lease is not None:
                    try:
                        lease.release()
                    except TalentBotError as e:  # the server went away: the lease runs out by itself
                        logger.warning("could not release the ingest lease: %s", e)
            self.retriever.refresh(force=True)
            return report
        finally:
            lock.release()

    def _rebuild_aside(self, roots: list[Path], progress: Progress | None) -> IngestReport:
        """Index everything into fresh collections and a fresh lexical index while questions are still
        answered from the current ones, then switch to them (see :mod:`talentbot.store_swap`)."""
        self.embedder.model  # noqa: B018 - load (and check) the model before creating anything
        staging = start_staging(self.store)
        try:
            report = run_ingest(staging, self.embedder, self.settings, roots, False, progress)
            self.retriever.rebuild_index(staging.state().get("generation", 0), staging)
        except BaseException:
            discard(self.store, staging)
            raise
        switch_to(self.store, staging)
        return report

    def _take_lease(self) -> IngestLease:
        """In server mode, the store-wide lease that keeps ingests on other hosts out (see store_lease)."""
        import datetime

        from .store_lease import IngestLease

        lease = IngestLease(self.store)
        held = lease.acquire()
        if held is not None:
            until = datetime.datetime.fromtimestamp(float(held.get("expires", 0)), datetime.UTC)
            raise StoreLockedError(
                f"another ingest ({held.get('owner')}) is writing to the Chroma server at "
                f"{self.settings.chroma_url} (its lease runs until {until:%H:%M:%S} UTC unless renewed); "
                "wait for it to finish, then run this again"
            )
        return lease

    def articles(self) -> list[ArticleRecord]:
        """The indexed articles, sorted by title."""
        return sorted(self.store.manifest().values(), key=lambda r: (r.title, r.path))

    def warm_up(self, stop: threading.Event | None = None) -> None:
        """Load now what a process's first questions would otherwise wait for: the faster question embedding
        of a long-running process (:meth:`Embedder.warm_queries`), the lexical index, jieba, the tables for
        unseen words and for English questions (dictionary, word forms, pinyin). A server calls it on a
        background thread once it listens (:class:`talentbot.api_shared.WarmUp`); no answer is produced, so
        no LLM is called. ``stop``, once set, ends it at its next step."""
        from .terms import general_idf

        stopped = stop.is_set if stop is not None else (lambda: False)
        if self.settings.fusion != "lexical":
            self.embedder.warm_queries(stop)
        if stopped():
            return
        general_idf()
        for question in ("人才引进补贴", "talent subsidies in Hefei"):  # a Chinese and an English search
            if stopped():
                return
            self.retriever.scope(question)
            self.retriever.search(question, 1)

    # ------------------------------------------------------------------------------------- ask
    def check_question(self, question: str) -> str:
        """Return the cleaned question, or raise :class:`InputError` saying what to fix."""
        if not isinstance(question, str):
            raise InputError("the question must be text")
        if _CONTROL.search(question):
            raise InputError(
                "the question contains control characters (such as NUL); remove them and ask again"
            )
        q = question.strip()
        if not q:
            raise InputError("the question is empty: type a question, e.g. 人才公寓有哪些支持方式？")
        if len(q) > self.settings.max_question_chars:
            raise InputError(
                f"the question is {len(q)} characters long; keep it under "
                f"{self.settings.max_question_chars} characters"
            )
        if not _WORDY.search(q):
            raise InputError(
                "the question has no words in it (only symbols or emoji); type a question in words"
            )
        return q

    def stream(
        self,
        question: str,
        history: History = None,
        filters: Filters | None = None,
        k: int | None = None,
        trace: Search | None = None,
    ) -> Iterator[Event]:
        """Yield :class:`TextEvent` pieces as the answer is produced, then one :class:`AnswerEvent`.
        In LLM mode the pieces are streamed only once the answer's figures are checked. ``trace``, when
        given, is filled with the passages retrieved (best first) and the seconds per retrieval stage."""
        q = self.check_question(question)
        if not self.retriever.manifest:  # cached per store generation: no Chroma count on every question
            raise EmptyStoreError("nothing is indexed yet: run `talentbot ingest corpus` first")
        for ev in self.chain.stream(
            {"question": q, "history": history or [], "filters": filters, "k": k, "trace": trace}
        ):
            if not isinstance(ev, (TextEvent, AnswerEvent)):
                raise TypeError(f"the answer chain yielded a {type(ev).__name__}, not an answer event")
            yield ev
            if isinstance(ev, AnswerEvent):
                return

    def ask(
        self,
        question: str,
        history: History = None,
        filters: Filters | None = None,
        k: int | None = None,
        trace: Search | None = None,
    ) -> Answer:
        """Answer ``question`` (with optional chat ``history`` and ``filters``); consumes :meth:`stream`."""
        answer = final_answer(self.stream(question, history, filters, k, trace))
        if answer is None:
            raise RuntimeError("the answer stream ended without an AnswerEvent")
        return answer
