"""A real HTTP server on 127.0.0.1 that speaks the OpenAI chat-completions protocol (streaming and not).

The only stand-in of the test suite: it replaces the LLM endpoint, nothing else.

    with FakeOpenAI(lambda req: "答案[1]") as srv:
        bot = TalentBot(store=..., llm_base_url=srv.base_url, llm_model="fake")

``responder(request)`` gets a :class:`Request` and returns the reply text, or a :class:`Reply` for an
HTTP error, a delay or a non-streamed body where a stream was asked for. ``srv.requests`` holds
every request seen.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Request:
    """One POST the server received."""

    path: str
    headers: dict[str, str]
    body: dict

    @property
    def messages(self) -> list[dict]:
        return self.body.get("messages", [])

    def content(self, role: str) -> str:
        """The text of the messages with ``role``, joined."""
        return "\n".join(_text(m.get("content")) for m in self.messages if m.get("role") == role)

    @property
    def is_answer(self) -> bool:
        """An answer request (system prompt + fenced passages), not a condense request."""
        return any(m.get("role") == "system" for m in self.messages)

    def fences(self) -> tuple[str, str]:
        """The opening and closing fence lines: the lines of the user message the system prompt also names."""
        system = self.content("system")
        lines = [ln.strip() for ln in self.content("user").splitlines() if len(ln.strip()) >= 8]
        named = [ln for ln in lines if ln in system]
        assert len(named) >= 2, f"no fence lines found in the user message: {lines[:3]}"
        return named[0], named[-1]

    def fenced(self) -> tuple[str, str, str]:
        """(before the opening fence, between the fences, after the closing fence) of the user message."""
        user = self.content("user")
        open_, close = self.fences()
        i, j = user.index(open_), user.rindex(close)
        return user[:i], user[i + len(open_) : j], user[j + len(close) :]

    def passages(self) -> dict[int, str]:
        """The numbered passages between the fences: {n: header and text}."""
        _, inside, _ = self.fenced()
        parts = re.split(r"(?m)^\[(\d+)\] ", inside)
        return {int(parts[i]): parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}


def _text(content) -> str:
    if isinstance(content, list):
        return " ".join(c.get("text", "") for c in content if isinstance(c, dict))
    return str(content or "")


@dataclass
class Reply:
    """What to send back: ``text`` as usual, or an HTTP ``status`` with an error ``body``.

    ``delay`` seconds pass before anything is sent, ``chunk_delay`` seconds before each streamed piece
    (a slow model); ``plain_json`` answers a streaming request with an ordinary (non-streamed)
    completion, as some OpenAI-compatible servers do.
    """

    text: str = ""
    status: int = 200
    body: dict = field(default_factory=dict)
    delay: float = 0.0
    chunk_delay: float = 0.0
    plain_json: bool = False


Responder = Callable[[Request], "str | Reply"]


class FakeOpenAI:
    """``with FakeOpenAI(responder) as srv``: ``srv.base_url`` ends in /v1; ``srv.requests`` lists bodies."""

    def __init__(self, responder: Responder | str = "你好。", chunk_size: int = 3) -> None:
        self.responder = responder if callable(responder) else (lambda _req, r=responder: r)
        self.requests: list[Request] = []
        self.chunk_size = chunk_size
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:  # http.server's naming
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = json.loads(raw or b"{}")
                req = Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                outer.requests.append(req)
                if not self.path.endswith("/chat/completions"):
                    return self._send(404, {"error": {"message": "not found"}})
                reply = outer.responder(req)
                if isinstance(reply, str):
                    reply = Reply(text=reply)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.status != 200:
                    return self._send(reply.status, reply.body or {"error": {"message": "error"}})
                if body.get("stream") and not reply.plain_json:
                    return self._stream(body, reply.text, reply.chunk_delay)
                return self._send(
                    200,
                    {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model", "fake"),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": reply.text},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
                    },
                )

            def _send(self, status: int, obj: dict) -> None:
                data = json.dumps(obj, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, body: dict, text: str, chunk_delay: float = 0.0) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                base = {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": body.get("model", "fake"),
                }

                def send(choices: list, **extra) -> None:
                    obj = {**base, "choices": choices, **extra}
                    self.wfile.write(b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n")
                    self.wfile.flush()

                send([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
                n = outer.chunk_size
                for i in range(0, len(text), n):
                    time.sleep(chunk_delay)
                    send([{"index": 0, "delta": {"content": text[i : i + n]}, "finish_reason": None}])
                send([{"index": 0, "delta": {}, "finish_reason": "stop"}])
                if (body.get("stream_options") or {}).get("include_usage"):
                    send([], usage={"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15})
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address) -> None:
                pass  # a client that gave up on a stalled reply: nothing to report

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    @property
    def answer_requests(self) -> list[Request]:
        return [r for r in self.requests if r.is_answer]

    def __enter__(self) -> FakeOpenAI:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
