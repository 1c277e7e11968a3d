"""The Python API: TalentBot(...).ask/stream -> Answer with typed Citations, as documented in issue 3."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

import talentbot
from fixtures.helpers import corpus_files, first_row
from talentbot import Answer, AnswerEvent, Citation, EmptyStoreError, Filters, Search, TalentBot, TextEvent


@pytest.fixture(scope="module")
def bot(corpus_store) -> TalentBot:
    return TalentBot(store=corpus_store, k=3)


def test_public_names_are_exported():
    for name in (
        "TalentBot",
        "Answer",
        "Citation",
        "TextEvent",
        "AnswerEvent",
        "Filters",
        "Settings",
        "InputError",
        "EmptyStoreError",
        "TalentBotError",
    ):
        assert name in talentbot.__all__
        assert getattr(talentbot, name)


def test_citation_has_the_documented_fields():
    names = [f.name for f in dataclasses.fields(Citation)]
    assert names[:7] == ["n", "title", "source", "date", "path", "text", "score"]


def test_ask_returns_an_answer_with_citations(bot):
    row = first_row("number")
    answer = bot.ask(row["q"])
    assert isinstance(answer, Answer)
    assert isinstance(answer.text, str)
    assert answer.no_answer is False
    assert all(e in answer.text for e in row["a"])
    assert answer.citations
    assert all(isinstance(c, Citation) for c in answer.citations)
    c = answer.citations[0]
    assert isinstance(c.n, int)
    assert c.n == 1
    assert isinstance(c.score, float)
    assert Path(c.path).name in row["doc"]
    assert c.title
    assert c.source
    assert c.date
    assert c.text
    assert all(e in c.text for e in row["a"])
    d = answer.as_dict()
    assert {"question", "answer", "no_answer", "citations"} <= set(d)
    assert d["citations"][0]["n"] == 1
    assert d["answer"] == answer.text
    json.dumps(d, ensure_ascii=False)  # serialisable


def test_keyword_overrides_reach_the_settings(bot):
    assert bot.settings.k == 3
    trace = Search()
    bot.ask(first_row("fact")["q"], trace=trace)
    assert len(trace.passages) == 3
    bot.ask(first_row("fact")["q"], k=1, trace=trace)
    assert len(trace.passages) == 1


def test_ask_with_filters_and_history(bot):
    follow = first_row("followup")
    answer = bot.ask(
        follow["q"], history=[("user", h) for h in follow["history"]], filters=Filters(region="山西")
    )
    assert not answer.no_answer
    assert all(e in answer.text for e in follow["a"])
    assert {Path(c.path).name for c in answer.citations} <= set(follow["doc"])


def test_stream_yields_text_events_then_the_answer(bot):
    events = list(bot.stream(first_row("list")["q"]))
    assert [type(e) for e in events[:-1]] == [TextEvent] * (len(events) - 1)
    assert len(events) >= 2
    assert isinstance(events[-1], AnswerEvent)
    assert isinstance(events[-1].answer, Answer)


def test_articles_lists_the_corpus(bot):
    articles = bot.articles()
    titles = [a.title for a in articles]
    assert {Path(a.path).name for a in articles} == {
        p.name for p in corpus_files()
    }  # one per file of corpus/
    assert len(titles) == len(corpus_files())
    assert titles == sorted(titles)


def test_empty_store_raises_a_clear_error(tmp_path):
    with pytest.raises(EmptyStoreError, match="ingest"):
        TalentBot(store=tmp_path / "empty").ask("人才公寓有哪些支持方式？")
