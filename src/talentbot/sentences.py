"""One sentence splitter, for chunking, quoting answers, the injection filter and the UI's highlights.

A sentence ends after 。！？!? (and, for chunking, ；), or after an English full stop followed by a space
or a closing quote; closing quotes and brackets stay with the sentence they close. ``lines`` also cuts at
line breaks (the injection filter: an instruction on a line of its own is a sentence of its own).
"""

from __future__ import annotations

import re
from functools import lru_cache

_CLOSERS = "”’」』）)\"'"


@lru_cache(maxsize=4)
def _pattern(semicolons: bool, lines: bool) -> re.Pattern[str]:
    ends = "。！？!?" + ("；" if semicolons else "")
    line_end = "|\n" if lines else ""
    return re.compile(rf".*?(?:(?:[{ends}]+|\.(?=[\s\"'”’)]))[{_CLOSERS}]*{line_end}|$)", re.S)


def pieces(text: str, *, semicolons: bool = False, lines: bool = False) -> list[str]:
    """``text`` cut after each sentence end, nothing lost: ``"".join(pieces(text)) == text``."""
    return [m.group(0) for m in _pattern(semicolons, lines).finditer(text) if m.group(0)]


def split_sentences(text: str, *, semicolons: bool = False, lines: bool = False) -> list[str]:
    """The sentences of ``text``, stripped, without empty ones (see :func:`pieces` for the cuts)."""
    return [s for s in (p.strip() for p in pieces(text, semicolons=semicolons, lines=lines)) if s]
