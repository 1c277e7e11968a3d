"""OpenAI-compatible chat API: ``GET /v1/models`` and ``POST /v1/chat/completions`` (streamed or not).

A thin adapter over :class:`TalentBot`: it parses the request, asks the bot, renders the answer. The answer
text keeps its [n] markers and ends with a 参考资料 list, so any chat client shows the sources; the same
citations go out as ``url_citation`` annotations (links to ``/doc/{id}``), and a ``talentbot`` field carries
the typed answer. The history comes from ``messages``; ``region``, ``source``, ``date_from``, ``date_to``
and ``k`` may come as extra body fields. Errors have OpenAI's shape ``{"error": {message, type, param, code}}``.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Literal

import fastapi  # the adapters are imported by the server only (web.py), never by `import talentbot`
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import Response

from .answer import Answer, AnswerEvent, TextEvent
from .api_shared import (
    BusyError,
    Gate,
    answer_json,
    api_key,
    citation_urls,
    marker_span,
    references,
    strip_references,
    thread_events,
)
from .errors import EmptyStoreError, InputError, LLMError, TalentBotError
from .retrieval import Filters

if TYPE_CHECKING:
    from .bot import TalentBot

logger = logging.getLogger(__name__)

MODEL = "talentbot"


class _Part(BaseModel):
    type: str
    text: str | None = None


class _Message(BaseModel):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[_Part] | None = None


class ChatRequest(BaseModel):
    """The fields of a chat completion request this server reads; others (temperature, tools...) are ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str = MODEL
    messages: list[_Message] = Field(min_length=1, max_length=1000)
    stream: bool = False
    region: str | None = Field(None, max_length=100)
    source: str | None = Field(None, max_length=100)
    date_from: str | None = Field(None, max_length=10)
    date_to: str | None = Field(None, max_length=10)
    k: int | None = Field(None, ge=1, le=50)


class ApiError(Exception):
    """An error to send in OpenAI's shape."""

    def __init__(
        self,
        status: int,
        message: str,
        kind: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.kind, self.code, self.param = status, kind, code, param

    def body(self) -> dict[str, Any]:
        return {"error": {"message": str(self), "type": self.kind, "param": self.param, "code": self.code}}


def openai_error(status: int, message: str, code: str | None = None) -> dict[str, Any]:
    """``{"error": ...}`` for a refusal (used by the request guard too)."""
    kind = {
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        429: "rate_limit_error",
    }.get(status, "invalid_request_error" if status < 500 else "server_error")
    return ApiError(status, message, kind, code).body()


def from_bot_error(e: TalentBotError) -> ApiError:
    if isinstance(e, InputError):
        return ApiError(400, str(e), code="invalid_question")
    if isinstance(e, BusyError):
        return ApiError(429, str(e), "rate_limit_error", "busy")
    if isinstance(e, EmptyStoreError):
        return ApiError(503, str(e), "server_error", "empty_store")
    if isinstance(e, LLMError):
        return ApiError(502, str(e), "server_error", "llm_error")
    return ApiError(500, str(e), "server_error")


def _text(m: _Message) -> str:
    if m.content is None or isinstance(m.content, str):
        return m.content or ""
    if any(p.type != "text" or p.text is None for p in m.content):
        raise ApiError(400, "only text content is accepted (no images, audio or files)", param="messages")
    return " ".join(p.text or "" for p in m.content)


def parse(
    body: bytes, max_turns: int, max_chars: int
) -> tuple[ChatRequest, str, list[tuple[str, str]], Filters]:
    """The request, its question (the last user message), the chat history before it, and the filters."""
    try:
        req = ChatRequest.model_validate_json(body)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(x) for x in err.get("loc", ()))
        raise ApiError(400, f"invalid request: {where}: {err['msg']}", param=where or None) from None
    if req.model != MODEL:
        raise ApiError(
            404,
            f"the model '{req.model[:100]}' does not exist; use '{MODEL}'",
            "invalid_request_error",
            "model_not_found",
            "model",
        )
    turns: list[tuple[str, str]] = [
        (m.role, _text(m)) for m in req.messages if m.role in ("user", "assistant")
    ]
    if not turns or turns[-1][0] != "user":
        raise ApiError(400, "the last message must be the user's question", param="messages")
    history = [
        (r, strip_references(t)[:max_chars] if r == "assistant" else t[:max_chars]) for r, t in turns[:-1]
    ][-2 * max_turns :]
    try:
        filters = Filters(
            region=req.region or None,
            source=req.source or None,
            date_from=req.date_from or None,
            date_to=req.date_to or None,
        )
    except InputError as e:
        raise ApiError(400, str(e), param="date_from") from None
    return req, turns[-1][1], history, filters


def _annotations(text: str, answer: Answer, urls: dict[int, str | None]) -> list[dict[str, Any]]:
    out = []
    for c in answer.citations:
        url = urls.get(c.n)
        if url:
            start, end = marker_span(text, c.n)
            title = f"{c.title} {c.label}".strip()
            out.append(
                {
                    "type": "url_citation",
                    "url_citation": {"url": url, "title": title, "start_index": start, "end_index": end},
                }
            )
    return out


def _chunk(cid: str, created: int, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
    data = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        **extra,
    }
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def openai_router(bot: TalentBot, gate: Gate) -> fastapi.APIRouter:
    """The ``/v1`` routes over ``bot``; answers are computed under ``gate``."""
    from fastapi.responses import JSONResponse, StreamingResponse

    router = fastapi.APIRouter()
    s = bot.settings
    key = api_key(s)

    @router.get("/v1/models", include_in_schema=False)
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "talentbot"}],
        }

    @router.post("/v1/chat/completions", include_in_schema=False)
    async def completions(request: fastapi.Request) -> Response:
        try:
            req, question, history, filters = parse(
                await request.body(), s.max_history_turns, s.max_message_chars
            )
            bot.check_question(question)  # a bad question is a 400 before anything streams
            base = s.public_url or str(request.base_url)
            if req.stream:
                return StreamingResponse(
                    await _stream(question, history, filters, req.k, base),
                    media_type="text/event-stream",
                    headers={"Cache-Control": "no-cache"},
                )
            answer = await gate.run(bot.ask, question, history, filters, req.k)
        except ApiError as e:
            return JSONResponse(e.body(), e.status)
        except TalentBotError as e:
            err = from_bot_error(e)
            return JSONResponse(err.body(), err.status)
        urls = citation_urls(answer, base, key)
        text = answer.text + references(answer, urls)
        message = {
            "role": "assistant",
            "content": text,
            "refusal": None,
            "annotations": _annotations(text, answer, urls),
        }
        return JSONResponse(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": MODEL,
                "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
                "talentbot": answer_json(answer, urls),
            }
        )

    async def _stream(
        question: str, history: list[tuple[str, str]], filters: Filters, k: int | None, base: str
    ) -> AsyncIterator[str]:
        """The SSE body; the first event is computed before the response starts, so that an empty store or a
        busy server is an HTTP error rather than a broken stream."""
        token = await gate.acquire()
        try:
            events = thread_events(bot.stream(question, history, filters, k))
            first = await anext(events)
        except BaseException:
            gate.release(token)
            raise
        cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

        async def body() -> AsyncIterator[str]:
            try:
                yield _chunk(cid, created, {"role": "assistant", "content": ""})
                streamed, answer = "", None
                ev = first
                while True:
                    if isinstance(ev, TextEvent) and ev.text:
                        streamed += ev.text
                        yield _chunk(cid, created, {"content": ev.text})
                    elif isinstance(ev, AnswerEvent):
                        answer = ev.answer
                        break
                    ev = await anext(events)
                urls = citation_urls(answer, base, key)
                tail = answer.text[len(streamed) :] if answer.text.startswith(streamed) else ""
                tail += references(answer, urls)
                if tail:
                    yield _chunk(cid, created, {"content": tail})
                notes = _annotations(streamed + tail, answer, urls)
                if notes:
                    yield _chunk(cid, created, {"annotations": notes})
                yield _chunk(cid, created, {}, "stop", talentbot=answer_json(answer, urls))
                yield "data: [DONE]\n\n"
            except (TalentBotError, StopAsyncIteration) as e:
                err = (
                    from_bot_error(e)
                    if isinstance(e, TalentBotError)
                    else ApiError(500, "the answer ended early")
                )
                logger.warning("chat completion stream failed: %s", err)
                yield f"data: {json.dumps(err.body(), ensure_ascii=False)}\n\n"
            finally:
                gate.release(token)

        return body()

    return router
