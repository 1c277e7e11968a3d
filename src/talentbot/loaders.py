"""Loading stage: files on disk -> cleaned :class:`Article` objects.

Supports .txt/.md (optional YAML front matter) here, and through their own modules .html/.htm/.mhtml
(:mod:`~talentbot.htmlpage`), .pdf (:mod:`~talentbot.pdfs`: page numbers, tables, OCR of scanned pages),
.docx (:mod:`~talentbot.word`), .xlsx/.csv (:mod:`~talentbot.sheets`) and .png/.jpg (:mod:`~talentbot.ocr`).
Table rows carry their headers (:mod:`~talentbot.tables`). Text files may be UTF-8 (with or without BOM),
UTF-16 with BOM or GB18030/GBK or Big5. Web-page junk (:mod:`~talentbot.webtext`) is dropped from news text.

:func:`read_file` refuses what is not a regular, readable file with a UTF-8 name (never blocking on a
FIFO or a device); :func:`parse` turns the bytes into an article under :class:`~talentbot.limits.Limits`.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import cast

from .article import Article, first_line, make_article
from .decoding import clean_text as _clean_text
from .decoding import decode
from .limits import MB, Limits, LoadError, ParseError, check_chars, load_yaml
from .webtext import clean_web_text, looks_like_web_page

__all__ = [
    "SUPPORTED",
    "Article",
    "LoadError",
    "ParseError",
    "clean_web_text",
    "decode",
    "discover",
    "display_path",
    "load",
    "parse",
    "read_file",
]

logger = logging.getLogger(__name__)

SUPPORTED = {
    ".txt",
    ".md",
    ".markdown",
    ".html",
    ".htm",
    ".mhtml",
    ".mht",
    ".pdf",
    ".docx",
    ".xlsx",
    ".csv",
    ".png",
    ".jpg",
    ".jpeg",
}


def display_path(path: Path | str) -> str:
    """The path as printable text: bytes of a name that is not UTF-8 are shown as \\xNN escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


# ------------------------------------------------------------------------------------- front matter
_FRONT = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*(?:\n|\Z)", re.S)


def _front_matter(text: str) -> tuple[dict[str, str], str]:
    m = _FRONT.match(text)
    if not m:
        return {}, text
    meta = load_yaml(m.group(1)) or {}
    if not isinstance(meta, dict):
        return {}, text
    return {str(k): _meta_str(v) for k, v in meta.items() if v is not None}, text[m.end() :]


def _meta_str(value: object) -> str:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()[:10]
    return str(value)


# ----------------------------------------------------------------------------------------- formats
def _load_text(path: Path, data: bytes, limits: Limits) -> Article:
    if len(data) > 4 * limits.max_chars:  # no encoding spends more than 4 bytes on a character
        check_chars(len(data) // 4, limits)
    text = _clean_text(decode(data))
    check_chars(len(text), limits)
    if not text:
        raise ParseError("no text found (the file holds only blank lines)")
    meta, body = _front_matter(text)
    title = meta.pop("title", "")
    if not body.strip():
        raise ParseError("no text found after the YAML front matter")
    if not meta and looks_like_web_page(body):
        web_title, body, meta = clean_web_text(body)
        if not body:
            raise ParseError(
                "no article text: only web-page furniture (breadcrumbs, bylines, image names, share links)"
            )
        title = title or web_title
    if not meta.get("date"):
        dated = _DATE_LINE.match(body)  # a file that starts with its date on a line of its own
        if dated and 1 <= int(dated.group(2)) <= 12 and 1 <= int(dated.group(3)) <= 31:
            y, mo, d = dated.groups()
            meta["date"] = f"{y}-{int(mo):02d}-{int(d):02d}"
            body = body[dated.end() :].lstrip("\n")
    if not title:
        title = _lead_title(body) or path.stem
    return make_article(path, title, [(None, body)], meta, "no text found")


_DATE_LINE = re.compile(r"\A\s*(\d{4})[-年/.](\d{1,2})[-月/.](\d{1,2})日?[ \t]*(?:\n|\Z)")
_SENTENCE_END = re.compile(r"[。！？!?]")


def _lead_title(text: str, longest: int = 50) -> str:
    """A title for an untitled text: its first line, or when that line is a whole paragraph, its first
    sentence, cut to ``longest`` characters (the line itself stays in the body)."""
    line = first_line(text)
    if len(line) <= longest:
        return line
    end = _SENTENCE_END.search(line)
    lead = line[: end.start()] if end else line
    return lead if len(lead) <= longest else lead[: longest - 1] + "…"


def _lazy(module: str, name: str) -> Loader:
    """A loader in another module, imported when first used (``import talentbot`` stays light)."""

    def load(path: Path, data: bytes, limits: Limits) -> Article:
        return cast(Loader, getattr(importlib.import_module(f"talentbot.{module}"), name))(path, data, limits)

    return load


Loader = Callable[[Path, bytes, Limits], Article]
_LOADERS: dict[str, Loader] = {
    ".txt": _load_text,
    ".md": _load_text,
    ".markdown": _load_text,
    ".html": _lazy("htmlpage", "load_html"),
    ".htm": _lazy("htmlpage", "load_html"),
    ".mhtml": _lazy("htmlpage", "load_mhtml"),
    ".mht": _lazy("htmlpage", "load_mhtml"),
    ".pdf": _lazy("pdfs", "load_pdf"),
    ".docx": _lazy("word", "load_docx"),
    ".xlsx": _lazy("sheets", "load_xlsx"),
    ".csv": _lazy("sheets", "load_csv"),
    ".png": _lazy("ocr", "load_image"),
    ".jpg": _lazy("ocr", "load_image"),
    ".jpeg": _lazy("ocr", "load_image"),
}
_WHAT = {
    ".pdf": "PDF",
    ".docx": "Word file",
    ".xlsx": "Excel file",
    ".csv": "CSV file",
    ".mhtml": "MHTML page",
    ".mht": "MHTML page",
    ".png": "image",
    ".jpg": "image",
    ".jpeg": "image",
}
_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a folder"),
)


def read_file(path: Path, limits: Limits | None = None) -> bytes:
    """The bytes of a supported, regular, readable file with a UTF-8 name, at most ``limits.max_bytes`` of them.
    Raises :class:`LoadError` with a one-line reason otherwise. A FIFO or a device is never read."""
    limits = limits or Limits()
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        where = "file name" if not _utf8(path.name) else "folder name"
        raise LoadError(f"its {where} is not valid UTF-8: rename it in UTF-8 to index it") from None
    if path.suffix.lower() not in _LOADERS:
        raise LoadError(
            f"unsupported file type '{path.suffix or '(none)'}'; use one of {', '.join(sorted(SUPPORTED))}"
        )
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; the kind is then checked on the open file.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        with open(fd, "rb", closefd=True) as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                kind = next((k for test, k in _KINDS if test(st.st_mode)), "not a regular file")
                raise LoadError(f"{kind}, not a regular file: only regular files are read")
            cap = limits.max_bytes
            size = st.st_size
            data = b"" if cap is not None and size > cap else f.read() if cap is None else f.read(cap + 1)
            size = max(size, len(data))
    except OSError as e:
        raise LoadError(f"cannot read file: {e.strerror or e}") from e
    if cap is not None and size > cap:
        raise LoadError(
            f"file is {size / MB:.0f} MB, over the {cap / MB:.0f} MB limit "
            "(raise TALENTBOT_MAX_FILE_MB to index it)"
        )
    if not data:
        raise LoadError("empty file")
    return data


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse(path: Path, data: bytes, limits: Limits | None = None) -> Article:
    """Turn a file's bytes into an article (format from the suffix). Raises :class:`ParseError`."""
    limits = limits or Limits()
    loader = _LOADERS[path.suffix.lower()]
    try:
        return loader(path, data, limits)
    except LoadError:
        raise
    except MemoryError:
        raise
    except Exception as e:  # pypdf/python-docx/zlib raise many types on damaged files
        what = _WHAT.get(path.suffix.lower(), "file")
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ParseError(f"corrupt or unreadable {what} ({reason})") from e


def load(path: Path, max_bytes: int | None = None, limits: Limits | None = None) -> Article:
    """Read and parse one file in this process. Raises :class:`LoadError` with a one-line reason."""
    limits = limits or Limits(max_bytes=max_bytes)
    return parse(path, read_file(path, limits), limits)


def discover(paths: Iterable[Path], unreadable: list[tuple[Path, str]] | None = None) -> Iterator[Path]:
    """Yield files under the given files/folders (recursively, sorted, hidden names and links to folders
    skipped, each real file once). Broken links, loops, FIFOs and devices are yielded for :func:`read_file`
    to refuse with a reason; a folder that cannot be listed is appended to ``unreadable`` with its reason."""
    seen: set[Path] = set()
    for root in paths:
        try:
            is_dir = root.is_dir()
        except OSError:
            is_dir = False
        if is_dir:
            yield from _walk(root, seen, unreadable)
        elif _first_time(root, seen):
            yield root


def _first_time(path: Path, seen: set[Path]) -> bool:
    """False for a path whose real file was already yielded (broken links count as new)."""
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):  # broken link or loop: Python < 3.13 raises RuntimeError
        return True
    if real in seen:
        return False
    seen.add(real)
    return True


def _walk(folder: Path, seen: set[Path], unreadable: list[tuple[Path, str]] | None) -> Iterator[Path]:
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as e:
        reason = f"cannot read folder: {e.strerror or e}"
        logger.warning("%s: %s", display_path(folder), reason)
        if unreadable is not None:
            unreadable.append((folder, reason))
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = folder / entry.name
        try:
            if entry.is_dir(follow_symlinks=False):
                yield from _walk(path, seen, unreadable)
                continue
            if entry.is_symlink() and path.is_dir():  # a link to a folder is not followed (no loops)
                continue
        except OSError:
            pass  # read_file reports it
        if _first_time(path, seen):
            yield path
