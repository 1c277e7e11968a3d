"""The LCEL chain: a Runnable that streams text events then the answer, and composes (invoke gives the
AnswerEvent); condensing: one history normaliser, and follow-ups told from standalone questions by a general
rule; follow-ups retrieve like full questions."""

from __future__ import annotations

import pytest
from langchain_core.runnables import Runnable, RunnableLambda

from fixtures.helpers import eval_rows, row_for
from talentbot import AnswerEvent, Search, TalentBot, TextEvent
from talentbot.answer import Answer
from talentbot.condense import condense_rule_based, is_follow_up, normalize_history

FULL = "文水经济开发区2023年为盛达威公司兑现了多少人才奖励配套资金？"  # written for these tests
FOLLOW_UPS = ["它是哪家企业？", "它给了多少奖励？"]


@pytest.fixture(scope="module")
def bot(corpus_store) -> TalentBot:
    return TalentBot(store=corpus_store)


def _inputs(question: str, history=None, filters=None, k=None, trace=None) -> dict:
    return {"question": question, "history": history or [], "filters": filters, "k": k, "trace": trace}


def _check_events(events: list) -> object:
    """TextEvents first, exactly one AnswerEvent, last; the text pieces add up to the answer's text."""
    assert len(events) >= 2
    assert isinstance(events[-1], AnswerEvent)
    assert all(isinstance(e, TextEvent) for e in events[:-1])
    answer = events[-1].answer
    assert "".join(e.text for e in events[:-1]) == answer.text
    return answer


def test_chain_is_a_runnable_that_streams_events(bot):
    assert isinstance(bot.chain, Runnable)
    row = eval_rows("qa_regulations.jsonl")[0]
    answer = _check_events(list(bot.chain.stream(_inputs(row["q"]))))
    assert not answer.no_answer
    assert all(e in answer.text for e in row["a"])
    assert answer.citations
    assert answer.citations[0].file in row["doc"]


def test_chain_streams_the_no_answer_too(bot):
    answer = _check_events(list(bot.chain.stream(_inputs("火星移民的签证费是多少？"))))
    assert answer.no_answer
    assert not answer.citations


def test_ask_is_the_last_event_of_stream(bot):
    q = row_for("垣曲经济技术开发区的三大产业基地有哪些")["q"]
    streamed = _check_events(list(bot.stream(q)))
    asked = bot.ask(q)
    assert asked.text == streamed.text
    assert asked.no_answer == streamed.no_answer
    assert [(c.n, c.id) for c in asked.citations] == [(c.n, c.id) for c in streamed.citations]
    assert asked.question == q


def test_chain_passes_k_and_filters(bot):
    from talentbot import Filters

    trace = Search()
    events = list(bot.chain.stream(_inputs("人才发展促进", filters=Filters(region="河南"), k=2, trace=trace)))
    answer = _check_events(events)
    assert len(trace.passages) == 2
    manifest = bot.retriever.manifest
    assert answer.citations
    assert all("河南" in manifest[c.id.split(":")[0]].region for c in answer.citations)


def _top(bot: TalentBot, question: str, history=None) -> str:
    trace = Search()
    bot.ask(question, history=history, trace=trace)
    return trace.passages[0].id


@pytest.mark.parametrize("follow_up", FOLLOW_UPS)
def test_follow_up_retrieves_like_the_full_question(bot, follow_up):
    full_top = _top(bot, FULL)
    assert _top(bot, follow_up) != full_top, "without history the follow-up alone must not find it"
    assert _top(bot, follow_up, history=[("user", FULL)]) == full_top
    assert _top(bot, follow_up, history=[("user", FULL), ("assistant", bot.ask(FULL).text)]) == full_top


@pytest.mark.parametrize(
    "history",
    [
        [{"role": "user", "content": FULL}, {"role": "assistant", "content": "40万元。"}],
        [{"role": "user", "content": [{"type": "text", "text": FULL}]}],  # gradio 6 content blocks
    ],
    ids=["messages", "content-blocks"],
)
def test_follow_up_with_gradio_message_history(bot, history):
    full_top = _top(bot, FULL)
    assert _top(bot, FOLLOW_UPS[0], history=history) == full_top
    trace = Search()
    events = list(bot.chain.stream(_inputs(FOLLOW_UPS[1], history=history, trace=trace)))
    _check_events(events)
    assert trace.passages[0].id == full_top


def test_standalone_question_ignores_unrelated_history(bot):
    q = row_for("垣曲经济技术开发区的三大产业基地有哪些")["q"]
    assert _top(bot, q, history=[("user", FULL)]) == _top(bot, q)


def test_chain_invoke_returns_the_answer_event_and_composes(bot):
    q = row_for("垣曲经济技术开发区的三大产业基地有哪些")["q"]
    event = bot.chain.invoke(_inputs(q))
    assert isinstance(event, AnswerEvent)
    assert event.answer.text == bot.ask(q).text
    assert (bot.chain | RunnableLambda(lambda ev: ev.answer.no_answer)).invoke(_inputs(q)) is False


def test_events_add_up_like_langchain_chunks():
    final = AnswerEvent(Answer("ab", no_answer=False))
    assert TextEvent("a") + TextEvent("b") == TextEvent("ab")
    assert TextEvent("a") + final is final
    assert final + TextEvent("c") is final


# ------------------------------------------------------------------------------------------- condensing
# written for this test: questions that point back, and standalone ones that merely contain 其/这/那/该
FOLLOWING = [
    "它的申报截止日期是哪天？",
    "那硕士呢？",
    "该市对博士后有什么资助？",
    "申请这些补贴要交哪些材料？",
    "其申请条件是什么？",
    "如果是留学回国人员呢？",
    "我想知道，这个项目的资助额度是多少？",
    "What about Shanghai?",
    "How long does it last?",
]
STANDALONE = [
    "其他城市有哪些人才政策？",
    "其他城市有哪些人才政策呢？",
    "在其他省份工作的博士能申请安家补贴吗？",
    "极其紧缺的专业人才可以获得哪些支持？",
    "应该如何申请人才公寓？",
    "博士毕业生在其它城市就业也能领取补贴吗？",
    "Is there a housing subsidy for PhD graduates in Shanghai?",
]


@pytest.mark.parametrize("question", FOLLOWING)
def test_follow_ups_are_detected(question):
    assert is_follow_up(question)


@pytest.mark.parametrize("question", STANDALONE)
def test_standalone_questions_are_not_follow_ups(question):
    assert not is_follow_up(question)
    history = [("user", "《某省人才发展促进条例》自何时起施行？")]
    assert condense_rule_based(question, history).standalone == question


def test_one_history_normaliser_for_every_shape():
    turns = [("user", "问一"), ("assistant", "答一")]
    shapes = [
        turns,
        [{"role": r, "content": t} for r, t in turns],
        [{"role": r, "content": [{"type": "text", "text": t}]} for r, t in turns],
    ]
    assert all(normalize_history(h) == turns for h in shapes)
    assert normalize_history(None) == []
    assert normalize_history([("user", None)]) == [("user", "")]
    follow = condense_rule_based("那硕士呢？", shapes[1])
    assert follow.standalone == "问一 那硕士呢？"
