"""Web-page junk in text copied off a news page: breadcrumbs, image names, bylines, share widgets.

:func:`clean_web_text` keeps every body line: a page's only paragraph stays its body, never just a title.
"""

from __future__ import annotations

import re

_BREADCRUMB = re.compile(r"^(当前位置|您的位置|你的位置|首页\s*[>›»])")
_IMAGE_LINE = re.compile(r"^\S+\.(png|jpe?g|gif|webp|bmp)(\?\S*)?$", re.I)
_BYLINE = re.compile(
    r"(?:编辑|责任编辑|责编)\s*[:：]\s*(?P<editor>\S+)|来源\s*[:：]\s*(?P<source>\S+)|"
    r"(?:发布时间|发布日期|时间)\s*[:：]\s*(?P<date>\d{4}[-年/.]\d{1,2}[-月/.]\d{1,2})"
)
_ORIGIN_LINE = re.compile(r"^[（(]\s*来源\s*[:：]\s*(?P<origin>[^）)]+)[）)]$")
_SHARE_START = re.compile(r"^(分享到|更多分享|一键分享)")
TITLE_MAX = 100  # a longer first line is a paragraph, not a headline


def clean_web_text(text: str) -> tuple[str, str, dict[str, str]]:
    """Strip page junk from text copied off a news page; return (title, body, metadata).

    The first kept line is the title when it is short enough to be one; it leaves the body only when
    other text remains, so a one-paragraph page keeps its paragraph. The title is '' when the page has none.
    """
    lines = text.split("\n")
    meta: dict[str, str] = {}
    # The share widget runs from "分享到" to the end of the page.
    for i, line in enumerate(lines):
        if _SHARE_START.match(line.strip()) and i > len(lines) // 2:
            lines = lines[:i]
            break
    title, first, body = "", True, []
    for raw in lines:
        line = raw.strip()
        if not line:
            body.append("")
            continue
        if _BREADCRUMB.match(line) or _IMAGE_LINE.match(line):
            continue
        found = {k: v for m in _BYLINE.finditer(line) for k, v in m.groupdict().items() if v}
        if len(found) >= 2 and len(line) < 120 and _is_byline(line):
            meta.update(found)
            continue
        origin = _ORIGIN_LINE.match(line)
        if origin:  # kept in the text too: it is what the article says of its origin
            meta["original_source"] = origin.group("origin").strip()
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
        meta["date"] = re.sub(r"[年/.月]", "-", meta["date"]).strip("-")
        y, mo, d = meta["date"].split("-")
        meta["date"] = f"{y}-{int(mo):02d}-{int(d):02d}"
    return title, text_body, meta


_WORD_CHAR = re.compile(r"[\w\u4e00-\u9fff]")
BYLINE_RESIDUE_MAX = 20  # word characters a byline line may hold besides its fields (a clock time, a hit count)


def _is_byline(line: str) -> bool:
    """Whether the line is only a byline: little text is left once its 编辑/来源/时间 fields are cut out."""
    residue = _BYLINE.sub("", line)
    return len(_WORD_CHAR.findall(residue)) <= BYLINE_RESIDUE_MAX


def looks_like_web_page(text: str) -> bool:
    """Whether the start of ``text`` carries a breadcrumb, or a byline naming a 来源 (source)."""
    head = text[:600]
    return bool(_BREADCRUMB.search(head) or (_BYLINE.search(head) and "来源" in head))
