"""The copy of the passages saved with the lexical index (passage_copy.py): it holds exactly the
collection's texts and metadata, a question reads its passages from it and never from Chroma, an index saved
without it is rebuilt once, and a copy that is damaged, or disagrees with the collection, is caught and
rebuilt. Vectors come from FakeEmbedder; Chroma is real."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from fixtures.docs import write_article
from talentbot import TalentBot
from talentbot.lexical import LexicalIndex
from talentbot.lexical_files import PASSAGE_COPY, IndexProblem, write_manifest
from talentbot.passage_copy import OFFSETS_FILE, PASSAGES_FILE, PassageRows, PassageWriter
from talentbot.store import Store

N_ARTICLES = 12


@pytest.fixture
def store(tmp_path, fake_embedder) -> Path:
    docs = tmp_path / "docs"
    for i in range(N_ARTICLES):
        write_article(docs / f"a{i}.md", 300 + i, paragraphs=2 + i % 3)
    (docs / "rule.md").write_text(
        "---\ntitle: 星河区人才安家补贴办法\ndate: 2024-05-06\n---\n星河区人才安家补贴办法\n\n"
        "第三条 到星河区工作的博士，由区里发放安家补贴15万元，分三年发放。\n\n"
        "第四条 申请人应当与区内用人单位签订三年以上劳动合同。\n",
        encoding="utf-8",
    )
    store = tmp_path / "store"
    assert TalentBot(store=store).ingest([docs]).added == N_ARTICLES + 1
    return store


def _folder(store: Path) -> Path:
    return store / "lexical" / "talentbot"


def _all_rows(bot: TalentBot) -> dict[str, tuple[str, dict]]:
    got = bot.store.chunks.get(include=["documents", "metadatas"])
    return {
        cid: (doc, meta)
        for cid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
    }


def test_the_copy_holds_every_chunk_as_the_collection_does(store):
    bot = TalentBot(store=store)
    bot.retriever.refresh()
    index = bot.retriever.index
    assert index.passages is not None
    assert len(index.passages) == len(index.ids)
    stored = _all_rows(bot)
    assert set(stored) == set(index.ids)
    assert bot.retriever.chunks([*stored, "nope:0"]) == stored  # an id outside the index is absent


@pytest.fixture
def chroma_reads(monkeypatch) -> list[list[str]]:
    """The ids of every read of passages from Chroma (Store.get_chunks) from now on."""
    calls: list[list[str]] = []
    real = Store.get_chunks

    def spy(self, ids):
        calls.append(list(ids))
        return real(self, ids)

    monkeypatch.setattr(Store, "get_chunks", spy)
    return calls


def test_a_question_reads_its_passages_from_the_copy_not_from_chroma(store, chroma_reads):
    bot = TalentBot(store=store)
    bot.retriever.refresh()
    chroma_reads.clear()  # the load's check compares sampled rows with the collection
    answer = bot.ask("星河区对博士发放多少安家补贴？")
    assert "15万元" in answer.text
    assert answer.citations
    assert chroma_reads == []
    stored = _all_rows(bot)
    for c in answer.citations:  # what is quoted is the collection's text
        assert c.text in stored[c.id][0]


def test_without_a_copy_passages_are_read_from_chroma(store, chroma_reads):
    bot = TalentBot(store=store)
    bot.retriever.refresh()
    bot.retriever.index.passages = None  # as an index kept in memory only (a read-only store)
    chroma_reads.clear()
    found = bot.retriever.search("人才政策简讯305 安家补贴")
    assert found
    assert chroma_reads
    assert found[0].text == _all_rows(bot)[found[0].id][0]


def test_an_index_saved_by_a_version_without_the_copy_is_rebuilt_once_with_it(store, caplog):
    folder = _folder(store)
    for name in (PASSAGES_FILE, OFFSETS_FILE):
        (folder / name).unlink()
    meta = json.loads((folder / "ids.json").read_text())
    write_manifest(folder, meta["generation"], len(meta["ids"]))
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest[PASSAGE_COPY]  # as the versions before the copy wrote it
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert LexicalIndex.load(folder).passages is None
    caplog.set_level(logging.INFO, logger="talentbot")
    bot = TalentBot(store=store)
    bot.retriever.refresh()
    assert any("without a copy of the passages" in r.getMessage() for r in caplog.records)
    assert bot.retriever.chunks(bot.retriever.index.ids) == _all_rows(bot)
    caplog.clear()
    again = TalentBot(store=store)
    again.retriever.refresh()  # saved with the copy: loaded, not rebuilt
    assert again.retriever.index.passages is not None
    assert not any("rebuild" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("restamp", [False, True], ids=["checksum-stale", "checksum-restamped"])
def test_a_copy_that_is_not_the_collections_is_caught_and_rebuilt(store, caplog, restamp):
    folder = _folder(store)
    index = LexicalIndex.load(folder)
    rows = [index.passages.read(r) for r in range(len(index.ids))]
    writer = PassageWriter(folder)  # well-formed, but every text says something else
    writer.add([t.replace("补贴", "奖励") for t, _ in rows], [m for _, m in rows])
    assert writer.finish(len(rows))
    if restamp:  # the manifest written after the damage: only the comparison with the collection tells
        write_manifest(folder, index.generation, len(index.ids))
        assert LexicalIndex.load(folder) is not None
        reason = "is not the text of chunk"
    else:
        with pytest.raises(IndexProblem, match="fails its checksum"):
            LexicalIndex.load(folder)
        reason = "fails its checksum"
    caplog.set_level(logging.INFO, logger="talentbot")
    bot = TalentBot(store=store)
    bot.retriever.refresh()
    warned = [r.getMessage() for r in caplog.records if "failed its check" in r.getMessage()]
    assert len(warned) == 1, warned
    assert reason in warned[0]
    assert bot.retriever.chunks(bot.retriever.index.ids) == _all_rows(bot)


def test_the_writer_leaves_nothing_when_it_cannot_write_every_row(tmp_path):
    w = PassageWriter(tmp_path)
    w.add(["甲"], [{"a": 1}])
    w.add([None], [{}])  # read without its document
    assert not w.finish(2)
    assert list(tmp_path.iterdir()) == []
    w = PassageWriter(tmp_path)
    w.add(["甲", "乙"], [{"a": 1}, None])
    assert not w.finish(3)  # fewer rows than the index has
    assert list(tmp_path.iterdir()) == []
    w = PassageWriter(tmp_path)
    w.add(["甲", "乙"], [{"a": 1}, None])
    assert w.finish(2)
    rows = PassageRows(tmp_path, ["a:0", "a:1"])
    assert [rows.read(0), rows.read(1)] == [("甲", {"a": 1}), ("乙", {})]


def test_offsets_that_do_not_mark_the_lines_are_refused(tmp_path):
    w = PassageWriter(tmp_path)
    w.add(["甲", "乙"], [{}, {}])
    assert w.finish(2)
    with pytest.raises(ValueError, match="does not mark 3 lines"):
        PassageRows(tmp_path, ["a:0", "a:1", "a:2"])
    offsets = np.load(tmp_path / OFFSETS_FILE)
    np.save(tmp_path / OFFSETS_FILE, offsets[::-1].copy())
    with pytest.raises(ValueError, match="does not mark 2 lines"):
        PassageRows(tmp_path, ["a:0", "a:1"])
    np.save(tmp_path / OFFSETS_FILE, np.array([0, 2, offsets[-1]], dtype=np.int64))  # a line cut in two
    with pytest.raises(ValueError, match=r"line 0 of passages.jsonl is not \[text, metadata\]"):
        PassageRows(tmp_path, ["a:0", "a:1"]).read(0)


def test_a_trusted_load_compares_the_copy_not_the_matrix_and_still_sees_a_chunk_changed_behind_its_back(
    store, monkeypatch, caplog
):
    from talentbot import collection_check
    from talentbot.index_cache import CHECKED_FILE

    matrix_reads: list[int] = []
    real = collection_check._check_words
    monkeypatch.setattr(collection_check, "_check_words", lambda *a: matrix_reads.append(1) or real(*a))
    (_folder(store) / CHECKED_FILE).unlink(missing_ok=True)
    TalentBot(store=store).retriever.refresh()  # the first load of this index: its matrix rows are compared
    assert matrix_reads == [1]
    bot = TalentBot(store=store)
    bot.retriever.refresh()  # the same files, compared before: the copy stands for the matrix
    assert matrix_reads == [1]

    # the words of a sampled chunk (row 0 always is) changed in the collection, generation and count unchanged
    cid = bot.retriever.index.ids[0]
    _, meta = bot.store.get_chunks([cid])[cid]
    bot.store.chunks.update(ids=[cid], metadatas=[{**meta, "tokens": meta["tokens"] + " 星河"}])
    caplog.set_level(logging.INFO, logger="talentbot")
    rebuilt = TalentBot(store=store)
    rebuilt.retriever.refresh()
    warned = [r.getMessage() for r in caplog.records if "failed its check" in r.getMessage()]
    assert len(warned) == 1, warned
    assert f"is not the text of chunk {cid}" in warned[0]
    assert rebuilt.retriever.chunks([cid])[cid][1]["tokens"].endswith(" 星河")
