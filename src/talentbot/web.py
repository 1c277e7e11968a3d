"""Browser chat (Gradio): a thin adapter over :class:`TalentBot`; it holds no retrieval logic.

Secure defaults: loopback bind, no share link, auth required off loopback, SSR off, file-size cap,
trusted Host headers only, every passage and answer HTML-escaped, no images from answers.
"""

from __future__ import annotations

import html
import importlib.util
import ipaddress
import logging
import os
import re
import shutil
import sys
from pathlib import Path

import gradio as gr

from .answer import Answer, AnswerEvent, TextEvent
from .bot import TalentBot
from .errors import ConfigError, TalentBotError
from .loaders import SUPPORTED
from .retrieval import Filters

logger = logging.getLogger(__name__)

EXAMPLES = [
    "垣曲经济技术开发区的三大产业基地有哪些？",
    "文水经济开发区2023年为盛达威公司兑现了多少人才奖励资金？",
    "《山东省人才发展促进条例》自哪一天起施行？",
    "郑洛新自主创新示范区可以采取哪些方式改善高层次人才居住环境？",
    "When did the Shanghai Regulations on Talent Mobility (上海市人才流动条例) take effect?",
]
ALL = "（全部）"
CSS = """
#tb-sources {max-height:640px; overflow-y:auto; padding-right:4px}
.tb-turn {color:#57606a; font-size:0.85em; margin:14px 0 4px; padding-bottom:2px; border-bottom:1px solid #eaeef2;
          white-space:nowrap; overflow:hidden; text-overflow:ellipsis}
.tb-turn:first-child {margin-top:0}
.tb-cite {border:1px solid #d0d7de; border-radius:8px; padding:8px 10px; margin:8px 0; background:#fff;
          scroll-margin-top:8px}
.tb-cite:target {border-color:#d4a017; box-shadow:0 0 0 3px #f5e6a8}
.tb-head {font-weight:600} .tb-meta {color:#57606a; font-size:0.85em; margin:2px 0 6px}
.tb-text {white-space:pre-wrap; line-height:1.6} .tb-text mark {background:#fff3a3; padding:0 1px}
.tb-none {border:1px dashed #d4a017; background:#fff8e1; border-radius:8px; padding:10px; color:#6e5200}
.tb-warn {color:#9a6700; font-size:0.9em}
"""
MAX_TURNS_SHOWN = 20  # cited passages of this many recent turns stay in the Sources panel
HISTORY_MESSAGES = 12  # chat messages handed to the bot for follow-ups
HISTORY_CHARS = 2000  # characters kept of each of them


def md_safe(text: str) -> str:
    """Escape HTML and neutralise Markdown images, keeping plain Markdown."""
    return re.sub(r"!\[", r"!\\[", html.escape(text, quote=False))


def answer_markdown(answer: Answer, turn: int) -> str:
    """The chat bubble: escaped text, [n] as links to the passage cards, a visible no-answer style."""
    body = md_safe(answer.text)
    if answer.no_answer:
        return f"⚠️ **未找到答案 · No answer in the documents**\n\n_{body}_"
    cited = {str(c.n) for c in answer.citations}
    body = re.sub(r"\[(\d{1,2})\]",
                  lambda m: f"[[{m.group(1)}]](#cite-{turn}-{m.group(1)})" if m.group(1) in cited else m.group(0),
                  body)
    warnings = "".join(f"\n\n> ⚠️ {md_safe(w)}" for w in answer.warnings)
    return body + warnings


def sources_html(answer: Answer | None, turn: int) -> str:
    """Cards of the cited passages with the quoted sentences highlighted (all text escaped)."""
    if answer is None:
        return "<div class='tb-meta'>引用的原文会显示在这里。Cited passages appear here.</div>"
    if answer.no_answer:
        return ("<div class='tb-none'>资料中没有找到可以回答这个问题的段落，因此不引用任何原文。<br>"
                "No passage in the documents answers this question.</div>")
    cards = []
    for c in answer.citations:
        text = html.escape(c.text)
        for q in filter(None, re.split(r"(?<=[。！？!?])", c.quote)):
            eq = html.escape(q.strip())
            if eq and eq in text:
                text = text.replace(eq, f"<mark>{eq}</mark>", 1)
        where = " · ".join(html.escape(x) for x in (c.file, c.label, f"第{c.page}页" if c.page else "") if x)
        meta = " · ".join(html.escape(x) for x in (c.source, c.date) if x)
        cards.append(f"<div class='tb-cite' id='cite-{turn}-{c.n}'><div class='tb-head'>[{c.n}] "
                     f"{html.escape(c.title)}</div><div class='tb-meta'>{meta}<br>{where}</div>"
                     f"<div class='tb-text'>{text}</div></div>")
    return "".join(cards)


def sources_panel(shown: list) -> str:
    """The Sources panel: the cards of each (turn, question, cards_html) in ``shown``, newest turn first."""
    if not shown:
        return sources_html(None, 0)
    return "".join(f"<div class='tb-turn'>第{turn}问 · Q{turn}: {html.escape(q)}</div>{cards}"
                   for turn, q, cards in reversed(shown))


def _bot_history(history: list) -> list[tuple[str, str]]:
    """The recent chat history as (role, plain text) for the bot: display markup undone, size capped.

    The history comes from the client, so it is capped here like the question is.
    """
    out = []
    for m in history[-HISTORY_MESSAGES:]:
        if not isinstance(m, dict):
            continue
        content = m.get("content")
        if isinstance(content, list):  # gradio 6 content blocks
            content = " ".join(c.get("text", "") for c in content if isinstance(c, dict) and c.get("type") == "text")
        if not isinstance(content, str):
            continue
        text = re.sub(r"\[\[(\d{1,2})\]\]\(#cite-\d+-\d+\)", r"[\1]", content).replace("!\\[", "![")
        out.append((str(m.get("role", "user")), html.unescape(text)[:HISTORY_CHARS]))
    return out


def _filters(region: str | None, source: str | None, date_from: str | None, date_to: str | None) -> Filters:
    def clean(v: str | None) -> str | None:
        v = (v or "").strip()
        return None if not v or v == ALL else v

    return Filters(region=clean(region), source=clean(source), date_from=clean(date_from), date_to=clean(date_to))


def build_app(bot: TalentBot) -> gr.Blocks:
    """The Gradio Blocks app over ``bot``."""
    s = bot.settings

    def chat(message: str, history: list, region: str | None = None, source: str | None = None,
             date_from: str | None = None, date_to: str | None = None, shown: list | None = None):
        """Answer ``message`` given the chat ``history``; streams (history, sources panel, textbox, shown).

        ``shown`` (a session State, invisible to the API) keeps the cited passages of earlier turns, so
        the [n] links of every answer in the chat still lead to their cards.
        """
        history = list(history or [])
        turn = sum(1 for m in history if isinstance(m, dict) and m.get("role") == "user") + 1
        shown = [t for t in (shown or []) if t[0] < turn][-(MAX_TURNS_SHOWN - 1):]  # drop turns cleared away
        try:
            question = bot.check_question(message or "")
            events = bot.stream(question, history=_bot_history(history),
                                filters=_filters(region, source, date_from, date_to))
            history = history + [{"role": "user", "content": md_safe(question)}, {"role": "assistant", "content": ""}]
            text = ""
            for ev in events:
                if isinstance(ev, TextEvent):
                    text += ev.text
                    history[-1]["content"] = md_safe(text)
                    yield history, gr.skip(), "", gr.skip()
                elif isinstance(ev, AnswerEvent):
                    history[-1]["content"] = answer_markdown(ev.answer, turn)
                    shown = [*shown, (turn, question, sources_html(ev.answer, turn))]
                    yield history, sources_panel(shown), "", shown
        except TalentBotError as e:
            raise gr.Error(html.escape(str(e)), duration=8) from None

    def article_rows() -> list[list]:
        return [[r.title, r.source, r.date, r.region, r.chunks, r.file] for r in bot.articles()]

    def choices() -> tuple[list[str], list[str]]:
        recs = bot.articles()
        regions = sorted({x for r in recs for x in r.region.split(",") if x})
        sources = sorted({r.source for r in recs if r.source})
        return [ALL, *regions], [ALL, *sources]

    def reingest(progress=gr.Progress()):  # noqa: B008 - Gradio injects progress through the default
        """Re-index the corpus folder; returns (summary markdown, article table)."""
        def report(done: int, total: int, name: str) -> None:
            progress((done, max(total, 1)), desc=f"indexing {name}")

        try:
            r = bot.ingest([s.corpus], progress=report)
        except TalentBotError as e:
            raise gr.Error(html.escape(str(e))) from None
        failed = "".join(f"\n- {md_safe(Path(f['path']).name)}: {md_safe(f['error'])}" for f in r.failed)
        summary = (f"**added** {r.added} · **updated** {r.updated} · **unchanged** {r.unchanged} · "
                   f"**removed** {r.removed} · **failed** {len(r.failed)} · **chunks** {r.chunks} · "
                   f"{r.seconds:.1f} s{failed}")
        return summary, article_rows()

    def upload(files: list | None, progress=gr.Progress()):  # noqa: B008 - as above
        """Copy uploaded articles into the corpus folder (type- and size-checked), then re-index."""
        if not s.allow_upload:
            raise gr.Error("uploads are switched off (TALENTBOT_ALLOW_UPLOAD)")
        for f in files or []:
            path = Path(getattr(f, "name", f))
            if path.suffix.lower() not in SUPPORTED:
                raise gr.Error(html.escape(f"{path.name}: unsupported type; use {', '.join(sorted(SUPPORTED))}"))
            if path.stat().st_size > s.max_upload_mb * 2**20:
                raise gr.Error(html.escape(f"{path.name} is over {s.max_upload_mb:g} MB"))
        s.corpus.mkdir(parents=True, exist_ok=True)
        for f in files or []:
            path = Path(getattr(f, "name", f))
            shutil.copyfile(path, s.corpus / re.sub(r"[^\w.\-\u4e00-\u9fff]", "_", path.name))
        return reingest(progress)

    with gr.Blocks(title="talentbot · 人才政策问答") as demo:
        gr.Markdown("## talentbot · 人才政策问答\n每个答案都引用原文段落，请点击 [n] 核对数字与日期。"
                    "Every answer cites the passages it comes from.")
        with gr.Tabs():
            with gr.Tab("对话 Chat", id="chat"):
                with gr.Row():
                    with gr.Column(scale=3):
                        chatbot = gr.Chatbot(label="对话", height=520, sanitize_html=True, render_markdown=True,
                                             elem_id="tb-chat")
                        box = gr.Textbox(placeholder="输入问题，例如：垣曲经济技术开发区的三大产业基地有哪些？",
                                         show_label=False, max_length=s.max_question_chars, elem_id="tb-question")
                        with gr.Row():
                            send = gr.Button("提问 Ask", variant="primary", elem_id="tb-send")
                            clear = gr.Button("清空 Clear")
                        with gr.Accordion("筛选 Filters", open=False):
                            # choices as indexed now (refreshed on each page load); other values are
                            # accepted too, so API callers and articles ingested later can be filtered on
                            regions, srcs = choices()
                            region = gr.Dropdown(label="地区 Region", choices=regions, value=ALL,
                                                 allow_custom_value=True)
                            source = gr.Dropdown(label="来源 Source", choices=srcs, value=ALL,
                                                 allow_custom_value=True)
                            with gr.Row():
                                date_from = gr.Textbox(label="起始日期 From (YYYY-MM-DD)")
                                date_to = gr.Textbox(label="截止日期 To (YYYY-MM-DD)")
                        gr.Examples(EXAMPLES, inputs=box, label="示例问题 Examples")
                    with gr.Column(scale=2):
                        gr.Markdown("### 引用原文 Sources")
                        sources = gr.HTML(sources_html(None, 0), elem_id="tb-sources")
                        shown = gr.State([])
            with gr.Tab("文章 Articles", id="articles"):
                table = gr.Dataframe(headers=["标题 title", "来源 source", "日期 date", "地区 region",
                                              "段落 chunks", "文件 file"], interactive=False, wrap=True,
                                     column_widths=["24%", "30%", "10%", "8%", "7%", "21%"], elem_id="tb-articles")
                reingest_btn = gr.Button(f"重新索引 {s.corpus}/ (re-ingest)")
                summary = gr.Markdown()
                if s.allow_upload:
                    files = gr.File(label=f"上传文章 Upload (≤ {s.max_upload_mb:g} MB each)", file_count="multiple",
                                    file_types=sorted(SUPPORTED))
                    files.upload(upload, files, [summary, table], api_name="upload")

        inputs = [box, chatbot, region, source, date_from, date_to, shown]
        outputs = [chatbot, sources, box, shown]
        send.click(chat, inputs, outputs, api_name="chat")
        box.submit(chat, inputs, outputs, api_visibility="private")
        clear.click(lambda: ([], sources_html(None, 0), []), None, [chatbot, sources, shown], api_visibility="private")
        chatbot.clear(lambda: (sources_html(None, 0), []), None, [sources, shown], api_visibility="private")
        reingest_btn.click(reingest, None, [summary, table], api_name="reingest", concurrency_limit=1)

        def on_load():
            r, src = choices()
            return article_rows(), gr.Dropdown(choices=r, value=ALL), gr.Dropdown(choices=src, value=ALL)

        demo.load(on_load, None, [table, region, source], api_visibility="private")
    return demo


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
        raise ConfigError(f"binding {s.host} exposes the chat beyond this machine: set TALENTBOT_AUTH_USER and "
                          "TALENTBOT_AUTH_PASSWORD, or bind 127.0.0.1")
    return auth


class _NoUploads:
    """ASGI middleware refusing Gradio's file-upload routes (used while uploads are switched off)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and re.search(r"/gradio_api/upload(_progress)?/?$", re.sub(r"/+", "/", scope["path"])):
            from starlette.responses import JSONResponse

            await JSONResponse({"detail": "uploads are switched off (TALENTBOT_ALLOW_UPLOAD)"}, 403)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _trim_gradio_overheads() -> None:
    """Drop two per-request costs of Gradio 6.31 that a chat server doesn't need (found by profiling the
    server under load: RELIABILITY.md, "load"):

    - after every event its queue rebuilds an analytics summary with pandas over up to 10,000 past events,
      so each answer gets dearer the longer the server runs: rebuild it every 200 events instead
      (``GRADIO_ANALYTICS_CACHE_FREQUENCY``; a value set by the user wins);
    - every call tries ``import matplotlib``, and when it is not installed each try searches ``sys.path``
      again: record it as missing once (``None`` in ``sys.modules``), unless it is installed.
    """
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "200")
    if "matplotlib" not in sys.modules and importlib.util.find_spec("matplotlib") is None:
        sys.modules["matplotlib"] = None  # type: ignore[assignment]


def create_app(bot: TalentBot):
    """The ASGI app: the Gradio UI mounted in a FastAPI app that rejects untrusted Host headers first.

    The Host check sits outside Gradio's CORS middleware, so a forged Host never gets its Origin echoed.
    """
    import fastapi
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    s = bot.settings
    auth = _auth(bot)
    _trim_gradio_overheads()
    bot.store.count()  # fail early, with the store's own message, if it cannot be opened
    outer = fastapi.FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    if not s.allow_upload:  # Gradio's upload route takes files from anyone unless it is closed
        outer.add_middleware(_NoUploads)
    outer.add_middleware(TrustedHostMiddleware, allowed_hosts=_trusted_hosts(s.host))
    demo = build_app(bot).queue(default_concurrency_limit=s.concurrency, max_size=s.max_queue)
    return gr.mount_gradio_app(outer, demo, path="", auth=auth, show_error=False, ssr_mode=False,
                               max_file_size=int(s.max_upload_mb * 2**20), css=CSS, footer_links=["api"])


class Server:
    """A running chat server (``launch(bot, block=False)``); ``close()`` stops it."""

    def __init__(self, server, thread) -> None:
        self._server, self._thread = server, thread
        cfg = server.config
        host = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(cfg.host, cfg.host)
        host = f"[{host}]" if ":" in host and not host.startswith("[") else host
        self.url = f"http://{host}:{cfg.port}/"

    def close(self) -> None:
        """Stop serving; open streams (browser tabs, client heartbeats) get a short grace period."""
        self._server.should_exit = True
        self._thread.join(timeout=5)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout=5)


def launch(bot: TalentBot, block: bool = True) -> Server | None:
    """Serve the chat on the configured host and port; ``block=False`` returns a :class:`Server` once up."""
    import threading
    import time

    import uvicorn

    app = create_app(bot)
    s = bot.settings
    server = uvicorn.Server(uvicorn.Config(app, host=s.host, port=s.port, log_level="warning",
                                           timeout_graceful_shutdown=2))
    if block:
        server.run()
        return None
    thread = threading.Thread(target=server.run, daemon=True, name="talentbot-web")
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise ConfigError(f"the chat server could not start on {s.host}:{s.port} (port in use?)")
        time.sleep(0.05)
    return Server(server, thread)
