"""What the program-facing adapters (OpenAI-compatible API, MCP, Dify) share.

The typed answer as JSON, the 参考资料 list that ends an answer, links to the /doc page of a cited passage
(signed with the API key when one is set, so a link works in a browser without the key), the API key
check, the gate that keeps answers computed at once under ``TALENTBOT_CONCURRENCY``, and the warm-up a
server starts once it listens.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import TalentBotError

if TYPE_CHECKING:
    from .answer import Answer, Citation
    from .bot import TalentBot
    from .config import Settings

T = TypeVar("T")
logger = logging.getLogger(__name__)

REFERENCES = "参考资料"
PASSAGE_ID = re.compile(r"^[0-9a-f]{16}:\d{1,6}$")  # ingest: f"{article_key(path)}:{chunk.ordinal}"
_TRAILER = re.compile(rf"\n+{REFERENCES}\n(?:\[\d+\][^\n]*(?:\n|$))+\s*$")


class BusyError(TalentBotError):
    """Too many requests are waiting for an answer; the client should try again shortly."""


def api_key(settings: Settings) -> str | None:
    """The configured API key, or None when none is set."""
    key = settings.api_key.get_secret_value() if settings.api_key else ""
    return key or None


def bearer_ok(authorization: str | None, key: str | None) -> bool:
    """Whether an ``Authorization`` header carries ``key`` (always true when no key is set)."""
    if key is None:
        return True
    scheme, _, token = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), key.encode())


def doc_token(key: str, passage_id: str) -> str:
    """The signature a /doc link carries when an API key is set: it names one passage and proves nothing else."""
    return hmac.new(key.encode(), f"doc:{passage_id}".encode(), hashlib.sha256).hexdigest()[:32]


def doc_url(base: str | None, passage_id: str, key: str | None) -> str | None:
    """The link to the /doc page that shows ``passage_id`` in its article, or None without a base address."""
    if not base or not PASSAGE_ID.match(passage_id):
        return None
    url = f"{base.rstrip('/')}/doc/{passage_id}"  # matched above: hex digits, a colon, digits
    return (f"{url}?t={doc_token(key, passage_id)}" if key else url) + "#cited"


def citation_json(c: Citation, url: str | None = None) -> dict[str, Any]:
    """One citation as the API hands it out (no server paths)."""
    return {
        "n": c.n,
        "id": c.id,
        "title": c.title,
        "source": c.source,
        "date": c.date,
        "effective": c.effective,
        "label": c.label,
        "page": c.page,
        "file": c.file,
        "quote": c.quote,
        "text": c.text,
        "url": url,
    }


def answer_json(answer: Answer, urls: dict[int, str | None]) -> dict[str, Any]:
    """The full typed answer: text with [n] markers, ``no_answer``, citations with their links."""
    return {
        "answer": answer.text,
        "no_answer": answer.no_answer,
        "mode": answer.mode,
        "warnings": list(answer.warnings),
        "citations": [citation_json(c, urls.get(c.n)) for c in answer.citations],
    }


def citation_urls(answer: Answer, base: str | None, key: str | None) -> dict[int, str | None]:
    return {c.n: doc_url(base, c.id, key) for c in answer.citations}


def references(answer: Answer, urls: dict[int, str | None]) -> str:
    """'\\n\\n参考资料\\n[1] 《title》 label（source，date） url' for a cited answer; '' for a no-answer."""
    if answer.no_answer or not answer.citations:
        return ""
    lines = []
    for c in answer.citations:
        meta = "，".join(x for x in (c.source, c.date) if x)
        line = (
            f"[{c.n}] 《{c.title.strip('《》')}》"
            + (f" {c.label}" if c.label else "")
            + (f"（{meta}）" if meta else "")
        )
        lines.append(line + (f" {urls[c.n]}" if urls.get(c.n) else ""))
    return f"\n\n{REFERENCES}\n" + "\n".join(lines)


def strip_references(text: str) -> str:
    """An assistant message sent back as history, without the 参考资料 list this server appended to it."""
    return _TRAILER.sub("", text)


def marker_span(text: str, n: int) -> tuple[int, int]:
    """Where [n] first stands in ``text`` (its reference line when the answer text does not show it)."""
    i = text.find(f"[{n}]")
    return (i, i + len(f"[{n}]")) if i >= 0 else (0, 0)


def refusal_body(path: str, status: int, message: str, authorization: str | None) -> dict[str, Any]:
    """A refusal of the request guard in the error shape of the endpoint's clients (OpenAI's, Dify's)."""
    if path.startswith("/v1/"):
        from .api_openai import openai_error

        return openai_error(status, message)
    if path.startswith("/retrieval"):
        from .api_dify import dify_error

        return dify_error(status, message, authorization)
    return {"detail": message}


class Gate:
    """At most ``limit`` answers computed at once (the chat's ``TALENTBOT_CONCURRENCY``), at most ``queue``
    requests waiting (``TALENTBOT_MAX_QUEUE``); one more is refused with :class:`BusyError`. Slots are held on
    behalf of a token, so a streamed answer can release its slot from the task that sends the last chunk."""

    def __init__(self, limit: int, queue: int) -> None:
        import anyio

        self.limiter = anyio.CapacityLimiter(limit)
        self.queue = queue

    async def acquire(self) -> object:
        if self.limiter.statistics().tasks_waiting >= self.queue:
            raise BusyError("the server is busy answering other questions; try again in a moment")
        token = object()
        await self.limiter.acquire_on_behalf_of(token)
        return token

    def release(self, token: object) -> None:
        self.limiter.release_on_behalf_of(token)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """A slot held for the ``with`` block, taken from a worker thread of the server's event loop (where
        Gradio runs the chat's steps): the chat and the program endpoints share one limit. The slot goes
        back through the loop, so a block left from any thread (an abandoned stream closed by the garbage
        collector) returns it."""
        import asyncio

        import anyio.from_thread

        async def take() -> tuple[object, asyncio.AbstractEventLoop]:
            return await self.acquire(), asyncio.get_running_loop()

        token, loop = anyio.from_thread.run(take)
        try:
            yield
        finally:
            with contextlib.suppress(RuntimeError):  # a closed loop: the server and its gate are gone
                loop.call_soon_threadsafe(self.release, token)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on a worker thread, inside a slot."""
        import anyio

        token = await self.acquire()
        try:
            return await anyio.to_thread.run_sync(fn, *args)
        finally:
            self.release(token)


async def thread_events(events: Iterator[T]) -> AsyncIterator[T]:
    """The items of a (blocking) iterator, such as an answer stream, each produced on a worker thread."""
    import anyio

    done = object()
    while True:
        item = await anyio.to_thread.run_sync(next, events, done)
        if item is done:
            return
        yield item  # type: ignore[misc]


class WarmUp:
    """:meth:`TalentBot.warm_up` on a background thread, started at once (the server answers meanwhile), so
    the first question doesn't wait for what it loads. :meth:`stop` asks it to end early and waits for it: a
    server calls it when it shuts down, as a process that exits while the thread is inside ONNX Runtime or
    Chroma crashes (SIGABRT/SIGSEGV on Ctrl+C). A failure is logged; questions then load what they need."""

    def __init__(self, bot: TalentBot) -> None:
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(bot,), daemon=True, name="talentbot-warm-up")
        self.thread.start()

    def _run(self, bot: TalentBot) -> None:
        t0 = time.perf_counter()
        try:
            bot.warm_up(self._stop)
        except Exception as e:  # noqa: BLE001 - a warm-up never stops the server
            logger.warning("warm-up skipped (%s): the first question loads what it needs", e)
            return
        if not self._stop.is_set():
            logger.info("warmed up in %.1f s", time.perf_counter() - t0)

    def stop(self, timeout: float = 30.0) -> None:
        """End the warm-up at its next step and wait for it (at most ``timeout`` seconds)."""
        self._stop.set()
        self.thread.join(timeout)
