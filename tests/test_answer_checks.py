"""What an extractive answer must hold before it is shown: the figure in the unit the question asks for,
and the thing a quantity question counts. Questions and passages here are written for these tests."""

from __future__ import annotations

import pytest

from talentbot.answer import AnswerEvent
from talentbot.asked import asked_units, states_unit
from talentbot.evidence import dated_event, dates_event, degrees, focus_terms, other_degree, supports
from talentbot.extractive import extractive_events
from talentbot.lexical import tokenize
from talentbot.passages import Passage, TermGroup, coverage


def _answer(question: str, text: str):
    groups = [TermGroup(1.0, frozenset({t})) for t in dict.fromkeys(tokenize(question))]
    p = Passage(id="a:0", text=text, meta={"file": "a.md", "title": "某区人才办法"}, score=1.0, groups=groups)
    p.coverage = coverage(groups, set(tokenize(text)))
    events = list(extractive_events(question, [p], min_coverage=0.3))
    assert isinstance(events[-1], AnswerEvent)
    return events[-1].answer


@pytest.mark.parametrize(
    ("question", "units"),
    [
        ("申请人年龄不得超过多少岁？", {"number", "岁"}),
        ("试用期最长几个月？", {"number", "月"}),
        ("这笔奖励一共多少钱？", {"number", "元"}),
        ("审批要几个工作日？", {"number", "日"}),
        ("这项办法何时起施行？", {"date"}),
        ("企业能领多少人才津贴？", {"number"}),  # 人才 is a word, not the unit 人
        ("哪几类人员可以申请？", set()),  # a list, not a count
        ("第几条规定了罚款？", set()),  # an ordinal
        ("技改项目补助占投资额的比例是多少？", {"number", "%"}),  # the measure named before 多少
        ("申报人年龄最大多少？", {"number", "岁"}),
        ("新办法几月几日起实行？", {"date"}),  # the 几 of a date asked for, not a quantity
    ],
)
def test_units_a_question_asks_for(question, units):
    assert asked_units(question) == units


@pytest.mark.parametrize(
    ("text", "unit", "states"),
    [
        ("申请人年龄在45（含）岁以下。", "岁", True),  # an aside between figure and unit
        ("今年共招募800余名志愿者。", "人", True),  # 800余名
        ("首批录用1.2万多名。", "人", True),
        ("对符合条件的人员给予一次性奖励。", "number", False),
        ("对符合条件的人员给予一次性奖励3万元。", "元", True),
        ("对符合条件的人员给予一次性奖励3万元。", "岁", False),
        ("本办法自2025年3月1日起施行。", "date", True),
        ("本办法自印发之日起施行。", "date", False),
        ("按实际投资额的5%给予奖励。", "%", True),
        ("报名人数与录取人数之比约为1∶20。", "%", True),
        ("按实际投资额给予一次性奖励10万元。", "%", False),
        ("5月8日，市住建局发布关于调整贷款额度的通知。", "number", False),  # 多少 is never a calendar date
        ("贷款额度上浮20%。", "number", True),
    ],
)
def test_a_text_states_a_figure_in_a_unit(text, unit, states):
    assert states_unit(text, unit) is states


def test_the_thing_counted_is_the_focus_and_must_be_written():
    counted = focus_terms("今年招了多少名乡村振兴协理员？")  # past the counter 名: the phrase counted
    assert len(counted) == 1
    assert counted[0].strict
    assert "协理员" in counted[0].words
    assert counted[0].held_by("共招募协理员120名。")  # one word of the phrase, as written, will do
    assert not counted[0].held_by("共招募志愿者120名。")
    assert focus_terms("这笔奖励一共多少钱？") == []  # the unit (元) says what is counted
    measured = focus_terms("新入职教师的交通补助标准是多少？")
    assert measured
    assert set(measured[0].words) <= {"交通", "补助", "交通补助"}
    assert not measured[0].strict  # a noun before its measure: loosely (a text may word it otherwise)
    verb = focus_terms("贷款额度能上浮多少？")
    assert verb
    assert not verb[0].strict
    assert supports("补贴", "给予住房补助贴息")
    assert not supports("补贴", "给予住房补助贴息", strict=True)


def test_a_passage_on_the_topic_without_the_figure_asked_is_no_answer():
    q = "高新区对引进的博士后每月发放多少交通补贴？"
    assert _answer(q, "高新区对引进的博士后给予科研启动经费和人才公寓等支持。").no_answer
    assert _answer(q, "高新区对引进的博士后给予安家补贴20万元。").no_answer  # another thing is counted
    got = _answer(q, "高新区对引进的博士后每月发放交通补贴800元。")
    assert not got.no_answer
    assert "800元" in got.text


def test_an_age_question_needs_an_age():
    q = "申报青年英才项目，申报人最高可以到多少岁？"
    assert _answer(q, "青年英才项目今年面向社会遴选300名。").no_answer  # a count, not an age
    got = _answer(q, "申报青年英才项目的人年龄一般不超过35（含）周岁。")
    assert not got.no_answer
    assert "35" in got.text


def test_a_date_question_needs_a_date():
    q = "高新区人才办法从什么时候开始施行？"
    assert _answer(q, "高新区人才办法施行后，申请人可以在线提交材料。").no_answer
    got = _answer(q, "高新区人才办法自2025年7月1日起施行。")
    assert not got.no_answer
    assert "2025年7月1日" in got.text


@pytest.mark.parametrize(
    ("text", "levels"),
    [
        ("对博士研究生、硕士研究生和本科生分别给予补贴。", {"博士", "硕士", "本科"}),
        ("博士后进站给予资助。", set()),  # a post, not a degree
        ("取得学士学位的毕业生。", {"本科"}),
        ("大专以上学历。", {"专科"}),
    ],
)
def test_degree_levels_named(text, levels):
    assert degrees(text) == levels


def test_another_degree_level_is_another_group():
    assert other_degree("引进的硕士能领多少安家费？", "对引进的本科生给予安家费3万元。")
    assert not other_degree("引进的硕士能领多少安家费？", "对引进的硕士研究生给予安家费5万元。")
    assert not other_degree("引进的硕士能领多少安家费？", "对引进的研究生给予安家费5万元。")  # either kind
    assert not other_degree("引进的研究生能领多少安家费？", "对引进的博士给予安家费8万元。")
    assert not other_degree("引进人才能领多少安家费？", "对引进的本科生给予安家费3万元。")  # none asked
    q = "区里给来工作的硕士每人发多少安家补贴？"
    assert _answer(q, "区里给来工作的本科生每人发安家补贴2万元。").no_answer
    assert not _answer(q, "区里给来工作的硕士每人发安家补贴3万元。").no_answer


def test_a_rate_needs_its_per_unit():
    q = "高标准农田建设补助是每亩多少元？"
    assert _answer(q, "高标准农田建设项目共投资2亿元。").no_answer  # yuan, but not per square metre
    got = _answer(q, "高标准农田建设补助为每亩1500元。")
    assert not got.no_answer
    assert "1500元" in got.text


def test_a_discount_question_needs_a_discount():
    assert asked_units("园区食堂对入驻企业员工打几折？") == {"number", "折"}
    assert states_unit("园区食堂对入驻企业员工按8折收费。", "折")
    assert not states_unit("园区食堂对入驻企业员工每月补贴300元。", "折")


@pytest.mark.parametrize(
    ("question", "event"),
    [
        ("补贴细则的生效日期是哪一天？", "生效"),
        ("新办法自何时起实施？", "实施"),
        ("这项补贴发放多少钱？", None),
    ],
)
def test_the_event_a_date_question_dates(question, event):
    assert dated_event(question) == event


def test_a_date_must_be_the_date_of_the_event_asked():
    assert not dates_event(["本通知施行后12个月内可按月提取。", "8月3日，市住建局发布了征求意见稿。"], "施行")
    assert dates_event(["本通知自2025年9月1日起施行。"], "施行")
    assert dates_event(["本办法自2025年9月1日起实施。"], "施行")  # 施行 ~ 实施
    q = "补贴细则的生效日期是哪一天？"
    assert _answer(q, "8月3日，市人社局发布补贴细则征求意见稿。本细则生效后12个月内可按月申领。").no_answer


def test_a_requirement_of_some_kind_needs_that_kind():
    assert [f.words for f in focus_terms("应聘者有什么专业要求？")] == [("专业",)]
    assert [f.words for f in focus_terms("有哪些年龄方面的要求？")] == [("年龄",)]
    assert focus_terms("需要满足什么条件？") == []  # no kind named
    q = "见习岗位对应聘者有什么专业要求？"
    assert _answer(q, "见习岗位面向离校两年内的高校毕业生，见习期为六个月。").no_answer
    assert not _answer(q, "见习岗位要求应聘者为计算机相关专业毕业。").no_answer


def test_a_change_to_a_figure_is_worded_freely():
    assert [f.words for f in focus_terms("月补贴从多少提高到了多少？")] == []  # 提高到/上调至/调整为 alike
    q = "见习补贴标准从多少提高到了多少？"
    got = _answer(q, "见习补贴标准从每月1800元上调至2200元。")
    assert not got.no_answer
    assert "2200元" in got.text


def test_a_how_long_question_needs_a_duration():
    assert asked_units("挂职锻炼一般要多长时间？") == {"duration"}
    assert states_unit("挂职锻炼期限一般为两年。", "duration")
    assert not states_unit("挂职干部于2024年3月1日到岗。", "duration")  # a date is not a duration
    q = "挂职锻炼一般要多久？"
    assert _answer(q, "挂职锻炼的干部于2024年3月1日到岗开始工作。").no_answer
    assert not _answer(q, "挂职锻炼期限一般为两年。").no_answer


def test_a_passage_both_rankings_put_first_needs_less_word_overlap():
    from talentbot.extractive import AGREED_SHARE, refused
    from talentbot.passages import Passage

    sentence = "青年人才公寓向所在区人才服务中心提出申请。"
    question = "年轻人想住人才公寓去哪儿申请？"
    support = 0.3 * (1 + AGREED_SHARE) / 2  # under min_coverage, over its agreed share

    def gate(agreed: bool) -> bool:
        p = Passage("a:0", sentence, {"title": "某市人才公寓办法"}, 1.0, agreed=agreed)
        return refused(question, [(p, sentence)], support, 0.3)

    assert gate(agreed=False)
    assert not gate(agreed=True)
    p = Passage("a:0", sentence, {}, 1.0, agreed=True)
    assert refused(
        question, [(p, sentence)], 0.3 * AGREED_SHARE * 0.9, 0.3
    )  # agreement lowers it only so far
