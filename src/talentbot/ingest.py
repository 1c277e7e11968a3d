"""Incremental ingest: load -> chunk -> embed -> write to Chroma -> rebuild the lexical index.

This module walks the files and decides what to index, remove or keep; :mod:`talentbot.ingest_batch`
embeds and writes each batch of new or changed articles (at most about :data:`FLUSH_CHUNKS` chunks: the
memory of an ingest does not grow with the corpus), and repairs what an interrupted run left.

Crash safety: the store's state record is marked dirty before any write and clean after the last.
A run that finds it dirty first repairs it: every article whose chunks disagree with its manifest
record (hash or count) is dropped, so it is ingested again from its file.

Nothing indexed is lost to a file or folder that can't be read: its articles stay, and it is reported.
PDF/Word/HTML files are parsed under a time and memory limit (:mod:`talentbot.parse_worker`); a file whose
content fails is remembered (:mod:`talentbot.failure_log`) and not parsed again until it changes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .chunking import Chunk, chunk_article
from .config import Settings
from .embeddings import Embedder
from .failure_log import FailureLog, stat_or_none
from .heap import release_free_memory
from .ingest_batch import article_record, flush, repair
from .limits import Limits, LoadError, ParseError
from .loaders import Article, discover, display_path
from .parse_worker import Parser
from .store import ArticleRecord, Store
from .vector_reuse import StoredVectors

logger = logging.getLogger(__name__)


FLUSH_CHUNKS = 2048  # chunks embedded and written together: one encode call pads less, Chroma writes faster
# in large batches, and a small corpus is a single batch (a few MB of text and vectors)


@dataclass
class IngestReport:
    """Outcome of one ingest run (the CLI prints it, ``--json`` dumps it)."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    chunks: int = 0
    seconds: float = 0.0
    embedded: int = 0
    repaired: int = 0

    def as_dict(self) -> dict:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "failed": self.failed,
            "chunks": self.chunks,
            "seconds": round(self.seconds, 3),
        }


def article_key(path: Path) -> str:
    """Stable id of an article: a digest of its absolute path (symlinks resolved where they resolve)."""
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError):  # a symlink loop: Python < 3.13 raises RuntimeError
        resolved = path.absolute()
    return hashlib.sha1(os.fsencode(resolved)).hexdigest()[:16]  # a name that is not UTF-8 still has a key


CHUNKER_VERSION = "v7"  # bump when loaders/chunking/tokens change for unchanged files: forces a re-index


def content_hash(article: Article, settings: Settings) -> str:
    """Digest of the cleaned article and of every setting that changes its chunks or vectors."""
    h = hashlib.sha256()
    for part in (
        settings.model_label,
        str(settings.chunk_size),
        str(settings.chunk_overlap),
        CHUNKER_VERSION,
        article.title,
        article.source,
        article.date,
        repr(sorted(article.metadata.items())),
        repr(article.pages),
    ):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()


Progress = Callable[[int, int, str], None]


def run_ingest(
    store: Store,
    embedder: Embedder,
    settings: Settings,
    paths: Sequence[Path],
    rebuild: bool = False,
    progress: Progress | None = None,
) -> IngestReport:
    """Bring the store in line with the files under ``paths``. The caller holds the write lock."""
    t0 = time.perf_counter()
    report = IngestReport()
    computed_before = embedder.computed
    if rebuild:
        embedder.model  # noqa: B018 - load (and check) the model before dropping anything
        store.reset()
    if store.state().get("dirty"):
        report.repaired = repair(store)
        logger.warning("repaired an interrupted ingest: %d article(s) will be re-indexed", report.repaired)
    store.claim_model(settings.model_label)
    store.tune_index()
    store.set_state(dirty=True)
    manifest = store.manifest()
    release_free_memory()  # the article list read through Chroma's threads (~150 MB at 100k chunks)
    blocked: list[tuple[Path, str]] = []  # folders that could not be listed: their articles are kept
    files = list(discover(paths, blocked))
    limits = Limits.from_settings(settings)
    failures = FailureLog(store, limits, CHUNKER_VERSION)
    position = {path: i for i, path in enumerate(files)}

    def on_page(path: Path, done: int, total: int) -> None:  # a long scanned file: progress per OCR'd page
        if progress:
            name = f"{display_path(path.name)}: OCR page {done + 1} of {total}"
            progress(position.get(path, 0), len(files), name)

    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="talentbot-tokenize") as pool,
        Parser(limits, files, on_page=on_page) as parser,
    ):
        seen = _ingest_files(
            store, embedder, settings, files, manifest, report, pool, progress, parser, failures
        )
    blocked_dirs = [d for d, _ in blocked]
    report.removed = _remove_missing(store, manifest, seen, paths, blocked_dirs)
    _report_blocked(blocked, manifest, seen, report)
    failures.prune(seen, paths, blocked_dirs)
    failures.save()
    if progress:
        progress(len(files), len(files), "")
    report.chunks = sum(rec.chunks for rec in store.manifest().values())  # repair() keeps the two equal
    release_free_memory()
    report.embedded = embedder.computed - computed_before
    state = store.state()
    changed = report.added or report.updated or report.removed or report.repaired or rebuild
    store.set_state(dirty=False, generation=state.get("generation", 0) + (1 if changed else 0))
    report.seconds = time.perf_counter() - t0
    return report


def _ingest_files(
    store: Store,
    embedder: Embedder,
    settings: Settings,
    files: list[Path],
    manifest: dict[str, ArticleRecord],
    report: IngestReport,
    pool: Executor,
    progress: Progress | None,
    parser: Parser,
    failures: FailureLog,
) -> set[str]:
    """Load, chunk and flush every new or changed file; return the keys of all files seen."""
    seen: set[str] = set()
    keys = {path: article_key(path) for path in files}  # resolves each path once
    reuse = StoredVectors(store, moved=bool(set(manifest) - set(keys.values())))
    pending: list[tuple[ArticleRecord, Article, list[Chunk], bool]] = []
    pending_chunks = 0
    for i, path in enumerate(files):
        if progress:
            progress(i, len(files), display_path(path.name))
        key = keys[path]
        seen.add(key)
        article = _load(path, key, parser, failures, manifest, report)
        if article is None:
            continue
        digest = content_hash(article, settings)
        old = manifest.get(key)
        if old is not None and old.hash == digest:
            report.unchanged += 1
            continue
        chunks = chunk_article(article, settings.chunk_size, settings.chunk_overlap)
        rec = article_record(key, path, article, digest, chunks)
        pending.append((rec, article, chunks, old is not None))
        pending_chunks += len(chunks)
        if pending_chunks >= FLUSH_CHUNKS:
            flush(store, embedder, pending, report, pool, reuse)
            pending, pending_chunks = [], 0
    flush(store, embedder, pending, report, pool, reuse)
    return seen


def _load(
    path: Path,
    key: str,
    parser: Parser,
    failures: FailureLog,
    manifest: dict[str, ArticleRecord],
    report: IngestReport,
) -> Article | None:
    """Load one file, or report why not (a failure remembered from an earlier run is not parsed again)."""
    st = stat_or_none(path)
    reason = failures.known(key, st)
    if reason is not None:
        reason += " (not parsed again until the file changes)"
    else:
        try:
            article = parser.load(path)
        except ParseError as e:
            failures.remember(key, path, st, str(e))
            reason = str(e)
        except LoadError as e:
            reason = str(e)
        else:
            failures.forget(key)
            return article
    if key in manifest:
        reason += "; the version indexed earlier is kept"
    report.failed.append({"path": display_path(path), "error": reason})
    logger.warning("skipped %s: %s", display_path(path), reason)
    return None


def _remove_missing(
    store: Store,
    manifest: dict[str, ArticleRecord],
    seen: set[str],
    roots: Iterable[Path],
    blocked: Iterable[Path] = (),
) -> int:
    """Remove articles that lived under an ingested folder (or were named) but are gone now. Articles under
    a folder that could not be listed are kept: they were not looked at, not found missing."""
    roots, blocked = [r.resolve() for r in roots], [b.resolve() for b in blocked]
    removed = 0
    for key, rec in manifest.items():
        if key in seen:
            continue
        p = Path(rec.path)
        if any(b == p or b in p.parents for b in blocked):
            continue
        try:
            gone = not p.exists()
        except OSError:  # e.g. a parent folder that can't be searched: not known to be gone
            continue
        if any(p == r or r in p.parents for r in roots) or gone:
            store.remove_article(key)
            removed += 1
    return removed


def _report_blocked(
    blocked: list[tuple[Path, str]], manifest: dict[str, ArticleRecord], seen: set[str], report: IngestReport
) -> None:
    """Report each folder that could not be listed, with how many of its indexed articles are kept."""
    for folder, reason in blocked:
        real = folder.resolve()
        kept = sum(1 for key, rec in manifest.items() if key not in seen and real in Path(rec.path).parents)
        report.failed.append(
            {
                "path": display_path(folder),
                "error": f"{reason}; its {kept} indexed article(s) are kept until it can be read",
            }
        )
