"""Words people actually use (issue 10, item 4): a question worded with one word of a pair (生效 / 施行,
多少天 / 多少日, 户口 / 落户, 多少钱 / 奖励资金) reaches the same passage as one in the document's own word,
and where the answer checks accept it, the same figure. No synonym list: character pairs in the lexical
index and the dense model do it. Real corpus store, real bundled model; questions written for this test."""

from __future__ import annotations

import pytest

from talentbot import Search, TalentBot

PAIRS = [
    (  # the regulation says 施行
        "《北京市人才市场管理条例》从什么时候开始生效？",
        "《北京市人才市场管理条例》自何时起施行？",
        "1998年1月1日",
    ),
    (  # the regulation counts 日
        "在北京申请设立人才中介机构，人力社保部门要在多少天内批下来？",
        "在北京申请设立人才中介机构，人力社保部门要在多少日内批准？",
        "三十日",
    ),
    (  # the article says 奖励配套资金
        "山西开发区去年给盛达威公司兑现了多少钱的人才奖励？",
        "山西开发区给盛达威公司兑现的人才奖励配套资金是多少？",
        "40万元",
    ),
]


HUKOU = ("北京在创新人才的户口方面有什么政策？", "北京在创新人才落户方面有什么政策？", "落户")


def _top(bot: TalentBot, question: str) -> str:
    found = Search()
    bot.ask(question, trace=found)
    assert found.passages, question
    return found.passages[0].id


@pytest.mark.parametrize(("spoken", "written", "figure"), [*PAIRS, HUKOU])
def test_a_word_people_use_reaches_the_same_passage(corpus_bot: TalentBot, spoken, written, figure):
    assert _top(corpus_bot, spoken) == _top(corpus_bot, written)


@pytest.mark.parametrize(("spoken", "written", "figure"), [PAIRS[0], PAIRS[2]])
def test_and_is_answered_with_the_same_figure(corpus_bot: TalentBot, spoken, written, figure):
    by_document_word = corpus_bot.ask(written)
    by_spoken_word = corpus_bot.ask(spoken)
    assert not by_document_word.no_answer, by_document_word.text
    assert not by_spoken_word.no_answer, by_spoken_word.text
    assert figure in by_spoken_word.text
    assert by_spoken_word.citations[0].id == by_document_word.citations[0].id
