"""Vague questions get a clarifying reply (issue #12 item 5), and a refusal under an active filter names the
filter (item 7). The documents here are written for these tests (made-up policies of real cities); the
store is a real Chroma on disk with FakeEmbedder vectors, built once for the module."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from fixtures.fake_embedder import fake_bot_over
from talentbot import AnswerEvent, TalentBot, TextEvent
from talentbot.answer import is_english
from talentbot.clarify import content_terms, filter_note, is_vague
from talentbot.passages import Filters

DOCS = {
    "ningbo.md": (
        "宁波市青年人才安居办法",
        "2021-06-01",
        [
            "第一章 总则",
            "第一条 为吸引青年人才来甬就业，制定本办法。",
            "第二章 租房补贴",
            "第二条 来甬工作的本科学历青年，按月领取租房补贴800元，最长领取三年。",
            "第三章 人才公寓",
            "第三条 人才公寓面向引进的青年人才出租，租金按市场租金的五折收取。",
            "第四章 附则",
            "第四条 本办法自2021年7月1日起施行。",
        ],
    ),
    "hefei.md": (
        "合肥市高层次人才引进办法",
        "2019-12-01",
        [
            "第一章 总则",
            "第一条 为加快引进高层次人才，制定本办法。",
            "第二章 购房补贴",
            "第二条 引进的领军人才在本市购买首套住房的，给予购房补贴100万元。",
            "第三条 引进的领军人才在本市创办企业的，给予创业奖励50万元。",
            "第三章 附则",
            "第四条 本办法自2020年1月1日起施行。",
        ],
    ),
    "chengdu.md": (
        "成都市技能人才培养条例",
        "2022-03-01",
        [
            "第一章 总则",
            "第一条 为培养技能人才，制定本条例。",
            "第二章 技能竞赛",
            "第二条 获得全国技能大赛金牌的选手，给予奖励10万元。",
            "第三章 附则",
            "第三条 本条例自2022年5月1日起施行。",
        ],
    ),
    "xian.md": (
        "西安市人才落户规定",
        "2019-04-01",
        [
            "第一条 具有本科以上学历的人员，可以在本市办理落户。",
            "第二条 本规定自2019年5月1日起施行。",
        ],
    ),
}
HEADINGS = {line.split(" ", 1)[1] for _, _, lines in DOCS.values() for line in lines if "章 " in line}


@pytest.fixture(scope="module")
def bot(tmp_path_factory) -> Iterator[TalentBot]:
    yield from fake_bot_over(tmp_path_factory.mktemp("clarify"), DOCS)


def _events(bot: TalentBot, question: str, **kw) -> tuple[str, object]:
    events = list(bot.stream(question, **kw))
    assert isinstance(events[-1], AnswerEvent)
    assert all(isinstance(e, TextEvent) for e in events[:-1])
    return "".join(e.text for e in events[:-1]), events[-1].answer


# ------------------------------------------------------------------------------------------ the detector


def test_content_terms_leave_out_question_and_framing_words():
    assert content_terms("请问有什么补贴？") == ["补贴"]
    assert content_terms("我想了解一下相关的优惠信息") == ["优惠"]
    assert content_terms("What subsidies are there?") == ["subsidies"]


def test_vagueness_rule():
    held = {"人才": 10, "政策": 7, "补贴": 4, "公寓": 1, "落户": 3, "博士": 3}.get

    def vague(q: str, **kw) -> bool:
        return is_vague(q, lambda t: held(t, 0), 10, **kw)

    assert vague("有什么补贴？")  # one term, in several articles
    assert vague("人才政策")  # corpus-wide words only
    assert not vague("有哪些扶持？")  # a word no article holds: refused as usual, not clarified
    assert not vague("人才公寓怎么申请？")  # a lone term only one article holds picks it
    assert not vague("博士落户有什么条件？")  # two terms
    assert not vague("杭州有什么补贴？")  # names a place
    assert not vague("《某市人才办法》有什么补贴？")  # names a title
    assert not vague("有什么补贴？", filters=Filters(region="杭州"))  # the filter names the place
    assert vague("有什么补贴？", filters=Filters(date_from="2020"))  # a date range alone does not
    assert not vague("它给了多少补贴？")  # points at one thing (a follow-up without its history)
    assert not vague("这个补贴有什么条件？")
    assert not vague("人才补贴是多少？")  # one figure asked for, however broad the words
    assert not vague("补贴政策何时起施行？")


# ------------------------------------------------------------------------------------ through TalentBot


@pytest.mark.parametrize(
    "question", ["有什么补贴？", "人才政策", "有哪些奖励措施？", "我想了解一下相关的奖励信息"]
)
def test_vague_questions_get_a_clarifying_reply(bot, question):
    streamed, answer = _events(bot, question)
    assert answer.clarify
    assert answer.no_answer
    assert not answer.citations
    assert streamed == answer.text
    assert answer.as_dict()["clarify"] is True
    for rec in bot.articles():  # every region of the corpus is listed
        assert rec.region.split(",")[0] in answer.text
    topics = re.search(r"涉及的主题有：(.+?)等。", answer.text)
    assert topics, answer.text
    listed = topics.group(1).split("、")
    corpus_text = "".join(t + "".join(lines) for t, _, lines in DOCS.values())
    assert all(t in corpus_text for t in listed)  # read from the documents, not made up
    assert any(t in h for t in listed for h in HEADINGS)  # chapter headings count


def test_the_example_questions_are_specific_and_answerable(bot):
    answer = bot.ask("有什么补贴？")
    examples = [line[2:] for line in answer.text.splitlines() if line.startswith("- ")]
    assert len(examples) >= 2
    titles = [r.title for r in bot.articles()]
    regions = [x for r in bot.articles() for x in r.region.split(",")]
    for q in examples:
        assert any(t in q for t in titles) or any(r in q for r in regions)
        assert not bot.ask(q).clarify
    dated = next(q for q in examples if "施行" in q)
    title = re.search(r"《(.+?)》", dated).group(1)
    rec = next(r for r in bot.articles() if r.title == title)
    reply = bot.ask(dated)
    assert not reply.no_answer
    year, month, day = (int(x) for x in rec.effective.split("-"))
    assert f"{year}年{month}月{day}日" in reply.text


def test_an_english_vague_question_gets_an_english_reply(bot):
    answer = bot.ask("What subsidies are there?")
    assert answer.clarify
    assert answer.no_answer
    assert is_english(answer.text.split("\n")[0])
    assert "regions" in answer.text


@pytest.mark.parametrize(
    "question",
    ["宁波市本科学历青年每月领多少租房补贴？", "人才公寓的租金怎么收？", "领军人才购房补贴是多少？"],
)
def test_specific_questions_are_answered_not_clarified(bot, question):
    answer = bot.ask(question)
    assert not answer.clarify
    assert not answer.no_answer
    assert answer.citations


def test_a_follow_up_whose_standalone_question_is_specific_is_not_clarified(bot):
    history = [("user", "合肥市引进的领军人才买首套住房有什么支持？"), ("assistant", "购房补贴")]
    answer = bot.ask("有哪些补贴？", history=history)
    assert not answer.clarify
    assert "100万元" in answer.text
    assert bot.ask("有哪些补贴？").clarify  # the same words alone are vague


# --------------------------------------------------------------------------------- refusal under a filter


def test_a_refusal_under_a_region_filter_names_it(bot):
    q = "宁波市本科学历青年每月领多少租房补贴？"
    assert "800元" in bot.ask(q).text  # answered without the filter
    streamed, answer = _events(bot, q, filters=Filters(region="合肥"))
    assert answer.no_answer
    assert not answer.clarify
    assert "合肥" in answer.text
    assert "清除筛选" in answer.text
    assert streamed == answer.text


def test_a_refusal_under_a_date_filter_names_it_in_english(bot):
    answer = bot.ask("How much rent subsidy do new graduates get in Ningbo?", filters=Filters(date_to="2000"))
    assert answer.no_answer
    assert "Filter in force" in answer.text
    assert "up to 2000" in answer.text
    assert "Clear the filter" in answer.text


def test_no_filter_no_filter_line(bot):
    answer = bot.ask("火星基地的科研人员每月补贴多少？")
    assert answer.no_answer
    assert "筛选" not in answer.text


def test_filter_note_wording():
    assert filter_note(None) == ""
    assert filter_note(Filters()) == ""
    both = filter_note(Filters(region="广东", date_from="2020", date_to="2022-06"))
    assert "地区 广东" in both
    assert "2020至2022-06" in both
    assert "from 2021" in filter_note(Filters(date_from="2021"), english=True)


def test_the_catalogue_reads_chapter_headings_from_the_manifest_not_every_chunk(bot, monkeypatch):
    from talentbot.clarify import Clarifier

    records = bot.articles()
    kept = {h for r in records for h in (r.headings or "").split("\n") if h}
    assert kept == {line for _, _, lines in DOCS.values() for line in lines if "章 " in line}
    retriever = bot.retriever
    from_manifest = Clarifier(retriever).catalogue()

    def no_scan(*a, **k):
        raise AssertionError("the catalogue read every chunk")

    with monkeypatch.context() as mp:
        mp.setattr(retriever.store, "iter_chunks", no_scan)
        assert Clarifier(retriever).catalogue() == from_manifest

    # a store ingested before headings were kept: the same catalogue, read from its chunks
    for rec in retriever.manifest.values():
        monkeypatch.setattr(rec, "headings", None)
    assert Clarifier(retriever).catalogue() == from_manifest
