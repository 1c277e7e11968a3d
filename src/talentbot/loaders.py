"""Loading stage: files on disk -> cleaned :class:`Article` objects.

Supports .txt/.md (optional YAML front matter), .html/.htm (trafilatura), .pdf (pypdf, page numbers
kept) and .docx (python-docx). Text files may be UTF-8 (with or without BOM), UTF-16 with BOM or
GB18030/GBK or Big5. Web-page junk (breadcrumbs, image names, share widgets) is dropped from news text.
"""

from __future__ import annotations

import codecs
import datetime as dt
import io
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

logger = logging.getLogger(__name__)

SUPPORTED = {".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx"}


class LoadError(Exception):
    """A file could not be turned into an article; the message is the one-line reason."""


@dataclass
class Article:
    """One cleaned document. ``pages`` holds (page number or None, text) pairs."""

    path: Path
    title: str
    pages: list[tuple[int | None, str]]
    source: str = ""
    date: str = ""
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "\n\n".join(t for _, t in self.pages)


# ------------------------------------------------------------------------------------------ decoding
def decode(data: bytes) -> str:
    """Decode text bytes exactly: BOMs first, then strict UTF-8, then GB18030, then Big5; else raise LoadError."""
    for bom, enc in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(enc)
            except UnicodeDecodeError as e:
                raise LoadError(f"invalid {enc} text after its byte-order mark ({e.reason})") from e
    if _looks_binary(data):
        raise LoadError("binary file, not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    # GB18030 decodes almost any byte string, Big5 included; Big5 read that way turns into characters of
    # the Private Use Area, which real text does not hold. Big5 (cp950: as Windows writes it) then gets a try.
    for enc in ("gb18030", "cp950"):
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        if not _private_use(text):
            return text
    raise LoadError("unknown text encoding (not UTF-8, GB18030/GBK or Big5): save it as UTF-8")


_PRIVATE_USE = re.compile(r"[\ue000-\uf8ff]")


def _private_use(text: str) -> bool:
    """Whether more than 1% of the non-ASCII characters are Private Use Area code points (a wrong codec)."""
    private = len(_PRIVATE_USE.findall(text))
    return private > 0 and private > 0.01 * sum(1 for c in text if ord(c) > 127)


def _looks_binary(data: bytes) -> bool:
    sample = data[:8192]
    if not sample:
        return False
    controls = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13))
    return controls / len(sample) > 0.01


# Zero-width characters pasted from web pages (U+200D stays: it joins emoji sequences).
_INVISIBLE = re.compile(r"[\u200b\u200c\u200e\u200f\u2060]")


def _clean_text(text: str) -> str:
    """Normalise newlines, drop NULs and other control characters, trim trailing spaces."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r"[\x00-\x08\x0b\x0e-\x1f\x7f\ufeff]", "", text)
    text = _INVISIBLE.sub("", text)
    return "\n".join(line.rstrip() for line in text.split("\n")).strip()


# ------------------------------------------------------------------------------------- front matter
_FRONT = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*(?:\n|\Z)", re.S)


def _front_matter(text: str) -> tuple[dict[str, str], str]:
    m = _FRONT.match(text)
    if not m:
        return {}, text
    try:
        meta = yaml.safe_load(m.group(1)) or {}
    except yaml.YAMLError as e:
        raise LoadError(f"bad YAML front matter: {str(e).splitlines()[0]}") from e
    if not isinstance(meta, dict):
        return {}, text
    return {str(k): _meta_str(v) for k, v in meta.items() if v is not None}, text[m.end():]


def _meta_str(value: object) -> str:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()[:10]
    return str(value)


# -------------------------------------------------------------------------------------- page junk
_BREADCRUMB = re.compile(r"^(当前位置|您的位置|你的位置|首页\s*[>›»])")
_IMAGE_LINE = re.compile(r"^\S+\.(png|jpe?g|gif|webp|bmp)(\?\S*)?$", re.I)
_BYLINE = re.compile(
    r"(?:编辑|责任编辑|责编)\s*[:：]\s*(?P<editor>\S+)|来源\s*[:：]\s*(?P<source>\S+)|"
    r"(?:发布时间|发布日期|时间)\s*[:：]\s*(?P<date>\d{4}[-年/.]\d{1,2}[-月/.]\d{1,2})"
)
_ORIGIN_LINE = re.compile(r"^[（(]\s*来源\s*[:：]\s*(?P<origin>[^）)]+)[）)]$")
_SHARE_START = re.compile(r"^(分享到|更多分享|一键分享)")


def clean_web_text(text: str) -> tuple[str, str, dict[str, str]]:
    """Strip page junk from text copied off a news page; return (title, body, metadata)."""
    lines = text.split("\n")
    meta: dict[str, str] = {}
    # The share widget runs from "分享到" to the end of the page.
    for i, line in enumerate(lines):
        if _SHARE_START.match(line.strip()) and i > len(lines) // 2:
            lines = lines[:i]
            break
    title, body = "", []
    for raw in lines:
        line = raw.strip()
        if not line:
            body.append("")
            continue
        if _BREADCRUMB.match(line) or _IMAGE_LINE.match(line):
            continue
        found = {k: v for m in _BYLINE.finditer(line) for k, v in m.groupdict().items() if v}
        if len(found) >= 2 and len(line) < 120:
            meta.update(found)
            continue
        origin = _ORIGIN_LINE.match(line)
        if origin:  # kept in the text too: it is what the article says of its origin
            meta["original_source"] = origin.group("origin").strip()
        if not title:
            title = line
            continue
        body.append(line)
    if "date" in meta:
        meta["date"] = re.sub(r"[年/.月]", "-", meta["date"]).strip("-")
        y, mo, d = meta["date"].split("-")
        meta["date"] = f"{y}-{int(mo):02d}-{int(d):02d}"
    return title, "\n".join(body).strip(), meta


def _looks_like_web_page(text: str) -> bool:
    head = text[:600]
    return bool(_BREADCRUMB.search(head) or (_BYLINE.search(head) and "来源" in head))


# ----------------------------------------------------------------------------------------- formats
def _load_text(path: Path, data: bytes) -> Article:
    text = _clean_text(decode(data))
    meta, body = _front_matter(text)
    title = meta.pop("title", "")
    if not meta and _looks_like_web_page(body):
        title, body, meta = clean_web_text(body)
    if not title:
        title = _first_line(body) or path.stem
    return _article(path, title, [(None, body)], meta)


def _load_html(path: Path, data: bytes) -> Article:
    import trafilatura

    html = decode(data)
    doc = trafilatura.bare_extraction(html, include_comments=False, with_metadata=True)
    body = _clean_text((doc.text if doc else "") or "")
    meta = ({"title": doc.title or "", "date": doc.date or "", "source": doc.sitename or "", "url": doc.url or ""}
            if doc else {})
    return _article(path, meta.pop("title", "") or path.stem, [(None, body)], meta)


def _load_pdf(path: Path, data: bytes) -> Article:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [(i + 1, _clean_text(p.extract_text() or "")) for i, p in enumerate(reader.pages)]
        info = reader.metadata or {}
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as e:
        raise LoadError(f"corrupt or unreadable PDF ({e})") from e
    title = _pdf_title(str(info.get("/Title") or "")) or _first_line(pages[0][1] if pages else "") or path.stem
    return _article(path, title, pages, {})


_PLACEHOLDER_TITLE = re.compile(r"^(untitled\S*|untitled document|document\d*|\(anonymous\)|microsoft word - .*|"
                                r".*\.(docx?|pdf|txt|wps))$", re.I)


def _pdf_title(title: str) -> str:
    """The PDF's /Title, unless it is a generator's placeholder ('untitled', 'Microsoft Word - a.doc')."""
    title = title.strip()
    return "" if _PLACEHOLDER_TITLE.match(title) else title


def _load_docx(path: Path, data: bytes) -> Article:
    import zipfile

    import docx

    try:
        d = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as e:
        raise LoadError(f"corrupt or unreadable Word file ({e})") from e
    body = _clean_text("\n\n".join(p.text for p in d.paragraphs))
    props = d.core_properties
    meta = {"date": props.created.date().isoformat() if props.created else "", "source": props.author or ""}
    return _article(path, props.title or _first_line(body) or path.stem, [(None, body)], meta)


def _first_line(text: str) -> str:
    return next((ln.strip() for ln in text.split("\n") if ln.strip()), "")[:80]


def _article(path: Path, title: str, pages: list[tuple[int | None, str]], meta: dict[str, str]) -> Article:
    pages = [(n, t) for n, t in pages if t.strip()]
    if not pages:
        raise LoadError("no text found (empty file, or a scanned PDF without a text layer)")
    meta = {k: v for k, v in meta.items() if v}
    return Article(
        path=path,
        title=title.strip(),
        pages=pages,
        source=meta.pop("source", ""),
        date=meta.pop("date", ""),
        metadata=meta,
    )


_LOADERS = {".txt": _load_text, ".md": _load_text, ".markdown": _load_text, ".html": _load_html,
            ".htm": _load_html, ".pdf": _load_pdf, ".docx": _load_docx}


def load(path: Path, max_bytes: int | None = None) -> Article:
    """Load one file. Raises :class:`LoadError` with a one-line reason when it cannot be used."""
    loader = _LOADERS.get(path.suffix.lower())
    if loader is None:
        raise LoadError(f"unsupported file type '{path.suffix or '(none)'}'; use one of {', '.join(sorted(SUPPORTED))}")
    try:
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise LoadError(
                f"file is {size / 2**20:.0f} MB, over the {max_bytes / 2**20:.0f} MB limit "
                "(raise TALENTBOT_MAX_FILE_MB to index it)"
            )
        if size == 0:
            raise LoadError("empty file")
        data = path.read_bytes()
    except OSError as e:
        raise LoadError(f"cannot read file: {e.strerror or e}") from e
    try:
        return loader(path, data)
    except LoadError:
        raise
    except Exception as e:  # noqa: BLE001 - pypdf/python-docx/zlib raise many types on damaged files
        what = {".pdf": "PDF", ".docx": "Word file"}.get(path.suffix.lower(), "file")
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise LoadError(f"corrupt or unreadable {what} ({reason})") from e


def discover(paths: Iterable[Path]) -> Iterator[Path]:
    """Yield files under the given files/folders (recursively, sorted, symlink loops ignored)."""
    seen: set[Path] = set()
    for root in paths:
        if root.is_file():
            real = root.resolve()
            if real not in seen:  # a file named twice, or also found in a named folder, is read once
                seen.add(real)
                yield root
            continue
        for p in sorted(root.rglob("*")):
            if p.name.startswith(".") or any(part.startswith(".") for part in p.relative_to(root).parts):
                continue
            try:
                real = p.resolve(strict=True)
            except (OSError, RuntimeError):
                yield p  # broken link or loop: reported by load()
                continue
            if real in seen or not p.is_file():
                continue
            seen.add(real)
            yield p
