"""The browser chat's Gradio Blocks: the chat, its filters and Sources panel, the article table, re-ingest
and (when switched on) uploads. A thin adapter over :class:`TalentBot`; it holds no retrieval logic.

Everything a client sends is capped here too (history, filters, question), whatever the request guard
in front of it (:mod:`talentbot.web_guard`) already did.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from .answer import AnswerEvent, TextEvent
from .bot import TalentBot
from .errors import InputError, TalentBotError
from .ingest import IngestReport
from .loaders import SUPPORTED
from .retrieval import Filters
from .web_render import answer_markdown, bot_history, clean_history, md_safe, sources_html, sources_panel
from .web_upload import check_uploads, drop_rejected, safe_name, save_upload

logger = logging.getLogger(__name__)

# Example questions written for the page, not taken from any eval set.
EXAMPLES = [
    "北京无许可证从事人才市场中介服务，最高罚款多少？",
    "《上海市人才流动条例》哪天起施行？",
    "山西的开发区用哪些办法吸引人才？",
    "广州知识城对国际人才有哪些便利措施？",
    "When does Beijing's talent market regulation take effect?",
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
HISTORY_MESSAGES = 12  # chat messages handed to the bot for follow-ups
HISTORY_CHARS = 2000  # characters kept of each of them


def _filters(region: object, source: object, date_from: object, date_to: object, limit: int) -> Filters:
    """The filters as the bot takes them; a value that is not text or is longer than ``limit`` is refused."""

    def clean(name: str, v: object) -> str | None:
        if v is None:
            return None
        if not isinstance(v, str):
            raise InputError(f"the {name} filter must be text; pick one from the list")
        v = v.strip()
        if len(v) > limit:
            raise InputError(
                f"the {name} filter is {len(v)} characters long; the longest accepted is {limit}: "
                "pick one from the list or shorten it"
            )
        return None if not v or v == ALL else v

    return Filters(
        region=clean("region", region),
        source=clean("source", source),
        date_from=clean("date from", date_from),
        date_to=clean("date to", date_to),
    )


def _turn(history: list[dict], shown: list, max_turns: int) -> int:
    """The number of the turn being asked: one more than the questions in ``history`` or, once the history
    has been trimmed to ``max_turns - 1`` turns, one more than the last turn shown (anchors stay unique)."""
    users = sum(1 for m in history if m["role"] == "user")
    if users >= max_turns - 1 and shown:
        return max(users, shown[-1][0]) + 1
    return users + 1


def build_app(bot: TalentBot) -> gr.Blocks:
    """The Gradio Blocks app over ``bot``."""
    s = bot.settings

    def chat(
        message: str,
        history: list,
        region: str | None = None,
        source: str | None = None,
        date_from: str | None = None,
        date_to: str | None = None,
        shown: list | None = None,
    ) -> Iterator[tuple[Any, Any, str, Any]]:
        """Answer ``message`` given the chat ``history``; streams (history, sources panel, textbox, shown).

        The history comes from the client: only its text messages are kept, capped and re-escaped, and only
        the last ``max_history_turns`` turns stay. ``shown`` (a session State, invisible to the API) keeps
        the cited passages of those turns, so the [n] links of every answer in the chat still lead to cards.
        """
        try:
            if message is not None and not isinstance(message, str):
                raise InputError("the question must be text")
            history = clean_history(history, s.max_history_turns - 1, s.max_message_chars)
            shown = list(shown or [])
            turn = _turn(history, shown, s.max_history_turns)
            keep = s.max_history_turns - 1  # earlier turns' cards; [-0:] would keep them all
            shown = [t for t in shown if t[0] < turn][-keep:] if keep else []  # turns cleared or trimmed away
            question = bot.check_question(message or "")
            filters = _filters(region, source, date_from, date_to, s.max_filter_chars)
            events = bot.stream(
                question, history=bot_history(history, HISTORY_MESSAGES, HISTORY_CHARS), filters=filters
            )
            history = history + [
                {"role": "user", "content": md_safe(question)},
                {"role": "assistant", "content": ""},
            ]
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

    def ingest_corpus(progress: gr.Progress) -> IngestReport:
        def report(done: int, total: int, name: str) -> None:
            progress((done, max(total, 1)), desc=f"indexing {name}")

        try:
            return bot.ingest([s.corpus], progress=report)
        except TalentBotError as e:
            raise gr.Error(html.escape(str(e))) from None

    def summary_of(r: IngestReport, skip: set[int] | frozenset[int] = frozenset()) -> str:
        failed = "".join(
            f"\n- {md_safe(Path(f['path']).name)}: {md_safe(f['error'])}"
            for f in r.failed
            if id(f) not in skip
        )
        return (
            f"**added** {r.added} · **updated** {r.updated} · **unchanged** {r.unchanged} · "
            f"**removed** {r.removed} · **failed** {len(r.failed)} · **chunks** {r.chunks} · "
            f"{r.seconds:.1f} s{failed}"
        )

    def reingest(
        progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio injects progress through the default
    ) -> tuple[str, list[list]]:
        """Re-index the corpus folder; returns (summary markdown, article table)."""
        return summary_of(ingest_corpus(progress)), article_rows()

    def upload(
        files: list | None,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 - as above
    ) -> tuple[str, list[list]]:
        """Save real uploads into the corpus under free names (never replacing an article), re-index, and take
        out again the ones the ingest rejected; returns (summary markdown, article table)."""
        try:
            if not s.allow_upload:
                raise InputError("uploads are switched off (TALENTBOT_ALLOW_UPLOAD)")
            saved = {save_upload(p, s.corpus): p.name for p in check_uploads(list(files or []), s)}
        except TalentBotError as e:
            raise gr.Error(html.escape(str(e))) from None
        r = ingest_corpus(progress)
        removed = drop_rejected(r.failed, list(saved))
        notes = [
            f"{md_safe(saved[p])}: not added ({md_safe(f['error'])}); removed from the corpus"
            for p, f in removed.items()
        ]
        notes += [
            f"{md_safe(name)}: an article of that name exists, so it was saved as {md_safe(p.name)}"
            for p, name in saved.items()
            if p not in removed and p.name != safe_name(name)
        ]
        skip = {id(f) for f in removed.values()}
        return summary_of(r, skip) + "".join(f"\n- {n}" for n in notes), article_rows()

    with gr.Blocks(title="talentbot · 人才政策问答") as demo:
        gr.Markdown(
            "## talentbot · 人才政策问答\n每个答案都引用原文段落，请点击 [n] 核对数字与日期。"
            "Every answer cites the passages it comes from."
        )
        with gr.Tabs():
            with gr.Tab("对话 Chat", id="chat"):
                with gr.Row():
                    with gr.Column(scale=3):
                        chatbot = gr.Chatbot(
                            label="对话",
                            height=520,
                            sanitize_html=True,
                            render_markdown=True,
                            elem_id="tb-chat",
                        )
                        box = gr.Textbox(
                            placeholder="输入问题，例如：北京无许可证从事人才市场中介服务，最高罚款多少？",
                            show_label=False,
                            max_length=s.max_question_chars,
                            elem_id="tb-question",
                        )
                        with gr.Row():
                            send = gr.Button("提问 Ask", variant="primary", elem_id="tb-send")
                            clear = gr.Button("清空 Clear")
                        with gr.Accordion("筛选 Filters", open=False):
                            # choices as indexed now (refreshed on each page load); other values are
                            # accepted too, so API callers and articles ingested later can be filtered on
                            regions, srcs = choices()
                            region = gr.Dropdown(
                                label="地区 Region", choices=regions, value=ALL, allow_custom_value=True
                            )
                            source = gr.Dropdown(
                                label="来源 Source", choices=srcs, value=ALL, allow_custom_value=True
                            )
                            with gr.Row():
                                date_from = gr.Textbox(label="起始日期 From (YYYY-MM-DD)")
                                date_to = gr.Textbox(label="截止日期 To (YYYY-MM-DD)")
                        gr.Examples(EXAMPLES, inputs=box, label="示例问题 Examples")
                    with gr.Column(scale=2):
                        gr.Markdown("### 引用原文 Sources")
                        sources = gr.HTML(sources_html(None, 0), elem_id="tb-sources")
                        shown = gr.State([])
            with gr.Tab("文章 Articles", id="articles"):
                table = gr.Dataframe(
                    headers=[
                        "标题 title",
                        "来源 source",
                        "日期 date",
                        "地区 region",
                        "段落 chunks",
                        "文件 file",
                    ],
                    interactive=False,
                    wrap=True,
                    column_widths=["24%", "30%", "10%", "8%", "7%", "21%"],
                    elem_id="tb-articles",
                )
                reingest_btn = gr.Button(f"重新索引 {s.corpus}/ (re-ingest)")
                summary = gr.Markdown()
                if s.allow_upload:
                    files = gr.File(
                        label=f"上传文章 Upload (≤ {s.max_upload_mb:g} MB each)",
                        file_count="multiple",
                        file_types=sorted(SUPPORTED),
                    )
                    files.upload(upload, files, [summary, table], api_name="upload")

        inputs = [box, chatbot, region, source, date_from, date_to, shown]
        outputs = [chatbot, sources, box, shown]
        send.click(chat, inputs, outputs, api_name="chat")
        box.submit(chat, inputs, outputs, api_visibility="private")
        clear.click(
            lambda: ([], sources_html(None, 0), []), None, [chatbot, sources, shown], api_visibility="private"
        )
        chatbot.clear(lambda: (sources_html(None, 0), []), None, [sources, shown], api_visibility="private")
        reingest_btn.click(reingest, None, [summary, table], api_name="reingest", concurrency_limit=1)

        def on_load() -> tuple[list[list], gr.Dropdown, gr.Dropdown]:
            r, src = choices()
            return article_rows(), gr.Dropdown(choices=r, value=ALL), gr.Dropdown(choices=src, value=ALL)

        demo.load(on_load, None, [table, region, source], api_visibility="private")
    return demo
