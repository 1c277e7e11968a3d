"""Spreadsheets: .xlsx (openpyxl, read-only, cached values) and .csv (standard library), row by row.

Each sheet is one table (:func:`talentbot.tables.table_lines`): its title row, else its name (unless a
default such as "Sheet1"), else the file's name is the title every row carries. A file with more than
``Limits.max_sheet_rows`` rows is refused with its reason: a partial table would answer "not found" for the
rows left out.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from .article import Article, make_article
from .decoding import clean_text, decode
from .limits import Limits, ParseError, check_chars, check_zip
from .tables import is_row, table_lines

_Row = TypeVar("_Row", list[object], list[str])
MAX_COLUMNS = 200  # cells read per row: real tables are far narrower
_DEFAULT_SHEET = re.compile(r"^(sheet|工作表|表)\s*\d*$", re.I)


def _capped(rows: Iterable[_Row], counted: list[int], limits: Limits) -> Iterator[_Row]:
    """The rows, counting them across the file; over ``limits.max_sheet_rows`` raises :class:`ParseError`."""
    for row in rows:
        counted[0] += 1
        if counted[0] > limits.max_sheet_rows:
            raise ParseError(
                f"the spreadsheet has over {limits.max_sheet_rows:,} rows "
                "(raise TALENTBOT_MAX_SHEET_ROWS to index it)"
            )
        yield row


def _value(cell: object) -> object:
    """A cell's value as shown: whole numbers without '.0', percentages as %, dates as YYYY-MM-DD."""
    value = getattr(cell, "value", cell)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(" ", "minutes")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (int, float)):
        if "%" in str(getattr(cell, "number_format", "")):
            value = value * 100
            return f"{value:.10g}%"
        return f"{value:.15g}" if isinstance(value, float) else str(value)
    return value


def _sheet_title(name: str, fallback: str) -> str:
    return fallback if _DEFAULT_SHEET.match(name.strip()) else name.strip()


def load_xlsx(path: Path, data: bytes, limits: Limits) -> Article:
    """An .xlsx workbook: every sheet's rows, each carrying its headers and the sheet's title."""
    import zipfile

    import openpyxl

    check_zip(data, limits, "Excel file")
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as e:
        raise ParseError(f"corrupt or unreadable Excel file ({e})") from e
    lines: list[str] = []
    chars, counted = 0, [0]
    try:
        for ws in book.worksheets:
            rows = _capped(
                ([_value(c) for c in row] for row in ws.iter_rows(max_col=MAX_COLUMNS)), counted, limits
            )
            sheet = table_lines(list(rows), _sheet_title(ws.title, path.stem))
            chars += sum(len(s) for s in sheet)
            check_chars(chars, limits)
            lines.extend(sheet)
        title = book.properties.title or _lead(lines)
    finally:
        book.close()
    return make_article(
        path,
        title or path.stem,
        [(None, "\n".join(lines))],
        {},
        "no text found (the workbook's sheets are empty)",
    )


def load_csv(path: Path, data: bytes, limits: Limits) -> Article:
    """A .csv file (UTF-8, GB18030 or Big5; comma, tab, semicolon or bar separated) as one table."""
    if len(data) > 4 * limits.max_chars:
        check_chars(len(data) // 4, limits)
    text = clean_text(decode(data))
    check_chars(len(text), limits)
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:8192], delimiters=",\t;|，")
    except csv.Error:
        dialect = csv.excel
    try:
        rows = list(_capped(csv.reader(io.StringIO(text), dialect), [0], limits))
    except csv.Error as e:
        raise ParseError(f"corrupt CSV ({e})") from e
    lines = table_lines([[c.strip() for c in row[:MAX_COLUMNS]] for row in rows], path.stem)
    return make_article(
        path,
        _lead(lines) or path.stem,
        [(None, "\n".join(lines))],
        {},
        "no text found (the CSV file has no cells)",
    )


def _lead(lines: list[str]) -> str:
    """The table's own title row, when it has one (the first line, if it is not a row)."""
    return lines[0][:80] if lines and not is_row(lines[0]) else ""
