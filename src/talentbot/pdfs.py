"""PDF files: text per page (pypdf), tables as row lines (pdfplumber), scanned pages by OCR.

Page numbers are kept. On a page where pdfplumber finds a ruled table, the page's text is read by bands
(above, beside and below each table) and each table's rows are placed where the table stands, carrying their
headers (:mod:`talentbot.tables`); the title is the short line just above the table, else ``表N``. A page
with no text layer but an image is read by OCR (:mod:`talentbot.ocr`), so a mixed PDF OCRs only the pages
that lack text; the article then records ``ocr``: True and ``ocr_pages``.
"""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path
from typing import Any

from .article import Article, first_line, make_article
from .decoding import clean_text
from .limits import Limits, ParseError, check_chars
from .tables import table_lines

logger = logging.getLogger(__name__)

MIN_TEXT = 10  # visible characters below which a page with an image counts as scanned
CAPTION_MAX = 40
_PLACEHOLDER_TITLE = re.compile(
    r"^(untitled\S*|untitled document|document\d*|\(anonymous\)|microsoft word - .*|"
    r".*\.(docx?|pdf|txt|wps))$",
    re.I,
)


def pdf_title(title: str) -> str:
    """The PDF's /Title, unless it is a generator's placeholder ('untitled', 'Microsoft Word - a.doc')."""
    title = title.strip()
    return "" if _PLACEHOLDER_TITLE.match(title) else title


def _open(data: bytes) -> Any:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, PdfReadError

    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        try:
            opened = reader.decrypt("")  # many PDFs carry only an owner password: readable by anyone
        except (DependencyError, PdfReadError, NotImplementedError) as e:
            raise ParseError(
                f"the PDF is encrypted and cannot be opened ({e}); save an unprotected copy to index it"
            ) from e
        if not opened:
            raise ParseError("the PDF is encrypted with a password: save an unprotected copy to index it")
    return reader


def _has_image(page: Any) -> bool:
    try:
        return bool(page.get("/Resources", {}).get("/XObject"))
    except (AttributeError, KeyError, TypeError, ValueError):
        return False


def load_pdf(path: Path, data: bytes, limits: Limits) -> Article:
    """A PDF: pages of text (tables as rows), scanned pages by OCR; page numbers kept."""
    from pypdf.errors import PdfReadError

    texts: list[str] = []
    chars = 0
    try:
        reader = _open(data)
        for page in reader.pages:
            texts.append(clean_text(page.extract_text() or ""))
            chars += len(texts[-1])
            check_chars(chars, limits)  # stop at the page that crosses the cap, not after the last one
        info: dict[str, Any] = reader.metadata or {}
        scanned = [
            i + 1
            for i, t in enumerate(texts)
            if len("".join(t.split())) < MIN_TEXT and _has_image(reader.pages[i])
        ]
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as e:
        raise ParseError(f"corrupt or unreadable PDF ({e})") from e
    if any(texts):
        texts = _with_tables(data, texts, limits)
    meta: dict[str, Any] = {}
    notes: list[str] = []
    if scanned:
        from .ocr import OcrMissing, read_pdf_pages

        try:
            read, notes = read_pdf_pages(data, scanned, limits)
        except OcrMissing:
            if any(t.strip() for t in texts):
                read, notes = (
                    {},
                    [
                        f"{len(scanned)} scanned page(s) not indexed: "
                        "install OCR with pip install 'talentbot[ocr]'"
                    ],
                )
            else:
                raise
        for n, text in read.items():
            texts[n - 1] = text
        check_chars(sum(len(t) for t in texts), limits)
        if any(t.strip() for t in read.values()):
            meta = {"ocr": True, "ocr_pages": ",".join(str(n) for n, t in read.items() if t.strip())}
    pages: list[tuple[int | None, str]] = [(i + 1, t) for i, t in enumerate(texts)]
    title = (
        pdf_title(str(info.get("/Title") or ""))
        or first_line(next((t for t in texts if t.strip()), ""))
        or path.stem
    )
    empty = (
        "no text found (the scanned pages hold no text OCR can read)"
        if scanned
        else "no text found (no text layer and no images)"
    )
    article = make_article(path, title, pages, meta, empty)
    article.notes.extend(notes)
    return article


# ----------------------------------------------------------------------------------------------- tables
def _with_tables(data: bytes, texts: list[str], limits: Limits) -> list[str]:
    """The pages' texts, those with ruled tables read again by bands with each table's rows in place.
    Tables are a bonus: a PDF pdfplumber cannot read keeps its pypdf text."""
    try:
        import pdfplumber
    except ImportError:
        return texts
    out = list(texts)
    count = 0
    try:
        with pdfplumber.open(io.BytesIO(data), password="") as pdf:
            for i, page in enumerate(pdf.pages):
                if not texts[i].strip() or not (page.lines or page.rects):
                    page.close()
                    continue
                tables = sorted(page.find_tables(), key=lambda t: t.bbox[1])
                if tables:
                    out[i], count = _page_with_tables(page, tables, count)
                page.close()
    except ParseError:
        raise
    except Exception as e:  # pdfminer raises many types on odd files: keep the text pypdf read
        logger.info("no tables read (%s: %s)", type(e).__name__, e, exc_info=True)
        return texts
    check_chars(sum(len(t) for t in out), limits)
    return out


def _page_with_tables(page: Any, tables: list[Any], count: int) -> tuple[str, int]:
    parts: list[str] = []
    top = 0.0
    for table in tables:
        x0, t_top, x1, t_bottom = table.bbox
        above = _text(page, (0, top, page.width, t_top)) if t_top > top else ""
        beside = _text(page, (0, t_top, page.width, t_bottom), outside=table.bbox)
        count += 1
        caption = above.strip().split("\n")[-1].strip() if above.strip() else ""
        title = (
            caption
            if caption and len(caption) <= CAPTION_MAX and caption[-1] not in "。；;！？!?：:，,"
            else f"表{count}"
        )
        parts += [above, beside, "\n".join(table_lines(table.extract(), title))]
        top = max(top, t_bottom)
    parts.append(_text(page, (0, top, page.width, page.height)) if top < page.height else "")
    return clean_text("\n".join(p for p in parts if p.strip())), count


def _text(page: Any, box: tuple[float, float, float, float], outside: tuple | None = None) -> str:
    x0, top, x1, bottom = box
    region = page.crop((max(0, x0), max(0, top), min(page.width, x1), min(page.height, bottom)), strict=False)
    if outside is not None:
        region = region.outside_bbox(outside, strict=False)
    return region.extract_text() or ""
