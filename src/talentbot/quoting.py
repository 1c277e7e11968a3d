"""From the sentences the answerer chose to the lines it quotes, shaped for the question
(:mod:`talentbot.shape`, :mod:`talentbot.enumeration`): a direct clause first, the organisation asked
for, or a whole list with every item on its own line. Each :class:`Quote` is a substring of its passage."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from .enumeration import enumeration
from .organisations import organisation
from .passages import Passage
from .shape import direct_part, question_kind

Siblings = Callable[[Passage], list[Passage]]
"""The chunks of a passage's article unit (same 第X条), in order, the passage among them."""

_LABEL = re.compile(r"^\s*第[一二三四五六七八九十百零〇\d]+条[\s　]*")


@dataclass
class Quote:
    """One answer line: ``text`` quoted from ``passage``. ``lead`` lines name their source (据《…》);
    ``item`` lines are items of a list."""

    passage: Passage
    text: str
    lead: bool = True
    item: bool = False


@dataclass
class Shaped:
    """The quotes of an answer and the figures or names to highlight in it."""

    quotes: list[Quote]
    highlights: list[str] = field(default_factory=list)


def plain_quotes(chosen: list[tuple[Passage, str]]) -> Shaped:
    """The chosen sentences as they are, one line each."""
    return Shaped([Quote(p, s) for p, s in chosen])


def _unlabelled(passage: Passage, text: str) -> str:
    """``text`` without the 第X条 it opens with when that is its passage's label (the source names it)."""
    label = str(passage.meta.get("label", ""))
    m = _LABEL.match(text)
    rest = text[m.end() :] if m and label and text.lstrip().startswith(label) else text
    return rest if len(rest) >= 2 else text


def shape_quotes(
    question: str, chosen: list[tuple[Passage, str]], siblings: Siblings | None = None
) -> Shaped:
    """The answer lines for ``chosen`` (passage, sentence) pairs, best first, shaped by :func:`question_kind`."""
    kind = question_kind(question)
    quotes: list[Quote] = []
    highlights: list[str] = []
    listed: list[str] = []  # the text of the lists quoted so far
    for i, (p, sentence) in enumerate(chosen):
        if kind == "list":
            if any(sentence.strip()[:24] in t for t in listed):
                continue  # already quoted as part of the list
            # the best sentence's list, whole; a further sentence is quoted as it is
            pieces = enumeration(siblings(p) if siblings else [p], sentence) if i == 0 else []
            if pieces:
                quotes += [
                    Quote(
                        x.passage,
                        _unlabelled(x.passage, x.text) if not x.item else x.text,
                        lead=j == 0,
                        item=x.item,
                    )
                    for j, x in enumerate(pieces)
                ]
                listed.append("".join(x.text for x in pieces))
                continue
        elif kind == "who" and i == 0:
            name = organisation(question, sentence)
            if name:
                quotes += [Quote(p, name), Quote(p, _unlabelled(p, sentence), lead=False)]
                highlights.append(name)
                continue
        elif kind in ("number", "date", "yesno"):
            direct = direct_part(question, sentence, p)
            if direct:
                quotes.append(Quote(p, direct.lead))
                if direct.fuller:
                    quotes.append(Quote(p, direct.fuller, lead=False))
                highlights += direct.highlights
                continue
        quotes.append(Quote(p, _unlabelled(p, sentence)))
    return Shaped(quotes, list(dict.fromkeys(highlights)))
