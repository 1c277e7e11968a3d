"""Word (.docx) files: paragraphs and tables in document order (python-docx).

A table's rows become row lines (:mod:`talentbot.tables`); its title is the table's own title row, else the
short paragraph just above it (e.g. "表1 C类人才安家补贴标准"), else "表N". Merged cells repeat their text
in every grid cell they cover (python-docx), and a cell merged across columns is said once per row.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

from .article import Article, first_line, make_article
from .decoding import clean_text
from .limits import Limits, ParseError, check_chars, check_zip
from .tables import table_lines

CAPTION_MAX = 40  # a paragraph this short right above a table is its caption


def _table_title(above: str, n: int) -> str:
    above = above.strip()
    if above and len(above) <= CAPTION_MAX and above[-1] not in "。；;！？!?：:，,":
        return above
    return f"表{n}"


def _rows(table: Any) -> list[list[str]]:
    return [[cell.text for cell in row.cells] for row in table.rows]


def load_docx(path: Path, data: bytes, limits: Limits) -> Article:
    """A .docx file: its paragraphs, and one line per table row carrying the headers."""
    import docx
    from docx.table import Table

    check_zip(data, limits, "Word file")
    try:
        d = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as e:
        raise ParseError(f"corrupt or unreadable Word file ({e})") from e
    parts: list[str] = []
    chars, tables, above = 0, 0, ""
    for item in d.iter_inner_content():
        if isinstance(item, Table):
            tables += 1
            part = "\n".join(table_lines(_rows(item), _table_title(above, tables)))
        else:
            part = above = item.text
        parts.append(part)
        chars += len(part)
        check_chars(chars, limits)  # stop at the block that crosses the cap
    body = clean_text("\n\n".join(parts))
    props = d.core_properties
    meta = {"date": props.created.date().isoformat() if props.created else "", "source": props.author or ""}
    return make_article(
        path,
        props.title or first_line(body) or path.stem,
        [(None, body)],
        meta,
        "no text found (the Word file has no paragraphs of text)",
    )
