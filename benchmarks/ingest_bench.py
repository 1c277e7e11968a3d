"""Ingest worker: the real ``TalentBot.ingest`` end to end, with every stage function timed in place.

The stage functions of the pipeline (loaders.load, chunk_article, Embedder.encode, Store.write_chunks,
LexicalIndex.build, ...) are wrapped with an exclusive-time profiler while ``TalentBot.ingest`` runs,
so the split is that of the real run, not of a re-enactment. Then an unchanged re-ingest, and the
embedding-only throughput of the same texts (this machine's limit for ingest).
"""

from __future__ import annotations

import random
import shutil
import time
from pathlib import Path

from common import OVERLAPPED, Phase, Profiler, SyntheticVectors, peak_rss_mb, rss_mb

# Stage groups, as the issue names them.
GROUPS = {
    "load + clean": ["discover files", "load + clean", "content hash", "region detection"],
    "chunk": ["chunk", "chunk metadata"],
    "embed": ["embed", "embed (synthetic vectors)"],
    "Chroma write": ["Chroma write", "Chroma manifest/state"],
    "lexical index": [
        "tokenize (jieba, lexical)",
        "Chroma read (tokens for BM25)",
        "BM25 build",
        "vector copy (dense search)",
        "lexical index save/load",
        "lexical refresh",
    ],
}


def install(prof: Profiler) -> list[str]:
    """Wrap the stage functions; return the ones that could not be found (moved or renamed)."""
    from talentbot import dense, ingest, ingest_batch, lexical, lexical_build, retrieval, store

    missing = []
    for owner, name, stage, gen in [
        (ingest, "discover", "discover files", True),
        (ingest, "load", "load + clean", False),
        (ingest, "content_hash", "content hash", False),
        (ingest_batch, "article_regions", "region detection", False),
        (ingest, "chunk_article", "chunk", False),
        (ingest_batch, "chunk_meta", "chunk metadata", False),
        (ingest_batch, "tokenize", "tokenize (jieba, lexical)", False),
        (store.Store, "write_chunks", "Chroma write", False),
        (store.Store, "trim_chunks", "Chroma write", False),
        (store.Store, "put_article", "Chroma write", False),
        (store.Store, "remove_article", "Chroma write", False),
        (store.Store, "manifest", "Chroma manifest/state", False),
        (store.Store, "state", "Chroma manifest/state", False),
        (store.Store, "set_state", "Chroma manifest/state", False),
        (store.Store, "count", "Chroma manifest/state", False),
        (store.Store, "iter_chunks", "Chroma read (tokens for BM25)", True),
        (lexical.LexicalIndex, "build", "BM25 build", False),
        (lexical_build.BM25Builder, "add", "BM25 build", False),
        (lexical_build.BM25Builder, "build", "BM25 build", False),
        (dense.VectorWriter, "add", "vector copy (dense search)", False),
        (dense.VectorWriter, "finish", "vector copy (dense search)", False),
        (lexical.LexicalIndex, "save", "lexical index save/load", False),
        (lexical.LexicalIndex, "load", "lexical index save/load", False),
        (retrieval.Retriever, "refresh", "lexical refresh", False),
    ]:
        if isinstance(owner, type) and isinstance(owner.__dict__.get(name), classmethod):
            # classmethods: wrap the bound method and store it as a staticmethod
            fn = getattr(owner, name, None)
            if fn is None:
                missing.append(f"{owner.__name__}.{name}")
                continue
            wrapped = prof.wrap(stage, fn)
            prof._undo.append((owner, name, owner.__dict__[name]))
            setattr(owner, name, staticmethod(wrapped))
            continue
        if not prof.patch(owner, name, stage, generator=gen):
            missing.append(f"{getattr(owner, '__name__', owner)}.{name}")
    return missing


def grouped(stages: dict[str, float]) -> dict[str, float]:
    out = {g: round(sum(stages.get(s, 0.0) for s in names), 4) for g, names in GROUPS.items()}
    known = {s for names in GROUPS.values() for s in names}
    out["other"] = round(
        sum(v for k, v in stages.items() if k not in known and not k.endswith(OVERLAPPED)), 4
    )
    return out


def corpus_texts(corpus: Path, settings) -> tuple[list[str], int]:
    """Indexed texts of every chunk of ``corpus`` and the number of articles (talentbot's own chunker)."""
    from talentbot.chunking import chunk_article
    from talentbot.loaders import LoadError, discover, load

    texts, articles = [], 0
    for path in discover([corpus]):
        try:
            art = load(path)
        except LoadError:
            continue
        articles += 1
        texts += [c.indexed_text for c in chunk_article(art, settings.chunk_size, settings.chunk_overlap)]
    return texts, articles


def worker_ingest(a: dict) -> dict:
    from talentbot.bot import TalentBot
    from talentbot.config import Settings
    from talentbot.embeddings import Embedder

    corpus, store = Path(a["corpus"]), Path(a["store"])
    synthetic = a.get("vectors") == "synthetic"
    shutil.rmtree(store, ignore_errors=True)
    settings = Settings(store=store, corpus=corpus)
    bot = TalentBot(settings)
    res: dict = {
        "corpus": str(corpus),
        "vectors": "synthetic" if synthetic else "real",
        "settings": {
            "bf16": settings.embed_bf16,
            "batch": settings.embed_batch_size,
            "device": settings.device,
            "chunk_size": settings.chunk_size,
        },
    }
    rss0 = rss_mb()
    t0 = time.perf_counter()
    bot.store.count()  # import chromadb and open the client before timing (reported apart)
    res["store_open_s"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    model = bot.embedder.model
    res["model_load_s"] = round(time.perf_counter() - t0, 3)
    bot.embedder.encode(["预热 warm-up"])
    res["rss_after_model_mb"] = rss_mb()

    prof = Profiler()
    res["unwrapped"] = install(prof)
    if synthetic:
        dim_of = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        fake = SyntheticVectors(dim=dim_of() or 384)
        emb = bot.embedder

        def synthetic_encode(texts, query=False):
            emb.computed += len(texts)
            return fake(list(texts))

        bot.embedder.encode = prof.wrap("embed (synthetic vectors)", synthetic_encode)
    else:
        bot.embedder.encode = prof.wrap("embed", bot.embedder.encode)

    phase = Phase()
    t0 = time.perf_counter()
    report = bot.ingest([corpus])
    total = time.perf_counter() - t0
    res["foreign_cpu_share_ingest"] = phase.share()
    res["peak_rss_mb"] = peak_rss_mb()
    res["rss_start_mb"] = rss0
    stages = prof.result(total)
    res.update(
        total_s=round(total, 3),
        stages_s=stages,
        groups_s=grouped(stages),
        chunks=report.chunks,
        articles=report.added + report.updated,
        embedded=report.embedded,
        failed=len(report.failed),
    )
    synth_s = stages.get("embed (synthetic vectors)", 0.0)
    res["non_embed_s"] = round(total - stages.get("embed", 0.0) - synth_s, 3)

    # --- re-ingest of the unchanged corpus (same process: store and model already open)
    prof.reset()
    times, embedded, unchanged = [], [], 0
    for _ in range(int(a.get("reingest_repeats", 3))):
        t0 = time.perf_counter()
        rep = bot.ingest([corpus])
        times.append(time.perf_counter() - t0)
        embedded.append(rep.embedded)
        unchanged = rep.unchanged
    reps = len(times)
    res["reingest"] = {
        "seconds": [round(t, 4) for t in times],
        "median_s": round(sorted(times)[reps // 2], 4),
        "embedded": embedded,
        "unchanged": unchanged,
        "stages_s_per_run": {k: round(v / reps, 4) for k, v in prof.result().items()},
    }
    prof.restore()

    # --- embedding-only throughput of the same texts: the ingest limit of this machine
    texts, _ = corpus_texts(corpus, settings)
    res["chars"] = sum(len(t) for t in texts)
    ref = Embedder(settings.model_name, settings.device, settings.embed_batch_size, settings.embed_bf16)
    ref._model = model  # same loaded model; its load time is reported apart
    sample = texts
    if synthetic or len(texts) > int(a.get("reference_max", 10**9)):
        sample = random.Random(5).sample(texts, min(len(texts), int(a.get("reference_sample", 512))))
    phase = Phase()
    t0 = time.perf_counter()
    ref.encode(sample)
    ref_s = time.perf_counter() - t0
    res["foreign_cpu_share_embed_only"] = phase.share()
    res["embed_only"] = {
        "texts": len(sample),
        "seconds": round(ref_s, 3),
        "chunks_per_s": round(len(sample) / ref_s, 2),
        "chars_per_s": round(sum(map(len, sample)) / ref_s, 1),
        "sampled": len(sample) < len(texts),
    }
    return res
