"""Retrieval: hybrid search, filters, the persisted lexical index, fusion arithmetic, the LangChain retriever.

The fusion arithmetic runs on FakeEmbedder vectors in an in-memory Chroma (fast tier); the rest uses the real
model (marked ``model``)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda

from fixtures.fake_embedder import FakeEmbedder
from fixtures.helpers import eval_rows
from talentbot import Filters, InputError, Settings, TalentBot
from talentbot.ingest import run_ingest
from talentbot.retrieval import Retriever
from talentbot.store import Store


def write_article(
    folder: Path, name: str, title: str, body: str, date: str = "2024-01-01", source: str = "测试来源"
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(
        f"---\ntitle: {title}\nsource: {source}\ndate: {date}\n---\n{title}\n\n{body}\n", encoding="utf-8"
    )
    return path


@pytest.fixture(scope="module")
def bot(corpus_store) -> TalentBot:
    """One bot over the corpus for the read-only tests of this module (loading the model once)."""
    return TalentBot(store=corpus_store)


# ------------------------------------------------------------------------------------------ hybrid search
def test_hybrid_search_returns_ranked_passages_with_coverage(corpus_store):
    bot = TalentBot(store=corpus_store, fusion="rrf")
    row = next(r for r in eval_rows("qa_shanxi.jsonl") if r["a"] and not r.get("history"))
    found = bot.retriever.run(row["q"])
    passages = found.passages
    assert bot.retriever.search(row["q"]) == passages
    assert len(passages) == bot.settings.k
    assert all(e in passages[0].text for e in row["a"]), passages[0].text
    scores = [p.score for p in passages]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] > 0
    assert all(0.0 <= p.coverage <= 1.0 for p in passages)
    assert passages[0].coverage >= bot.settings.min_coverage
    assert all(p.meta.get("file") and p.meta.get("title") and p.meta.get("path") for p in passages)
    assert {"lexical", "embed", "dense", "fusion"} <= set(found.timings), "both rankings must be used"


def test_k_controls_the_number_of_passages(bot):
    q = eval_rows("qa_regulations.jsonl")[0]["q"]
    assert len(bot.retriever.search(q, k=1)) == 1
    assert len(bot.retriever.search(q, k=7)) == 7


# ----------------------------------------------------------------------------------------------- filters
def _matches(rec, f: Filters) -> bool:
    """The filter's meaning, written out independently of Filters.matches."""
    ok = True
    if f.file:
        ok &= rec.file == f.file
    if f.source:
        ok &= f.source in rec.source
    if f.region:
        ok &= f.region in rec.region or f.region in rec.title
    date = rec.effective or rec.date  # a regulation is dated by when it takes effect
    if f.date_from:
        ok &= bool(date) and date >= f.date_from
    if f.date_to:
        ok &= bool(date) and date[: len(f.date_to)] <= f.date_to
    return ok


@pytest.mark.parametrize(
    ("query", "filters"),
    [
        ("人才发展促进", Filters(region="河南")),
        ("人才流动机构", Filters(region="广州")),
        ("人才流动机构", Filters(region="山西")),
        ("人才发展促进", Filters(file="henan-rencai-liudong-tiaoli.md")),
        ("人才流动机构", Filters(source="人民日报")),
        ("人才流动机构", Filters(date_from="2020-01-01")),
        ("人才发展促进", Filters(date_to="2005")),
        ("人才流动机构", Filters(date_from="2020", date_to="2022-12-31")),
    ],
    ids=lambda v: v if isinstance(v, str) else ",".join(f"{k}={x}" for k, x in vars(v).items() if x),
)
def test_filters_restrict_results(bot, query, filters):
    manifest = bot.retriever.manifest
    unfiltered = bot.retriever.search(query, k=8)
    assert any(not _matches(manifest[p.meta["article"]], filters) for p in unfiltered), (
        "pick a query whose unfiltered results fall outside the filter"
    )
    passages = bot.retriever.search(query, k=8, filters=filters)
    assert passages, "the filter matches articles, so passages must come back"
    for p in passages:
        assert _matches(manifest[p.meta["article"]], filters), (p.meta["file"], p.meta.get("date"))


@pytest.mark.parametrize("bad", [{"date_from": "yesterday"}, {"date_to": "24-01"}, {"date_from": "20x4"}])
def test_bad_date_filter_raises_input_error(bad):
    with pytest.raises(InputError, match="YYYY"):
        Filters(**bad)


@pytest.mark.parametrize("filters", [Filters(region="西藏"), Filters(date_from="2030")])
def test_filter_matching_nothing_gives_no_answer(bot, filters):
    assert bot.retriever.search("人才", filters=filters) == []
    answer = bot.ask("人才公寓有哪些支持方式？", filters=filters)
    assert answer.no_answer
    assert not answer.citations


# ------------------------------------------------------------------------------ the persisted lexical index
@pytest.fixture
def small_store(tmp_path, fake_embedder) -> tuple[Path, Path]:
    """A store holding two small articles (every TalentBot of the test embeds with FakeEmbedder); returns
    (store, docs folder)."""
    docs = tmp_path / "docs"
    write_article(
        docs,
        "a.md",
        "甲市人才公寓管理办法",
        "第一条 甲市为引进人才提供人才公寓。第二条 人才公寓租金按市场价格的五折收取。",
    )
    write_article(
        docs,
        "b.md",
        "乙市青年创业扶持办法",
        "第一条 乙市设立青年创业引导基金。第二条 对入驻孵化器的青年创业团队给予场租补贴。",
    )
    store = tmp_path / "store"
    report = TalentBot(store=store).ingest([docs])
    assert report.added == 2
    return store, docs


def _index_meta(store: Path, collection: str = "talentbot") -> dict:
    return json.loads((store / "lexical" / collection / "ids.json").read_text())


def test_lexical_index_is_persisted_beside_chroma(small_store):
    store, _ = small_store
    bot = TalentBot(store=store)
    meta = _index_meta(store)
    assert meta["generation"] == bot.store.state()["generation"] >= 1
    assert len(meta["ids"]) == bot.store.count()
    assert bot.retriever.index_dir == store / "lexical" / "talentbot"


def test_lexical_index_rebuilt_when_deleted(small_store):
    store, _ = small_store
    shutil.rmtree(store / "lexical")
    bot = TalentBot(store=store)
    passages = bot.retriever.search("人才公寓租金")
    assert passages
    assert "五折" in passages[0].text
    assert _index_meta(store)["generation"] == bot.store.state()["generation"]


@pytest.mark.parametrize("damage", ["stale", "garbage"])
def test_lexical_index_rebuilt_when_stale_or_unreadable(small_store, damage):
    store, _ = small_store
    ids_file = store / "lexical" / "talentbot" / "ids.json"
    if damage == "stale":  # an index saved for another generation, missing a chunk
        ids_file.write_text(json.dumps({"generation": -7, "ids": _index_meta(store)["ids"][:1]}))
    else:
        ids_file.write_text("{not json")
    bot = TalentBot(store=store)
    assert "场租补贴" in bot.retriever.search("青年创业团队场租补贴")[0].text
    meta = _index_meta(store)
    assert meta["generation"] == bot.store.state()["generation"]
    assert len(meta["ids"]) == bot.store.count()


def test_pinyin_table_is_built_on_first_use_saved_and_checked_against_the_generation(small_store):
    store, _ = small_store
    table = store / "lexical" / "talentbot" / "pinyin.json"
    assert not table.exists()  # ingest doesn't pay for it: only English-spelled names need it
    bot = TalentBot(store=store)
    top = bot.retriever.search("qingnian chuangye")[0]
    assert "青年创业" in top.text
    saved = json.loads(table.read_text(encoding="utf-8"))
    assert saved["generation"] == bot.store.state()["generation"]
    assert "青年" in saved["table"]["qingnian"]
    mtime = table.stat().st_mtime_ns
    assert "青年创业" in TalentBot(store=store).retriever.search("qingnian chuangye")[0].text
    assert table.stat().st_mtime_ns == mtime  # a new process reuses the saved table
    # a table saved for another generation is not trusted: rebuilt from the index, and saved again
    table.write_text(json.dumps({"generation": -3, "table": {"qingnian": ["甲市"]}}), encoding="utf-8")
    assert "青年创业" in TalentBot(store=store).retriever.search("qingnian chuangye")[0].text
    assert json.loads(table.read_text(encoding="utf-8"))["table"]["qingnian"] != ["甲市"]


def test_new_file_is_retrievable_without_restart(small_store, tmp_path):
    store, _ = small_store
    question = "丙县对新引进博士给予多少科研启动经费？"
    writer, reader = TalentBot(store=store), TalentBot(store=store)
    for bot in (writer, reader):  # both load the index before the new file exists
        assert all(c.file != "c.md" for c in bot.ask(question).citations)
    generation = writer.store.state()["generation"]
    new = tmp_path / "new"
    write_article(
        new,
        "c.md",
        "丙县高层次人才引进办法",
        "第一条 丙县对新引进的博士研究生给予科研启动经费15万元。第二条 经费分三年拨付。",
    )
    assert writer.ingest([new]).added == 1
    assert writer.store.state()["generation"] == generation + 1
    assert _index_meta(store)["generation"] == generation + 1
    answer = writer.ask(question)
    assert not answer.no_answer
    assert answer.citations[0].file == "c.md"
    assert "15万元" in answer.text
    time.sleep(1.1)  # the reader checks the store's generation at most once a second
    answer = reader.ask(question)
    assert not answer.no_answer
    assert answer.citations[0].file == "c.md"
    assert "15万元" in answer.text
    # the old articles are still there
    assert "五折" in reader.ask("甲市人才公寓租金怎么收取？").text


# ------------------------------------------------------------------------ fusion arithmetic (fake embedder)
ANGLES = {
    "甲": 60,
    "乙": 40,
    "丙": 20,
    "丁": 0,
}  # a text naming 甲/乙/丙/丁 points at that angle, others at 0


def angle_embedder() -> FakeEmbedder:
    return FakeEmbedder(dim=4, angles=ANGLES)


@pytest.fixture
def angle_store(tmp_path, ephemeral_client) -> tuple[Path, object]:
    """Four one-chunk articles in an in-memory Chroma (the lexical index beside it under tmp_path): 苹果
    occurs 3x in 甲, 1x in 乙, never in 丙/丁; dense order is 丁 丙 乙 甲. Returns (store folder, client)."""
    docs = tmp_path / "docs"
    filler = "本办法自发布之日起施行。"
    write_article(docs, "jia.md", "甲号文件", "苹果种植补贴。苹果收购补贴。苹果加工补贴。" + filler)
    write_article(docs, "yi.md", "乙号文件", "苹果种植补贴。蔬菜收购补贴。茶叶加工补贴。" + filler)
    write_article(docs, "bing.md", "丙号文件", "水稻种植补贴。蔬菜收购补贴。茶叶加工补贴。" + filler)
    write_article(docs, "ding.md", "丁号文件", "小麦种植补贴。蔬菜收购补贴。茶叶加工补贴。" + filler)
    store = tmp_path / "store"
    settings = Settings(store=store)
    report = run_ingest(Store(settings, client=ephemeral_client), angle_embedder(), settings, [docs])
    assert report.added == 4
    assert report.chunks == 4
    assert not (store / "chroma.sqlite3").exists()  # the vectors are in memory
    return store, ephemeral_client


def _search(angle_store: tuple[Path, object], query: str = "苹果", **settings) -> list[tuple[str, float]]:
    store, client = angle_store
    s = Settings(store=store, k=4, candidates=10, **settings)
    passages = Retriever(s, Store(s, client=client), angle_embedder()).search(query)
    return [(p.meta["file"], p.score) for p in passages]


def test_weighted_rrf_arithmetic(angle_store):
    # lexical ranks: 甲 1, 乙 2; dense ranks: 丁 1, 丙 2, 乙 3, 甲 4; score = sum weight / (rrf_k + rank)
    got = _search(angle_store, fusion="rrf", lexical_weight=1.0, dense_weight=1.0, rrf_k=1)
    assert [f for f, _ in got] == ["jia.md", "yi.md", "ding.md", "bing.md"]
    assert [s for _, s in got] == pytest.approx([1 / 2 + 1 / 5, 1 / 3 + 1 / 4, 1 / 2, 1 / 3])
    got = _search(angle_store, fusion="rrf", lexical_weight=1.0, dense_weight=3.0, rrf_k=1)
    assert [f for f, _ in got] == ["ding.md", "jia.md", "yi.md", "bing.md"]
    assert [s for _, s in got] == pytest.approx([3 / 2, 1 / 2 + 3 / 5, 1 / 3 + 3 / 4, 3 / 3])
    got = _search(angle_store, fusion="rrf", lexical_weight=2.0, dense_weight=0.5, rrf_k=5)
    assert [s for _, s in got] == pytest.approx([2 / 6 + 0.5 / 9, 2 / 7 + 0.5 / 8, 0.5 / 6, 0.5 / 7])


def test_single_ranking_fusions(angle_store):
    assert [f for f, _ in _search(angle_store, fusion="lexical")] == ["jia.md", "yi.md"]
    assert [f for f, _ in _search(angle_store, fusion="dense")] == ["ding.md", "bing.md", "yi.md", "jia.md"]


def _agreed(angle_store: tuple[Path, object], query: str, **settings) -> list[str]:
    store, client = angle_store
    s = Settings(store=store, k=4, candidates=10, **settings)
    passages = Retriever(s, Store(s, client=client), angle_embedder()).search(query)
    return [p.meta["file"] for p in passages if p.agreed]


def test_a_chunk_both_rankings_put_first_is_marked_agreed(angle_store):
    assert _agreed(angle_store, "小麦", fusion="rrf") == ["ding.md"]  # lexical 丁 only; dense 丁 first
    assert _agreed(angle_store, "苹果", fusion="rrf") == []  # lexical 甲 first, dense 丁 first
    assert _agreed(angle_store, "小麦", fusion="lexical") == []  # one ranking agrees with nothing


def test_a_search_again_within_articles_reuses_the_scores_and_ranks_only_them(angle_store, monkeypatch):
    store, client = angle_store
    s = Settings(store=store, k=4, candidates=10, fusion="lexical")
    retriever = Retriever(s, Store(s, client=client), angle_embedder())
    everywhere = retriever.search("苹果")
    assert [p.meta["file"] for p in everywhere] == ["jia.md", "yi.md"]
    scored: list[tuple[str, ...]] = []
    real = type(retriever.index).scores
    monkeypatch.setattr(
        type(retriever.index), "scores", lambda self, t: scored.append(tuple(t)) or real(self, t)
    )
    yi = everywhere[1].id.rsplit(":", 1)[0]
    within = retriever.search("苹果", within={yi, "no-such-article"})
    assert [(p.id, p.score) for p in within] == [(everywhere[1].id, pytest.approx(1 / (s.rrf_k + 1)))]
    assert scored == []  # the question's BM25 scores were kept from the search above
    assert [p.meta["file"] for p in retriever.search("蔬菜", within={yi})] == ["yi.md"]
    assert len(scored) == 1  # other words: scored afresh


def test_passages_of_the_lexical_ranking_are_read_while_the_question_is_embedded(angle_store, monkeypatch):
    import threading

    store, client = angle_store
    s = Settings(store=store, k=4, candidates=10, fusion="rrf")
    expected = Retriever(s, Store(s, client=client), angle_embedder()).search("苹果")
    release = threading.Event()

    class Slow(FakeEmbedder):
        def encode(self, texts, query=False):
            release.wait(10)  # the vector comes only once the early read has happened
            return super().encode(texts, query=query)

    reads: list[list[str]] = []
    real = Retriever.chunks

    def spy(self, ids, index=None):
        reads.append(sorted(p.rsplit(":", 1)[0] for p in ids))
        release.set()
        return real(self, ids, index)

    key = {p.meta["file"]: p.id.rsplit(":", 1)[0] for p in expected}
    retrievers = {
        k: Retriever(
            Settings(store=store, k=k, candidates=10, fusion="rrf"),
            Store(s, client=client),
            Slow(dim=4, angles=ANGLES),
        )
        for k in (4, 2)
    }
    for r in retrievers.values():
        r.refresh()  # its index checked (which reads chunks) before the spy
    monkeypatch.setattr(Retriever, "chunks", spy)
    found = retrievers[4].run("苹果")
    assert [(p.id, p.score) for p in found.passages] == [(p.id, p.score) for p in expected]
    # first, while the vector was awaited: the lexical ranking's (苹果: 甲, 乙); then only the rest of the 4
    assert reads == [sorted([key["jia.md"], key["yi.md"]]), sorted([key["ding.md"], key["bing.md"]])]
    reads.clear()
    release.clear()
    retrievers[2].run("苹果")
    assert reads == [sorted([key["jia.md"], key["yi.md"]])]  # the fused first two were among them


# ------------------------------------------------------------------------------------ LangChain retriever
def test_talent_retriever_is_a_langchain_retriever(bot):
    row = next(r for r in eval_rows("qa_regulations.jsonl") if r["a"] and r.get("doc"))
    retriever = bot.as_retriever(k=2)
    assert isinstance(retriever, BaseRetriever)
    docs = retriever.invoke(row["q"])
    assert len(docs) == 2
    assert all(isinstance(d, Document) for d in docs)
    assert all(e in docs[0].page_content for e in row["a"])
    assert docs[0].metadata["file"] in row["doc"]
    assert {"title", "source", "date", "path", "score", "coverage"} <= set(docs[0].metadata)
    assert docs[0].id
    # composes with other runnables
    pick_file = retriever | RunnableLambda(lambda ds: ds[0].metadata["file"])
    assert pick_file.invoke(row["q"]) in row["doc"]


def test_talent_retriever_applies_filters(bot):
    docs = bot.as_retriever(k=5, filters=Filters(region="河南")).invoke("人才发展促进")
    assert docs
    assert all("河南" in d.metadata["region"] or "河南" in d.metadata["title"] for d in docs)


def test_fusion_is_weighted_reciprocal_rank():
    """fuse() is pure: each ranking adds weight / (k + rank) per id, ranks from 1."""
    from talentbot.retrieval import fuse

    lexical = [("a", 9.0), ("b", 5.0)]
    dense = [("b", 0.9), ("c", 0.8)]
    fused = fuse([(1.0, lexical), (0.5, dense)], rrf_k=5)
    assert fused == pytest.approx({"a": 1 / 6, "b": 1 / 7 + 0.5 / 6, "c": 0.5 / 7})
    assert sorted(fused, key=fused.__getitem__, reverse=True) == ["b", "a", "c"]
    assert fuse([], rrf_k=5) == {}
