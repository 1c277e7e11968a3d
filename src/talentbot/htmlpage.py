"""Saved web pages: .html/.htm and .mhtml/.mht (the browser's one-file archive), main text by trafilatura.

An .mhtml file is a MIME message: its first text/html part is the page (quoted-printable or base64, in the
charset it declares); the address it was saved from becomes the article's ``url`` when the page has none.
"""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from .article import Article, make_article
from .decoding import clean_text, decode
from .limits import Limits, ParseError, check_chars

NO_MAIN_TEXT = "no text found (the page has no main text, only navigation or scripts)"


def html_article(path: Path, html: str, limits: Limits, url: str = "") -> Article:
    """The article in a page's HTML: main text, title, date, site name and address."""
    import trafilatura

    # a trafilatura Document (as_dict is off), or None
    doc: Any = trafilatura.bare_extraction(html, include_comments=False, with_metadata=True)
    body = clean_text((doc.text if doc else "") or "")
    check_chars(len(body), limits)
    meta = (
        {
            "title": doc.title or "",
            "date": doc.date or "",
            "source": doc.sitename or "",
            "url": doc.url or url,
        }
        if doc
        else {}
    )
    return make_article(path, meta.pop("title", "") or path.stem, [(None, body)], meta, NO_MAIN_TEXT)


def load_html(path: Path, data: bytes, limits: Limits) -> Article:
    """A saved .html/.htm page."""
    return html_article(path, decode(data), limits)


def load_mhtml(path: Path, data: bytes, limits: Limits) -> Article:
    """A saved .mhtml/.mht page: the HTML part of the archive."""
    msg = email.message_from_bytes(data, policy=email.policy.default)
    part = next((p for p in msg.walk() if p.get_content_type() == "text/html"), None)
    if not isinstance(part, EmailMessage):
        raise ParseError("no HTML page found in the MHTML archive")
    raw = part.get_payload(decode=True)  # quoted-printable or base64 undone; bytes
    if not isinstance(raw, bytes):
        raise ParseError("unreadable HTML part in the MHTML archive")
    charset = part.get_content_charset()
    try:
        html = raw.decode(charset) if charset else decode(raw)  # no charset stated: UTF-8, GB18030 or Big5
    except (LookupError, UnicodeDecodeError) as e:
        raise ParseError(f"the MHTML page is not valid {charset} text ({e})") from e
    url = str(msg.get("Snapshot-Content-Location") or part.get("Content-Location") or "")
    return html_article(path, html, limits, url if url.startswith(("http://", "https://")) else "")
