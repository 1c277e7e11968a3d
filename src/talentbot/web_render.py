"""What the browser chat shows: answer bubbles (Markdown) and Sources cards (HTML), and the way back.

Everything that comes from a document, the LLM or a client is escaped: no raw HTML, no images, and no
live link except the [n] markers that lead to the cited passages' cards. Markdown link syntax is
escaped, and bare URLs and e-mail addresses are written so that no GFM autolinker turns them into links
(a URL that became a link would also swallow the [n] marker right after it).
"""

from __future__ import annotations

import html
import logging
import re
from typing import Any

from .answer import Answer
from .sentences import split_sentences
from .tables import parse_row

logger = logging.getLogger(__name__)

# Characters that start or close Markdown links and images; escaped with a backslash (the backslash first).
_MD_LINK = re.compile(r"([\\\[\]])")
# What GFM autolinkers (Gradio's marked) recognise: scheme://, www. and e-mail addresses.
_AUTOLINK_SCHEME = re.compile(r"(?i)(?<=[a-z0-9+.\-]):(?=//)")
_AUTOLINK_WWW = re.compile(r"(?i)(www)\.")  # no \b: a CJK character or digit may stand right before it
# The first line of an error bubble (web_notes.error_bubble): how it is told apart from answers.
ERROR_HEAD = "**出错了 · Error**"
_CITE_LINK = re.compile(r"\[\[(\d{1,2})\]\]\(#cite-\d+-\d+\)")
_MD_UNESCAPE = re.compile(r"\\([\\\[\]])")


def md_safe(text: str) -> str:
    """Escape ``text`` for a Markdown bubble: plain Markdown (bold, lists) stays; HTML, images and links don't.

    HTML is escaped; ``[``, ``]`` and ``\\`` are backslash-escaped (no link, image or reference
    definition can form); ``scheme://``, ``www.`` and ``@`` are written as character references, which
    show the same but are not autolinked.
    """
    out = _MD_LINK.sub(r"\\\1", html.escape(text, quote=False))
    out = _AUTOLINK_SCHEME.sub("&#58;", out)
    out = _AUTOLINK_WWW.sub(r"\1&#46;", out)
    return out.replace("@", "&#64;")


def md_unsafe(text: str) -> str:
    """Undo :func:`md_safe` and the [n] links of :func:`answer_markdown`: the plain text of a chat bubble."""
    return html.unescape(_MD_UNESCAPE.sub(r"\1", _CITE_LINK.sub(r"[\1]", text)))


# A line that is an item of a quoted list: （一）…, 一、…, 一是… (1. is a Markdown list item by itself).
_ITEM_LINE = re.compile(
    r"^(?:[（(][一二三四五六七八九十\d]{1,3}[)）]|[一二三四五六七八九十]{1,3}、|[一二三四五六七八九十]是)"
)


def _bold(body: str, highlights: list[str]) -> str:
    """The answer's figures and names (``Answer.highlights``) in bold, once each, where Markdown can close
    the emphasis (they start and end with a letter or digit)."""
    for h in highlights:
        eh = md_safe(h.strip())
        if eh and re.match(r"\w", eh[0]) and re.match(r"\w", eh[-1]) and eh in body:
            body = body.replace(eh, f"**{eh}**", 1)
    return body


def _lists(body: str) -> str:
    """Runs of item lines as a Markdown list, with a blank line before and after it."""
    out: list[str] = []
    in_list = False
    for line in body.split("\n"):
        item = bool(_ITEM_LINE.match(line))
        if item != in_list and out:
            out.append("")
        out.append(f"- {line}" if item else line)
        in_list = item
    return "\n".join(out)


def parts_table(answer: Answer) -> str:
    """A multi-part answer (``Answer.parts``) as a Markdown table: part, the answer quoted for it, [n]."""
    if len(answer.parts) < 2:
        return ""

    def cell(text: object) -> str:
        return md_safe(str(text)).replace("|", "｜").replace("\n", " ")

    rows = [
        f"| {cell(p.get('label', ''))} | {cell(p.get('answer', ''))} | "
        f"{cell('[' + str(p['n']) + ']') if p.get('n') else '—'} |"
        for p in answer.parts
    ]
    return "\n".join(["| 问题 Part | 答案 Answer | 出处 Source |", "| --- | --- | --- |", *rows])


def answer_markdown(answer: Answer, turn: int) -> str:
    """The chat bubble: escaped text, the figures that answer in bold, quoted lists as lists, a table for
    a multi-part answer, [n] as links to the passage cards, a visible no-answer style."""
    body = md_safe(answer.text)
    if getattr(answer, "clarify", False):  # a vague question: what to add, what the documents cover
        return f"**请把问题说得具体一些 · Please narrow the question down**\n\n{body}"
    if answer.no_answer:
        return f"⚠️ **未找到答案 · No answer in the documents**\n\n_{body}_"
    body = _lists(_bold(body, answer.highlights))
    for table in [parts_table(answer), *row_tables(answer)]:
        if table:
            body += "\n\n" + table
    cited = {str(c.n) for c in answer.citations}
    body = re.sub(
        r"\\\[(\d{1,2})\\\]",
        lambda m: f"[[{m.group(1)}]](#cite-{turn}-{m.group(1)})" if m.group(1) in cited else m.group(0),
        body,
    )
    warnings = "".join(f"\n\n> ⚠️ {md_safe(w)}" for w in answer.warnings)
    return body + warnings


def row_tables(answer: Answer) -> list[str]:
    """A quoted table row (:mod:`talentbot.tables`) rendered as the table row it is: its headers over its
    values, under the table's title and the citation's [n]."""
    out = []
    for c in answer.citations:
        parsed = parse_row(c.quote.strip())
        if parsed is None:
            continue
        title, cells = parsed
        head = "| " + " | ".join(md_safe(h) for h, _ in cells) + " |"
        rule = "|" + "---|" * len(cells)
        row = "| " + " | ".join(md_safe(v.rstrip("。")) for _, v in cells) + " |"
        out.append(f"{md_safe(title)} \\[{c.n}\\]\n\n{head}\n{rule}\n{row}")
    return out


def quote_spans(text: str, quote: str) -> list[tuple[int, int]]:
    """Where the sentences of ``quote`` stand in ``text``, in order: each is looked for after the one before
    (so a short sentence that also occurs earlier is not marked there), else anywhere not marked yet."""
    spans: list[tuple[int, int]] = []
    at = 0
    for q in split_sentences(quote):
        q = q.strip()
        if not q:
            continue
        i = text.find(q, at)
        if i < 0:
            i = text.find(q)
            while i >= 0 and any(a < i + len(q) and i < b for a, b in spans):
                i = text.find(q, i + 1)
        if i >= 0:
            spans.append((i, i + len(q)))
            at = i + len(q)
    return sorted(spans)


def _emphasised(raw: str, figures: list[str] | tuple[str, ...]) -> str:
    """``raw`` HTML-escaped with the first occurrence of each of ``figures`` in ``<strong>``."""
    spans: list[tuple[int, int]] = []
    for f in figures:
        f = f.strip()
        i = raw.find(f) if f else -1
        while i >= 0 and any(a < i + len(f) and i < b for a, b in spans):
            i = raw.find(f, i + 1)
        if i >= 0:
            spans.append((i, i + len(f)))
    out, last = [], 0
    for a, b in sorted(spans):
        out += [html.escape(raw[last:a]), f"<strong>{html.escape(raw[a:b])}</strong>"]
        last = b
    return "".join(out) + html.escape(raw[last:])


def marked(text: str, quote: str, figures: list[str] | tuple[str, ...] = ()) -> str:
    """``text`` HTML-escaped, with only the sentences of ``quote`` in ``<mark>`` (never the rest of the
    passage) and, inside them, the answer's ``figures`` in ``<strong>``."""
    out, last = [], 0
    for a, b in quote_spans(text, quote):
        out += [html.escape(text[last:a]), f"<mark>{_emphasised(text[a:b], figures)}</mark>"]
        last = b
    out.append(html.escape(text[last:]))
    return "".join(out)


def sources_html(answer: Answer | None, turn: int) -> str:
    """Cards of the cited passages with only the quoted sentences highlighted (all text escaped)."""
    if answer is None:
        return "<div class='tb-meta'>引用的原文会显示在这里。Cited passages appear here.</div>"
    if getattr(answer, "clarify", False):
        return "<div class='tb-meta'>问题较宽泛，尚未引用原文。The question is broad: nothing is cited yet.</div>"
    if answer.no_answer:
        return (
            "<div class='tb-none'>资料中没有找到可以回答这个问题的段落，因此不引用任何原文。<br>"
            "No passage in the documents answers this question.</div>"
        )
    cards = []
    for c in answer.citations:
        text = marked(c.text, c.quote, answer.highlights)
        scan = "OCR 扫描件识别 (scanned, read by OCR)" if getattr(c, "ocr", False) else ""
        where = " · ".join(
            html.escape(x) for x in (c.file, c.label, f"第{c.page}页" if c.page else "", scan) if x
        )
        effective = getattr(c, "effective", "") or ""  # when the cited policy takes effect, where known
        meta = " · ".join(
            html.escape(x)
            for x in (c.source, c.date, f"施行 effective {effective}" if effective else "")
            if x
        )
        cards.append(
            f"<div class='tb-cite' id='cite-{turn}-{c.n}'><div class='tb-head'>[{c.n}] "
            f"{html.escape(c.title)}</div><div class='tb-meta'>{meta}<br>{where}</div>"
            f"<div class='tb-text'>{text}</div></div>"
        )
    return "".join(cards)


def sources_panel(shown: list) -> str:
    """The Sources panel: the cards of each (turn, question, cards_html) in ``shown``, newest turn first."""
    if not shown:
        return sources_html(None, 0)
    return "".join(
        f"<div class='tb-turn'>第{turn}问 · Q{turn}: {html.escape(q)}</div>{cards}"
        for turn, q, cards in reversed(shown)
    )


def message_text(message: object) -> str | None:
    """The text of one chat message as a client sent it (a string, or Gradio 6 text blocks); None if not text.

    File, image and component parts are never text: they are dropped, so a client-supplied path goes nowhere.
    """
    if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
        return None
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[Any] = [c.get("text") for c in content if isinstance(c, dict) and c.get("type") == "text"]
        if parts and all(isinstance(p, str) for p in parts):
            return " ".join(parts)
    return None


def redisplay(text: str) -> str:
    """A bubble's Markdown as a client sent it back, made safe again: only the [n] citation links stay links.

    Idempotent on what :func:`answer_markdown` and :func:`md_safe` wrote, so an honest history is unchanged.
    """
    lines = []
    for line in text.split("\n"):
        quote = "> " if line.startswith("> ") else ""  # the warnings under an answer are block quotes
        line = line[len(quote) :]
        out, last = [quote], 0
        for m in _CITE_LINK.finditer(line):
            out += [md_safe(md_unsafe(line[last : m.start()])), m.group(0)]
            last = m.end()
        out.append(md_safe(md_unsafe(line[last:])))
        lines.append("".join(out))
    return "\n".join(lines)


def clean_history(history: object, max_turns: int, max_chars: int) -> list[dict]:
    """The client's chat history as text-only messages: the last ``max_turns`` turns, each message capped
    and made safe to display again (:func:`redisplay`).

    Messages that are not text (file parts, unknown roles) are dropped and logged once for the request.
    """
    messages = history if isinstance(history, list) else []
    out, dropped = [], 0
    for m in messages[-2 * max_turns :] if max_turns > 0 else []:
        text = message_text(m)
        if text is None:
            dropped += 1
            continue
        out.append({"role": m["role"], "content": redisplay(text[:max_chars])})
    if dropped:
        logger.warning("chat history: dropped %d message(s) that were not text", dropped)
    # keep whole turns: never start with an answer whose question was cut away (an error bubble has none)
    while out and out[0]["role"] != "user" and not is_error_bubble(out[0]["content"]):
        out.pop(0)
    return out


def is_error_bubble(content: str) -> bool:
    """Whether a chat message is an error bubble (web_notes.error_bubble), not an answer to follow up on."""
    return content.startswith(ERROR_HEAD)


def bot_history(history: list[dict], messages: int, chars: int) -> list[tuple[str, str]]:
    """The recent chat history as (role, plain text) for the bot: display markup undone, size capped. Error
    bubbles are left out, with the question they answered."""
    kept: list[dict] = []
    for m in history:
        if m["role"] == "assistant" and is_error_bubble(m["content"]):
            if kept and kept[-1]["role"] == "user":
                kept.pop()
            continue
        kept.append(m)
    return [(m["role"], md_unsafe(m["content"])[:chars]) for m in kept[-messages:]]
