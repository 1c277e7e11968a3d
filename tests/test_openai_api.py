"""The program endpoints of a real `serve` on loopback (issue 13), driven by the real clients: the `openai` SDK
(streamed and not), LangChain's ChatOpenAI, the `mcp` SDK over Streamable HTTP, and Dify-shaped requests
(httpx: Dify has no client library). One server for the module (conftest's ``server``: default settings)."""

from __future__ import annotations

import re
from pathlib import Path

import anyio
import httpx
import openai
import pytest

from fixtures.helpers import first_row
from talentbot.doc_page import article_html

NUMBER = first_row("number")
REFUSED = first_row("unanswerable")
MB = 2**20


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "v1", api_key="unused-on-loopback", max_retries=0)


def _figure_and_sources(text: str, row: dict) -> None:
    assert all(e in text for e in row["a"]), text
    assert "[1]" in text
    assert "\n\n参考资料\n[1] 《" in text


def test_models_lists_talentbot(client):
    assert [m.id for m in client.models.list()] == ["talentbot"]


def test_chat_completion_has_the_figure_citations_and_typed_answer(client, server):
    done = client.chat.completions.create(
        model="talentbot", messages=[{"role": "user", "content": NUMBER["q"]}]
    )
    message = done.choices[0].message
    _figure_and_sources(message.content, NUMBER)
    assert done.choices[0].finish_reason == "stop"
    typed = done.model_extra["talentbot"]
    assert typed["no_answer"] is False
    assert typed["answer"] in message.content
    first = typed["citations"][0]
    assert first["n"] == 1
    assert first["file"] in NUMBER["doc"]
    assert first["title"]
    assert first["date"]
    assert first["quote"]
    assert all(e in first["text"] for e in NUMBER["a"])
    assert "path" not in first  # no server paths go out
    notes = message.annotations
    assert [a.type for a in notes] == ["url_citation"] * len(typed["citations"])
    cite = notes[0].url_citation
    assert cite.url == first["url"]
    assert cite.url.startswith(server.url + "doc/")
    assert message.content[cite.start_index : cite.end_index] == "[1]"
    assert first["title"] in cite.title
    page = httpx.get(cite.url)
    assert page.status_code == 200
    marked = re.search(r"<mark id='cited'>(.*?)</mark>", page.text, re.S)
    assert marked
    assert all(e in marked.group(1) for e in NUMBER["a"])
    assert page.headers["content-security-policy"].startswith("default-src 'none'")


def test_streamed_completion_adds_up_to_the_same_answer(client):
    stream = client.chat.completions.create(
        model="talentbot", stream=True, messages=[{"role": "user", "content": NUMBER["q"]}]
    )
    text, annotations, typed, finish = "", [], None, None
    for chunk in stream:
        delta = chunk.choices[0].delta
        extra = delta.model_extra or {}
        if extra.get("annotations"):
            assert delta.content is None  # the citations come in a delta of their own
            annotations += extra["annotations"]
        text += delta.content or ""
        typed = (chunk.model_extra or {}).get("talentbot", typed)
        finish = chunk.choices[0].finish_reason or finish
    _figure_and_sources(text, NUMBER)
    assert finish == "stop"
    assert typed is not None
    assert typed["no_answer"] is False
    assert len(annotations) == len(typed["citations"]) >= 1
    span = annotations[0]["url_citation"]
    assert text[span["start_index"] : span["end_index"]] == "[1]"


def test_history_and_filters_come_from_the_request(client):
    follow = first_row("followup")
    history = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": h} for i, h in enumerate(follow["history"])
    ]
    done = client.chat.completions.create(
        model="talentbot",
        messages=[*history, {"role": "user", "content": follow["q"]}],
        extra_body={"region": "山西"},
    )
    assert all(e in done.choices[0].message.content for e in follow["a"])
    assert {c["file"] for c in done.model_extra["talentbot"]["citations"]} <= set(follow["doc"])
    elsewhere = client.chat.completions.create(
        model="talentbot", messages=[{"role": "user", "content": NUMBER["q"]}], extra_body={"region": "河南"}
    )
    assert not {c["file"] for c in elsewhere.model_extra["talentbot"]["citations"]} & set(NUMBER["doc"])


def test_a_refusal_streams_as_plain_text(client):
    stream = client.chat.completions.create(
        model="talentbot", stream=True, messages=[{"role": "user", "content": REFUSED["q"]}]
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    typed = next(c.model_extra["talentbot"] for c in chunks if (c.model_extra or {}).get("talentbot"))
    assert typed["no_answer"] is True
    assert typed["citations"] == []
    assert text.strip() == typed["answer"].strip()
    assert "参考资料" not in text
    assert not any((c.choices[0].delta.model_extra or {}).get("annotations") for c in chunks)


def test_langchain_chat_openai(server):
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(
        base_url=server.url + "v1", api_key="unused-on-loopback", model="talentbot", max_retries=0
    )
    reply = llm.invoke(NUMBER["q"])
    _figure_and_sources(reply.content, NUMBER)
    streamed = "".join(str(chunk.content) for chunk in llm.stream(NUMBER["q"]))
    _figure_and_sources(streamed, NUMBER)


def test_bad_requests_get_openai_errors(client):
    with pytest.raises(openai.BadRequestError) as empty:
        client.chat.completions.create(model="talentbot", messages=[])
    assert empty.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.NotFoundError, match="talentbot"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": NUMBER["q"]}])
    with pytest.raises(openai.BadRequestError, match="characters"):  # the question length cap
        client.chat.completions.create(
            model="talentbot", messages=[{"role": "user", "content": "人才" * 1000}]
        )
    with pytest.raises(openai.BadRequestError, match="text"):
        client.chat.completions.create(
            model="talentbot",
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}],
                }
            ],
        )


def test_a_1mb_body_is_refused_everywhere(client, server):
    with pytest.raises(openai.APIStatusError) as big:
        client.chat.completions.create(model="talentbot", messages=[{"role": "user", "content": "人" * MB}])
    assert big.value.status_code == 413
    dify = httpx.post(
        server.url + "retrieval",
        json={
            "knowledge_id": "talentbot",
            "query": "人" * MB,
            "retrieval_setting": {"top_k": 2, "score_threshold": 0},
        },
    )
    assert dify.status_code == 413
    assert set(dify.json()) == {"error_code", "error_msg"}
    mcp = httpx.post(
        server.url + "mcp",
        content=b"{" + b" " * MB + b"}",
        headers={"content-type": "application/json", "accept": "application/json, text/event-stream"},
    )
    assert mcp.status_code == 413


def test_dify_retrieval(server):
    body = {
        "knowledge_id": "talentbot",
        "query": NUMBER["q"],
        "retrieval_setting": {"top_k": 3, "score_threshold": 0.0},
    }
    got = httpx.post(
        server.url + "retrieval", json=body, headers={"Authorization": "Bearer anything-on-loopback"}
    )
    assert got.status_code == 200
    records = got.json()["records"]
    assert 1 <= len(records) <= 3
    assert all(set(r) == {"content", "score", "title", "metadata"} and 0 <= r["score"] <= 1 for r in records)
    assert any(
        all(e in r["content"] for e in NUMBER["a"]) and r["metadata"]["file"] in NUMBER["doc"]
        for r in records
    )
    strict = httpx.post(
        server.url + "retrieval", json={**body, "retrieval_setting": {"top_k": 3, "score_threshold": 1}}
    )
    assert all(r["score"] == 1 for r in strict.json()["records"])
    unknown = httpx.post(server.url + "retrieval", json={**body, "knowledge_id": "other"})
    assert (unknown.status_code, unknown.json()["error_code"]) == (404, 2001)
    bad = httpx.post(server.url + "retrieval", json={"knowledge_id": "talentbot", "query": NUMBER["q"]})
    assert bad.status_code == 400
    assert "retrieval_setting" in bad.json()["error_msg"]


def test_mcp_over_streamable_http(server):
    from mcp.client import Client

    async def session() -> tuple:
        async with Client(server.url + "mcp") as mcp:
            tools = {t.name: t for t in (await mcp.list_tools()).tools}
            answer = await mcp.call_tool("ask", {"question": NUMBER["q"]})
            found = await mcp.call_tool("search_policies", {"query": NUMBER["q"], "k": 2, "region": "山西"})
            refused = await mcp.call_tool("ask", {"question": REFUSED["q"]})
            articles = await mcp.read_resource("talentbot://articles")
            return tools, answer, found, refused, articles

    tools, answer, found, refused, articles = anyio.run(session)
    assert {"ask", "search_policies"} <= set(tools)
    assert "citations" in tools["ask"].output_schema["properties"]
    assert not answer.is_error
    assert answer.structured_content["no_answer"] is False
    assert all(e in answer.structured_content["answer"] for e in NUMBER["a"])
    assert answer.structured_content["citations"][0]["url"].startswith(server.url + "doc/")
    assert "[1]" in answer.content[0].text
    assert "参考资料" in answer.content[0].text
    passages = found.structured_content["passages"]
    assert 1 <= len(passages) <= 2
    assert any(all(e in p["text"] for e in NUMBER["a"]) for p in passages)
    assert refused.structured_content["no_answer"] is True
    assert refused.structured_content["citations"] == []
    listed = articles.contents[0].text
    assert all(Path(d).name in listed for d in NUMBER["doc"])
    assert str(Path(server.bot.articles()[0].path).parent) not in listed  # file names only: no server paths


def test_doc_page_refuses_what_is_not_a_passage(server):
    for bad in (
        "..%2F..%2Fetc%2Fpasswd",
        "abc",
        "0123456789abcdef:0",
        "0123456789abcdef:999999",
        "%2Fetc%2Fpasswd",
        "0123456789ABCDEF:1",
    ):
        assert httpx.get(server.url + "doc/" + bad).status_code == 404, bad


def test_doc_page_escapes_the_article():
    page = article_html(
        "<b>t</b>", ["<i>src</i>"], ["<script>alert(1)</script>一。", "一。二<img src=x>。"], 1, 100
    )
    assert "<script>" not in page
    assert "<img" not in page
    assert "&lt;script&gt;" in page
    assert "<mark id='cited'>一。二&lt;img src=x&gt;。</mark>" in page  # the cited passage whole, marked
    assert page.count("一。") == 1  # the overlap is not repeated before it
