"""What a question asks a figure of: the units it wants its figure in (:func:`asked_units`), whether a text
states a figure in such a unit (:func:`states_unit`), and the figures the question itself names about the
thing it asks of (:func:`named_in_question`). The figures themselves are read by :mod:`talentbot.figures`."""

from __future__ import annotations

import functools
import re
from decimal import Decimal

from .figures import UNIT, Figure, extract, is_date, plain, unit_at


def named_in_question(question: str) -> list[Figure]:
    """The figures a question states about the thing it asks of (第十批, 8月1日, 15分钟): ordinals, dates
    with a month, and numbers above ten. Years are left to the anchors; small counts describe the shape
    of the answer (哪两类, 三个方面) rather than the thing asked about."""
    out = []
    plain_q = plain(question)
    for f in extract(question):
        at = plain_q.find(f.text)
        ordinal = at > 0 and plain_q[at - 1] == "第"
        if f.kind == "date" and isinstance(f.value, tuple):
            if f.value[1] is not None:
                out.append(f)
        elif ordinal or (
            isinstance(f.value, Decimal) and f.value > 10 and not (f.unit == "年" and 1900 <= f.value <= 2100)
        ):
            out.append(f)
    return out


_ASKS_QUANTITY = re.compile(r"(?<!第)(?:多少|几(?![乎何]))")
_ASKS_DATE = re.compile(
    r"哪一?天|何时|什么时[候间]|哪一?年|几月几[日号]|日期|when\b|what date|which year", re.I
)
_APPROX = re.compile(r"(?<=[\d十百千万亿])[多余来](?=[个名人位元年月日天岁倍%])")  # 600多名, 1.4万余名
_ASKS_DURATION = re.compile(r"多长时间|多久|多长|how long", re.I)
_DURATIONS = {"年", "月", "日", "工作日", "周", "小时"}
_MEASURE_WORDS = [
    (re.compile(p), u)
    for p, u in (  # 补助比例多少: a share; 年龄多少: an age
        (r"比例|比重|占比|百分比", "%"),
        (r"年龄|岁数", "岁"),
        (r"人数", "人"),
        (r"金额|资金|费用|钱数", "元"),
    )
]
_SHARE = re.compile(r"分之|[∶:]\s*\d|[一二三四五六七八九\d]成")  # 三分之一, 1∶22, 七成: shares without %
_MEASURES = {"年", "月", "日", "工作日", "小时", "周", "岁", "元", "%", "倍", "人", "折"}
_ASIDE = re.compile(r"[（(][^（）()]{1,4}[）)]")  # 65（含）岁: an aside between a figure and its unit


@functools.lru_cache(maxsize=1024)
def asked_units(question: str) -> frozenset[str]:
    """The units a question asks its figure in: '多少岁' -> {'岁'}, '几个月' -> {'月'}, '多少钱' -> {'元'},
    '何时' -> {'date'}, '多久' -> {'duration'}, '补助比例多少' -> {'%'}, '年龄多少' -> {'岁'}; 'number' for any
    other 多少/几 (some quantity, not a calendar date).
    Counters (个, 项, 套) are left out: a text may count the same things with another. Cached: the answer
    checks, the shaping and the vagueness test ask it of the same question several times."""
    text = plain(question)
    units = {"date"} if _ASKS_DATE.search(text) else set()
    if _ASKS_DURATION.search(text):
        units.add("duration")
    for m in _ASKS_QUANTITY.finditer(text):
        if text[max(0, m.start() - 1) : m.start()] == "哪":
            continue  # 哪几类: a list, not a count
        units.add("number")
        units.update(
            u for pattern, u in _MEASURE_WORDS if pattern.search(text, max(0, m.start() - 6), m.start())
        )
        u = UNIT.match(text, m.end())
        if u and len(_first_word(text[m.end() : m.end() + 8])) > len(u.group(0)):
            continue  # 多少人才津贴: the word is 人才, not the unit 人
        unit = "元" if text.startswith("钱", m.end()) else unit_at(text, m.end())
        if unit in _MEASURES:
            units.add("日" if unit == "工作日" else unit)
    if "date" in units:  # 几月几日: the 几 and its 月/日 are the date asked for
        units -= {"number", "年", "月", "日"}
    return frozenset(units)


def _first_word(text: str) -> str:
    from .lexical import words  # jieba, loaded on first use

    return next(iter(words(text)), "")


def states_unit(text: str, unit: str) -> bool:
    """``text`` states a figure in ``unit`` ('date': a date, or a year, month or day)."""
    figures = extract(_APPROX.sub("", _ASIDE.sub("", text)))
    if unit == "date":
        return any(is_date(f) for f in figures)
    if unit == "number":  # 多少 asks for a quantity: a calendar date (7月24日) is not one
        return any(not is_date(f) for f in figures)
    if unit == "duration":
        return any(f.unit in _DURATIONS and not is_date(f) for f in figures)
    if unit == "%" and _SHARE.search(text):
        return True
    return any(
        f.unit == unit or (f.unit == "工作日" and unit == "日") or (f.kind == "date" and unit == "年")
        for f in figures
    )
