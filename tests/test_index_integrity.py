"""A corrupted lexical index is detected on load, logged, and rebuilt from the collection.

Each corruption of issue #16 (item 5) is applied to a real saved index: once as it would happen on disk
(the checksum manifest written at save no longer matches), and once with the manifest re-stamped to
match the corrupted files, so that the shape checks and the comparison with the collection must catch it
on their own. Either way a question answerable before is answered correctly, and `ingest` neither
crashes nor leaves the bad index in place. Vectors come from FakeEmbedder: the index under test is lexical.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from fixtures.corruptions import CORRUPTIONS, corrupt
from fixtures.docs import write_article
from fixtures.fake_embedder import use_fake_embedder
from talentbot import TalentBot
from talentbot.collection_check import check_against_collection
from talentbot.lexical import LexicalIndex
from talentbot.lexical_files import HASHED_FILE, MANIFEST, IndexProblem

QUESTION = "星火人才公寓哪一天起接受申请？"
FIGURE = "2023年3月8日"
QUESTION2 = "月光创业园对入驻团队给予多少场租补贴？"
FIGURE2 = "每年3万元"


def _docs(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "xinghuo.md").write_text(
        "---\ntitle: 星火人才公寓管理办法\nsource: 测试日报\ndate: 2023-02-01\n---\n"
        "第一条 星火人才公寓自2023年3月8日起接受申请，每套月租金800元。\n\n"
        "第二条 申请人须与开发区内企业签订三年以上劳动合同。\n",
        encoding="utf-8",
    )
    (folder / "yueguang.md").write_text(
        "---\ntitle: 月光创业园扶持办法\nsource: 测试日报\ndate: 2023-05-01\n---\n"
        "第一条 月光创业园对入驻的青年创业团队给予场租补贴每年3万元。\n\n"
        "第二条 团队须在园区内注册并实际经营满一年。\n",
        encoding="utf-8",
    )
    for i in range(4):  # more rows, so that shuffled ids point at wrong passages
        write_article(folder / f"brief{i}.md", 40 + i, paragraphs=3)
    return folder


@pytest.fixture(scope="module", autouse=True)
def _fake_vectors():
    """Every TalentBot of this module embeds with FakeEmbedder (the module-scoped template too)."""
    with pytest.MonkeyPatch.context() as mp:
        use_fake_embedder(mp)
        yield


@pytest.fixture(scope="module")
def template(tmp_path_factory, _fake_vectors) -> tuple[Path, Path]:
    """(docs, ingested store) built once; each test corrupts a copy of the store."""
    root = tmp_path_factory.mktemp("integrity")
    docs = _docs(root / "docs")
    store = root / "store"
    report = TalentBot(store=store).ingest([docs])
    assert report.added == 6
    assert not report.failed
    return docs, store


@pytest.fixture
def store(tmp_path, template) -> Path:
    copy = tmp_path / "store"
    shutil.copytree(template[1], copy)
    return copy


def _folder(store: Path) -> Path:
    return store / "lexical" / "talentbot"


def _corrupt(store: Path, name: str, restamp: bool) -> None:
    corrupt(_folder(store), name, restamp)


def _answers(bot: TalentBot) -> None:
    for question, figure, file in ((QUESTION, FIGURE, "xinghuo.md"), (QUESTION2, FIGURE2, "yueguang.md")):
        answer = bot.ask(question)
        assert not answer.no_answer, (question, answer.text)
        assert figure in answer.text, (question, answer.text)
        assert answer.citations[0].file == file
        assert figure in answer.citations[0].text


def _sound(store: Path) -> None:
    """The index on disk is the one of the collection again, and passes every check."""
    bot = TalentBot(store=store)
    index = LexicalIndex.load(_folder(store))
    assert index is not None
    assert index.generation == bot.store.state()["generation"]
    check_against_collection(index.bm25, index.ids, bot.store.chunk_ids(), bot.store.get_chunks)


def _warned(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "failed its check" in r.getMessage()
    ]


@pytest.mark.parametrize("restamp", [False, True], ids=["checksum-stale", "checksum-restamped"])
@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_a_corrupted_index_is_rebuilt_and_answers_stay_right(store, template, caplog, name, restamp):
    _corrupt(store, name, restamp)
    if (
        restamp and name == "shuffled ids"
    ):  # a well-formed index: only the comparison with the collection tells
        assert LexicalIndex.load(_folder(store)) is not None
    else:
        with pytest.raises(IndexProblem):
            LexicalIndex.load(_folder(store))

    caplog.set_level(logging.INFO, logger="talentbot")
    _answers(TalentBot(store=store))
    warned = _warned(caplog)
    assert len(warned) == 1, warned
    assert "\n" not in warned[0], warned
    _sound(store)

    # An ingest with nothing to do still checks the index, and rebuilds a bad one (it is the same
    # corruption again, now under an ingest that finds every article unchanged).
    _corrupt(store, name, restamp)
    caplog.clear()
    bot = TalentBot(store=store)
    report = bot.ingest([template[0]])
    assert (report.unchanged, report.added, report.failed) == (6, 0, [])
    assert len(_warned(caplog)) == 1
    _sound(store)
    _answers(bot)


def test_the_manifest_is_written_at_save_and_any_changed_byte_fails_it(store):
    folder = _folder(store)
    manifest = json.loads((folder / MANIFEST).read_text())
    assert set(manifest["files"]) >= {
        "ids.json",
        "vocab.index.json",
        "params.index.json",
        "data.csc.index.npy",
        "indices.csc.index.npy",
        "indptr.csc.index.npy",
    }
    assert LexicalIndex.load(folder) is not None
    path = folder / "vocab.index.json"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit
    path.write_bytes(bytes(data))
    with pytest.raises(IndexProblem, match="vocab.index.json fails its checksum"):
        LexicalIndex.load(folder)
    (folder / MANIFEST).unlink()
    with pytest.raises(IndexProblem, match="no manifest.json"):
        LexicalIndex.load(folder)


def test_files_that_matched_their_checksums_are_not_hashed_again_until_they_change(store, monkeypatch):
    from talentbot import lexical_files

    folder = _folder(store)
    old = (1_000_000_000, 1_000_000_000)  # settled long ago: a write now cannot keep that time
    for p in folder.iterdir():
        os.utime(p, old)
    hashed: list[str] = []
    real = lexical_files._sha256
    monkeypatch.setattr(lexical_files, "_sha256", lambda p: hashed.append(p.name) or real(p))
    assert LexicalIndex.load(folder) is not None
    files = set(json.loads((folder / MANIFEST).read_text())["files"])
    assert set(hashed) == files  # the first load hashes every file
    hashed.clear()
    assert LexicalIndex.load(folder) is not None
    assert hashed == []  # unchanged since: not read again
    path = folder / "vocab.index.json"
    original = path.read_bytes()
    data = bytearray(original)
    data[len(data) // 2] ^= 0x01  # one flipped bit, same size
    path.write_bytes(bytes(data))
    with pytest.raises(IndexProblem, match="vocab.index.json fails its checksum"):
        LexicalIndex.load(folder)
    assert hashed == ["vocab.index.json"]
    (folder / lexical_files.HASHED_FILE).write_text("not json")  # a damaged record: everything hashed
    path.write_bytes(original)
    hashed.clear()
    assert LexicalIndex.load(folder) is not None
    assert set(hashed) == files


def test_the_structure_is_checked_until_a_load_finds_it_sound_and_again_once_a_file_changes(
    store, monkeypatch
):
    from talentbot import lexical

    folder = _folder(store)
    for p in folder.iterdir():
        os.utime(p, (1_000_000_000, 1_000_000_000))  # settled long ago: recorded once hashed
    checked: list[int] = []
    real = lexical.check_structure
    fail = False

    def spy(bm25, ids):
        checked.append(len(ids))
        if fail:
            raise IndexProblem("the matrix is broken (spy)")
        real(bm25, ids)

    monkeypatch.setattr(lexical, "check_structure", spy)
    assert LexicalIndex.load(folder) is not None
    assert len(checked) == 1
    assert LexicalIndex.load(folder) is not None
    assert len(checked) == 1  # the same files, found sound by the load before: not checked again

    path = folder / "indices.csc.index.npy"
    path.write_bytes(path.read_bytes())  # rewritten (same bytes): its time and inode change
    fail = True
    with pytest.raises(IndexProblem, match="spy"):
        LexicalIndex.load(folder)
    assert len(checked) == 2
    os.utime(path, (1_000_000_100, 1_000_000_100))  # settled: recorded as hashed, never as sound
    with pytest.raises(IndexProblem, match="spy"):
        LexicalIndex.load(folder)
    assert len(checked) == 3  # a failed check is never remembered as a pass
    fail = False
    assert LexicalIndex.load(folder) is not None
    assert LexicalIndex.load(folder) is not None
    assert len(checked) == 4
    (folder / HASHED_FILE).write_text("[]")  # a damaged record: checked again
    assert LexicalIndex.load(folder) is not None
    assert len(checked) == 5


def test_an_index_of_other_chunks_is_rebuilt(store, tmp_path, caplog):
    """Ids of a well-formed index that do not match the collection's (with a valid checksum)."""
    folder = _folder(store)
    index = LexicalIndex.load(folder)
    gone = index.ids[0]
    other = LexicalIndex.build(
        [i if i != gone else "0000000000000000:0" for i in index.ids],
        [["人才"]] * len(index.ids),
        index.generation,
    )
    other.save(folder)
    caplog.set_level(logging.INFO, logger="talentbot")
    _answers(TalentBot(store=store))
    assert any("not in the collection" in m for m in _warned(caplog))
    _sound(store)


def test_a_garbage_pinyin_table_is_ignored(store):
    folder = _folder(store)
    generation = json.loads((folder / "ids.json").read_text())["generation"]
    (folder / "pinyin.json").write_text(
        json.dumps({"generation": generation, "table": {"xinghuo": [7, None]}})
    )
    bot = TalentBot(store=store)
    top = bot.retriever.search("xinghuo rencai gongyu")[0]
    assert "星火" in top.text
    table = json.loads((folder / "pinyin.json").read_text())["table"]
    assert "星火" in table["xinghuo"]


def test_a_large_npy_header_is_never_parsed_before_the_checksum(store):
    """A header claiming a huge array would make numpy allocate it; the checksum is checked first."""
    path = _folder(store) / "data.csc.index.npy"
    arr = np.load(path)
    header = f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({2**40},), }}".ljust(118) + "\n"
    path.write_bytes(
        b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + arr.tobytes()
    )
    with pytest.raises(IndexProblem, match="checksum|size"):
        LexicalIndex.load(path.parent)
    assert os.path.getsize(path) < 2**20


def test_the_ids_are_compared_with_the_collection_once_per_saved_index(store, monkeypatch, caplog):
    from talentbot.index_cache import CHECKED_FILE
    from talentbot.store import Store

    (_folder(store) / CHECKED_FILE).unlink(missing_ok=True)
    compared: list[int] = []
    real = Store.chunk_ids
    monkeypatch.setattr(Store, "chunk_ids", lambda self, *a, **k: compared.append(1) or real(self, *a, **k))
    TalentBot(store=store).retriever.refresh()
    assert compared == [1]  # first load of this saved index: every id compared
    assert (_folder(store) / CHECKED_FILE).exists()
    again = TalentBot(store=store)
    again.retriever.refresh()
    assert compared == [1]  # same index, generation, count and collection: only the count
    _answers(again)

    again.store.set_state(dirty=True)  # an ingest under way: compared again, not recorded
    TalentBot(store=store).retriever.refresh()
    assert compared == [1, 1]
    again.store.set_state(dirty=False)

    # a chunk removed behind the index's back (same generation): the count differs, so every id is compared
    gone = again.retriever.index.ids[0]
    again.store.chunks.delete(ids=[gone])
    caplog.set_level(logging.INFO, logger="talentbot")
    rebuilt = TalentBot(store=store)
    rebuilt.retriever.refresh()
    assert compared == [1, 1, 1]
    assert any("not in the collection" in m for m in _warned(caplog))
    assert gone not in rebuilt.retriever.index.ids


def test_the_article_list_is_read_from_the_store_once_per_generation(store, tmp_path, monkeypatch):
    from talentbot.index_cache import ARTICLES_FILE
    from talentbot.ingest import run_ingest
    from talentbot.store import Store

    TalentBot(store=store).retriever.refresh()  # saves the list beside the index
    assert (_folder(store) / ARTICLES_FILE).is_file()
    real = Store.manifest
    reads: list[int] = []
    monkeypatch.setattr(Store, "manifest", lambda self: reads.append(1) or real(self))
    bot = TalentBot(store=store)
    assert bot.retriever.manifest == real(bot.store)  # the same records, with nothing left out
    assert reads == []  # from the saved list: Chroma not asked

    # an ingest moves the generation: the next process reads the store again and sees the new article
    docs = tmp_path / "more"
    write_article(docs / "extra.md", 77)
    run_ingest(bot.store, bot.embedder, bot.settings, [docs])
    reads.clear()
    fresh = TalentBot(store=store)
    assert any(rec.file == "extra.md" for rec in fresh.retriever.manifest.values())
    assert len(reads) == 1

    # under an ingest (the store marked dirty) the saved list is not trusted
    fresh.store.set_state(dirty=True)
    reads.clear()
    assert TalentBot(store=store).retriever.manifest == real(fresh.store)
    assert len(reads) == 1
