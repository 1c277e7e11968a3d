"""Answer shapes: what kind of answer a question wants, and the direct part of a quoted sentence.

- **number / date** questions lead with the clause that holds the figure asked for ("专职工作人员不少于五人"),
  not the whole article around it; the item or sentence around that clause follows when it is not too long
  (:data:`FULLER_MAX`), and always when the clause opens with an anaphor (该开发区…);
- **yes/no** questions lead with the clause that says 可以 / 不得 / 应当 in the family the question asks;
- **who / which company / which department** questions lead with the organisation the sentence names
  (:mod:`talentbot.organisations`);
- **list** questions quote every item of the enumeration the best sentence belongs to
  (:mod:`talentbot.enumeration`).

Everything returned is a substring of the passage it is taken from, so the answer stays a quotation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .asked import asked_units, states_unit
from .evidence import dated_event, focus_terms, other_degree, supports
from .figures import extract, is_date
from .lexical import tokenize
from .passages import Passage, coverage
from .tables import is_row

_ASKS_NUMBER = re.compile(r"多少|几|多长|多大|多久|how many|how much|how long", re.I)
_ASKS_LIST = re.compile(r"哪些|哪几|包括|包含|有什么|有哪|what are|which .*(?:are|were)|list", re.I)
_YESNO = re.compile(
    r"吗\W*$|是否|能否|可否|能不能|可不可以|有没有|是不是|要不要|需不需要|^\s*(?:is|are|can|may|must|does|do)\b",
    re.I,
)
_WHO = re.compile(
    r"谁|哪(?:一)?[家个所]?(?:企业|公司|部门|单位|机构|机关|集团|组织)|什么(?:企业|公司|部门|单位|机构|机关)"
    r"|which (?:company|firm|department|agency|authority|organi[sz]ation)|\bwho\b",
    re.I,
)
# the families of modal words a yes/no question asks about, and what answers them
_PERMIT = ("可以", "能够", "可", "能", "有权", "允许", "不得", "不能", "不可", "禁止", "不予")
_OBLIGE = ("应当", "必须", "须", "需要", "需", "应", "不必", "无须", "无需")
_ASK_PERMIT = re.compile(r"能否|可否|能不能|可不可以|可以|能|允许|有权")
_ASK_OBLIGE = re.compile(r"是否(?:需要|应当|必须|要)|要不要|需不需要|需要|必须|应当|应该")
_CLAUSE_END = re.compile(r"[，；：,;:。！？!?]")
_ITEM = re.compile(
    r"\s*(?:[（(][一二三四五六七八九十\d]{1,3}[)）]|[一二三四五六七八九十]{1,3}、|\d{1,2}[.、．](?!\d))\s*"
)
_LABEL = re.compile(r"\s*第[一二三四五六七八九十百零〇\d]+条[\s　]*")
_SEGMENT_END = re.compile(r"[；;。！？!?]")
_UNIT_TAIL = re.compile(
    r"\s*(?:[万亿千百])?(?:元|人次|人|名|位|个工作日|工作日|个月|月|年|日|天|周岁|岁|小时|周|倍|项|家|所|套|平方米)"
)
FULLER_MAX = 200  # the item or sentence around a direct clause follows it when at most this long
_ANAPHOR = re.compile(r"(该|其|此|这|上述|他们|它们)(?!外)")  # a clause that needs the sentence before it


def question_kind(question: str) -> str:
    """'date', 'number', 'who', 'yesno', 'list' or 'plain': the shape of answer ``question`` wants."""
    units = asked_units(question)
    if "date" in units:
        return "date"
    if units or (_ASKS_NUMBER.search(question) and not re.search(r"哪几|哪些", question)):
        return "number"
    if _WHO.search(question) and "哪些" not in question:
        return "who"
    if _YESNO.search(question):
        return "yesno"
    if _ASKS_LIST.search(question):
        return "list"
    return "plain"


@dataclass
class Direct:
    """The direct part of a quoted sentence: ``lead`` first, then ``fuller`` ('' when not useful);
    ``highlights`` are the figures or names to show in bold."""

    lead: str
    fuller: str
    highlights: list[str]


def _spans(sentence: str) -> list[tuple[int, int]]:
    """(start, end) of each clause of ``sentence``: cut at ，；：。, without the item marker or 第X条 label."""
    out, start = [], 0
    for m in [*_CLAUSE_END.finditer(sentence), None]:
        end = m.start() if m else len(sentence)
        s, e = start, end
        for opener in (_LABEL, _ITEM):
            lead = opener.match(sentence, s, e)
            if lead:
                s = lead.end()
        while s < e and sentence[s].isspace():
            s += 1
        if e - s >= 2:
            out.append((s, e))
        start = m.end() if m else len(sentence)
    return out


def no_ordinals(text: str) -> str:
    """``text`` without 第X条/第X批 ordinals and item markers, whose numbers are not the figure asked."""
    return re.sub(
        r"第[一二三四五六七八九十百零〇\d]+[条款项章节批届次]|[（(][一二三四五六七八九十\d]{1,3}[)）]",
        " ",
        text,
    )


def _holds_figure(kind: str, units: frozenset[str], clause: str) -> bool:
    text = no_ordinals(clause)
    if kind == "date":
        return any(is_date(f) for f in extract(text))
    wanted = units - {"number", "date"}
    if wanted:
        return all(states_unit(text, u) for u in wanted)
    return bool(extract(text))


def _modal_family(question: str) -> tuple[str, ...]:
    if _ASK_OBLIGE.search(question):
        return _OBLIGE
    if _ASK_PERMIT.search(question):
        return _PERMIT
    return _PERMIT + _OBLIGE


def direct_part(question: str, sentence: str, passage: Passage) -> Direct | None:
    """The clause of ``sentence`` that answers a number, date or yes/no ``question``, or None when the
    sentence is itself that short (or no clause holds what is asked)."""
    kind = question_kind(question)
    if kind not in ("number", "date", "yesno") or is_row(sentence.strip()):
        return None  # a table row is quoted whole: its figure means nothing without the row's headers
    spans = _spans(sentence)
    if len(spans) < 2:
        return None
    units = asked_units(question)
    header = " ".join(str(passage.meta.get(k, "")) for k in ("title", "chapter", "label"))
    header_toks = set(tokenize(header))
    focus = focus_terms(question)
    event = dated_event(question)
    family = _modal_family(question)
    best: tuple[tuple, int] | None = None
    for i, (s, e) in enumerate(spans):
        clause = sentence[s:e]
        if kind == "yesno":
            if not any(w in clause for w in family):
                continue
        elif not _holds_figure(kind, units, clause):
            continue
        # the clause within its item ("对新引进的硕士研究生，给予…五万元"): who or what the figure is for
        context = sentence[max((m.end() for m in _SEGMENT_END.finditer(sentence, 0, s)), default=0) : e]
        rank = (
            all(f.held_by(clause + header) for f in focus),
            event is None or supports(event, clause),
            not other_degree(question, context),
            coverage(passage.groups, set(tokenize(context)) | header_toks),
            coverage(passage.groups, set(tokenize(clause)) | header_toks),
        )
        if best is None or rank > best[0]:
            best = (rank, i)
    if best is None:
        return None
    i = best[1]
    s, e = spans[i]
    # the subject a clause needs ("…的，给予奖励10万元"): join the clause before while the focus is not held
    while i > 0 and not all(f.held_by(sentence[s:e] + header) for f in focus):
        i -= 1
        s = spans[i][0]
    lead = sentence[s:e]
    if len(lead) >= 0.8 * len(sentence.strip("。；;！？ ")):
        return None
    if _ANAPHOR.match(lead):  # 该开发区…: the sentence before, which says which one, comes with it
        fuller = sentence.strip()
    else:
        fuller = _segment(sentence, s, e)
        if len(fuller) > FULLER_MAX:
            fuller = ""
    if fuller.strip("。；;，, ") == lead:
        fuller = ""
    return Direct(lead, fuller, _highlights(kind, units, lead, family))


def _segment(sentence: str, start: int, end: int) -> str:
    """The item (between ；) or sentence of ``sentence`` that holds ``sentence[start:end]``."""
    left = max((m.end() for m in _SEGMENT_END.finditer(sentence, 0, start)), default=0)
    right = next((m.end() for m in _SEGMENT_END.finditer(sentence, end)), len(sentence))
    seg = sentence[left:right]
    label = _LABEL.match(seg)
    return seg[label.end() :].strip() if label else seg.strip()


def _highlights(kind: str, units: frozenset[str], clause: str, family: tuple[str, ...]) -> list[str]:
    """The figures (with their units) or the modal word of ``clause`` to show in bold."""
    if kind == "yesno":
        return [next(w for w in family if w in clause)]
    out = []
    wanted = units - {"number", "date"}
    for f in extract(no_ordinals(clause)):
        if kind == "date" and not is_date(f):
            continue
        if (
            kind == "number"
            and wanted
            and f.unit not in wanted
            and not (f.unit == "工作日" and "日" in wanted)
        ):
            continue
        if f.text in clause:
            out.append(with_unit(clause, f.text) if f.kind == "number" else f.text)
    return out


def with_unit(text: str, figure: str) -> str:
    """``figure`` as ``text`` writes it with its unit: 五 -> 五人, 30万 -> 30万元."""
    at = text.find(figure)
    tail = _UNIT_TAIL.match(text, at + len(figure)) if at >= 0 else None
    return text[at : tail.end()] if tail else figure


def yes_no_match(question: str, sentence: str) -> bool:
    """``sentence`` answers the yes/no ``question``: it holds a modal of the family asked (可以 for 能否, 应当
    for 是否需要) and a content word the question puts after its modal ('可以要补偿吗' -> 补偿)."""
    m = _ASK_OBLIGE.search(question) or _ASK_PERMIT.search(question) or re.search(r"是否|吗", question)
    if not m or not any(w in sentence for w in _modal_family(question)):
        return False
    after = [t for t in tokenize(question[m.end() :]) if not t.startswith("#")]
    return any(t in sentence for t in after)
