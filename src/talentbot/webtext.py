"""Web-page junk in text copied off a news page: breadcrumbs, image names, bylines, share widgets.

General rules, not one site's layout: a line is dropped only when the whole line is page furniture (a
breadcrumb, an image file name, a byline of 编辑/责任编辑/来源/作者/时间 fields, a view counter, a row of
widget words such as 【字体：大 中 小】【打印】【关闭】, a 上一篇/下一篇 link, a 原标题 line), and the page's tail is
cut at the first tail marker (分享到, 返回搜狐, 相关阅读, 扫一扫, 预览时标签不可点 …) found past the first
third of the text. :func:`clean_web_text` keeps every body line: a page's only paragraph stays its body,
never just a title.
"""

from __future__ import annotations

import re

_BREADCRUMB = re.compile(r"^(当前位置|您的位置|你的位置|首页\s*[>›»/])")
_IMAGE_LINE = re.compile(r"^\S+\.(png|jpe?g|gif|webp|bmp)(\?\S*)?$", re.I)
_DATE = r"\d{4}[-年/.]\d{1,2}[-月/.]\d{1,2}"
_BYLINE = re.compile(
    r"(?:编辑|责任编辑|责编|作者|记者)\s*[:：]\s*(?P<editor>[^\s|｜]+)|来源\s*[:：]\s*(?P<source>[^\s|｜]+)|"
    rf"(?:发布时间|发布日期|发表时间|时间|日期)\s*[:：]\s*(?P<date>{_DATE})"
)
_BARE_DATE = re.compile(rf"(?<!\d){_DATE}")
_POSTED = re.compile(
    rf"^.{{0,40}}?(?P<date>{_DATE})日?\s*(?:\d{{1,2}}:\d{{2}}(?::\d{{2}})?)?\s*(?:发表于|发布于)\S{{0,10}}$"
)
_ORIGIN_LINE = re.compile(r"^[（(]\s*来源\s*[:：]\s*(?P<origin>[^）)]+)[）)]$")
_TAIL = re.compile(
    r"^(分享到|更多分享|一键分享|返回搜狐|相关(阅读|新闻|链接|推荐|文章|稿件|文档)|推荐阅读|延伸阅读|热点推荐|"
    r"热门推荐|热门文章|猜你喜欢|扫一扫在手机|微信扫一扫|用微信扫描|预览时标签不可点|继续滑动看下一个|"
    r"向上滑动看下一个|免责声明|版权声明|声明\s*[:：]|网站地图|主办单位\s*[:：]|版权所有)"
)
_SEP = r"[\s【】\[\]()（）|｜/:：·]*"
_WIDGET = re.compile(
    rf"^{_SEP}(?:(?:字体|字号|大|中|小|默认|打印(?:本页)?|关闭(?:本页|窗口)?|收藏(?:本页)?|分享|纠错|"
    rf"返回顶部|返回|顶部|放大|缩小|阅读原文|在看|点赞|赞|留言|写留言|[Xx×]){_SEP})+$"
)
_COUNTER = re.compile(
    r"^(浏览次数|浏览量|阅读量|阅读数|阅读|点击数|点击量|访问量|访问次数|人气)\s*[:：]?\s*[\d,.]+[万wW+]*次?$"
)
_LINK_LINE = re.compile(
    r"^(上一篇|下一篇|上一条|下一条|原标题)\s*[:：]|^(发布于|发表于|IP属地)\s*[:：]?\s*\S{1,12}$"
)
TAIL_LINE_MAX = 30  # a tail marker is a short line, not a sentence ('分享到朋友圈前，请先…。' is text)
TITLE_MAX = 100  # a longer first line is a paragraph, not a headline
TAIL_FROM = 1 / 3  # share of the text before which no tail marker cuts the page


def _cut_tail(lines: list[str]) -> list[str]:
    """The lines up to the first tail marker found past the first third of the text (never the body's start)."""
    total = sum(len(ln) for ln in lines)
    seen = 0
    for i, line in enumerate(lines):
        if _is_tail(line.strip()) and seen > TAIL_FROM * total:
            return lines[:i]
        seen += len(line)
    return lines


def _is_tail(line: str) -> bool:
    """A tail marker on a line of its own: short and not a sentence, or a site's disclaimer (声明：…)."""
    if not _TAIL.match(line):
        return False
    return line.startswith(("声明", "免责声明", "版权声明")) or (
        len(line) <= TAIL_LINE_MAX and not line.endswith("。")
    )


def _furniture(line: str) -> bool:
    """Page furniture on a line of its own. A long line is text, whatever it opens with: a news body often
    follows '原标题：…' on the same line."""
    if len(line) > TITLE_MAX:
        return False
    return bool(
        _BREADCRUMB.match(line)
        or _IMAGE_LINE.match(line)
        or _WIDGET.match(line)
        or _COUNTER.match(line)
        or _LINK_LINE.match(line)
    )


def clean_web_text(text: str) -> tuple[str, str, dict[str, str]]:
    """Strip page junk from text copied off a news page; return (title, body, metadata).

    The first kept line is the title when it is short enough to be one; it leaves the body only when
    other text remains, so a one-paragraph page keeps its paragraph. The title is '' when the page has none.
    """
    meta: dict[str, str] = {}
    title, first, body = "", True, []
    for raw in _cut_tail(text.split("\n")):
        line = raw.strip()
        if not line:
            body.append("")
            continue
        if _furniture(line):
            continue
        origin = _ORIGIN_LINE.match(line)
        if origin:  # kept in the text too: it is what the article says of its origin
            meta["original_source"] = origin.group("origin").strip()
        elif (found := _byline(line)) is not None:
            for key, value in found.items():
                meta.setdefault(key, value)
            continue
        if first:
            first = False
            if len(line) <= TITLE_MAX:
                title = line
                continue
        body.append(line)
    text_body = "\n".join(body).strip()
    if not text_body and title:  # a one-paragraph page: its only line is its body
        text_body = title
    if "date" in meta:
        y, mo, d = re.split(r"[-年/.月]", meta["date"].rstrip("日"))[:3]
        meta["date"] = f"{y}-{int(mo):02d}-{int(d):02d}"
    return title, text_body, meta


_WORD_CHAR = re.compile(r"[\w\u4e00-\u9fff]")
BYLINE_RESIDUE_MAX = (
    20  # word characters a byline line may hold besides its fields (a clock time, a hit count)
)
SINGLE_FIELD_MAX = 40  # a line of one byline field ('责任编辑：张三') is at most this long


def _byline(line: str) -> dict[str, str] | None:
    """The fields of a line that is only a byline (little text left once its fields are cut out), else None.
    A line of one field must be short; a '… 2024-05-06 10:00 发表于北京' line is a byline too."""
    posted = _POSTED.match(line)
    if posted and len(line) <= 60:
        return {"date": posted.group("date")}
    found = {k: v for m in _BYLINE.finditer(line) for k, v in m.groupdict().items() if v}
    if not found or (len(found) == 1 and len(line) > SINGLE_FIELD_MAX) or len(line) >= 120:
        return None
    residue = _BYLINE.sub("", line)
    if len(_WORD_CHAR.findall(residue)) > BYLINE_RESIDUE_MAX:
        return None
    bare = _BARE_DATE.search(residue)
    if bare and "date" not in found:
        found["date"] = bare.group(0)
    return found


def looks_like_web_page(text: str) -> bool:
    """Whether the text carries web-page furniture: a breadcrumb or a byline naming a 来源 (source) near its
    start, or a tail marker (分享到, 返回搜狐, 扫一扫 …) or a widget row (【打印】【关闭】) on a line of its own."""
    head = text[:600]
    if _BREADCRUMB.search(head) or (_BYLINE.search(head) and "来源" in head):
        return True
    return any(
        _is_tail(s) or (_WIDGET.match(s) and len(s) > 3) or _POSTED.match(s)
        for s in (ln.strip() for ln in text.split("\n"))
        if s
    )
