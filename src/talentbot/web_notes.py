"""What the browser chat says besides answers: errors as chat bubbles in Chinese and English, and the filters
in force as a line that stays visible while the filter accordion is closed.

Everything that comes from a client or an exception is escaped (:func:`talentbot.web_render.md_safe`, or
HTML-escaped for the filter line).
"""

from __future__ import annotations

import html

from .errors import (
    ConfigError,
    EmptyStoreError,
    InputError,
    LLMError,
    StoreError,
    StoreLockedError,
    TalentBotError,
)
from .retrieval import Filters
from .web_render import ERROR_HEAD, md_safe

ALL = "（全部）"  # the filter choice that filters nothing
FILTER_CHARS = 40  # characters of each filter value shown in the filter line

# Chinese for the input errors the bot raises, keyed by a phrase of their English message; the English message
# is shown under it in full, so a message that matches none of these still says exactly what to fix.
_INPUT_ZH = (
    ("is empty", "问题是空的：请输入一个问题。"),
    ("control characters", "问题里有控制字符（如 NUL）：请删掉后再问。"),
    ("no words", "问题里没有文字（只有符号或表情）：请用文字提问。"),
    ("characters long", "输入太长：请缩短问题或筛选条件。"),
    ("not a date", "日期格式不对：请写成 YYYY、YYYY-MM 或 YYYY-MM-DD。"),
    ("must be text", "输入必须是文字：请从列表中选择或重新输入。"),
)


def error_zh(e: BaseException) -> str:
    """A Chinese sentence for ``e``: what went wrong and what to do, by the kind of error."""
    if isinstance(e, InputError):
        text = str(e)
        return next((zh for key, zh in _INPUT_ZH if key in text), "输入有误：请按下面的提示修改后再问。")
    if isinstance(e, EmptyStoreError):
        return "还没有索引任何文章：请先运行 talentbot ingest corpus，或在“文章”页重新索引。"
    if isinstance(e, StoreLockedError):
        return "资料库正在重新索引：请稍后再问。"
    if isinstance(e, StoreError):
        return "资料库（向量库）无法读取：请联系管理员，或重新索引。"
    if isinstance(e, LLMError):
        return "大模型服务出错：请稍后再问。"
    if isinstance(e, ConfigError):
        return "服务配置有误：请联系管理员。"
    if isinstance(e, TalentBotError):
        return "出错了：请按下面的提示处理后再试。"
    return "服务内部出错：这个问题没有得到回答，请稍后再试。"


def error_en(e: BaseException) -> str:
    """The English message of ``e``: its own for a :class:`TalentBotError`, a generic one for anything else
    (whose text may hold internals and is only logged)."""
    if isinstance(e, TalentBotError):
        return str(e)
    return "internal error: the question was not answered; try again, and see the server log if it persists"


def error_bubble(e: BaseException) -> str:
    """The chat bubble for an error: a heading, the Chinese sentence, the English message (Markdown, escaped)."""
    return f"{ERROR_HEAD}\n\n{md_safe(error_zh(e))}\n\n{md_safe(error_en(e))}"


def error_message(e: BaseException) -> str:
    """The error in both languages on one line, HTML-escaped: for ``gr.Error`` (API clients, toasts)."""
    return html.escape(f"{error_zh(e)} {error_en(e)}")


def filter_parts(region: object, source: object, date_from: object, date_to: object) -> list[str]:
    """The filters in force as short Chinese phrases (地区=广东, 来源=…, 日期 2020-01-01 至 …), unescaped.
    A value that is not text, is blank or is :data:`ALL` is no filter."""

    def value(v: object) -> str:
        v = v.strip() if isinstance(v, str) else ""
        if v == ALL:
            return ""
        return v if len(v) <= FILTER_CHARS else v[: FILTER_CHARS - 1] + "…"

    r, s, f, t = value(region), value(source), value(date_from), value(date_to)
    parts = [f"地区={r}"] if r else []
    if s:
        parts.append(f"来源={s}")
    if f or t:
        parts.append(f"日期 {f or '…'} 至 {t or '…'}")
    return parts


def filter_line(region: object, source: object, date_from: object, date_to: object) -> str:
    """The filter line shown under the question box (HTML): empty when no filter is in force."""
    parts = filter_parts(region, source, date_from, date_to)
    if not parts:
        return ""
    return (
        "<div class='tb-filters'><b>筛选 Filters</b>：" + html.escape(" · ".join(parts)) + "<br>"
        "<span class='tb-meta'>只在符合筛选的文章中查找 · Only matching articles are searched</span></div>"
    )


def filter_hint(filters: Filters) -> str:
    """The note under a refusal made while filters are in force (Markdown): they may have left the answer out."""
    parts = filter_parts(filters.region, filters.source, filters.date_from, filters.date_to)
    if not parts:
        return ""
    shown = md_safe(" · ".join(parts))
    return (
        f"\n\n> 当前筛选：{shown}。答案可能在筛选范围之外：点“清除筛选”后再问一次。"
        "Filters are on; the answer may lie outside them: clear the filters and ask again."
    )
