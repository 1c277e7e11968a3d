"""The program endpoints beyond loopback (issue 13, item 5) and `talentbot mcp` over stdio.

A real `serve` bound to every interface with the chat password and an API key, reached through 127.0.0.1 by
the real clients: without the key (or with another) nothing answers; with it, everything does. A bind beyond
loopback without a key is refused before the port is opened.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import httpx
import openai
import pytest

from fixtures.helpers import first_row, free_port
from talentbot import ConfigError, TalentBot
from talentbot.web import launch

KEY = "k3y-for-the-test-" + "x" * 16
NUMBER = first_row("number")


@pytest.fixture(scope="module")
def remote(corpus_store, corpus_dir, model_cache):
    """A server bound to 0.0.0.0 with auth and an API key; ``remote.base`` is its loopback address."""
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith("TALENTBOT_")]:
            mp.delenv(key)
        bot = TalentBot(
            store=corpus_store,
            corpus=corpus_dir,
            host="0.0.0.0",
            port=free_port(),
            model_cache=model_cache,
            auth_user="admin",
            auth_password="pw-for-the-test",
            api_key=KEY,
        )
        srv = launch(bot, block=False)
    srv.base = srv.url.replace("[::1]", "127.0.0.1")
    yield srv
    srv.close()


def test_a_bind_beyond_loopback_needs_an_api_key(corpus_store):
    port = free_port()
    bot = TalentBot(store=corpus_store, host="0.0.0.0", port=port, auth_user="admin", auth_password="pw")
    with pytest.raises(ConfigError, match="TALENTBOT_API_KEY"):
        launch(bot, block=False)
    with httpx.Client() as c, pytest.raises(httpx.ConnectError):
        c.get(f"http://127.0.0.1:{port}/v1/models")


def test_openai_clients_need_the_key(remote):
    client = openai.OpenAI(base_url=remote.base + "v1", api_key="not-the-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as refused:
        client.chat.completions.create(model="talentbot", messages=[{"role": "user", "content": NUMBER["q"]}])
    assert refused.value.body["type"] == "authentication_error"
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
    assert httpx.get(remote.base + "v1/models").status_code == 401  # no key at all
    client = openai.OpenAI(base_url=remote.base + "v1", api_key=KEY, max_retries=0)
    done = client.chat.completions.create(
        model="talentbot", messages=[{"role": "user", "content": NUMBER["q"]}]
    )
    assert all(e in done.choices[0].message.content for e in NUMBER["a"])
    link = done.choices[0].message.annotations[0].url_citation.url
    assert "?t=" in link  # signed: the page opens in a browser, without the key
    assert httpx.get(link).status_code == 200
    unsigned = link.split("?")[0]
    assert httpx.get(unsigned).status_code == 404
    assert httpx.get(unsigned, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200


def test_a_page_on_another_origin_needs_the_key(remote):
    body = {"model": "talentbot", "messages": [{"role": "user", "content": NUMBER["q"]}]}
    evil = {"Origin": "http://evil.example"}
    assert httpx.post(remote.base + "v1/chat/completions", json=body, headers=evil).status_code == 401
    ok = httpx.post(
        remote.base + "v1/chat/completions", json=body, headers={**evil, "Authorization": f"Bearer {KEY}"}
    )
    assert ok.status_code == 200


def test_dify_needs_the_key(remote):
    body = {
        "knowledge_id": "talentbot",
        "query": NUMBER["q"],
        "retrieval_setting": {"top_k": 2, "score_threshold": 0},
    }
    url = remote.base + "retrieval"
    missing = httpx.post(url, json=body)
    assert missing.status_code == 401
    assert missing.json()["error_code"] == 1001
    wrong = httpx.post(url, json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.json()["error_code"] == 1002
    ok = httpx.post(url, json=body, headers={"Authorization": f"Bearer {KEY}"})
    assert ok.status_code == 200
    assert any(all(e in r["content"] for e in NUMBER["a"]) for r in ok.json()["records"])


def test_mcp_over_http_needs_the_key(remote, caplog):
    from mcp.client import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client
    from mcp.shared.exceptions import MCPError

    async def ask(key: str | None) -> object:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        transport = streamable_http_client(
            remote.base + "mcp", http_client=create_mcp_http_client(headers=headers)
        )
        async with Client(transport) as mcp:
            return await mcp.call_tool("ask", {"question": NUMBER["q"]})

    answer = anyio.run(ask, KEY)
    assert all(e in answer.structured_content["answer"] for e in NUMBER["a"])
    for key in (None, "nope"):
        caplog.clear()
        with pytest.raises(
            ExceptionGroup
        ) as refused:  # the SDK reports the 401 as an MCPError in its task group
            anyio.run(ask, key)
        assert refused.group_contains(MCPError)
        assert any(
            "refused POST /mcp" in r.getMessage() and "API key" in r.getMessage() for r in caplog.records
        )


def test_mcp_over_stdio(corpus_store, model_cache):
    from mcp.client import Client
    from mcp.client.stdio import StdioServerParameters

    script = Path(sys.executable).with_name("talentbot")
    params = StdioServerParameters(
        command=str(script),
        args=["mcp", "--store", str(corpus_store)],
        env={"TALENTBOT_MODEL_CACHE": str(model_cache), "HF_HUB_OFFLINE": "1"},
    )

    async def session() -> tuple:
        async with Client(params, read_timeout_seconds=120) as mcp:
            tools = [t.name for t in (await mcp.list_tools()).tools]
            answer = await mcp.call_tool("ask", {"question": NUMBER["q"]})
            bad = await mcp.call_tool("ask", {"question": "   "})
            articles = await mcp.read_resource("talentbot://articles")
            return tools, answer, bad, articles

    tools, answer, bad, articles = anyio.run(session)
    assert sorted(tools) == ["ask", "search_policies"]
    assert answer.structured_content["no_answer"] is False
    assert all(e in answer.structured_content["answer"] for e in NUMBER["a"])
    cited = answer.structured_content["citations"][0]
    assert cited["file"] in NUMBER["doc"]
    assert cited["quote"]
    assert cited["url"] is None  # no server address over stdio
    assert "[1]" in answer.content[0].text
    assert bad.is_error
    assert "empty" in bad.content[0].text
    assert all(d in articles.contents[0].text for d in NUMBER["doc"])
