"""Typed answers: :class:`Answer` with its :class:`Citation` list, the stream events (:class:`TextEvent`,
:class:`AnswerEvent`), the refusal, and the pieces every answerer uses to cite a passage (the default
extractive answerer is :mod:`talentbot.extractive`; the LLM one :mod:`talentbot.llm`).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from .injection import is_injection
from .retrieval import Passage
from .sentences import split_sentences

NO_ANSWER_ZH = "资料中没有找到与这个问题相关的内容，无法回答。"
NO_ANSWER_EN = "The documents don't cover this question, so there is no answer to give."


@dataclass
class Citation:
    """A passage an answer cites as [n]. ``quote`` is the sentence(s) taken from it."""

    n: int
    title: str
    source: str
    date: str
    path: str
    text: str
    score: float
    file: str = ""
    label: str = ""
    page: int | None = None
    quote: str = ""
    id: str = ""
    effective: str = ""  # the date the document takes effect (…起施行), when it states one
    ocr: bool = False  # the passage was read from a scanned page by OCR

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Answer:
    """A grounded answer. ``no_answer`` is true when the documents don't cover the question."""

    text: str
    no_answer: bool
    citations: list[Citation] = field(default_factory=list)
    question: str = ""
    mode: str = "extractive"
    warnings: list[str] = field(default_factory=list)
    highlights: list[str] = field(default_factory=list)  # the figures or names that answer, shown in bold
    parts: list[dict] = field(default_factory=list)  # a multi-part answer: {label, answer, n} per part
    clarify: bool = False  # a clarifying reply to a vague question (no_answer too: nothing is quoted)

    def as_dict(self) -> dict:
        return {
            "question": self.question,
            "answer": self.text,
            "no_answer": self.no_answer,
            "citations": [c.as_dict() for c in self.citations],
            "mode": self.mode,
            "warnings": self.warnings,
            "highlights": self.highlights,
            "parts": self.parts,
            "clarify": self.clarify,
        }


@dataclass
class TextEvent:
    """A piece of answer text, streamed as it is produced. Pieces add up (``+``), as LangChain's
    ``invoke`` adds the chunks of a stream; a piece plus the final :class:`AnswerEvent` is that event."""

    text: str

    def __add__(self, other: Event) -> Event:
        return TextEvent(self.text + other.text) if isinstance(other, TextEvent) else other


@dataclass
class AnswerEvent:
    """The final, authoritative answer; always the last event of a stream. Adding to it keeps it."""

    answer: Answer

    def __add__(self, other: Event) -> Event:
        return other if isinstance(other, AnswerEvent) else self


Event = TextEvent | AnswerEvent


def is_english(text: str) -> bool:
    cjk = len(re.findall(r"[\u4e00-\u9fff]", text))
    latin = len(re.findall(r"[A-Za-z]", text))
    return latin > 2 * cjk


def no_answer(question: str, reason: str | None = None) -> Answer:
    """The 'not in the documents' answer; ``reason`` says what is missing and what the corpus has."""
    text = NO_ANSWER_EN if is_english(question) else NO_ANSWER_ZH
    if reason:
        text = f"{reason}\n{NO_ANSWER_EN}" if is_english(question) else f"{reason}无法回答这个问题。"
    return Answer(text=text, no_answer=True, citations=[], question=question)


def source_phrase(p: Passage, sentence: str, english: bool = False) -> str:
    """'据《title》第X条：' — the document an answer sentence is quoted from, named in the answer itself."""
    title = str(p.meta.get("title", "")).strip().strip("《》")
    if not title or is_injection(title):  # a title addressed to a model is never repeated to the user
        title = str(p.meta.get("file", ""))
    label = str(p.meta.get("label", ""))
    where = f"《{title}》" + (label if label and not sentence.startswith(label) else "")
    return f"According to {where}: " if english else f"据{where}："


def answer_sentences(text: str) -> list[str]:
    """Sentences for quoting: split at 。！？ only, so that a list joined by ； stays whole."""
    sents = split_sentences(text)
    merged: list[str] = []
    for s in sents:  # a sentence ending in a colon introduces what follows it
        if merged and merged[-1].endswith(("：", ":")):
            merged[-1] += s
        else:
            merged.append(s)
    return merged


def citation_for(n: int, p: Passage, quote: str = "") -> Citation:
    m = p.meta
    return Citation(
        n=n,
        title=m.get("title", ""),
        source=m.get("source", ""),
        date=m.get("date", ""),
        path=m.get("path", ""),
        text=p.text,
        score=round(float(p.score), 4),
        file=m.get("file", ""),
        label=m.get("label", ""),
        page=m.get("page"),
        quote=quote,
        id=p.id,
        effective=m.get("effective", ""),
        ocr=bool(m.get("ocr")),
    )
