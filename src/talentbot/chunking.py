"""Chunking stage: an :class:`Article` -> passages that respect Chinese sentences and 第X条 articles.

A regulation is cut at 第X章 / 第X条 boundaries; every chunk carries its chapter and article label.
A news article is cut at its sub-headings. Inside a unit, sentences (ending in 。！？；!?) are packed
up to ``size`` characters; a single sentence longer than that is the only thing ever cut mid-way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .loaders import Article

_NUM = "一二三四五六七八九十百千零〇两"
CHAPTER = re.compile(rf"^第[{_NUM}\d]+[章编]\s*\S*")
SECTION = re.compile(rf"^第[{_NUM}\d]+节\s*\S*")
ARTICLE = re.compile(rf"^(第[{_NUM}\d]+条)(?:[\s　]|$)")
_SENT = re.compile(r".*?(?:[。！？；!?]+[”’」』）)]*|$)", re.S)


@dataclass
class Chunk:
    """One passage: ``text`` is what users see; ``header`` is prefixed to it for indexing."""

    text: str
    ordinal: int
    title: str
    chapter: str = ""
    label: str = ""
    page: int | None = None

    @property
    def header(self) -> str:
        return " ".join(p for p in (self.title, self.chapter, self.label) if p)

    @property
    def indexed_text(self) -> str:
        """What is embedded and lexically indexed: title, chapter, article label, then the passage."""
        if self.label and self.text.startswith(self.label):
            return f"{' '.join(p for p in (self.title, self.chapter) if p)}\n{self.text}"
        return f"{self.header}\n{self.text}"


def split_sentences(text: str) -> list[str]:
    """Split Chinese/English text after 。！？；!? (closing quotes stay with their sentence)."""
    return [s for s in (m.group(0).strip() for m in _SENT.finditer(text)) if s]


def _is_heading(line: str) -> bool:
    """A news sub-heading: a short line with no sentence-ending punctuation."""
    return 4 <= len(line) <= 30 and not re.search(r"[。！？；!?:：]", line) and not ARTICLE.match(line)


def _units(article: Article) -> list[tuple[int | None, str, str, list[str]]]:
    """Group paragraphs into (page, chapter, label, paragraphs) units."""
    units: list[tuple[int | None, str, str, list[str]]] = []
    chapter, label = "", ""
    is_regulation = any(ARTICLE.match(ln.strip()) for _, t in article.pages for ln in t.split("\n"))
    for page, text in article.pages:
        current: list[str] = []
        units.append((page, chapter, label, current))
        for raw in text.split("\n"):
            line = raw.strip()
            if not line or line == article.title:
                continue
            if is_regulation and CHAPTER.match(line):
                chapter, label, current = line, "", []
                units.append((page, chapter, label, current))
                continue
            if is_regulation and SECTION.match(line):
                continue
            m = ARTICLE.match(line) if is_regulation else None
            if m:
                label, current = m.group(1), []
                units.append((page, chapter, label, current))
            elif not is_regulation and _is_heading(line):
                label, current = line, []
                units.append((page, chapter, label, current))
                continue
            current.append(line)
    return [u for u in units if u[3]]


def _pack(paragraphs: list[str], size: int, overlap: int) -> list[str]:
    """Pack whole sentences into pieces of at most ``size`` characters."""
    sentences: list[str] = []
    for para in paragraphs:
        for s in split_sentences(para):
            sentences.extend(s[i:i + size] for i in range(0, len(s), size))  # only over-long sentences are cut
    pieces: list[list[str]] = [[]]
    for s in sentences:
        cur = pieces[-1]
        if cur and sum(map(len, cur)) + len(s) > size:
            carry: list[str] = []
            for prev in reversed(cur):
                if sum(map(len, carry)) + len(prev) + len(s) > min(overlap, size - len(s)):
                    break
                carry.insert(0, prev)
            pieces.append(carry)
            cur = pieces[-1]
        cur.append(s)
    return [_join(p) for p in pieces if p]


def _join(sentences: list[str]) -> str:
    out = ""
    for s in sentences:
        out += (" " if out and out[-1].isascii() and s[0].isascii() else "") + s
    return out


def chunk_article(article: Article, size: int = 180, overlap: int = 0) -> list[Chunk]:
    """Cut an article into ordered chunks of at most ``size`` characters of text."""
    chunks: list[Chunk] = []
    for page, chapter, label, paragraphs in _units(article):
        for text in _pack(paragraphs, size, overlap):
            chunks.append(Chunk(text=text, ordinal=len(chunks), title=article.title, chapter=chapter,
                                label=label, page=page))
    return chunks
