"""The loaded document: :class:`Article`, and the helpers every format's loader shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .limits import ParseError


@dataclass
class Article:
    """One cleaned document. ``pages`` holds (page number or None, text) pairs. ``metadata`` holds extra
    fields (``original_source``, ``url``, ``ocr``: True when text was read by OCR, ``ocr_pages``). ``notes``
    are warnings about the file (pages left out by a cap) for the caller to log; they are not content."""

    path: Path
    title: str
    pages: list[tuple[int | None, str]]
    source: str = ""
    date: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n\n".join(t for _, t in self.pages)


def first_line(text: str) -> str:
    """The first non-blank line of ``text``, at most 80 characters."""
    return next((ln.strip() for ln in text.split("\n") if ln.strip()), "")[:80]


def make_article(
    path: Path, title: str, pages: list[tuple[int | None, str]], meta: dict[str, Any], empty: str
) -> Article:
    """An article of the non-blank pages; ``source`` and ``date`` come out of ``meta``. Raises
    :class:`ParseError` with ``empty`` as the reason when no page holds text."""
    pages = [(n, t) for n, t in pages if t.strip()]
    if not pages:
        raise ParseError(empty)
    meta = {k: v for k, v in meta.items() if v}
    return Article(
        path=path,
        title=title.strip(),
        pages=pages,
        source=meta.pop("source", ""),
        date=meta.pop("date", ""),
        metadata=meta,
    )
