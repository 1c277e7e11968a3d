"""Tables as text: every row becomes one line that carries its table's title and its column headers.

``【C类人才安家补贴标准】人才类别：C类；安家补贴：30万元；发放方式：分三年。`` A row line is one sentence (no
。！？ inside), so an answer quotes it whole; :mod:`talentbot.chunking` gives each row its own chunk, so a row
is never split; :func:`parse_row` turns one back into (title, [(header, value)]) for display as a table row.
Loaders of PDF, Word, .xlsx and .csv tables call :func:`table_lines` with the table's cells.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["cell_text", "is_row", "parse_row", "row_line", "table_lines"]

TITLE_MAX = 100  # characters of a table title kept in each row
HEADER_MAX = 60
_CELL = rf"[^；：\n]{{1,{HEADER_MAX}}}：[^；\n]*"
_ROW = re.compile(rf"^【(?P<title>[^【】\n]{{1,{TITLE_MAX}}})】(?P<cells>(?:{_CELL}；)*{_CELL})。$")
_SECTION = re.compile(r"^(?!注|备注|说明)[^。；，,]{1,30}$")  # "一、A类人才"; not a note or a sentence
_SPACE = re.compile(r"[ \t\u3000\xa0]+")


def is_row(line: str) -> bool:
    """Whether ``line`` is a table row written by :func:`row_line`."""
    return bool(_ROW.match(line))


def parse_row(line: str) -> tuple[str, list[tuple[str, str]]] | None:
    """(table title, [(header, value), ...]) of a row line, or None for any other line."""
    m = _ROW.match(line)
    if not m:
        return None
    pairs = [cell.split("：", 1) for cell in m.group("cells").split("；")]
    return m.group("title"), [(h, v) for h, v in pairs]


def _join_lines(text: str) -> str:
    """Lines of a wrapped cell joined: without a space between Chinese characters, with one between words."""
    out = ""
    for part in (p.strip() for p in text.splitlines()):
        if part:
            out += (" " if out and out[-1].isascii() and part[0].isascii() else "") + part
    return _SPACE.sub(" ", out).strip()


def cell_text(value: object) -> str:
    """A cell's text as it can stand inside a row line: one line, no 。！？； inside (each becomes ，)."""
    text = _join_lines(str(value)) if value is not None else ""
    text = re.sub(r"[。！？!?；;]+(?=.)", "，", text)
    return text.rstrip("。！？!?；;，,、 ")


def _header(value: str | None, column: int) -> str:
    head = re.sub(r"[：:；;]", "", value or "")[:HEADER_MAX].strip()
    return head or f"第{column + 1}列"


def row_line(title: str, pairs: Sequence[tuple[str, str]]) -> str:
    """The line of one row: 【title】header：value；header：value。 (empty values left out)."""
    title = re.sub(r"[【】\n]", "", title).strip()[:TITLE_MAX] or "表格"
    kept: list[tuple[str, str]] = []
    for head, value in pairs:
        if value and (head, value) not in kept[-1:]:  # a merged cell spans columns: said once
            kept.append((head, value))
    return f"【{title}】" + "；".join(f"{h}：{v}" for h, v in kept) + "。" if kept else ""


def table_lines(rows: Sequence[Sequence[object]], title: str = "") -> list[str]:
    """The lines of one table: a row line per data row, and plain lines for the table's own title row,
    section rows (one value across the table, e.g. "一、A类人才", which then joins the title of the rows under
    it) and notes. The first row with two or more values is the header. ``None`` marks a cell covered by a
    merged one (pdfplumber): under the header it takes the value above it (cells merged down a column).
    A row with its only value in the first column is a section label (short) or a note (plain text).
    ``title`` is used when the table has no title row of its own."""
    cells = [[None if c is None else cell_text(c) for c in row] for row in rows]
    cells = [r for r in cells if any(r)]
    width = max((len(r) for r in cells), default=0)
    lines: list[str] = []
    i = 0
    while (
        i < len(cells) and width > 1 and len({c for c in cells[i] if c}) == 1
    ):  # title rows above the header
        only = next(c for c in cells[i] if c)
        title = only if i == 0 else f"{title} {only}"
        lines.append(only)
        i += 1
    if i >= len(cells):
        return lines
    header_row = cells[i]
    headers: list[str] = []
    for j in range(width):
        value = header_row[j] if j < len(header_row) else None
        headers.append(_header(value, j) if value is not None or not headers else headers[-1])
    section, above = "", [""] * width
    for row in cells[i + 1 :]:
        values = [row[j] if j < len(row) else "" for j in range(width)]
        if [v or "" for v in values] == [h if header_row[j] else "" for j, h in enumerate(headers)]:
            continue  # the header repeated (a table running over pages)
        if width > 1 and values[0] and not any(values[1:]) and len(set(values) - {None, ""}) == 1:
            lines.append(values[0])  # one value across the row: a section label, or a note
            if _SECTION.match(values[0]):
                section = values[0]
            continue
        filled = [above[j] if v is None else v for j, v in enumerate(values)]
        above = [v or "" for v in filled]
        line = row_line(
            f"{title}·{section}" if title and section else title or section,
            list(zip(headers, [v or "" for v in filled], strict=True)),
        )
        if line:
            lines.append(line)
    return lines
