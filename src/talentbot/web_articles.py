"""The browser's Articles tab: the indexed articles as table rows, their count, and a reader that shows the
whole text of the article a row stands for, read back from the store (all text HTML-escaped).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .doc_page import MAX_CHUNKS, overlap
from .store_records import ArticleRecord

if TYPE_CHECKING:
    from .bot import TalentBot

logger = logging.getLogger(__name__)

HEADERS = ["标题 title", "来源 source", "日期 date", "地区 region", "段落 chunks", "文件 file"]
READER_EMPTY = (
    "<div class='tb-meta'>点表格中的一行即可阅读该文章全文。Select a row to read the article.</div>"
)


def article_rows(records: Sequence[ArticleRecord]) -> list[list]:
    """One table row per article, in :data:`HEADERS`' order."""
    return [[r.title, r.source, r.date, r.region, r.chunks, r.file] for r in records]


def article_count(records: Sequence[ArticleRecord]) -> str:
    """The line over the table: how many articles (and passages) are indexed (Markdown)."""
    n = len(records)
    chunks = sum(int(r.chunks or 0) for r in records)
    if not n:
        return "**尚未索引任何文章** · No article is indexed yet: re-ingest below, or run `talentbot ingest`."
    return f"**已索引 {n} 篇文章** · {n} article{'s' if n != 1 else ''} indexed ({chunks} 段落 passages)"


def record_for(records: Sequence[ArticleRecord], row: object) -> ArticleRecord | None:
    """The article a table row (its values, as the table sends them) stands for: same file and title."""
    if not isinstance(row, (list, tuple)) or len(row) < len(HEADERS):
        return None
    title, file = str(row[0]), str(row[5])
    return next((r for r in records if r.file == file and r.title == title), None)


def article_texts(bot: TalentBot, rec: ArticleRecord) -> list[tuple[str, str]]:
    """The article's passages in order as (chapter, text), each without the text it repeats of the one before
    (chunks overlap by whole sentences)."""
    n = min(int(rec.chunks or 0), MAX_CHUNKS)
    rows = bot.store.get_chunks([f"{rec.key}:{i}" for i in range(n)])
    order = sorted(rows, key=lambda cid: int(cid.rsplit(":", 1)[1]))
    limit = 2 * bot.settings.chunk_overlap + 200
    out, prev = [], ""
    for cid in order:
        text, meta = rows[cid]
        out.append((str(meta.get("chapter", "") or ""), text[overlap(prev, text, limit) :]))
        prev = text
    return out


def reader_html(rec: ArticleRecord, passages: list[tuple[str, str]]) -> str:
    """The reader: the article's title, what is known of it, and its text, chapter headings included."""
    meta = " · ".join(
        html.escape(x)
        for x in (
            rec.source,
            rec.date,
            f"施行 effective {rec.effective}" if rec.effective else "",
            f"地区 {rec.region}" if rec.region else "",
            rec.file,
        )
        if x
    )
    body, chapter = [], ""
    for ch, text in passages:
        if ch and ch != chapter:
            body.append(f"<div class='tb-chapter'>{html.escape(ch)}</div>")
            chapter = ch
        if text.strip():
            body.append(f"<p>{html.escape(text.strip())}</p>")
    return (
        f"<div class='tb-article'><div class='tb-head'>{html.escape(rec.title or rec.file)}</div>"
        f"<div class='tb-meta'>{meta}</div><div class='tb-text'>{''.join(body)}</div></div>"
    )


def open_article(bot: TalentBot, row: object) -> str:
    """The reader for the article of table row ``row``; a note when it is no longer indexed."""
    rec = record_for(bot.articles(), row)
    if rec is None:
        return (
            "<div class='tb-none'>这篇文章已不在索引中（可能已被重新索引）。"
            "This article is no longer indexed; reload the page.</div>"
        )
    return reader_html(rec, article_texts(bot, rec))
