"""The batch writer of an ingest: a batch of new or changed articles is embedded and written to the store,
then their manifest records; and the repair of what an interrupted run left (see :mod:`talentbot.ingest`).

A batch is embedded in one encode call and written in one upsert (Chroma writes far faster in large
batches); the jieba tokens of its chunks are computed on a second thread meanwhile. Passages whose
indexed text is already stored keep their vectors (:mod:`talentbot.vector_reuse`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .anchors import place_codes
from .chunking import Chunk
from .embeddings import Embedder
from .heap import release_free_memory
from .lexical import tokenize
from .loaders import Article
from .policy_dates import policy_dates, valid_iso
from .regions import article_regions
from .store import ArticleRecord, Store
from .vector_reuse import StoredVectors

if TYPE_CHECKING:
    from .ingest import IngestReport

logger = logging.getLogger("talentbot.ingest")  # the messages of an ingest, as before the split


def article_record(
    key: str, path: Path, article: Article, digest: str, chunks: Sequence[Chunk]
) -> ArticleRecord:
    """The manifest record of an article: its regions (:func:`talentbot.regions.article_regions`), the dates
    it states of itself (:func:`talentbot.policy_dates.policy_dates`; an ``effective`` date in the front
    matter wins) and the chapter headings of its ``chunks``."""
    region, codes = article_regions(
        article.title, article.source, article.text, article.metadata.get("region", "")
    )
    dates = policy_dates(article.text, issued=article.date)
    return ArticleRecord(
        key=key,
        path=str(path.resolve()),
        title=article.title,
        source=article.source,
        date=article.date,
        hash=digest,
        chunks=len(chunks),
        region=region,
        region_codes=codes,
        places=",".join(place_codes(article.title, article.source, article.text)),
        effective=valid_iso(article.metadata.get("effective", "")) or dates.effective,
        adopted=dates.adopted,
        amended=",".join(dates.amended),
        expires=dates.expires,
        repeals="；".join(dates.repeals),
        headings="\n".join(dict.fromkeys(c.chapter for c in chunks if c.chapter)),
    )


def chunk_meta(rec: ArticleRecord, chunk: Chunk, article: Article) -> dict:
    """The Chroma metadata of one chunk of ``article`` (with its lexical tokens)."""
    meta = {
        "article": rec.key,
        "ordinal": chunk.ordinal,
        "hash": rec.hash,
        "title": rec.title,
        "source": rec.source,
        "date": rec.date,
        "path": rec.path,
        "file": rec.file,
        "region": rec.region,
        "chapter": chunk.chapter,
        "label": chunk.label,
        "tokens": " ".join(tokenize(chunk.indexed_text)),
    }
    if rec.effective:  # cited with the passage (answer.citation_for)
        meta["effective"] = rec.effective
    if chunk.page is not None:
        meta["page"] = chunk.page
    for extra in ("original_source", "url", "ocr", "ocr_pages"):  # metadata worth citing (ocr: read by OCR)
        if article.metadata.get(extra):
            meta[extra] = article.metadata[extra]
    return meta


def repair(store: Store) -> int:
    """Drop every article whose stored chunks disagree with its manifest record; return how many."""
    manifest = store.manifest()
    seen: dict[str, list[tuple[int, str]]] = {}
    for row in store.iter_chunks():
        meta = row["metadata"] or {}
        seen.setdefault(meta.get("article", ""), []).append(
            (int(meta.get("ordinal", -1)), meta.get("hash", ""))
        )
    broken = 0
    for key in set(seen) | set(manifest):
        rec = manifest.get(key)
        rows = seen.get(key, [])
        ok = (
            rec is not None
            and len(rows) == rec.chunks
            and all(h == rec.hash for _, h in rows)
            and sorted(o for o, _ in rows) == list(range(rec.chunks))
        )
        if not ok:
            broken += 1
            store.remove_article(key)
    return broken


def flush(
    store: Store,
    embedder: Embedder,
    pending: list,
    report: IngestReport,
    pool: Executor,
    reuse: StoredVectors,
) -> None:
    """Embed all pending chunks in one batch and write them in one upsert (Chroma writes far faster in
    large batches), then trim what a shorter new version left behind, then record the articles.
    The jieba tokens for the chunk metadata are computed on a second thread while the model encodes.
    A crash before the records are written leaves chunks the next run's repair recognises by hash."""
    if not pending:
        return
    metas = pool.submit(
        lambda: [chunk_meta(rec, c, article) for rec, article, chunks, _ in pending for c in chunks]
    )
    ids = [f"{rec.key}:{c.ordinal}" for rec, _, chunks, _ in pending for c in chunks]
    texts = [c.indexed_text for _, _, chunks, _ in pending for c in chunks]
    kept = reuse.find(pending)
    todo = [i for i, cid in enumerate(ids) if cid not in kept]
    fresh = embedder.encode([texts[i] for i in todo]) if todo else np.zeros((0, 0), dtype=np.float32)
    dim = fresh.shape[1] if todo else len(next(iter(kept.values())))
    vectors = np.empty((len(ids), dim), dtype=np.float32)
    for row, i in enumerate(todo):
        vectors[i] = fresh[row]
    for i, cid in enumerate(ids):
        if cid in kept:
            vectors[i] = kept[cid]
    if kept:
        logger.info("re-indexed %d unchanged passages with their stored vectors", len(kept))
    store.claim_model(dim=dim)  # same name, other vector length (a local folder replaced)
    store.write_chunks(ids, vectors, [c.text for _, _, chunks, _ in pending for c in chunks], metas.result())
    for rec, _, chunks, is_update in pending:
        if is_update:
            store.trim_chunks(rec.key, len(chunks))
            report.updated += 1
        else:
            report.added += 1
        store.put_article(rec)
    release_free_memory()  # what Chroma's write threads freed (about 50 MB a batch at 100k chunks)
