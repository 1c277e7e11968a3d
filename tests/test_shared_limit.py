"""One concurrency limit for every way in (issue 13, item 5): the chat (Gradio's queue) and the program
endpoints (OpenAI API, MCP, Dify) take their slots from the same gate of TALENTBOT_CONCURRENCY answers, with
TALENTBOT_MAX_QUEUE waiting.

A real `serve` in LLM mode whose model (the fake OpenAI server, the suite's only stand-in) holds every
answer request until the test lets it go, so the answers in progress are the slots held: while the chat holds
them all, an API question waits and the next is refused; while the API holds them, the chat is refused.
"""

from __future__ import annotations

import os
import threading
import time

import openai
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from fake_openai import FakeOpenAI, Request
from fixtures.helpers import first_row, free_port
from talentbot import TalentBot
from talentbot.web import launch

pytestmark = pytest.mark.slow

SLOTS = 2  # TALENTBOT_CONCURRENCY (its least value)


def _answers(llm: FakeOpenAI) -> int:
    return sum(r.is_answer for r in llm.requests)


def _wait_for(cond, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def held(corpus_store, corpus_dir, model_cache):
    """(server, fake LLM, release event): answer requests to the LLM block until the event is set."""
    release = threading.Event()

    def responder(req: Request) -> str:
        if req.is_answer:
            release.wait(120)
        return "资料中没有相关规定[1]。"

    with FakeOpenAI(responder) as llm, pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith("TALENTBOT_")]:
            mp.delenv(key)
        bot = TalentBot(
            store=corpus_store,
            corpus=corpus_dir,
            port=free_port(),
            model_cache=model_cache,
            llm_base_url=llm.base_url,
            llm_model="fake",
            concurrency=SLOTS,
            max_queue=1,
        )
        srv = launch(bot, block=False)
        try:
            yield srv, llm, release
        finally:
            release.set()
            srv.close()


def _api(srv) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.url + "v1", api_key="unused", max_retries=0, timeout=180)


def _ask_api(client: openai.OpenAI, question: str, out: list) -> None:
    try:
        out.append(
            client.chat.completions.create(
                model="talentbot", messages=[{"role": "user", "content": question}]
            )
        )
    except openai.APIError as e:
        out.append(e)


def test_the_chat_holds_slots_the_api_waits_for(held):
    srv, llm, release = held
    question = first_row("number")["q"]
    chat = Client(srv.url, verbose=False)
    jobs = [chat.submit(question, [], None, None, None, None, api_name="/chat") for _ in range(SLOTS)]
    _wait_for(lambda: _answers(llm) == SLOTS, "the chat's answers to reach the model")

    waiting: list = []
    api = _api(srv)
    t = threading.Thread(target=_ask_api, args=(api, question, waiting))
    t.start()
    time.sleep(2)  # long enough for it to reach the model if it had a slot of its own
    assert t.is_alive(), "the API answered while the chat held every slot"
    assert not waiting
    assert _answers(llm) == SLOTS, "an API question reached the model beyond the shared limit"

    with pytest.raises(openai.RateLimitError, match="busy"):  # the one waiting place is taken
        api.chat.completions.create(model="talentbot", messages=[{"role": "user", "content": question}])

    release.set()
    t.join(120)
    assert not isinstance(waiting[0], Exception), waiting[0]
    assert waiting[0].choices[0].message.content
    for job in jobs:
        history = job.result(timeout=120)[0]
        assert history[-1]["content"], "the chat's answer is empty"
    assert _answers(llm) == SLOTS + 1


def test_the_api_holds_slots_the_chat_is_refused(held):
    srv, llm, release = held
    question = first_row("number")["q"]
    api = _api(srv)
    results: list = []
    threads = [threading.Thread(target=_ask_api, args=(api, question, results)) for _ in range(SLOTS + 1)]
    for t in threads[:SLOTS]:
        t.start()
    _wait_for(lambda: _answers(llm) == SLOTS, "the API's answers to reach the model")
    threads[SLOTS].start()
    time.sleep(1)  # the last one now waits in the queue's one place

    chat = Client(srv.url, verbose=False)
    with pytest.raises(AppError, match="busy"):
        chat.predict(question, [], None, None, None, None, api_name="/chat")
    assert _answers(llm) == SLOTS

    release.set()
    for t in threads:
        t.join(120)
    assert len(results) == SLOTS + 1
    assert not any(isinstance(r, Exception) for r in results), results
    history = chat.predict(question, [], None, None, None, None, api_name="/chat")[0]
    assert history[-1]["content"], "the chat did not answer once the slots were free"
