"""What a quoted answer must hold for the question it answers, beyond sharing its words: the thing a
quantity question counts, and the degree level it asks about. (The unit of the figure asked for is
:func:`talentbot.figures.asked_units`.)"""

from __future__ import annotations

import re

from .lexical import words

_QUANTITY_WORD = re.compile(r"^(多少|几\w*)$")
_MEASURE_NOUNS = {"钱", "人数", "金额", "数额", "数量", "总数", "规模", "期限", "时间", "时长", "年龄", "比例", "比重",
                  "标准", "幅度", "上限", "下限", "额度"}  # the kind of figure asked for, not the thing
_FOCUS_SKIP = _MEASURE_NOUNS | {
    "哪", "什么", "有", "是", "的", "了", "给予", "为", "在", "得", "到", "可以", "能", "应当",
    "共", "一共", "共有", "总共", "累计", "合计", "大约", "约",
    "位", "名", "个", "家", "所", "项", "种", "条", "次", "年", "人", "元", "天", "日", "个月", "小时", "周岁"}
_CLAUSE = re.compile(r"[，,、；;？?！!。]")


def focus_terms(question: str) -> list[tuple[str, bool]]:
    """What a quantity question asks about, as (term, strict) pairs. The word after 多少/几 is the thing
    counted and must occur as written ('多少交通补助' -> 交通); with none, the word before, loosely (a verb,
    '提高多少', or a noun named with its measure, '津贴标准是多少', which a text may word otherwise)."""
    out = []
    for clause in _CLAUSE.split(question):
        ws = [w for w in words(clause) if re.search(r"\w", w)]
        for i, w in enumerate(ws):
            if _QUANTITY_WORD.match(w) and not (i and ws[i - 1].startswith("哪")):  # 哪几类: a list
                out += _focus_at(ws, i)

    return out


def _content(w: str) -> bool:
    """A word that can name what is asked: two or more Chinese characters, not a unit or function word."""
    return len(w) > 1 and w not in _FOCUS_SKIP and not _QUANTITY_WORD.match(w) \
        and bool(re.search(r"[\u4e00-\u9fff]", w))


def _focus_at(ws: list[str], i: int) -> list[tuple[str, bool]]:
    after = [ws[j] for j in (i + 1, i + 2) if j < len(ws) and _content(ws[j])]
    if after:
        return [(after[0], True)]
    for j in range(i - 1, max(-1, i - 4), -1):  # past 是, 标准, 比例: the kind of figure asked for
        if ws[j] not in _FOCUS_SKIP and re.search(r"[\u4e00-\u9fff]", ws[j]):
            return [(ws[j], False)] if _content(ws[j]) else []  # 交多少: a verb of one character
    return []


def supports(term: str, text: str, strict: bool = False) -> bool:
    """``term`` occurs in ``text``; or, ``strict``, its words all do (人才公寓 ~ 公寓…人才); or, loosely,
    at least half of its characters do (补贴 ~ 补助贴息)."""
    if term in text:
        return True
    if strict:
        parts = [w for w in words(term) if len(w) >= 2]
        return len(parts) > 1 and all(w in text for w in parts)
    if __import__("os").environ.get("TB_LAX2") and len(term) == 2:
        return False
    return sum(c in text for c in term) * 2 >= len(term)


_DEGREE = re.compile(r"(博士|硕士)(?!后)(?:研究生)?|研究生|本科|学士|大专|专科|高职|中专")
_DEGREE_OF = {"学士": "本科", "大专": "专科", "高职": "专科"}


def degrees(text: str) -> set[str]:
    """The degree levels ``text`` names: 博士, 硕士, 研究生 (either), 本科, 专科, 中专 (博士后 is a post)."""
    return {_DEGREE_OF.get(m.group(1) or m.group(0), m.group(1) or m.group(0)) for m in _DEGREE.finditer(text)}


def other_degree(question: str, quoted: str) -> bool:
    """The quoted text names degree levels, and none is the one the question asks about (硕士 asked,
    本科生 quoted): it states another group's rule."""
    asked, named = degrees(question), degrees(quoted)
    if not asked or not named:
        return False
    either = {"博士", "硕士"}
    return not any(d in named or (d == "研究生" and named & either) or (d in either and "研究生" in named)
                   for d in asked)

