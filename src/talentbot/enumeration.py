"""Whole lists: the enumeration (（一）…（二）…, 一、…二、…, 1. 2., 一是…二是…) that a quoted sentence belongs to, with
every item, even where the items run over several chunks of the same 第X条.

The chunks of one article unit (same ``article`` key, ``label`` and ``chapter``, consecutive ordinals) are
joined back into the unit's text, dropping the sentences a chunk repeats from the one before (chunk
overlap). Each item is then quoted from a chunk that holds it whole, so every line cites a passage that
contains it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .passages import Passage

_CN = "一二三四五六七八九十"
_MARKERS = [  # (style, pattern): the value is group 1
    ("paren", re.compile(rf"[（(]([{_CN}]{{1,3}})[)）]")),
    ("paren-digit", re.compile(r"[（(](\d{1,2})[)）]")),
    ("dun", re.compile(rf"(?:(?<=^)|(?<=[：:；;。\s]))([{_CN}]{{1,3}})、")),
    ("digit", re.compile(r"(?:(?<=^)|(?<=[：:；;。\s]))(\d{1,2})[.、．](?!\d)")),
    ("shi", re.compile(rf"(?:(?<=^)|(?<=[：:；;。，,\s]))([{_CN}])是")),  # 一是…；二是…: news text
]
_SENTENCE_END = "。！？!?\n"


@dataclass
class Piece:
    """One line of a quoted list: ``text`` taken from ``passage``; ``item`` false for the lead sentence."""

    passage: Passage
    text: str
    item: bool


def _value(text: str) -> int:
    if text.isdigit():
        return int(text)
    if text == "十":
        return 10
    tens, _, ones = text.partition("十")
    if "十" not in text:
        return _CN.index(text) + 1 if len(text) == 1 else -1
    return (_CN.index(tens) + 1 if tens else 1) * 10 + (_CN.index(ones) + 1 if ones else 0)


def join_chunks(chunks: list[Passage]) -> tuple[str, list[tuple[int, int]]]:
    """The text of consecutive ``chunks`` with repeated (overlapping) sentences once, and where each chunk's
    whole text lies in it: (start, end) per chunk."""
    text, spans = "", []
    for c in chunks:
        k = min(len(c.text), len(text))
        while k > 0 and not (c.text[k - 1] in "。；;！？!?" and text.endswith(c.text[:k])):
            k -= 1
        start = len(text) - k
        text += c.text[k:]
        spans.append((start, start + len(c.text)))
    return text, spans


def _runs(text: str) -> list[list[re.Match]]:
    """Runs of markers of one style numbered 1, 2, 3… in order (at least two items)."""
    runs = []
    for _, pattern in _MARKERS:
        current: list[re.Match] = []
        for m in pattern.finditer(text):
            v = _value(m.group(1))
            if current and v == _value(current[-1].group(1)) + 1:
                current.append(m)
            elif v == 1:
                if len(current) >= 2:
                    runs.append(current)
                current = [m]
        if len(current) >= 2:
            runs.append(current)
    return runs


def enumeration(chunks: list[Passage], at: str) -> list[Piece]:
    """The lead sentence and every item of the enumeration in ``chunks`` (one article unit, in order) that
    the quoted sentence ``at`` belongs to; [] when it belongs to none."""
    text, spans = join_chunks(chunks)
    probe = at.strip()[:24]
    where = text.find(probe) if probe else -1
    if where < 0:
        return []
    reach = (where, where + len(at.strip()))
    for run in _runs(text):
        first, last = run[0], run[-1]
        lead_start = max((text.rfind(ch, 0, first.start()) for ch in _SENTENCE_END), default=-1) + 1
        ends = [text.find(ch, last.end()) for ch in "。！？!?\n"]
        end = min([e + 1 for e in ends if e >= 0], default=len(text))
        if reach[1] <= lead_start or reach[0] >= end:
            continue  # the quoted sentence is not part of this list
        bounds = [(lead_start, first.start(), False)]
        bounds += [
            (m.start(), (run[i + 1].start() if i + 1 < len(run) else end), True) for i, m in enumerate(run)
        ]
        pieces: list[Piece] = []
        for a, b, item in bounds:
            while a < b and text[a].isspace():
                a += 1
            while b > a and text[b - 1].isspace():
                b -= 1
            if b > a:
                pieces += _cite(chunks, spans, text, a, b, item)
        return pieces
    return []


def _cite(
    chunks: list[Passage], spans: list[tuple[int, int]], text: str, a: int, b: int, item: bool
) -> list[Piece]:
    """The span a..b of the joined text, quoted from a chunk that holds it whole, or cut where chunks meet."""
    for c, (s, e) in zip(chunks, spans, strict=True):
        if s <= a and b <= e:
            return [Piece(c, text[a:b], item)]
    out: list[tuple[Passage, int, int]] = []
    for c, (s, e) in zip(chunks, spans, strict=True):
        lo, hi = max(a, s), min(b, e)
        if hi > lo and (not out or lo >= out[-1][1]):
            out.append((c, hi, lo))
        elif out and hi > out[-1][1]:
            out.append((c, hi, out[-1][1]))
    return [Piece(c, text[lo:hi], item and i == 0) for i, (c, hi, lo) in enumerate(out)]
