"""Figures (numbers, amounts, durations, dates) in text, normalised so that an answer can be checked against
its sources whatever way each writes them.

- Arabic, full-width, Chinese and financial numerals: 100万元 = 1,000,000元 = 一百万元 = 壹佰万元整;
- English number words and scales: "one million yuan", "1.5 million yuan", "thirty days";
- percentages: 50% = 百分之五十 = 50 percent;
- units: a figure keeps the unit that follows it (年, 月, 日/天, 元, 人, %, 倍…), so 三年 is not supported
  by 第三条 or 三十日, and 40元 is not supported by 40万元;
- dates: 2020年6月1日 = 2020-06-01 = June 1, 2020 = 二〇二〇年六月一日; components are compared, so
  2020年1月6日 is not supported by 2020年6月1日.

Chinese numerals are read with cn2an. A lone 一 counts only before a unit of quantity (一年, 一万元), so
words such as 统一 or 一些 are not figures.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import cast

import cn2an

_CN_DIGIT = "零〇一二三四五六七八九两壹贰貳叁參肆伍陆陸柒捌玖"
_CN_ALL = _CN_DIGIT + "十百千万亿拾佰仟萬億"
_SCALE = {
    "十": 10,
    "百": 100,
    "千": 1000,
    "万": 10**4,
    "亿": 10**8,
    "thousand": 10**3,
    "million": 10**6,
    "billion": 10**9,
}
_UNITS = [  # (pattern, normalised unit), longest first
    (r"个?工作日|working days?", "工作日"),
    (r"个?月|months?", "月"),
    (r"周?岁|years? old", "岁"),
    (r"个?小时|hours?", "小时"),
    (r"周年|年度|年|years?", "年"),
    (r"日|天|days?", "日"),
    (r"周|星期|weeks?", "周"),
    (r"(?:万|亿|千)?元|yuan|RMB|CNY", "元"),
    (r"%|‰|percent|per cent", "%"),
    (r"倍|times", "倍"),
    (r"(?:万)?(?:人次|人|名|位)|people|persons?|talents?", "人"),
    (r"折", "折"),
    (r"个|项|次|家|所|批|级|类|种|条|款|章|节|期|届|轮|户|套|亩|平方米|公里|大", None),
]
UNIT = re.compile(r"[ \t-]{0,2}(" + "|".join(f"(?:{p})" for p, _ in _UNITS) + ")", re.I)
_ONE_UNIT = re.compile(
    r"个?月|年|日|天|周|倍|名|元|人|周?岁|个?小时|个?工作日"
)  # what a lone 一 must precede

_EN_SMALL = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen".split()
    )
}
_EN_TENS = {
    w: 10 * i for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), 2)
}
_EN_WORD = (
    r"(?:"
    + "|".join(
        sorted([*_EN_SMALL, *_EN_TENS, "hundred", "thousand", "million", "billion"], key=len, reverse=True)
    )
    + r")"
)
_EN_PHRASE = re.compile(
    rf"\b(?:an?\s+(?=hundred|thousand|million|billion))?{_EN_WORD}\b"
    rf"(?:(?:\s+and\s+|[\s-]+){_EN_WORD}\b)*",
    re.I,
)
_MONTHS = {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}
_MONTH = (
    r"(?P<mon>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?"
    r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_Y = r"(?P<y>\d{4}|[〇零一二三四五六七八九]{4})"
_M = r"(?P<m>\d{1,2}|十[一二]?|[一二三四五六七八九])"
_D = r"(?P<d>\d{1,2}|[一二三]?十[一二三四五六七八九]?|[一二三四五六七八九])"
_DATES = [
    re.compile(p, re.I)
    for p in (
        rf"{_Y}\s*年\s*{_M}\s*月(?:\s*{_D}\s*[日号])?",
        rf"(?<![\d个]){_M}\s*月\s*{_D}\s*[日号]",
        r"(?<![\d.])(?P<y>\d{4})\s*[-/.]\s*(?P<m>\d{1,2})\s*[-/.]\s*(?P<d>\d{1,2})(?![\d.]\d)",
        rf"\b{_MONTH}\.?\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<y>\d{{4}})\b",
        rf"\b(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\s+{_MONTH}\.?,?\s+(?P<y>\d{{4}})\b",
        rf"\b{_MONTH}\.?,?\s+(?P<y>\d{{4}})\b",
    )
]
_PERCENT = re.compile(rf"百分之(?P<n>\d+(?:\.\d+)?|[{_CN_ALL}]+(?:点[{_CN_DIGIT}]+)?)")
_NUMBER = re.compile(
    rf"(?P<ar>\d+(?:\.\d+)?)(?:\s*(?P<sc>[百千万亿]+|(?:thousand|million|billion)\b))?"
    rf"|(?P<cn>[{_CN_ALL}]+(?:点[{_CN_DIGIT}]+)?)",
    re.I,
)
_MARKER = re.compile(r"\[\d{1,2}\]")
_RANGE = re.compile(rf"\s*[至到～~\-—或]\s*(?:\d+(?:\.\d+)?|[{_CN_ALL}]+)")

_Date = tuple[int | None, int | None, int | None]  # (year, month, day)


@dataclass(frozen=True)
class Figure:
    """A figure as written (``text``) and as read: a number with its unit, or a (year, month, day) date."""

    text: str
    kind: str  # "number" or "date"
    value: Decimal | _Date | None  # None: not readable, compared as text
    unit: str | None = None
    bare: Decimal | None = None  # the number before its scale word: 40 of 40万元


def plain(text: str) -> str:
    """Full-width forms folded (NFKC), citation markers and thousands separators dropped."""
    text = _MARKER.sub(" ", unicodedata.normalize("NFKC", text))
    return re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", text)


def _cn(text: str) -> Decimal | None:
    if len(text) == 4 and all(c in "〇零一二三四五六七八九" for c in text):  # a year: 二〇二〇
        return Decimal("".join(str("〇一二三四五六七八九".index(c) if c != "零" else 0) for c in text))
    try:
        return Decimal(str(cn2an.cn2an(text, "smart")))
    except (ValueError, KeyError, IndexError, TypeError, InvalidOperation):
        return None


def _int(text: str) -> int | None:
    value = Decimal(text) if text.isdigit() else _cn(text)
    return int(value) if value is not None and value == int(value) else None


def _en_words(phrase: str) -> Decimal:
    """'one million' -> 1000000, 'two hundred and five' -> 205, 'a thousand' -> 1000."""
    total = current = 0
    for w in re.findall(r"[a-z]+", phrase.lower()):
        if w == "and":
            continue
        if w in ("a", "an"):
            current = max(current, 1)
        elif w in _EN_SMALL or w in _EN_TENS:
            current += _EN_SMALL.get(w, _EN_TENS.get(w, 0))
        elif w == "hundred":
            current = max(current, 1) * 100
        else:
            total += max(current, 1) * _SCALE[w]
            current = 0
    return Decimal(total + current)


def unit_at(text: str, pos: int) -> str | None:
    """The normalised unit written right after position ``pos`` (万元 -> 元, 天 -> 日, years -> 年)."""
    m = UNIT.match(text, pos)
    if not m:  # the first number of a range takes the unit of the second: 三至五年, 3-5年
        r = _RANGE.match(text, pos)
        m = UNIT.match(text, r.end()) if r else None
    if not m:
        return None
    word = m.group(1)
    return next((unit or word for pattern, unit in _UNITS if re.fullmatch(pattern, word, re.I)), None)


def _blank(text: str, start: int, end: int) -> str:
    return text[:start] + " " * (end - start) + text[end:]


def extract(text: str) -> list[Figure]:
    """Every figure of ``text``: dates first, then percentages, English number words, and numbers."""
    text = plain(text)
    out: list[Figure] = []
    for pattern in _DATES:
        for m in pattern.finditer(text):
            g = m.groupdict()
            y = _int(g["y"]) if g.get("y") else None
            mon = _MONTHS[g["mon"][:3].lower()] if g.get("mon") else _int(g["m"]) if g.get("m") else None
            d = _int(g["d"]) if g.get("d") else None
            if (mon is None or 1 <= mon <= 12) and (d is None or 1 <= d <= 31):
                out.append(Figure(m.group(0), "date", (y, mon, d)))
                text = _blank(text, m.start(), m.end())
    for m in _PERCENT.finditer(text):
        n = m.group("n")
        out.append(Figure(m.group(0), "number", Decimal(n) if n[0].isdigit() else _cn(n), "%"))
        text = _blank(text, m.start(), m.end())
    for m in _EN_PHRASE.finditer(text):
        words = m.group(0).lower().split()
        unit = unit_at(text, m.end())
        if len(words) == 1 and (
            unit is None or re.search(r"\d\s*$", text[max(0, m.start() - 3) : m.start()])
        ):
            continue  # "one of the measures", "the two regulations": words; "1.5 million" is read below
        out.append(Figure(m.group(0), "number", _en_words(m.group(0)), unit))
        text = _blank(text, m.start(), m.end())
    for m in _NUMBER.finditer(text):
        unit = unit_at(text, m.end())
        if m.group("ar"):
            bare = Decimal(m.group("ar"))
            scale = 1
            for ch in re.findall(r"[百千万亿]|thousand|million|billion", (m.group("sc") or "").lower()):
                scale *= _SCALE[ch]
            out.append(Figure(m.group(0).strip(), "number", bare * scale, unit, bare if scale > 1 else None))
            continue
        cn = m.group("cn")
        if len(cn) == 1 and (
            cn in "百千万亿佰仟萬億" or unit is None or (cn == "一" and not _ONE_UNIT.match(text, m.end()))
        ):
            continue  # 统一, 一些, 百姓, 十分: words, not figures
        if len(cn) > 1 and len(cn) != 4 and not re.search(r"[十百千万亿拾佰仟萬億〇零点]", cn):
            continue  # 一一, 三五: not a number (a year, 二〇二〇, has four digits)
        cn_bare = _cn(cn[:-1]) if len(cn) > 1 and cn[-1] in "万亿萬億" else None
        out.append(Figure(cn, "number", _cn(cn), unit, cn_bare))
    return out


def _supports(f: Figure, pool: list[Figure], source: str) -> bool:
    if f.value is None:
        return f.text in source
    if f.kind == "date":
        date = cast(_Date, f.value)
        return any(
            s.kind == "date"
            and all(a is None or a == b for a, b in zip(date, cast(_Date, s.value), strict=True))
            for s in pool
        )
    for s in pool:
        if s.kind == "date":
            continue
        if s.value == f.value and (f.unit is None or s.unit == f.unit):
            return True
        if f.unit is None and s.bare == f.value:
            return True
    return False


def source_figures(sources: list[str]) -> list[Figure]:
    """Figures of the sources, each date also as its year, month and day (2020年 is in 2020年6月1日)."""
    pool: list[Figure] = []
    for text in sources:
        for f in extract(text):
            pool.append(f)
            if f.kind == "date":
                date = cast(_Date, f.value)
                pool.extend(
                    Figure(f.text, "number", Decimal(v), u)
                    for v, u in zip(date, ("年", "月", "日"), strict=True)
                    if v is not None
                )
    return pool


def unsupported(text: str, sources: list[str]) -> list[str]:
    """The figures of ``text`` (as written) that none of ``sources`` states."""
    return missing(extract(text), sources)


def missing(figures: list[Figure], sources: list[str]) -> list[str]:
    """The ``figures`` (as written) that none of ``sources`` states."""
    pool = source_figures(sources)
    joined = "\n".join(plain(s) for s in sources)
    return [f.text for f in figures if not _supports(f, pool, joined)]


def is_date(f: Figure) -> bool:
    """``f`` is a date or a year (2023年), not a duration (12个月)."""
    return f.kind == "date" or (f.unit == "年" and isinstance(f.value, Decimal) and 1900 <= f.value <= 2100)


def is_unit(word: str) -> bool:
    """``word`` is a unit a figure is counted in (月, 平方米, 人, 套…)."""
    return bool(UNIT.fullmatch(word))
