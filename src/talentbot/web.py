"""Browser chat (Gradio) server: the Blocks of :mod:`talentbot.web_app` behind our own uvicorn.

Secure defaults: loopback bind, no share link, auth required off loopback, SSR off, file-size cap,
trusted Host headers only, requests from other origins refused, request bodies and chat fields capped,
client file paths refused (:mod:`talentbot.web_guard`), every passage and answer HTML-escaped, no images
and no links but the [n] citations in answers (:mod:`talentbot.web_render`).

The same server carries the program endpoints: the OpenAI-compatible API (``/v1``, :mod:`talentbot.api_openai`),
MCP over Streamable HTTP (``/mcp``, :mod:`talentbot.mcp_server`), Dify's External Knowledge API
(``/retrieval``, :mod:`talentbot.api_dify`) and the pages their citations link to (``/doc/{id}``,
:mod:`talentbot.doc_page`). Off loopback they require ``TALENTBOT_API_KEY``.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import gradio as gr

from .api_shared import Gate, WarmUp, api_key
from .bot import TalentBot
from .errors import ConfigError, TalentBotError
from .web_app import ALL, CSS, EXAMPLES, build_app  # noqa: F401 - re-exported
from .web_guard import MAX_FILES_PER_UPLOAD, GuardConfig, RequestGuard
from .web_render import (  # noqa: F401 - re-exported: the rendering is part of this module's interface
    answer_markdown,
    clean_history,
    md_safe,
    sources_html,
    sources_panel,
)
from .web_upload import upload_folder

if TYPE_CHECKING:
    import socket

    import fastapi
    import uvicorn

logger = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _trusted_hosts(host: str) -> list[str]:
    if host in ("0.0.0.0", "::"):
        return ["*"]  # every interface: auth (required off loopback) is the gate
    return list(dict.fromkeys(["127.0.0.1", "localhost", "[::1]", host]))


def _auth(bot: TalentBot) -> tuple[str, str] | None:
    """(user, password) from the settings; refuses a non-loopback bind without them."""
    s = bot.settings
    auth = (s.auth_user, s.auth_password.get_secret_value()) if s.auth_user and s.auth_password else None
    if not is_loopback(s.host) and auth is None:
        raise ConfigError(
            f"binding {s.host} exposes the chat beyond this machine: set TALENTBOT_AUTH_USER and "
            "TALENTBOT_AUTH_PASSWORD, or bind 127.0.0.1"
        )
    return auth


def _check_api_key(bot: TalentBot) -> None:
    """Refuse to serve beyond loopback without an API key: the API, MCP and Dify endpoints would be open."""
    s = bot.settings
    if not is_loopback(s.host) and api_key(s) is None:
        raise ConfigError(
            f"binding {s.host} exposes the API, MCP and Dify endpoints beyond this machine: set "
            "TALENTBOT_API_KEY (clients send it as 'Authorization: Bearer <key>'), or bind 127.0.0.1"
        )


def _trim_gradio_overheads(demo: gr.Blocks) -> None:
    """Drop a per-request cost of Gradio 6.31 that a chat server doesn't need (found by profiling the server
    under load: RELIABILITY.md, "load"): after every event its queue rebuilds an analytics summary with pandas
    over up to 10,000 past events, so each answer gets dearer the longer the server runs. Rebuild it every
    200 events instead, on this app's queue only (a ``GRADIO_ANALYTICS_CACHE_FREQUENCY`` set by the user wins;
    nothing process-wide is changed).
    """
    queue: Any = getattr(demo, "_queue", None)
    if "GRADIO_ANALYTICS_CACHE_FREQUENCY" not in os.environ and hasattr(queue, "ANAYLTICS_CACHE_FREQUENCY"):
        queue.ANAYLTICS_CACHE_FREQUENCY = 200  # sic: Gradio's spelling


def _guard_config(demo: gr.Blocks, bot: TalentBot) -> GuardConfig:
    """What the request guard needs: the caps, which functions take files or a chat history, the API key."""
    s = bot.settings
    key = api_key(s)
    chat_fns = {
        i: next(n for n, b in enumerate(f.inputs) if isinstance(b, gr.Chatbot))
        for i, f in demo.fns.items()
        if f.name == "chat"
    }
    return GuardConfig(
        max_body=s.max_request_kb * 1024,
        allow_upload=s.allow_upload,
        upload_folder=upload_folder(),
        max_history_messages=2 * s.max_history_turns,
        upload_fns={i for i, f in demo.fns.items() if f.api_name == "upload"},
        chat_fns=chat_fns,
        api_names={f.api_name: i for i, f in demo.fns.items() if f.api_name},
        max_upload_body=int(s.max_upload_mb * 2**20) * MAX_FILES_PER_UPLOAD + 2**20,
        api_key=key,
        api_locked=key is None and not is_loopback(s.host),
    )


def create_app(bot: TalentBot) -> fastapi.FastAPI:
    """The ASGI app: the Gradio UI mounted in a FastAPI app that checks every request before Gradio does.

    Outermost first: untrusted Host headers are refused (so a forged Host never gets its Origin echoed);
    then the request guard (:mod:`talentbot.web_guard`: foreign origins, body size, file paths, chat
    history); then a CORS layer that allows no other origin (Gradio's own would allow any localhost page).
    The program endpoints (API, MCP, Dify, /doc) are routes of the outer app, so the same layers check them;
    their answers and the chat's share one :class:`Gate` (TALENTBOT_CONCURRENCY, TALENTBOT_MAX_QUEUE).
    """
    import contextlib

    import fastapi
    from starlette.middleware.cors import CORSMiddleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    from .api_dify import dify_router
    from .api_openai import openai_router
    from .doc_page import doc_router
    from .mcp_server import build_mcp, http_routes

    s = bot.settings
    auth = _auth(bot)
    bot.store.count()  # fail early, with the store's own message, if it cannot be opened
    gate = Gate(s.concurrency, s.max_queue)  # the chat's answers and the API's share its slots
    demo = build_app(bot, slot=gate.held).queue(default_concurrency_limit=s.concurrency, max_size=s.max_queue)
    _trim_gradio_overheads(demo)
    demo.state_session_capacity = (
        s.max_sessions
    )  # sessions whose state is kept; read when Gradio's app is made
    mcp = build_mcp(bot, gate)

    @contextlib.asynccontextmanager
    async def lifespan(_: fastapi.FastAPI) -> AsyncIterator[None]:
        async with mcp.session_manager.run():
            yield

    outer = fastapi.FastAPI(docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    outer.include_router(openai_router(bot, gate))
    outer.include_router(dify_router(bot, gate))
    outer.include_router(doc_router(bot))
    outer.router.routes.extend(http_routes(mcp, s.max_request_kb * 1024))  # before Gradio's catch-all mount
    outer.add_middleware(CORSMiddleware, allow_origins=[])  # its presence switches Gradio's CORS layer off
    outer.add_middleware(RequestGuard, config=_guard_config(demo, bot))
    outer.add_middleware(TrustedHostMiddleware, allowed_hosts=_trusted_hosts(s.host))
    app = gr.mount_gradio_app(
        outer,
        demo,
        path="",
        auth=auth,
        show_error=False,
        ssr_mode=False,
        max_file_size=int(s.max_upload_mb * 2**20),
        css=CSS,
        footer_links=["api"],
        blocked_paths=[str(s.store.resolve()), str(s.corpus.resolve())],
    )
    # Gradio checks that a file a client names was really uploaded (processing_utils._check_allowed) only
    # once the app "has launched", which launch() sets and mount_gradio_app() does not: set it, so the check
    # runs under our own uvicorn too.
    demo.has_launched = True
    return app


class Server:
    """A running chat server (``launch(bot, block=False)``); ``close()`` stops it."""

    def __init__(
        self, server: uvicorn.Server, thread: threading.Thread, url: str, warming: WarmUp | None = None
    ) -> None:
        self._server, self._thread, self._warming = server, thread, warming
        self.url = url

    def close(self) -> None:
        """Stop serving; open streams (browser tabs, client heartbeats) get a short grace period."""
        self._server.should_exit = True
        self._thread.join(timeout=5)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout=5)
        if self._warming is not None:
            self._warming.stop()


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port``, or a one-line error: :class:`TalentBotError` (exit 1) when the
    port is taken, :class:`ConfigError` (exit 2) when the address is not one of this machine's, or the port
    is not ours to take."""
    import errno
    import socket

    where = f"{host}:{port}"
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as e:
        raise ConfigError(
            f"cannot serve on {where}: the host '{host}' is not an address ({_reason(e)}); "
            "set --host / TALENTBOT_HOST to an address of this machine, e.g. 127.0.0.1"
        ) from None
    family, kind, proto, _, address = next(
        (i for i in infos if i[0] == socket.AF_INET), infos[0]
    )  # localhost: IPv4
    sock = socket.socket(family, kind, proto)
    try:
        if os.name != "nt":  # as uvicorn does: a restart may bind while old connections linger in TIME_WAIT
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise TalentBotError(
                f"cannot serve on {where}: the port is in use by another program; stop it, or "
                "pick another port with --port / TALENTBOT_PORT"
            ) from None
        if e.errno in (errno.EACCES, errno.EPERM):
            raise ConfigError(
                f"cannot serve on {where}: not allowed to bind this port ({_reason(e)}); pick a "
                "port above 1023 with --port / TALENTBOT_PORT"
            ) from None
        raise ConfigError(
            f"cannot serve on {where}: {_reason(e)}; set --host / TALENTBOT_HOST to an address "
            "of this machine, e.g. 127.0.0.1"
        ) from None
    return sock


def _reason(e: BaseException) -> str:
    return (getattr(e, "strerror", None) or str(e) or type(e).__name__).splitlines()[0]


def _url(sock: socket.socket) -> str:
    """The address a browser on this machine opens for a socket bound to ``sock``'s address."""
    host, port = sock.getsockname()[:2]
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def launch(
    bot: TalentBot, block: bool = True, on_ready: Callable[[str], None] | None = None
) -> Server | None:
    """Serve the chat on the configured host and port. The port is bound first, so a port in use or a bad
    address fails at once with a one-line error (:func:`bind`). ``on_ready(url)`` is called once the server
    accepts requests, never before. ``block=False`` returns a :class:`Server` once up."""

    import uvicorn

    s = bot.settings
    _auth(bot)  # before binding: a refused bind leaves no port open
    sock = bind(s.host, s.port)  # an address that cannot be bound is said first
    try:
        _check_api_key(bot)  # the socket is closed below when refused
        app = create_app(bot)
        server = uvicorn.Server(
            uvicorn.Config(
                app, host=s.host, port=sock.getsockname()[1], log_level="warning", timeout_graceful_shutdown=2
            )
        )
        url = _url(sock)
        if block:
            warming: list[WarmUp] = []
            watcher = threading.Thread(
                target=_announce,
                args=(server, url, on_ready, bot, warming),
                daemon=True,
                name="talentbot-ready",
            )
            watcher.start()
            try:
                server.run(sockets=[sock])
            finally:
                server.should_exit = True  # the watcher stops waiting
                watcher.join(timeout=5)
                for w in warming:  # never exit while it runs inside ONNX Runtime or Chroma
                    w.stop()
            return None
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="talentbot-web"
        )
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError(f"the chat server could not start on {s.host}:{s.port} (see the log above)")
            time.sleep(0.05)
        if on_ready:
            on_ready(url)
        return Server(server, thread, url, WarmUp(bot))
    except BaseException:
        sock.close()
        raise


def _announce(
    server: uvicorn.Server,
    url: str,
    on_ready: Callable[[str], None] | None,
    bot: TalentBot,
    warming: list[WarmUp],
) -> None:
    """Call ``on_ready(url)`` once ``server`` has started, then start warming ``bot`` up (into ``warming``);
    give up when it stops first."""

    while not server.started:
        if server.should_exit:
            return
        time.sleep(0.02)
    if on_ready:
        on_ready(url)
    warming.append(WarmUp(bot))
