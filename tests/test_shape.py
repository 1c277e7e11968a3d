"""Answers shaped like answers (issue #12, items 2-4): a direct clause for number, date and yes/no questions,
the organisation for who-questions, whole lists across chunk boundaries, and multi-part questions answered
part by part with a computed comparison. Fast tests use passages written here; the corpus tests ask the
issue's own cases and take what they expect from the corpus files."""

from __future__ import annotations

import re

import pytest
from markdown_it import MarkdownIt

from fixtures.helpers import CORPUS
from talentbot.answer import Answer, AnswerEvent, Citation
from talentbot.chain import final_answer
from talentbot.compare import PartResult, comparison, parts_events, split_parts
from talentbot.enumeration import enumeration, join_chunks
from talentbot.extractive import extractive_events
from talentbot.figures import unsupported
from talentbot.lexical import tokenize
from talentbot.organisations import organisation
from talentbot.passages import Passage, TermGroup, coverage
from talentbot.quoting import Quote
from talentbot.shape import question_kind
from talentbot.web_render import answer_markdown, redisplay, sources_html

MARKER = re.compile(r"\[(\d+)\]")
SOURCE = re.compile(r"^(?:[^：\[\]]{1,30}：(?=据《))?据《[^》]+》[^：]*：")


def norm(text: str) -> str:
    return re.sub(r"\s+", "", text)


def passage(text: str, question: str, pid: str = "art:0", **meta) -> Passage:
    groups = [TermGroup(1.0, frozenset({t})) for t in dict.fromkeys(tokenize(question))]
    article, _, ordinal = pid.partition(":")
    p = Passage(
        id=pid,
        text=text,
        meta={
            "file": "a.md",
            "title": "某市人才发展办法",
            "article": article,
            "ordinal": int(ordinal or 0),
            **meta,
        },
        score=1.0,
        groups=groups,
    )
    p.coverage = coverage(groups, set(tokenize(text)))
    return p


def answer(question: str, passages: list[Passage], siblings=None) -> Answer:
    events = list(extractive_events(question, passages, 0.3, siblings))
    assert isinstance(events[-1], AnswerEvent)
    assert "".join(e.text for e in events[:-1]) == events[-1].answer.text  # the stream adds up to the answer
    return events[-1].answer


def assert_quoted(a: Answer) -> None:
    """Every line cites [n] and, past its source phrase, is a substring of a passage it cites."""
    by_n = {c.n: c for c in a.citations}
    for line in a.text.splitlines():
        ns = [int(n) for n in MARKER.findall(line)]
        assert ns, line
        text = norm(MARKER.sub("", SOURCE.sub("", line)))
        assert any(text in norm(by_n[n].text) for n in ns), line


# ------------------------------------------------------------------------------------------ question kinds
@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("申请补贴的截止日期是哪天？", "date"),
        ("每人每月能领多少生活补助？", "number"),
        ("这笔奖励由哪个部门发放？", "who"),
        ("外地户籍的毕业生能否申请人才公寓？", "yesno"),
        ("申请时要准备哪些材料？", "list"),
        ("人才公寓的管理办法是怎么规定的？", "plain"),
    ],
)
def test_the_kind_of_answer_a_question_wants(question, kind):
    assert question_kind(question) == kind


# --------------------------------------------------------------------------------------- direct answers
HOUSING_RULE = (
    "第十二条 对新引进的博士研究生，给予一次性安家补贴每人二十万元，分五年发放；"
    "对新引进的硕士研究生，给予一次性安家补贴每人五万元，分两年发放；"
    "对新引进的本科毕业生，按照每月一千元的标准发放租房补贴，最长不超过三年。"
)


def test_a_number_question_leads_with_the_clause_that_holds_the_figure():
    q = "硕士研究生来这里工作，安家补贴一共能拿多少钱？"
    a = answer(q, [passage(HOUSING_RULE, q, label="第十二条")])
    assert not a.no_answer, a.text
    first = a.text.splitlines()[0]
    assert first.startswith("据《某市人才发展办法》第十二条：")
    assert "五万元" in first
    assert "二十万元" not in first  # not the doctor's clause
    assert len(MARKER.sub("", SOURCE.sub("", first))) < len(HOUSING_RULE) / 3  # trimmed to its clause
    assert "五万元" in a.highlights
    assert "硕士研究生" in a.text  # the item around the clause follows, saying whom it is for
    assert_quoted(a)


def test_a_date_question_leads_with_the_clause_of_the_event_asked():
    text = "本办法自2025年7月1日起施行，2019年3月印发的《某市人才安居暂行办法》同时废止。"
    q = "新的人才办法从哪一天开始施行？"
    a = answer(q, [passage(text, q, label="第三十条")])
    first = a.text.splitlines()[0]
    assert "2025年7月1日" in first
    assert "2019" not in first
    assert a.highlights == ["2025年7月1日"]
    assert_quoted(a)


def test_a_yes_no_question_is_answered_by_the_sentence_that_says_may_not_its_neighbour():
    text = (
        "第十五条 人才与用人单位签订的合同中约定了服务期和违约金的，按照合同约定处理。"
        "合同未作约定，但用人单位为人才支付过进修费用的，用人单位可以要求人才返还部分进修费用。"
    )
    q = "合同里没写违约金，单位替员工出过进修费，员工离职时单位能不能要求返还？"
    a = answer(q, [passage(text, q, label="第十五条")])
    first = a.text.splitlines()[0]
    assert "可以要求人才返还部分进修费用" in first
    assert "按照合同约定处理" not in a.text
    assert "可以" in a.highlights
    assert_quoted(a)


@pytest.mark.parametrize(
    ("question", "sentence", "name"),
    [
        (
            "园区给哪家公司兑现了研发奖励？",
            "2022年，园区为星海微电子有限公司兑现研发奖励80万元。",
            "星海微电子有限公司",
        ),
        (
            "本区人才公寓由哪个部门负责分配？",
            "区人力资源和社会保障局负责本区人才公寓的分配和管理工作。",
            "区人力资源和社会保障局",
        ),
        (
            "全市人才工作由哪个部门主管？",
            "市委人才工作领导小组办公室是全市人才工作的主管部门，负责统筹协调。",
            "市委人才工作领导小组办公室",
        ),
        ("补贴资金由谁审核？", "补贴资金由区财政局和区科技局共同审核。", "区财政局"),
    ],
)
def test_the_organisation_asked_for_is_named(question, sentence, name):
    assert organisation(question, sentence) == name


def test_a_who_question_answers_with_the_name_then_its_sentence():
    text = "2021年，开发区为蓝鲸智能装备有限公司兑现人才引进奖励60万元，鼓励企业引进高层次人才。"
    q = "开发区给哪家企业兑现了人才引进奖励？"
    a = answer(q, [passage(text, q, label="强化人才激励")])
    lines = a.text.splitlines()
    assert SOURCE.sub("", MARKER.sub("", lines[0])) == "蓝鲸智能装备有限公司"
    assert norm(text) in norm(a.text)  # then the sentence that says so
    assert a.highlights == ["蓝鲸智能装备有限公司"]
    assert_quoted(a)


def test_a_direct_clause_that_fails_the_gate_falls_back_to_the_whole_sentence():
    """The clause alone would quote the doctor's figure for a question about 本科: the shaped answer is
    checked like any other and the degree check sends it back to the sentence."""
    text = "对新引进的博士研究生，给予一次性奖励三万元，另给予每月两千元的生活补贴。"
    q = "本科生能拿多少一次性奖励？"
    a = answer(q, [passage(text, q)])
    assert a.no_answer  # 博士 quoted for a 本科 question: refused as before


# ------------------------------------------------------------------------------------------ whole lists
MATERIALS_A = "第九条 申请人才公寓应当提交下列材料：（一）申请表；（二）身份证明；（三）劳动合同；"
MATERIALS_B = "（三）劳动合同；（四）社会保险缴纳证明；（五）学历学位证书。"


def test_chunks_of_one_article_are_joined_without_their_overlap():
    q = "申请人才公寓要交哪些材料？"
    a, b = passage(MATERIALS_A, q, "art:3", label="第九条"), passage(MATERIALS_B, q, "art:4", label="第九条")
    text, spans = join_chunks([a, b])
    assert text.count("（三）劳动合同") == 1
    assert text == MATERIALS_A + MATERIALS_B.removeprefix("（三）劳动合同；")
    assert [text[s:e] for s, e in spans] == [MATERIALS_A, MATERIALS_B]


def test_a_list_running_over_two_chunks_is_quoted_whole_each_item_cited():
    q = "申请人才公寓要交哪些材料？"
    a, b = passage(MATERIALS_A, q, "art:3", label="第九条"), passage(MATERIALS_B, q, "art:4", label="第九条")
    unit = {a.id: [a, b], b.id: [a, b]}
    full = answer(q, [a], siblings=lambda p: unit[p.id])
    lines = full.text.splitlines()
    assert lines[0] == "据《某市人才发展办法》第九条：申请人才公寓应当提交下列材料：[1]"
    items = lines[1:]
    assert [MARKER.sub("", x) for x in items] == [
        "（一）申请表；",
        "（二）身份证明；",
        "（三）劳动合同；",
        "（四）社会保险缴纳证明；",
        "（五）学历学位证书。",
    ]
    assert items[-1].endswith("[2]")  # the last items are cited from the chunk that holds them
    assert [c.id for c in full.citations] == ["art:3", "art:4"]
    assert full.citations[0].quote == MATERIALS_A.removeprefix("第九条 ")  # the items are one run again
    assert f"<mark>{full.citations[0].quote}</mark>" in sources_html(full, 1)  # highlighted in the card
    assert_quoted(full)
    alone = answer(q, [a])  # without the rest of the article: the items the chunk has, still as a list
    assert "学历学位证书" not in alone.text
    assert "（三）劳动合同；[1]" in alone.text.splitlines()


def test_a_list_item_cut_between_chunks_is_quoted_in_its_two_pieces():
    q = "有哪些支持措施？"
    a = passage("第七条 市人民政府采取下列措施：（一）设立人才发展专项资金，用于", q, "art:1", label="第七条")
    b = passage("人才引进和培养；（二）建设人才公寓。", q, "art:2", label="第七条")
    pieces = enumeration([a, b], a.text)
    assert [(x.passage.id, x.text) for x in pieces] == [
        ("art:1", "第七条 市人民政府采取下列措施："),
        ("art:1", "（一）设立人才发展专项资金，用于"),
        ("art:2", "人才引进和培养；"),
        ("art:2", "（二）建设人才公寓。"),
    ]


def test_a_news_list_of_first_second_third_is_quoted_whole():
    text = (
        "园区出台三项举措：一是设立人才专项资金；二是建设人才公寓。"
        "三是开通子女入学绿色通道。此外，园区还将举办招聘会。"
    )
    q = "园区出台了哪些举措？"
    a = answer(q, [passage(text, q, label="多措并举")])
    lines = [MARKER.sub("", x) for x in a.text.splitlines()]
    assert lines[1:] == ["一是设立人才专项资金；", "二是建设人才公寓。", "三是开通子女入学绿色通道。"]
    assert "招聘会" not in a.text
    assert_quoted(a)


def test_a_sentence_outside_any_list_is_not_made_one():
    q = "有哪些措施？"
    a = passage("第三条 市人民政府统筹人才工作。第四条另有规定：（一）甲；（二）乙。", q)
    assert enumeration([a], "第三条 市人民政府统筹人才工作。") == []


# ----------------------------------------------------------------------------------- multi-part questions
@pytest.mark.parametrize(
    ("question", "labels"),
    [
        ("天津和重庆对人才公寓租金的补贴分别是多少？", ["天津", "重庆"]),
        ("苏州、无锡和常州的人才新政哪个发布得更早？", ["苏州", "无锡", "常州"]),
        (
            "《甲市人才安居办法》与《乙市人才安居办法》对租房补贴的规定有何不同？",
            ["《甲市人才安居办法》", "《乙市人才安居办法》"],
        ),
        ("成都的人才公寓由哪个部门管理？西安的人才公寓由哪个部门管理？", ["成都", "西安"]),
    ],
)
def test_a_multi_part_question_splits_into_one_question_per_place_or_title(question, labels):
    parts = split_parts(question)
    assert [p.label for p in parts] == labels
    for p in parts:
        assert p.label.strip("《》") in p.question
        assert not any(o.strip("《》") in p.question for o in labels if o != p.label), p.question
        assert "分别" not in p.question


@pytest.mark.parametrize(
    "question",
    [
        "浙江杭州对引进博士给多少补贴？",  # a city and its province: one place
        "苏州给博士多少补贴？无锡呢？",  # the second asks nothing by itself: not split by sentence
        "在上海工作的江苏籍人才能申请什么？",  # two places, neither joined nor compared
        "What are the housing subsidies in Beijing and Shanghai?",  # English questions are not split
    ],
)
def test_a_question_about_one_thing_is_not_split(question):
    assert split_parts(question) == []


def test_which_is_earlier_becomes_when_in_each_part():
    parts = split_parts("天津人才条例和重庆人才条例哪一部先施行？")
    assert [p.question for p in parts] == ["天津人才条例何时施行？", "重庆人才条例何时施行？"]


def _quotes(text: str) -> list[Quote]:
    return [Quote(passage(text, "x"), text)]


def test_the_comparison_is_computed_from_the_quoted_figures():
    later = [
        ("天津", _quotes("本条例自2021年5月1日起施行")),
        ("重庆", _quotes("本条例自2019年10月1日起施行")),
    ]
    assert comparison("哪个施行得更早？", later) == "比较：重庆（2019年10月1日）早于天津（2021年5月1日）。"
    assert comparison("哪个施行得更晚？", later) == "比较：天津（2021年5月1日）晚于重庆（2019年10月1日）。"
    money = [("甲区", _quotes("每月补贴两千元")), ("乙区", _quotes("每月补贴3000元"))]
    assert comparison("哪个区给的更多？", money) == "比较：乙区（3000元）多于甲区（两千元）。"
    assert comparison("哪个区给的补贴分别是多少？", money) is None  # no comparison asked
    apples = [("甲区", _quotes("每月补贴两千元")), ("乙区", _quotes("名额为30人"))]
    assert comparison("哪个更多？", apples) is None  # 元 against 人: not comparable
    ranges = [("甲区", _quotes("处1万元以上5万元以下罚款")), ("乙区", _quotes("处3万元罚款"))]
    assert comparison("哪个罚得更多？", ranges) is None  # a range is no single figure
    same = [("甲区", _quotes("补贴2000元")), ("乙区", _quotes("补贴两千元"))]
    assert comparison("哪个更高？", same) == "比较：甲区与乙区相同（2000元）。"


def test_a_part_the_documents_lack_is_refused_by_name_the_other_answered():
    q = "天津和重庆的人才条例哪一部施行得更早？"
    parts = split_parts(q)
    tianjin = passage(
        "第六十条 本条例自2021年5月1日起施行。",
        parts[0].question,
        "tj:60",
        title="天津市人才发展条例",
        label="第六十条",
    )
    results = [PartResult(parts[0], [tianjin]), PartResult(parts[1], [], "资料中没有关于重庆的内容。")]
    events = list(parts_events(q, results, 0.3))
    a = final_answer(events)
    assert a is not None
    assert not a.no_answer
    lines = a.text.splitlines()
    assert lines[0] == "天津：据《天津市人才发展条例》第六十条：本条例自2021年5月1日起施行。[1]"
    assert lines[1] == "重庆：资料中没有关于重庆的内容。"
    assert len(lines) == 2  # one answered part: nothing to compare
    assert [p["label"] for p in a.parts] == ["天津", "重庆"]
    assert a.parts[1]["n"] is None
    nobody = final_answer(
        parts_events(q, [PartResult(p, [], f"资料中没有关于{p.label}的内容。") for p in parts], 0.3)
    )
    assert nobody is not None
    assert nobody.no_answer
    assert "天津" in nobody.text
    assert "重庆" in nobody.text


def test_both_parts_answered_from_their_own_documents_with_the_comparison():
    q = "天津和重庆的人才条例哪一部施行得更早？"
    parts = split_parts(q)
    tj = passage(
        "第六十条 本条例自2021年5月1日起施行。",
        parts[0].question,
        "tj:60",
        title="天津市人才发展条例",
        label="第六十条",
    )
    cq = passage(
        "第五十条 本条例自2019年10月1日起施行。",
        parts[1].question,
        "cq:50",
        title="重庆市人才发展条例",
        label="第五十条",
    )
    a = final_answer(parts_events(q, [PartResult(parts[0], [tj]), PartResult(parts[1], [cq])], 0.3))
    assert a is not None
    lines = a.text.splitlines()
    assert lines[0].startswith("天津：据《天津市人才发展条例》")
    assert lines[1].startswith("重庆：据《重庆市人才发展条例》")
    assert lines[1].endswith("[2]")
    assert lines[2] == "比较：重庆（2019年10月1日）早于天津（2021年5月1日）。"
    assert unsupported(lines[2], [c.text for c in a.citations]) == []  # only the quoted figures
    assert [c.file for c in a.citations] == ["a.md", "a.md"]
    assert [c.id for c in a.citations] == ["tj:60", "cq:50"]


# ------------------------------------------------------------------------------------------------- web UI
def _cite(n: int) -> Citation:
    return Citation(n=n, title="某市人才发展办法", source="", date="", path="", text="x", score=1.0)


def test_the_bubble_shows_the_figure_in_bold_lists_as_lists_and_parts_as_a_table():
    a = Answer(
        "天津：据《甲》第六条：补贴每人五万元[1]\n据《乙》第九条：应当提交下列材料：[2]\n（一）申请表；[2]\n"
        "（二）身份证明。[2]\n重庆：资料中没有关于重庆的内容。",
        False,
        [_cite(1), _cite(2)],
        highlights=["五万元"],
        parts=[
            {"label": "天津", "answer": "补贴每人五万元", "n": 1},
            {"label": "重庆", "answer": "资料中没有关于重庆的内容。", "n": None},
        ],
    )
    md = answer_markdown(a, 2)
    html = MarkdownIt("commonmark").enable("table").render(md)
    assert "<strong>五万元</strong>" in html
    assert re.search(r"<ul>\s*<li>（一）申请表；<a href=\"#cite-2-2\">\[2\]</a></li>\s*<li>（二）", html)
    assert "<table>" in html
    assert re.search(
        r"<td>天津</td>\s*<td>补贴每人五万元</td>\s*<td><a href=\"#cite-2-1\">\[1\]</a></td>", html
    )
    assert redisplay(md) == md  # the history a client sends back shows the same


def test_a_one_part_answer_has_no_table():
    md = answer_markdown(Answer("据《甲》：补贴5万元[1]", False, [_cite(1)], highlights=["5万元"]), 1)
    assert "|" not in md
    assert "**5万元**" in md


# --------------------------------------------------------------------------------- the cases, end to end
def _article(file: str, label: str) -> str:
    text = (CORPUS / file).read_text(encoding="utf-8")
    start = text.index(label + " ")
    nxt = re.search(r"\n第[一二三四五六七八九十百]+条 ", text[start + 1 :])
    return text[start : start + 1 + nxt.start()] if nxt else text[start:]


def _items(article: str) -> list[str]:
    return [m.group(0).strip() for m in re.finditer(r"（[一二三四五六七八九十]+）[^；。\n]+[；。]", article)]


def test_the_staff_figure_leads_instead_of_the_whole_article(corpus_bot):
    a = corpus_bot.ask("北京设立人才市场中介服务机构，专职工作人员至少要几个人？")
    assert not a.no_answer
    article = _article("beijing-rencai-shichang-guanli-tiaoli.md", "第六条")
    first = MARKER.sub("", SOURCE.sub("", a.text.splitlines()[0]))
    assert "专职工作人员" in first
    assert re.search(r"[五5]人", first)
    assert len(first) < len(article) / 4
    assert _items(article)[-1] not in a.text  # not the whole of 第六条


@pytest.mark.parametrize(
    ("question", "file", "label"),
    [
        ("北京招聘单位不得聘用哪些人员？", "beijing-rencai-shichang-guanli-tiaoli.md", "第二十条"),
        ("山东对青年人才有哪些扶持措施？", "shandong-rencai-fazhan-cujin-tiaoli.md", "第十九条"),
    ],
)
def test_a_list_over_several_chunks_is_answered_whole(corpus_bot, question, file, label):
    items = _items(_article(file, label))
    assert len(items) >= 5
    a = corpus_bot.ask(question)
    lines = [MARKER.sub("", x) for x in a.text.splitlines()]
    for item in items:
        assert item in lines, item  # each item on a line of its own, cited
    assert len({c.id for c in a.citations if c.label == label}) >= 2  # from more than one chunk


def test_two_regulations_each_answer_their_own_part(corpus_bot):
    a = corpus_bot.ask("河南人才流动条例和山东人才发展促进条例分别自何时起施行？")
    assert not a.no_answer
    lines = a.text.splitlines()
    for prefix, file in (
        ("河南：", "henan-rencai-liudong-tiaoli.md"),
        ("山东：", "shandong-rencai-fazhan-cujin-tiaoli.md"),
    ):
        effective = re.search(
            r"本条例自(\d{4}年\d{1,2}月\d{1,2}日)起施行", (CORPUS / file).read_text(encoding="utf-8")
        )
        assert effective
        line = next(x for x in lines if x.startswith(prefix))
        assert effective.group(1) in line
        n = int(MARKER.findall(line)[0])
        assert a.citations[n - 1].file == file


def test_the_company_follow_up_is_answered_with_the_company(corpus_bot):
    first = corpus_bot.ask("文水开发区给哪家企业兑现了人才奖励配套资金？")
    follow = corpus_bot.ask("它是哪家企业？", history=[("user", first.question), ("assistant", first.text)])
    for a in (first, follow):
        assert not a.no_answer
        name = MARKER.sub("", SOURCE.sub("", a.text.splitlines()[0]))
        assert name.endswith("公司")
        assert len(name) <= 15
        assert name in a.citations[0].text
        assert name in a.highlights
