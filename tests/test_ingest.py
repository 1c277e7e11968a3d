"""Incremental ingest through ``TalentBot.ingest`` into a real Chroma store.

The bookkeeping tests embed with FakeEmbedder (the ``fake_embedder`` fixture): what they check does not depend
on the vectors. The tests of the real corpus and of loading the model use the real model (marked ``model``)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock

from fixtures.docs import article_text, make_bad_files, make_good_files, make_pdf, write_article
from fixtures.helpers import CORPUS, SHANXI_JUNK
from fixtures.storecheck import assert_consistent, chunk_ids, chunk_rows
from talentbot import InputError, ModelLoadError, StoreLockedError, TalentBot
from talentbot.ingest import article_key


def _folder(tmp_path: Path, n: int = 4, paragraphs: int = 3) -> Path:
    folder = tmp_path / "docs"
    for i in range(n):
        write_article(folder / f"a{i:02d}.md", i, paragraphs=paragraphs)
    return folder


def _ids_of(path: Path, rows_or_ids) -> set[str]:
    key = article_key(path)
    return {cid for cid in rows_or_ids if cid.split(":")[0] == key}


# -------------------------------------------------------------------------------- incremental runs
def test_add_then_unchanged_run_computes_no_embedding(tmp_path, fake_embedder):
    folder = _folder(tmp_path)
    bot = TalentBot()
    first = bot.ingest([folder])
    assert (first.added, first.updated, first.unchanged, first.removed, first.failed) == (4, 0, 0, 0, [])
    rows = assert_consistent(bot)
    assert first.chunks == len(rows) == first.embedded > 4  # each article spans several chunks
    ids = set(rows)

    computed = bot.embedder.computed
    again = bot.ingest([folder])
    assert (again.added, again.updated, again.unchanged, again.removed) == (0, 0, 4, 0)
    assert again.embedded == 0
    assert bot.embedder.computed == computed
    assert chunk_ids(bot) == ids
    assert again.chunks == len(ids)

    fresh = TalentBot()  # a new process would start like this
    report = fresh.ingest([folder])
    assert report.unchanged == 4
    assert report.embedded == 0
    assert fresh.embedder.computed == 0

    new = write_article(folder / "a99.md", 99)
    added = fresh.ingest([folder])
    assert (added.added, added.unchanged, added.updated, added.removed) == (1, 4, 0, 0)
    new_ids = _ids_of(new, chunk_ids(fresh))
    assert added.embedded == len(new_ids) == fresh.embedder.computed > 0
    assert chunk_ids(fresh) == ids | new_ids
    assert_consistent(fresh)


def test_edit_replaces_the_article_and_leaves_no_stale_chunk(tmp_path, fake_embedder):
    folder = _folder(tmp_path, n=3, paragraphs=6)
    bot = TalentBot()
    bot.ingest([folder])
    edited = folder / "a00.md"
    old_ids = _ids_of(edited, chunk_ids(bot))
    assert len(old_ids) >= 3

    write_article(edited, 0, paragraphs=1, variant="修订")  # shorter: fewer chunks than before
    report = bot.ingest([folder])
    assert (report.added, report.updated, report.unchanged, report.removed) == (0, 1, 2, 0)
    rows = assert_consistent(bot)
    new_ids = _ids_of(edited, rows)
    assert 0 < len(new_ids) < len(old_ids)
    assert new_ids == {f"{article_key(edited)}:{i}" for i in range(len(new_ids))}
    assert report.embedded == len(new_ids)  # only the edited article was embedded again
    docs = [doc for doc, _ in rows.values()]
    assert any("第0号文章修订第0段第0句" in d for d in docs)
    assert not any("第0号文章第" in d for d in docs)  # nothing left of the old version
    assert {meta["title"] for cid, (_, meta) in rows.items() if cid in new_ids} == {"人才政策简讯0修订"}


def test_delete_removes_the_article_and_its_chunks_only_under_the_ingested_folder(tmp_path, fake_embedder):
    folder = _folder(tmp_path, n=3)
    other = tmp_path / "other"
    kept = write_article(other / "b00.md", 50)
    bot = TalentBot()
    bot.ingest([folder])
    bot.ingest([other])
    gone = folder / "a01.md"
    gone_ids = _ids_of(gone, chunk_ids(bot))
    before = bot.store.count()
    gone.unlink()

    report = bot.ingest([folder])
    assert (report.added, report.updated, report.unchanged, report.removed) == (0, 0, 2, 1)
    assert report.embedded == 0
    ids = chunk_ids(bot)
    assert gone_ids
    assert not gone_ids & ids
    assert article_key(gone) not in bot.store.manifest()
    assert _ids_of(kept, ids)  # the other folder's article stays
    assert report.chunks == bot.store.count() == before - len(gone_ids)
    assert_consistent(bot)


def test_rename_removes_the_old_name_and_adds_the_new(tmp_path, fake_embedder):
    folder = _folder(tmp_path, n=3)
    bot = TalentBot()
    bot.ingest([folder])
    old, new = folder / "a02.md", folder / "renamed.md"
    old_ids = _ids_of(old, chunk_ids(bot))
    old.rename(new)

    report = bot.ingest([folder])
    assert (report.added, report.updated, report.unchanged, report.removed) == (1, 0, 2, 1)
    rows = assert_consistent(bot)
    assert not old_ids & set(rows)
    new_ids = _ids_of(new, rows)
    assert len(new_ids) == len(old_ids)
    assert {rows[c][1]["file"] for c in new_ids} == {"renamed.md"}
    assert article_key(old) not in bot.store.manifest()
    assert article_key(new) in bot.store.manifest()


def test_changed_chunk_size_reembeds_and_rebuild_starts_over(tmp_path, fake_embedder):
    folder = _folder(tmp_path, n=3)
    TalentBot().ingest([folder])
    small = TalentBot(chunk_size=60)
    report = small.ingest([folder])
    assert (report.added, report.updated, report.unchanged, report.removed) == (0, 3, 0, 0)
    rows = assert_consistent(small)
    assert report.embedded == len(rows)
    assert all(len(doc) <= 60 for doc, _ in rows.values())
    assert small.ingest([folder]).unchanged == 3

    computed = small.embedder.computed
    rebuilt = small.ingest([folder], rebuild=True)
    assert (rebuilt.added, rebuilt.updated, rebuilt.unchanged, rebuilt.removed) == (3, 0, 0, 0)
    assert rebuilt.embedded == len(rows) == small.embedder.computed - computed
    assert set(assert_consistent(small)) == set(rows)


def test_rebuild_drops_articles_that_are_not_ingested_again(tmp_path, fake_embedder):
    folder = _folder(tmp_path, n=2)
    stray = write_article(tmp_path / "stray" / "s.md", 70)
    bot = TalentBot()
    bot.ingest([folder, stray])
    report = bot.ingest([folder], rebuild=True)
    assert report.added == 2
    assert not _ids_of(stray, chunk_ids(bot))
    assert_consistent(bot)


@pytest.mark.model
def test_rebuild_with_an_unusable_device_fails_cleanly_and_keeps_the_store(tmp_path):
    import torch

    folder = _folder(tmp_path, n=2)
    TalentBot().ingest([folder])
    before = chunk_ids(TalentBot())
    with pytest.raises(ModelLoadError, match="TALENTBOT_DEVICE"):
        TalentBot(device="cuda:7" if not torch.cuda.is_available() else "cuda:999").ingest(
            [folder], rebuild=True
        )
    bot = TalentBot()
    assert chunk_ids(bot) == before
    assert before
    assert_consistent(bot)


def test_a_file_named_twice_is_ingested_once(tmp_path, fake_embedder):
    folder = _folder(tmp_path, n=2)
    bot = TalentBot()
    report = bot.ingest([folder, folder / "a00.md", folder / "a00.md"])
    assert (report.added, report.updated) == (2, 0)
    assert_consistent(bot)


def test_front_matter_url_and_source_reach_the_chunks(tmp_path, fake_embedder):
    doc = tmp_path / "docs" / "p.md"
    doc.parent.mkdir()
    doc.write_text(
        "---\ntitle: 人才驿站办法\nsource: 某市人才办\ndate: 2022-02-02\nurl: https://example.org/p.html\n---\n"
        + article_text(1),
        encoding="utf-8",
    )
    bot = TalentBot()
    bot.ingest([doc.parent])
    metas = [meta for _, meta in chunk_rows(bot).values()]
    assert metas
    assert all(m["url"] == "https://example.org/p.html" for m in metas)
    assert all(
        (m["title"], m["source"], m["date"]) == ("人才驿站办法", "某市人才办", "2022-02-02") for m in metas
    )


# ------------------------------------------------------------------------------- formats, bad files
def test_bad_files_are_skipped_with_a_reason_and_the_rest_is_indexed(tmp_path, fake_embedder):
    folder = tmp_path / "mixed"
    good = make_good_files(folder)
    bad = make_bad_files(folder)
    (folder / "x.txt").mkdir()  # a folder with a file's name: walked into, not read as a file
    (folder / "x.txt" / "inner.md").write_text("内层文件说明人才落户政策。", encoding="utf-8")
    bot = TalentBot()
    report = bot.ingest([folder])
    assert report.added == len(good) + 1
    assert report.updated == 0
    failed = {Path(f["path"]).name: f["error"] for f in report.failed}
    assert set(failed) == set(bad)
    for name, word in bad.items():
        assert word.lower() in failed[name].lower()
        assert "\n" not in failed[name]
    rows = assert_consistent(bot)
    docs = " ".join(doc for doc, _ in rows.values())
    for sentence in [*good.values(), "内层文件说明人才落户政策。"]:
        assert sentence in docs
    by_file = {meta["file"]: meta for _, meta in rows.values()}
    assert by_file["english.pdf"]["page"] == 1
    assert by_file["english.pdf"]["title"] == "Notice Six"
    assert by_file["page.html"]["title"] == "通知四"
    assert by_file["gbk.txt"]["title"] == "通知二"
    assert by_file["utf16.txt"]["title"] == "通知三"
    assert "\ufffd" not in docs

    again = bot.ingest([folder])  # failures do not disturb the incremental run
    assert (again.unchanged, again.added, again.updated, again.removed, again.embedded) == (
        len(good) + 1,
        0,
        0,
        0,
        0,
    )
    assert len(again.failed) == len(bad)


def test_pdf_page_numbers_reach_the_stored_chunks(tmp_path, fake_embedder):
    folder = tmp_path / "pdf"
    folder.mkdir()
    make_pdf(
        folder / "rules.pdf",
        [
            ["Housing Rules", "Article 1. Talents rent at half price."],
            ["Article 2. Subsidies are paid monthly."],
        ],
        title="Housing Rules",
    )
    bot = TalentBot(chunk_size=40)
    bot.ingest([folder])
    pages = {doc: meta.get("page") for doc, meta in chunk_rows(bot).values()}
    assert pages == {"Article 1. Talents rent at half price.": 1, "Article 2. Subsidies are paid monthly.": 2}


# ------------------------------------------------------------------------------ the real corpus


def test_no_junk_line_reaches_any_stored_chunk(corpus_bot):
    rows = chunk_rows(corpus_bot)
    assert len(rows) > 300
    for cid, (doc, meta) in rows.items():
        for junk in SHANXI_JUNK:
            assert junk not in doc, (cid, junk)
            assert junk not in meta["title"]
            assert junk not in meta.get("label", "")
    shanxi = [
        (doc, meta) for doc, meta in rows.values() if meta["file"] == "shanxi-kaifaqu-rencai-2024-03-28.txt"
    ]
    assert len(shanxi) >= 5
    text = "".join(doc for doc, _ in sorted(shanxi, key=lambda r: r[1]["ordinal"]))
    assert "人才是构筑创新高地的基石,也是产业发展腾飞的强大引擎。" in text
    assert "给予符合条件的企业和人才个税奖励。" in text
    for _, meta in shanxi:
        assert meta["title"] == "“向‘新’而行”山西省开发区多措并举 打造吸引人才“磁场高地”"
        assert (meta["source"], meta["original_source"], meta["date"]) == (
            "人民日报客户端山西频道",
            "山西经济日报",
            "2024-03-28",
        )
        assert "山西" in meta["region"]


def test_every_stored_regulation_chunk_carries_title_chapter_and_label(corpus_bot):
    rows = chunk_rows(corpus_bot)
    henan = sorted(
        ((doc, meta) for doc, meta in rows.values() if meta["file"] == "henan-rencai-liudong-tiaoli.md"),
        key=lambda r: r[1]["ordinal"],
    )
    assert all(meta["title"] == "河南省人才流动条例" for _, meta in henan)
    labels = [meta["label"] for _, meta in henan if meta["label"]]
    assert labels[0] == "第一条"
    assert "第二十三条" in labels
    assert labels[-1] == "第四十六条"
    ((doc23, meta23),) = [(d, m) for d, m in henan if m["label"] == "第二十三条"]
    assert meta23["chapter"] == "第五章　人才流动行为规范"
    assert doc23.startswith("第二十三条 ")
    for doc, meta in henan:
        for other in re.findall(r"^第[一二三四五六七八九十]+条", doc, re.M):
            assert other == meta["label"]
        assert len(doc) <= corpus_bot.settings.chunk_size

    # What was embedded is the indexed text (title, chapter and label, then the passage): a continuation
    # passage that does not start with its label still got the label into its vector.
    cont = [
        (cid, d, m)
        for cid, (d, m) in rows.items()
        if m["file"] == "henan-rencai-liudong-tiaoli.md" and m["label"] and not d.startswith(m["label"])
    ]
    assert cont
    cid, doc, meta = cont[0]
    stored = np.asarray(corpus_bot.store.chunks.get(ids=[cid], include=["embeddings"])["embeddings"][0])
    header = f"{meta['title']} {meta['chapter']} {meta['label']}\n{doc}"
    with_header, bare = corpus_bot.embedder.encode([header, doc])
    assert float(stored @ with_header) > 0.99 > float(stored @ bare)


# ------------------------------------------------------------------------------------- the lock
def test_a_second_ingest_is_refused_while_the_lock_is_held(tmp_path, fake_embedder):
    folder = _folder(tmp_path, n=1)
    store = Path(os.environ["TALENTBOT_STORE"])
    store.mkdir(parents=True)
    bot = TalentBot()
    with FileLock(str(store / ".ingest.lock")):
        with pytest.raises(
            StoreLockedError, match=r"another ingest is running on .*wait for it to finish"
        ) as err:
            bot.ingest([folder])
        assert err.value.exit_code == 4
        assert bot.store.count() == 0
        assert not bot.store.state().get("dirty")
    report = bot.ingest([folder])
    assert report.added == 1
    assert_consistent(bot)


def test_a_missing_path_is_an_input_error_and_nothing_is_indexed(tmp_path, fake_embedder):
    folder = _folder(tmp_path, n=1)
    bot = TalentBot()
    with pytest.raises(InputError, match="no such file or folder: .*nope") as err:
        bot.ingest([folder, tmp_path / "nope"])
    assert err.value.exit_code == 2
    assert bot.store.count() == 0


def test_the_default_path_is_the_corpus_setting(tmp_path, fake_embedder):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(CORPUS / "henan-rencai-liudong-tiaoli.md", corpus / "h.md")
    bot = TalentBot(corpus=corpus)
    report = bot.ingest()
    assert report.added == 1
    assert {r.title for r in bot.articles()} == {"河南省人才流动条例"}


def test_a_reindex_of_unchanged_text_reuses_the_stored_vectors(tmp_path, fake_embedder, monkeypatch):
    """A new loader or chunker version re-indexes every file; passages whose indexed text is unchanged keep
    their vectors instead of being embedded again, and an edited one is embedded."""
    import talentbot.ingest as ingest_mod

    folder = _folder(tmp_path, n=3)
    bot = TalentBot()
    bot.ingest([folder])
    before = bot.store.chunk_vectors(sorted(chunk_ids(bot)))
    monkeypatch.setattr(ingest_mod, "CHUNKER_VERSION", ingest_mod.CHUNKER_VERSION + "-test")
    computed = bot.embedder.computed
    report = bot.ingest([folder])
    assert (report.added, report.updated, report.unchanged) == (0, 3, 0)
    assert bot.embedder.computed == computed  # nothing embedded again
    after = bot.store.chunk_vectors(sorted(chunk_ids(bot)))
    assert set(after) == set(before)
    assert all(np.allclose(after[cid][2], before[cid][2]) for cid in before)

    write_article(folder / "a01.md", 1, variant="修订")
    monkeypatch.setattr(ingest_mod, "CHUNKER_VERSION", ingest_mod.CHUNKER_VERSION + "-again")
    report = bot.ingest([folder])
    edited = _ids_of(folder / "a01.md", chunk_ids(bot))
    assert bot.embedder.computed - computed == len(edited) > 0  # only the edited article's passages
    assert_consistent(bot)


def test_a_moved_folder_keeps_its_vectors(tmp_path, fake_embedder):
    """A renamed or moved folder comes back under new article ids: its passages are looked up by text and
    keep their stored vectors; the old ids are removed."""
    folder = _folder(tmp_path, n=3)
    bot = TalentBot()
    bot.ingest([folder])
    before = bot.store.chunk_vectors(sorted(chunk_ids(bot)))
    by_text = {doc: vec for doc, _, vec in before.values()}
    moved = folder.rename(tmp_path / "moved")
    computed = bot.embedder.computed
    report = bot.ingest([moved])  # the files at the old location are gone: their articles are removed
    assert (report.added, report.removed) == (3, 3)
    assert bot.embedder.computed == computed  # nothing embedded again
    after = bot.store.chunk_vectors(sorted(chunk_ids(bot)))
    assert set(after).isdisjoint(before)  # new ids
    assert all(np.allclose(vec, by_text[doc]) for doc, _, vec in after.values())
    assert_consistent(bot)


def test_collections_write_their_vector_index_to_disk_every_hundred_additions(
    tmp_path, fake_embedder, monkeypatch
):
    """A cold process replays from Chroma's log what its HNSW files lack: new collections sync every 100
    additions, and an ingest gives collections of earlier versions (1,000 by default) the same setting."""
    import talentbot.store
    from talentbot.store_records import HNSW_SYNC

    def syncs(bot: TalentBot) -> list[int | None]:
        return [
            (col.configuration_json.get("hnsw") or {}).get("sync_threshold")
            for col in (bot.store.chunks, bot.store.articles)
        ]

    docs = tmp_path / "docs"
    write_article(docs / "a.md", 1)
    TalentBot(store=tmp_path / "new").ingest([docs])
    assert syncs(TalentBot(store=tmp_path / "new")) == [HNSW_SYNC, HNSW_SYNC]

    with monkeypatch.context() as mp:  # a store made by an earlier version: Chroma's defaults
        mp.setattr(talentbot.store, "COLLECTION_METADATA", {"hnsw:space": "cosine"})
        old = TalentBot(store=tmp_path / "old")
        assert syncs(old) == [1000, 1000]
    write_article(docs / "b.md", 2)
    TalentBot(store=tmp_path / "old").ingest([docs])
    assert syncs(TalentBot(store=tmp_path / "old")) == [HNSW_SYNC, HNSW_SYNC]
