"""Chunking stage: an :class:`Article` -> passages that respect Chinese sentences and 第X条 articles.

A regulation is cut at 第X章 / 第X条 boundaries; every chunk carries its chapter and article label.
A news article is cut at its sub-headings. Inside a unit, sentences (ending in 。！？；!?) are packed
up to ``size`` characters; a single sentence longer than that is the only thing ever cut mid-way
(at a comma or colon where it has one). A table row (:func:`talentbot.tables.is_row`) is a chunk of its own,
whole whatever its length, so that a row is never split from its headers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import sentences
from .loaders import Article
from .tables import is_row

_NUM = "一二三四五六七八九十百千零〇两"
CHAPTER = re.compile(rf"^第[{_NUM}\d]+[章编]\s*\S*")
SECTION = re.compile(rf"^第[{_NUM}\d]+节\s*\S*")
ARTICLE = re.compile(rf"^(第[{_NUM}\d]+条)(?:[\s　]|$)")
# A sentence ends at 。！？；!? (closing quotes stay with it), or at an English full stop before a space.
# Where an over-long sentence may be cut: after a Chinese comma/colon, or an ASCII one before a space or a
# Chinese character (so that "1,000" and "12:30" stay whole).
_CLAUSE = re.compile(r".*?(?:[，、：]+|[,:]+(?=\s|[^\x00-\x7f])|$)", re.S)


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
    """Chunks are cut after 。！？；!? and English full stops (:mod:`talentbot.sentences`)."""
    return sentences.split_sentences(text, semicolons=True)


def _is_heading(line: str) -> bool:
    """A news sub-heading: a short line with no sentence-ending punctuation."""
    return 4 <= len(line) <= 30 and not re.search(r"[。！？；!?:：]", line) and not ARTICLE.match(line)


def _units(article: Article) -> list[tuple[int | None, str, str, list[str]]]:
    """Group paragraphs into (page, chapter, label, paragraphs) units; a table row is a unit of its own."""
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
            if is_row(line):  # its own unit; the text after it goes on under the same label
                units.append((page, chapter, label, [line]))
                current = []
                units.append((page, chapter, label, current))
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
    units = [u for u in units if u[3]]
    if not units and article.title:  # the title is all the text there is (a one-line note): keep it
        units = [(article.pages[0][0] if article.pages else None, "", "", [article.title])]
    return units


def _pack(paragraphs: list[str], size: int, overlap: int, break_paragraphs: bool = True) -> list[str]:
    """Pack whole sentences into pieces of at most ``size`` characters (as joined, spaces included).

    With ``break_paragraphs`` (news text; not inside a 第X条, whose paragraphs are its clauses), a
    paragraph starts a new piece unless the current one is under a third full, so that one piece
    rarely mixes the end of one paragraph (one zone, one topic) with the start of the next. With
    ``overlap``, a piece continuing a paragraph starts with the previous piece's trailing whole
    sentences, up to ``overlap`` characters of them, as long as it stays within ``size``.
    """
    sentences: list[tuple[str, bool]] = []
    for para in paragraphs:
        first = True
        for s in split_sentences(para):
            for part in _cut(s, size):  # only over-long sentences are cut
                sentences.append((part, first))
                first = False
    pieces: list[list[str]] = [[]]
    for s, starts_paragraph in sentences:
        cur = pieces[-1]
        if cur and break_paragraphs and starts_paragraph and len(_join(cur)) >= size // 3:
            pieces.append([])
        elif cur and len(_join([*cur, s])) > size:
            carry: list[str] = []
            for prev in reversed(cur):
                longer = [prev, *carry]
                if len(_join(longer)) > overlap or len(_join([*longer, s])) > size:
                    break
                carry = longer
            pieces.append(carry)
        pieces[-1].append(s)
    return [_join(p) for p in pieces if p]


def _cut(sentence: str, size: int) -> list[str]:
    """Cut a sentence longer than ``size``: at clause marks (，、：,:) where it can, else into even pieces."""
    if len(sentence) <= size:
        return [sentence]
    pieces: list[str] = []
    cur = ""
    for clause in filter(None, (m.group(0).strip() for m in _CLAUSE.finditer(sentence))):
        if len(clause) > size:  # no clause mark to cut at: even pieces, so no tiny tail such as a lone 。
            if cur:
                pieces.append(cur)
                cur = ""
            step = -(-len(clause) // -(-len(clause) // size))
            pieces.extend(clause[i : i + step] for i in range(0, len(clause), step))
            continue
        if cur and len(_join([cur, clause])) > size:
            pieces.append(cur)
            cur = ""
        cur = _join([cur, clause]) if cur else clause
    if cur:
        pieces.append(cur)
    return pieces


def _join(sentences: list[str]) -> str:
    out = ""
    for s in sentences:
        out += (" " if out and out[-1].isascii() and s[0].isascii() else "") + s
    return out


def chunk_article(article: Article, size: int = 180, overlap: int = 0) -> list[Chunk]:
    """Cut an article into ordered chunks of at most ``size`` characters of text."""
    chunks: list[Chunk] = []
    for page, chapter, label, paragraphs in _units(article):
        row = len(paragraphs) == 1 and is_row(paragraphs[0])
        for text in (
            paragraphs if row else _pack(paragraphs, size, overlap, break_paragraphs=not ARTICLE.match(label))
        ):
            chunks.append(
                Chunk(
                    text=text,
                    ordinal=len(chunks),
                    title=article.title,
                    chapter=chapter,
                    label=label,
                    page=page,
                )
            )
    return chunks
