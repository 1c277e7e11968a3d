"""The request guard in front of the Gradio app (ASGI middleware).

It refuses, before Gradio sees them:

- requests whose ``Origin`` is not the server's own (another web page, even on localhost, driving the chat);
- Gradio's upload routes while uploads are switched off;
- request bodies over the size cap (read in chunks, so a huge body is never held);
- a file reference (any object with a ``path``) anywhere in a request, except real uploads (files inside
  Gradio's upload folder) sent to the upload function: a client-supplied path never reaches the filesystem;
- chat histories that are not text messages; long ones are trimmed to the turns the chat keeps;
- on the program endpoints (``/v1/``, ``/mcp``, ``/retrieval``): requests without the API key when one is set
  (or, off loopback, any request when none is), foreign origins unless the key was sent, and bodies over the cap.

Every refusal is one JSON response ``{"detail": message}`` (on the program endpoints, in their own error
shape: OpenAI's, Dify's) and one log line, however many parts were bad.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .api_shared import bearer_ok, refusal_body
from .errors import InputError
from .web_render import message_text

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)

_UPLOAD_ROUTE = re.compile(r"/gradio_api/upload(_progress)?/?$")
_DATA_ROUTE = re.compile(r"/gradio_api/(?:queue/join|(?P<kind>run|api|call/v2|call)/(?P<api>[^/]+))/?$")
_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_API_ROUTE = re.compile(r"^/(?:v1/|mcp/?$|retrieval/?$)")


@dataclass
class GuardConfig:
    """What the guard needs to know about the app it protects."""

    max_body: int  # bytes of a request body (uploads excepted: Gradio caps each file)
    allow_upload: bool
    upload_folder: Path  # Gradio's upload folder: the only place an uploaded file can be
    max_history_messages: int  # chat messages kept from a client's history
    upload_fns: set[int] = field(default_factory=set)  # fn ids of the upload function
    chat_fns: dict[int, int] = field(
        default_factory=dict
    )  # fn id of a chat event -> index of its history input
    api_names: dict[str, int] = field(default_factory=dict)  # api_name -> fn id
    max_upload_body: int = 0  # bytes of one upload request (all its files); 0: no cap
    api_key: str | None = None  # the bearer key the program endpoints require; None: none
    api_locked: bool = False  # off loopback without a key: the program endpoints refuse every request


MAX_FILES_PER_UPLOAD = 20  # files one upload request may carry at the per-file size cap


class Refused(Exception):
    """A request the guard turns away: ``status`` and a user-facing message."""

    def __init__(self, status: int, error: InputError) -> None:
        super().__init__(str(error))
        self.status = status


def _file_refs(value: object, found: list[dict], depth: int = 0) -> None:
    """Collect every object in ``value`` that Gradio would treat as a file (it has a string ``path``)."""
    if depth > 64:
        raise Refused(
            400, InputError("the request is nested too deeply; send the chat fields as plain values")
        )
    if isinstance(value, dict):
        if isinstance(value.get("path"), str) or (
            isinstance(value.get("meta"), dict) and value["meta"].get("_type") == "gradio.FileData"
        ):
            found.append(value)
        for v in value.values():
            _file_refs(v, found, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _file_refs(v, found, depth + 1)


def _own_origin(origin: str, host: str) -> bool:
    """Whether ``origin`` names the server the request was sent to (same host and port as ``Host``)."""
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(host) and parts.netloc.lower() == host.lower()


class RequestGuard:
    """ASGI middleware applying the checks above; see the module docstring."""

    def __init__(self, app: ASGIApp, config: GuardConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        path = re.sub(r"/+", "/", scope.get("path", ""))
        if scope["type"] == "http" and _API_ROUTE.match(path):
            await self._api(scope, receive, send, headers, path)
            return
        try:
            origin = headers.get("origin")
            if origin is not None and not _own_origin(origin, headers.get("host", "")):
                raise Refused(
                    403,
                    InputError(
                        f"requests from another web page ({origin[:100]}) are refused; "
                        "open the chat at its own address"
                    ),
                )
            if scope["type"] == "websocket":
                await self.app(scope, receive, send)
                return
            if _UPLOAD_ROUTE.search(path):
                if not self.config.allow_upload:
                    raise Refused(403, InputError("uploads are switched off (TALENTBOT_ALLOW_UPLOAD)"))
                await self.app(scope, self._capped(headers, receive), send)  # Gradio caps each file too
                return
            if scope.get("method") not in _BODY_METHODS:
                await self.app(scope, receive, send)
                return
            body = await self._read_body(headers, receive)
            if body is None:  # the client went away
                return
            route = _DATA_ROUTE.search(path)
            new_body = self._check(body, route) if body else body
        except Refused as e:
            logger.warning(
                "refused %s %s from %s: %s",
                scope.get("method", "WS"),
                path[:200],
                (scope.get("client") or ("?",))[0],
                e,
            )
            await self._refuse(scope, receive, send, e)
            return
        if new_body is not body:
            scope = dict(
                scope,
                headers=[(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
                + [(b"content-length", str(len(new_body)).encode())],
            )
        await self.app(scope, self._replay(new_body, receive), send)

    async def _api(self, scope: Scope, receive: Receive, send: Send, headers: dict, path: str) -> None:
        """The program endpoints: API key, origin (a request that carries the key may come from any page)
        and body size; their bodies are theirs to validate."""
        key = self.config.api_key
        try:
            if self.config.api_locked:
                raise Refused(
                    401,
                    InputError(
                        "this server is reachable beyond loopback: set TALENTBOT_API_KEY "
                        "to use the API, MCP and Dify endpoints"
                    ),
                )
            if not bearer_ok(headers.get("authorization"), key):
                raise Refused(
                    401,
                    InputError(
                        "a valid API key is required: send 'Authorization: Bearer <key>' "
                        "with the key set in TALENTBOT_API_KEY"
                    ),
                )
            origin = headers.get("origin")
            if key is None and origin is not None and not _own_origin(origin, headers.get("host", "")):
                raise Refused(
                    403,
                    InputError(
                        f"requests from another web page ({origin[:100]}) are refused "
                        "unless they carry the API key (TALENTBOT_API_KEY)"
                    ),
                )
            if scope.get("method") not in _BODY_METHODS:
                await self.app(scope, receive, send)
                return
            body = await self._read_body(headers, receive)
        except Refused as e:
            logger.warning(
                "refused %s %s from %s: %s",
                scope.get("method"),
                path[:200],
                (scope.get("client") or ("?",))[0],
                e,
            )
            from starlette.responses import JSONResponse

            await JSONResponse(
                refusal_body(path, e.status, str(e), headers.get("authorization")),
                e.status,
                {"WWW-Authenticate": "Bearer"} if e.status == 401 else None,
            )(scope, receive, send)
            return
        if body is not None:
            await self.app(scope, self._replay(body, receive), send)

    def _capped(self, headers: dict, receive: Receive) -> Receive:
        """``receive`` for an upload: refused up front when Content-Length is over the cap, and cut off (as
        a client that went away) when a body without one grows past it."""
        cap = self.config.max_upload_body
        if not cap:
            return receive
        try:
            if int(headers.get("content-length", "0")) > cap:
                raise Refused(
                    413,
                    InputError(
                        f"the upload is larger than {cap // 2**20} MB in all; "
                        "upload fewer or smaller files at a time"
                    ),
                )
        except ValueError:
            raise Refused(400, InputError("the request has an invalid Content-Length")) from None
        size = 0

        async def counted() -> Message:
            nonlocal size
            message = await receive()
            size += len(message.get("body", b""))
            return {"type": "http.disconnect"} if size > cap else message

        return counted

    async def _read_body(self, headers: dict, receive: Receive) -> bytes | None:
        """The whole body, refused as soon as it is known to exceed the cap."""
        limit = self.config.max_body
        too_big = Refused(
            413,
            InputError(f"the request is larger than {limit // 1024} KB; send a shorter question or history"),
        )
        try:
            if int(headers.get("content-length", "0")) > limit:
                raise too_big
        except ValueError:
            raise Refused(400, InputError("the request has an invalid Content-Length")) from None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise too_big
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    def _check(self, body: bytes, route: re.Match | None) -> bytes:
        """Refuse file references and malformed chat histories; trim long histories. Returns the body to pass on."""
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            return body  # not JSON: Gradio's own validation refuses it
        files: list[dict] = []
        _file_refs(data, files)
        fn = self._target(data, route)
        if files:
            self._check_files(files, fn)
        if (
            fn in self.config.chat_fns
            and isinstance(data, dict)
            and self._clean_history(
                data, self.config.chat_fns[fn], v2=bool(route and route["kind"] == "call/v2")
            )
        ):
            return json.dumps(data, ensure_ascii=False).encode()
        return body

    def _target(self, data: object, route: re.Match | None) -> int | None:
        """The fn id Gradio will run, chosen as Gradio chooses it: ``fn_index`` first, else the API name."""
        if route is None:
            return None
        if route["kind"] in (
            "call",
            "call/v2",
        ):  # Gradio runs the function the route names, whatever the body says
            return self.config.api_names.get(route["api"])
        fn_index = data.get("fn_index") if isinstance(data, dict) else None
        if fn_index is not None:
            if type(fn_index) is not int:  # "0", 0.0, true: Gradio would coerce it; refuse rather than guess
                raise Refused(400, InputError("fn_index must be a whole number"))
            return fn_index
        return self.config.api_names.get(route["api"]) if route["api"] else None

    def _check_files(self, files: list[dict], fn: int | None) -> None:
        if fn not in self.config.upload_fns or not self.config.allow_upload:
            raise Refused(
                400,
                InputError(
                    "this endpoint takes text only: files and file paths are refused "
                    "(chat history messages must be text)"
                ),
            )
        folder = self.config.upload_folder.resolve()
        for f in files:
            try:
                real = Path(f.get("path", "")).resolve()
                ok = real.is_relative_to(folder) and real.is_file()
            except (OSError, ValueError):
                ok = False
            if not ok:
                raise Refused(
                    400,
                    InputError(
                        "only files uploaded through this page can be added; "
                        "upload the file itself, not a path on the server"
                    ),
                )

    def _clean_history(self, data: dict, index: int, v2: bool) -> bool:
        """Refuse a history that is not a list of text messages; keep its last messages, in the one form Gradio
        validates (text blocks, nothing else). True if the body changed."""
        if v2:
            history = data.get("history")
        else:
            values = data.get("data")
            history = values[index] if isinstance(values, list) and len(values) > index else None
        if history is None:
            return False
        if not isinstance(history, list):
            raise Refused(
                400,
                InputError(
                    "the chat history must be a list of messages {role: user|assistant, content: text}"
                ),
            )
        keep = history[-self.config.max_history_messages :] if self.config.max_history_messages else []
        texts = [message_text(m) for m in keep]
        bad = [i for i, t in enumerate(texts, len(history) - len(keep)) if t is None]
        if bad:
            raise Refused(
                400,
                InputError(
                    f"{len(bad)} chat history message(s) are not text messages (first: "
                    f"#{bad[0]}); each must be {{role: user|assistant, content: text}}"
                ),
            )
        clean = [
            {"role": m["role"], "content": [{"type": "text", "text": t}]}
            for m, t in zip(keep, texts, strict=True)
        ]
        if clean == history:
            return False
        if v2:
            data["history"] = clean
        else:
            data["data"][index] = clean
        return True

    @staticmethod
    def _replay(body: bytes, receive: Receive) -> Receive:
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, error: Refused) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        from starlette.responses import JSONResponse

        await JSONResponse({"detail": str(error)}, error.status)(scope, receive, send)
