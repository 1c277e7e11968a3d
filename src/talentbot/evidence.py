"""What a quoted answer must hold for the question it answers, beyond sharing its words: the thing a
quantity question counts, and the degree level it asks about. (The unit of the figure asked for is
:func:`talentbot.asked.asked_units`.)"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .asked import asked_units
from .figures import extract, is_date, is_unit
from .lexical import words
from .passages import TermGroup

_QUANTITY_WORD = re.compile(r"^(多少|几\w*)$")
_MEASURE_NOUNS = {
    "钱",
    "人数",
    "金额",
    "数额",
    "数量",
    "总数",
    "规模",
    "期限",
    "时间",
    "时长",
    "年龄",
    "比例",
    "比重",
    "标准",
    "幅度",
    "上限",
    "下限",
    "额度",
}  # the kind of figure asked for, not the thing
_FOCUS_SKIP = _MEASURE_NOUNS | {
    "哪",
    "什么",
    "有",
    "是",
    "的",
    "了",
    "给予",
    "为",
    "在",
    "得",
    "到",
    "可以",
    "能",
    "应当",
    "共",
    "一共",
    "共有",
    "总共",
    "累计",
    "合计",
    "大约",
    "约",
    "位",
    "名",
    "个",
    "家",
    "所",
    "项",
    "种",
    "条",
    "次",
    "年",
    "人",
    "元",
    "天",
    "日",
    "个月",
    "小时",
    "周岁",
}
_REQUIREMENT = re.compile(
    r"(?:什么|哪些|何种)([\u4e00-\u9fff]{2,4}?)(?:方面的)?(?:要求|条件|限制)"
)  # 专业要求
_RESULT = {"到", "至", "为", "成"}
_VERB_END = re.compile(
    r"[到至为成过]$"
)  # 提高到, 上调至, 调整为: a verb with its result, not a thing counted
_CLAUSE = re.compile(r"[，,、；;？?！!。]")


@dataclass(frozen=True)
class Focus:
    """What a quantity question counts: one of ``words`` must be in the quote (``strict``: as written)."""

    words: tuple[str, ...]
    strict: bool

    def held_by(self, text: str) -> bool:
        return any(supports(w, text, self.strict) for w in self.words)


def focus_terms(question: str) -> list[Focus]:
    """What a quantity question asks about. The words right after 多少/几 (past a counter) name the thing
    counted, and one of them must occur as written ('多少名乡村振兴协理员': 协理员 will do); with none, the
    word before, loosely: a verb ('提高多少') or a noun named with its measure ('津贴标准是多少'), which a
    text may word otherwise; and not at all when the unit asked for says what is counted ('一共发多少钱').
    A requirement of some kind ('有什么专业要求') needs that kind (专业) written."""
    out = []
    unit_asked = bool(asked_units(question) - {"number"})
    for clause in _CLAUSE.split(question):
        out += [
            Focus((m.group(1),), True)
            for m in _REQUIREMENT.finditer(clause)
            if m.group(1) not in _FOCUS_SKIP - _MEASURE_NOUNS
        ]
        ws = [w for w in words(clause) if re.search(r"\w", w)]
        for i, w in enumerate(ws):
            if _QUANTITY_WORD.match(w) and not (i and ws[i - 1].startswith("哪")):  # 哪几类: a list
                out += _focus_at(ws, i, unit_asked)
                out += _per(ws)
    return out


def _per(ws: list[str]) -> list[Focus]:
    """'每亩多少元': a rate, per 亩, which the quote must state too."""
    out = []
    for i, w in enumerate(ws):
        unit = (
            w[1:] if w.startswith("每") and len(w) > 1 else ws[i + 1] if w == "每" and i + 1 < len(ws) else ""
        )
        unit = unit.removeprefix("个")
        if unit and is_unit(unit):
            out.append(Focus((unit,), True))
    return out


def _content(w: str) -> bool:
    """A word that can name what is asked: two or more Chinese characters, not a unit or function word."""
    return (
        len(w) > 1
        and w not in _FOCUS_SKIP
        and not _QUANTITY_WORD.match(w)
        and bool(re.search(r"[\u4e00-\u9fff]", w))
    )


def _changes(ws: list[str], j: int) -> bool:
    """``ws[j]`` is a verb with its result (涨到, or 提高 | 到, 调整 | 为): a change, not a thing counted."""
    return bool(_VERB_END.search(ws[j])) or (j + 1 < len(ws) and ws[j + 1] in _RESULT)


def _focus_at(ws: list[str], i: int, unit_asked: bool) -> list[Focus]:
    j = i + 2 if i + 1 < len(ws) and ws[i + 1] in _FOCUS_SKIP else i + 1  # 多少名: past the counter
    phrase = []
    while j < len(ws) and _content(ws[j]) and not _changes(ws, j):
        phrase.append(ws[j])
        j += 1
    if phrase:
        return [Focus(tuple(phrase), True)]
    if unit_asked:
        return []
    for j in range(i - 1, max(-1, i - 4), -1):  # past 是, 标准, 比例: the kind of figure asked for
        if ws[j] not in _FOCUS_SKIP and re.search(r"[\u4e00-\u9fff]", ws[j]):
            if not _content(ws[j]) or _changes(ws, j):
                return []  # 交多少: a verb of one character; 提高到多少: the target of a change, worded freely
            return [Focus((ws[j],), False)]
    return []


def supports(term: str, text: str, strict: bool = False) -> bool:
    """``term`` occurs in ``text``; or, ``strict``, its words all do (人才公寓 ~ 公寓…人才); or, loosely,
    at least half of its characters do (补贴 ~ 补助贴息)."""
    if term in text:
        return True
    if strict:
        parts = [w for w in words(term) if len(w) >= 2]
        return len(parts) > 1 and all(w in text for w in parts)
    return sum(c in text for c in term) * 2 >= len(term)


_DEGREE = re.compile(r"(博士|硕士)(?!后)(?:研究生)?|研究生|本科|学士|大专|专科|高职|中专")
_DEGREE_OF = {"学士": "本科", "大专": "专科", "高职": "专科"}


def degrees(text: str) -> set[str]:
    """The degree levels ``text`` names: 博士, 硕士, 研究生 (either), 本科, 专科, 中专 (博士后 is a post)."""
    return {
        _DEGREE_OF.get(m.group(1) or m.group(0), m.group(1) or m.group(0)) for m in _DEGREE.finditer(text)
    }


def other_degree(question: str, quoted: str) -> bool:
    """The quoted text names degree levels, and none is the one the question asks about (硕士 asked,
    本科生 quoted): it states another group's rule."""
    asked, named = degrees(question), degrees(quoted)
    if not asked or not named:
        return False
    either = {"博士", "硕士"}
    return not any(
        d in named or (d == "研究生" and named & either) or (d in either and "研究生" in named) for d in asked
    )


_DATE_WORD = re.compile(r"^(?:何时|什么时候|哪一天|哪天|日期|哪一年|哪年)$")
_DATE_SKIP = {"起", "开始", "正式", "的", "是", "自", "从", "于", "在"}


def dated_event(question: str) -> str | None:
    """What a date question asks the date of: '新办法何时起实施' -> 实施, '细则的生效日期' -> 生效."""
    ws = [w for w in words(question) if re.search(r"\w", w)]
    for i, w in enumerate(ws):
        if _DATE_WORD.match(w):
            for j in [*range(i + 1, min(len(ws), i + 3)), *range(i - 1, max(-1, i - 4), -1)]:
                if ws[j] not in _DATE_SKIP and not _DATE_WORD.match(ws[j]):
                    return ws[j] if _content(ws[j]) else None
    return None


def dates_event(quoted: list[str], event: str | None) -> bool:
    """One quoted sentence states a date and (loosely) the event it dates (施行 ~ 实施); true when the
    question dates no event."""
    return event is None or any(supports(event, s) and any(is_date(f) for f in extract(s)) for s in quoted)


_NAME = re.compile(r"(?<![.?!]\s)(?<!^)\b([A-Z][a-z]+)\b")


def unknown_names(question: str, groups: Sequence[TermGroup]) -> list[str]:
    """Capitalised English words past the first ('in Paris', 'of France') that the index renders by no
    Chinese word (their term group is the '?word' placeholder): a name the documents never use."""
    names = {m.group(1).lower() for m in _NAME.finditer(question.strip())}
    return sorted(
        alt[1:] for g in groups for alt in g.alternatives if alt.startswith("?") and alt[1:] in names
    )
