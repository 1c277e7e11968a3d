"""The browser chat's Gradio Blocks: the chat, its filters and Sources panel, the article table, re-ingest
and (when switched on) uploads. A thin adapter over :class:`TalentBot`; it holds no retrieval logic.

Everything a client sends is capped here too (history, filters, question), whatever the request guard
in front of it (:mod:`talentbot.web_guard`) already did.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import gradio as gr

from .answer import AnswerEvent, TextEvent
from .bot import TalentBot
from .errors import InputError, TalentBotError
from .ingest import IngestReport
from .loaders import SUPPORTED
from .retrieval import Filters
from .web_articles import HEADERS, READER_EMPTY, article_count, article_rows, open_article
from .web_notes import ALL, error_bubble, error_message, filter_hint, filter_line
from .web_render import answer_markdown, bot_history, clean_history, md_safe, sources_html, sources_panel
from .web_style import CSS  # noqa: F401 - re-exported: web.py hands it to Gradio
from .web_upload import check_uploads, drop_rejected, ingest_summary, save_upload, upload_summary

logger = logging.getLogger(__name__)

# Example questions written for the page, not taken from any eval set.
EXAMPLES = [
    "北京无许可证从事人才市场中介服务，最高罚款多少？",
    "《上海市人才流动条例》哪天起施行？",
    "山西的开发区用哪些办法吸引人才？",
    "广州知识城对国际人才有哪些便利措施？",
    "When does Beijing's talent market regulation take effect?",
]
HISTORY_MESSAGES = 12  # chat messages handed to the bot for follow-ups
HISTORY_CHARS = 2000  # characters kept of each of them
API_CALL = gr.EventData(
    None, None
)  # what the chat's event data is when no component of the page triggered it


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


def _failed(history: list[dict], e: BaseException, answering: bool) -> list[dict]:
    """The chat after ``e``: its error bubble in place of the answer being written (``answering``: the last
    message of ``history``), else after the history."""
    bubble = {"role": "assistant", "content": error_bubble(e)}
    return [*history[:-1], bubble] if answering else [*history, bubble]


def build_app(bot: TalentBot, slot: Callable[[], AbstractContextManager] = nullcontext) -> gr.Blocks:
    """The Gradio Blocks app over ``bot``. Each answer is computed inside ``slot()`` (the server's shared
    concurrency gate, :meth:`talentbot.api_shared.Gate.held`); a refusal there is said like any error."""
    s = bot.settings

    def chat(
        message: str,
        history: list,
        region: str | None = None,
        source: str | None = None,
        date_from: str | None = None,
        date_to: str | None = None,
        shown: list | None = None,
        event: gr.EventData = API_CALL,
    ) -> Iterator[tuple[Any, Any, Any, Any]]:
        """Answer ``message`` given the chat ``history``; streams (history, sources panel, textbox, shown).

        The history comes from the client: only its text messages are kept, capped and re-escaped, and only
        the last ``max_history_turns`` turns stay. ``shown`` (a session State, invisible to the API) keeps
        the cited passages of those turns, so the [n] links of every answer in the chat still lead to cards.
        An error becomes a bubble in the chat, in Chinese and English. Asked through the API (``event`` has
        no target: no component of the page triggered it) the error is raised too, as API clients expect;
        on the page it is not, so Gradio lays no error overlay over the chat and the question box.
        """
        current: list[dict] = []
        answering = False
        try:
            if message is not None and not isinstance(message, str):
                raise InputError("the question must be text")
            history = current = clean_history(history, s.max_history_turns - 1, s.max_message_chars)
            shown = list(shown or [])
            turn = _turn(history, shown, s.max_history_turns)
            keep = s.max_history_turns - 1  # earlier turns' cards; [-0:] would keep them all
            shown = [t for t in shown if t[0] < turn][-keep:] if keep else []  # turns cleared or trimmed away
            question = bot.check_question(message or "")
            filters = _filters(region, source, date_from, date_to, s.max_filter_chars)
            with slot():
                events = bot.stream(
                    question, history=bot_history(history, HISTORY_MESSAGES, HISTORY_CHARS), filters=filters
                )
                current = history + [
                    {"role": "user", "content": md_safe(question)},
                    {"role": "assistant", "content": ""},
                ]
                answering = True
                text = ""
                for ev in events:
                    if isinstance(ev, TextEvent):
                        text += ev.text
                        current[-1]["content"] = md_safe(text)
                        yield current, gr.skip(), "", gr.skip()
                    elif isinstance(ev, AnswerEvent):
                        refused = ev.answer.no_answer and not getattr(ev.answer, "clarify", False)
                        hint = filter_hint(filters) if refused else ""
                        current[-1]["content"] = answer_markdown(ev.answer, turn) + hint
                        shown = [*shown, (turn, question, sources_html(ev.answer, turn))]
                        yield current, sources_panel(shown), "", shown
        except Exception as e:  # every error is said in the chat, none leaves Gradio's overlay on it
            if not isinstance(e, TalentBotError):
                logger.exception("the chat could not answer")
            # the question stays in its box, to be corrected or sent again
            yield _failed(current, e, answering), gr.skip(), gr.skip(), gr.skip()
            if event.target is None:
                raise gr.Error(error_message(e), duration=8) from None

    def records() -> list:
        return bot.articles()

    def choices() -> tuple[list[str], list[str]]:
        recs = records()
        regions = sorted({x for r in recs for x in r.region.split(",") if x})
        sources = sorted({r.source for r in recs if r.source})
        return [ALL, *regions], [ALL, *sources]

    def ingest_corpus(progress: gr.Progress) -> IngestReport:
        def report(done: int, total: int, name: str) -> None:
            progress((done, max(total, 1)), desc=f"indexing {name}")

        try:
            return bot.ingest([s.corpus], progress=report)
        except TalentBotError as e:
            raise gr.Error(error_message(e)) from None

    def reingest(
        progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio injects progress through the default
    ) -> tuple[str, list[list]]:
        """Re-index the corpus folder; returns (summary markdown, article table)."""
        return ingest_summary(ingest_corpus(progress)), article_rows(records())

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
            raise gr.Error(error_message(e)) from None
        r = ingest_corpus(progress)
        return upload_summary(r, saved, drop_rejected(r.failed, list(saved))), article_rows(records())

    def show_filters(region: object, source: object, date_from: object, date_to: object) -> tuple[Any, Any]:
        """The filter line (and its row) for the filters as set now: hidden when none is in force."""
        line = filter_line(region, source, date_from, date_to)
        return gr.Row(visible=bool(line)), line

    def read(evt: gr.SelectData) -> str:
        """The reader for the article of the table row selected."""
        return open_article(bot, evt.row_value)

    with gr.Blocks(title="talentbot · 人才政策问答") as demo:
        gr.Markdown(
            "## talentbot · 人才政策问答\n每个答案都引用原文段落，请点击 [n] 核对数字与日期。"
            "Every answer cites the passages it comes from."
        )
        with gr.Tabs():
            with gr.Tab("对话 Chat", id="chat"):
                with gr.Row(elem_id="tb-main"):
                    with gr.Column(scale=3, elem_id="tb-left"):
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
                        with gr.Row(visible=False, elem_id="tb-filter-row") as filter_row:
                            line = gr.HTML("", elem_id="tb-filter-line")
                            unfilter = gr.Button(
                                "清除筛选 Clear filters",
                                size="sm",
                                scale=0,
                                min_width=150,
                                elem_id="tb-clear-filters",
                            )
                        with gr.Accordion("筛选 Filters", open=False, elem_id="tb-filters"):
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
                    with gr.Column(scale=2, elem_id="tb-right"):
                        gr.Markdown("### 引用原文 Sources")
                        sources = gr.HTML(sources_html(None, 0), elem_id="tb-sources")
                        shown = gr.State([])
            with gr.Tab("文章 Articles", id="articles"):
                count = gr.Markdown(elem_id="tb-article-count")
                table = gr.Dataframe(
                    headers=HEADERS,
                    interactive=False,
                    wrap=True,
                    column_widths=["24%", "30%", "10%", "8%", "7%", "21%"],
                    elem_id="tb-articles",
                )
                reader = gr.HTML(READER_EMPTY, elem_id="tb-reader")
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
        filters = [region, source, date_from, date_to]
        gr.on(
            [region.change, source.change, date_from.change, date_to.change],
            show_filters,
            filters,
            [filter_row, line],
            api_visibility="private",
            show_progress="hidden",
            concurrency_limit=None,  # cheap: never waits behind answers
        )
        unfilter.click(lambda: (ALL, ALL, "", ""), None, filters, api_visibility="private")
        reingest_btn.click(reingest, None, [summary, table], api_name="reingest", concurrency_limit=1)
        table.change(lambda: article_count(records()), None, count, api_visibility="private")
        table.select(read, None, reader, api_visibility="private", show_progress="hidden")

        def on_load() -> tuple[list[list], gr.Dropdown, gr.Dropdown]:
            r, src = choices()
            return (
                article_rows(records()),
                gr.Dropdown(choices=r, value=ALL),
                gr.Dropdown(choices=src, value=ALL),
            )

        demo.load(on_load, None, [table, region, source], api_visibility="private")
    return demo
