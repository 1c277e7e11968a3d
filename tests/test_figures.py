"""Figure normalisation for the LLM answer check: every way of writing the same figure is accepted, and each
miss found by attacking the check (financial numerals, number words, lone Chinese numerals, reordered
dates) is now caught."""

from __future__ import annotations

import pytest

from talentbot.asked import named_in_question
from talentbot.figures import extract, missing, unsupported

PASSAGE = (
    "第三条 对新引进的全职博士研究生给予一次性安家补贴100万元，服务期五年。"
    "本条例自2020年6月1日起施行，申请人应当在三十日内提交材料，补贴比例为百分之五十。"
)


@pytest.mark.parametrize(
    "answer",
    [
        "安家补贴为壹佰万元整[1]。",  # financial numerals
        "安家补贴为一百万元[1]。",
        "安家补贴为1,000,000元[1]。",
        "安家补贴为１００万元[1]。",  # full-width digits
        "The settling-in allowance is one million yuan [1].",
        "The settling-in allowance is 1 million yuan [1].",
        "The settling-in allowance is a million yuan [1].",
        "服务期为5年[1]。",
        "The service period is five years [1].",
        "自2020年6月1日起施行[1]。",
        "自2020-06-01起施行[1]。",
        "自二〇二〇年六月一日起施行[1]。",
        "It took effect on June 1, 2020 [1].",
        "It took effect in June 2020 [1].",
        "自2020年起施行[1]。",  # a year alone is part of the date
        "应当在30日内提交[1]。",
        "应当在三十天内提交[1]。",
        "补贴比例为50%[1]。",
        "依照第三条[1]。",
        "统一发放，一些条件，进一步落实[1]。",  # 一 in words is not a figure
    ],
)
def test_the_same_figure_written_another_way_is_supported(answer):
    assert unsupported(answer, [PASSAGE]) == [], answer


@pytest.mark.parametrize(
    ("answer", "flagged"),
    [
        ("安家补贴为壹佰伍拾万元整[1]。", "壹佰伍拾万"),
        ("The settling-in allowance is two million yuan [1].", "two million"),
        ("The settling-in allowance is one hundred thousand yuan [1].", "one hundred thousand"),
        ("服务期为三年[1]。", "三"),  # a lone Chinese numeral: 三年 against 五年
        ("服务期为8年[1]。", "8"),
        ("自2020年1月6日起施行[1]。", "2020年1月6日"),  # the passage says 2020年6月1日
        ("自2020-01-06起施行[1]。", "2020-01-06"),
        ("It took effect on January 6, 2020 [1].", "January 6, 2020"),
        ("安家补贴为10万元[1]。", "10万"),  # a figure inside a bigger one
        ("安家补贴为100元[1]。", "100"),  # the right digits, the wrong scale
        ("补贴比例为百分之三十[1]。", "百分之三十"),
        ("服务期为三十年[1]。", "三十"),  # 三十 is in the passage, but as 三十日
    ],
)
def test_a_figure_the_passage_does_not_state_is_flagged(answer, flagged):
    assert flagged in unsupported(answer, [PASSAGE]), answer


def test_figures_are_read_with_their_units_and_dates_as_dates():
    found = {(f.text, f.kind, f.unit) for f in extract(PASSAGE)}
    assert ("100万", "number", "元") in found
    assert ("五", "number", "年") in found
    assert ("2020年6月1日", "date", None) in found
    assert ("百分之五十", "number", "%") in found
    dates = [f.value for f in extract("2020年6月1日、2020-06-01、June 1, 2020") if f.kind == "date"]
    assert dates == [(2020, 6, 1)] * 3
    assert [f.value for f in extract("壹佰万元整、one million yuan、100万元、1,000,000元")] == [1000000] * 4


def test_a_range_gives_its_unit_to_both_ends():
    assert unsupported("服务期为3至5年[1]。", ["服务期为三至五年。"]) == []
    assert unsupported("服务期为三年[1]。", ["服务期为五至八年。"]) == ["三"]
    assert [(f.value, f.unit) for f in extract("三至五年")] == [(3, "年"), (5, "年")]


def test_citation_markers_are_not_figures():
    assert extract("见[1][2]。") == []


@pytest.mark.parametrize(
    ("question", "named"),
    [
        ("第三批挂职干部共有多少名？", ["三"]),  # an ordinal names the thing asked about
        ("自8月1日起租房提取限额是多少？", ["8月1日"]),
        ("“15分钟就业服务圈”有哪些功能？", ["15"]),
        ("人才工程包括哪两个系列？", []),  # a small count is the shape of the answer
        ("2023年招募了多少人？", []),  # years are the anchors' job
        ("这个计划一年打算资助多少人？", []),  # 一年: 'a year'
    ],
)
def test_figures_a_question_names(question, named):
    assert [f.text for f in named_in_question(question)] == named


def test_a_question_naming_another_ordinal_is_not_supported_by_the_passage():
    passage = "第十二批人才驿站共30家。"
    assert missing(named_in_question("第二批人才驿站共有多少家？"), [passage]) == ["二"]
    assert missing(named_in_question("第十二批人才驿站共有多少家？"), [passage]) == []
