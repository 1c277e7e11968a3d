"""The dense search within articles (dense.py): exact over the vector copy saved with the lexical index,
or an unfiltered HNSW search kept when enough of its neighbours fall in the articles; never Chroma's slow
``where`` filter while the copy is there, and that filter again when it is not. Vectors come from
FakeEmbedder (the test compares rankings against the cosine similarities of the stored vectors)."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import numpy as np
import pytest

from fixtures.docs import write_article
from talentbot import TalentBot, dense
from talentbot.dense import VECTORS_FILE
from talentbot.lexical import LexicalIndex
from talentbot.lexical_files import VECTOR_COPY, IndexProblem, write_manifest

N_ARTICLES = 24


@pytest.fixture
def store(tmp_path, fake_embedder) -> Path:
    docs = tmp_path / "docs"
    for i in range(N_ARTICLES):
        write_article(docs / f"a{i}.md", 100 + i, paragraphs=2 + i % 4)
    store = tmp_path / "store"
    report = TalentBot(store=store).ingest([docs])
    assert report.added == N_ARTICLES
    return store


def _dense(bot: TalentBot, vector: list[float], keys: list[str], n: int) -> list[tuple[str, float]]:
    """The dense search of ``bot``'s retriever within the articles ``keys``, on its current index snapshot."""
    index, _, articles, rows_code = bot.retriever.cache.view
    return dense.search(bot.store, index, vector, n, keys, dense.rows_within(articles, rows_code, keys))


def _stored(bot: TalentBot) -> dict[str, np.ndarray]:
    got = bot.store.chunks.get(include=["embeddings"])
    return {
        cid: np.asarray(v, dtype=np.float32) for cid, v in zip(got["ids"], got["embeddings"], strict=True)
    }


def _truth(stored: dict[str, np.ndarray], query: np.ndarray, keys: set[str], n: int) -> list[str]:
    """The n chunks of ``keys`` nearest to ``query`` by cosine similarity, computed here from scratch."""
    ids = [cid for cid in stored if cid.split(":")[0] in keys]
    sims = [float(stored[c] @ query / (np.linalg.norm(stored[c]) * np.linalg.norm(query))) for c in ids]
    return [ids[i] for i in sorted(range(len(ids)), key=lambda i: -sims[i])[:n]]


def _cases(bot: TalentBot, stored: dict[str, np.ndarray]) -> list[tuple[np.ndarray, list[str]]]:
    rng = random.Random(4)
    keys = sorted(bot.retriever.manifest)
    cases = []
    for size in (1, 2, 5, len(keys) - 1):
        for _ in range(3):
            query = bot.embedder.encode([f"人才政策简讯{rng.randrange(100, 130)} 补贴"], query=True)[0]
            cases.append((query, rng.sample(keys, size)))
    return cases


def _spy_where(bot: TalentBot, monkeypatch) -> list:
    wheres: list = []
    chunks = bot.store.chunks
    real = chunks.query

    def query(*args, **kwargs):
        wheres.append(kwargs.get("where"))
        return real(*args, **kwargs)

    monkeypatch.setattr(chunks, "query", query)
    return wheres


def test_the_index_folder_holds_every_chunks_vector_in_row_order(store):
    bot = TalentBot(store=store)
    bot.retriever.refresh()
    index = bot.retriever.index
    assert (store / "lexical" / "talentbot" / VECTORS_FILE).exists()
    assert index.vectors is not None
    stored = _stored(bot)
    assert len(index.ids) == len(stored) == index.vectors.shape[0]
    for row, cid in enumerate(index.ids):
        assert np.array_equal(index.vectors[row], stored[cid]), cid


@pytest.mark.parametrize(
    ("exact_rows", "oversample"),
    [(dense.EXACT_ROWS, dense.OVERSAMPLE), (0, 3.0), (0, 0.01)],
    ids=["exact", "hnsw then filtered", "hnsw short of n: exact"],
)
def test_a_search_within_articles_finds_their_nearest_chunks_without_chromas_filter(
    store, monkeypatch, exact_rows, oversample
):
    monkeypatch.setattr(dense, "EXACT_ROWS", exact_rows)
    monkeypatch.setattr(dense, "OVERSAMPLE", oversample)
    bot = TalentBot(store=store)
    bot.retriever.refresh()
    stored = _stored(bot)
    wheres = _spy_where(bot, monkeypatch)
    n = 6
    for query, keys in _cases(bot, stored):
        got = _dense(bot, query.tolist(), keys, n)
        assert [cid for cid, _ in got] == _truth(stored, query, set(keys), n), keys
        assert all(-1.0 <= s <= 1.0 for _, s in got)
        assert [s for _, s in got] == sorted((s for _, s in got), reverse=True)
    assert all(w is None for w in wheres), wheres
    assert _dense(bot, query.tolist(), [], n) == []
    assert _dense(bot, query.tolist(), ["0000000000000000"], n) == []  # no such article


def test_without_a_saved_vector_copy_chromas_filter_answers_the_same(store, monkeypatch):
    folder = store / "lexical" / "talentbot"
    (folder / VECTORS_FILE).unlink()  # as an index whose copy could not be written
    meta = json.loads((folder / "ids.json").read_text())
    write_manifest(folder, meta["generation"], len(meta["ids"]))
    index = LexicalIndex.load(folder)
    assert index is not None
    assert index.vectors is None
    bot = TalentBot(store=store)
    bot.retriever.refresh()
    assert bot.retriever.index.vectors is None
    stored = _stored(bot)
    wheres = _spy_where(bot, monkeypatch)
    for query, keys in _cases(bot, stored):
        got = _dense(bot, query.tolist(), keys, 6)
        assert [cid for cid, _ in got] == _truth(stored, query, set(keys), 6)
    assert wheres
    assert all(w == {"article": {"$in": list(w["article"]["$in"])}} for w in wheres)


def test_an_index_saved_by_a_version_without_the_copy_is_rebuilt_once_with_it(store, caplog):
    folder = store / "lexical" / "talentbot"
    (folder / VECTORS_FILE).unlink()
    meta = json.loads((folder / "ids.json").read_text())
    write_manifest(folder, meta["generation"], len(meta["ids"]))
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest[VECTOR_COPY]  # as the versions before the copy wrote it
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert LexicalIndex.load(folder).vectors is None
    caplog.set_level(logging.INFO, logger="talentbot")
    bot = TalentBot(store=store)
    bot.retriever.refresh()
    assert any("without a copy of the vectors" in r.getMessage() for r in caplog.records)
    assert bot.retriever.index.vectors is not None
    stored = _stored(bot)
    assert all(
        np.array_equal(bot.retriever.index.vectors[r], stored[c])
        for r, c in enumerate(bot.retriever.index.ids)
    )
    caplog.clear()
    again = TalentBot(store=store)
    again.retriever.refresh()  # saved with the copy: loaded, not rebuilt
    assert again.retriever.index.vectors is not None
    assert not any("rebuild" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("restamp", [False, True], ids=["checksum-stale", "checksum-restamped"])
def test_a_damaged_vector_copy_is_caught_and_rebuilt(store, caplog, restamp):
    folder = store / "lexical" / "talentbot"
    path = folder / VECTORS_FILE
    np.save(path, np.load(path)[::-1].copy())  # well-formed, but the rows of other chunks
    if restamp:  # the manifest written after the damage: only the comparison with the collection tells
        meta = json.loads((folder / "ids.json").read_text())
        write_manifest(folder, meta["generation"], len(meta["ids"]))
        assert LexicalIndex.load(folder) is not None
        reason = "is not the vector of chunk"
    else:
        with pytest.raises(IndexProblem, match=f"{VECTORS_FILE} fails its checksum"):
            LexicalIndex.load(folder)
        reason = f"{VECTORS_FILE} fails its checksum"
    caplog.set_level(logging.INFO, logger="talentbot")
    bot = TalentBot(store=store)
    bot.retriever.refresh()
    warned = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "failed its check" in r.getMessage()
    ]
    assert len(warned) == 1, warned
    assert reason in warned[0]
    rebuilt = bot.retriever.index
    stored = _stored(bot)
    assert all(np.array_equal(rebuilt.vectors[r], stored[c]) for r, c in enumerate(rebuilt.ids))
    assert LexicalIndex.load(folder).vectors is not None  # saved again, sound


def test_a_question_searched_again_is_embedded_once(store):
    """The chain searches a question again within single articles (parts, the version in force): its
    vector is kept, and the search still reports how long the embedding took and how long it waited."""
    bot = TalentBot(store=store)
    retriever = bot.retriever
    before = bot.embedder.computed
    first = retriever.run("人才政策简讯105 补贴")
    assert bot.embedder.computed == before + 1
    assert {"lexical", "embed", "embed_run", "dense"} <= set(first.timings)
    key = first.passages[0].id.split(":")[0]
    again = retriever.run("人才政策简讯105 补贴", within={key})
    assert bot.embedder.computed == before + 1
    assert again.timings["embed_run"] == 0.0
    assert {p.id.split(":")[0] for p in again.passages} == {key}
    retriever.run("人才政策简讯106 补贴")
    assert bot.embedder.computed == before + 2
