"""A policy's dates as data, read from its own text (any format, not only front matter).

- ``effective``: when it takes effect: "本条例自2000年12月1日起施行" (施行, 实施, 执行, 生效, 试行), or
  "自公布之日起施行" with the date it was issued;
- ``adopted``: "2000年9月27日 河南省……会议通过" (the header lines of a regulation);
- ``amended``: "2004年11月26日……《……关于修改〈……〉的决定》修正" (修正, 修订, 修改), every one, oldest first;
- ``expires``: "有效期至2025年12月31日", "执行至……", "……起废止/失效" said of the document itself;
- ``repeals``: the documents it repeals: "《……若干规定》同时废止".

Dates are read by :func:`talentbot.figures.extract` (Arabic or Chinese numerals, 二〇〇〇年十二月一日), and
written ISO (2000-12-01, or 2000-12 without a day).

Which sentences count, so that dates of other documents are not taken for this one's:

- an effective date must be said of this document: its sentence names "本条例/本办法/本通知…" before the
  date, or has nothing but an article number, 以上/上述 or 自/从 before it ("第六十条 自……起施行");
  "该条例自……" and "《X》自……" are about another document. The first such sentence wins;
- an adoption or amendment date heads its clause: the text from the date to the next date or comma ends
  with 通过 / 修正 (titles in 《》 left out), as in the header lines; "根据2021年4月29日修订的《X法》" does not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import cast

from .figures import extract, plain

_SENTENCE = re.compile(r"[^。；;！？!?\n]+")
_KEYWORDS = re.compile(
    r"施行|实施|执行|生效|试行|通过|修正|修订|修改|废止|失效|有效期|公布|发布|印发|颁布|截止|截至"
)
_TITLES = re.compile(r"《[^《》]*》|〈[^〈〉]*〉")
_DOC_WORDS = (
    "条例|办法|规定|细则|意见|通知|决定|法|方案|措施|规则|政策|公告|通告|指引|标准|规划|计划|制度|章程"
    "|准则|纲要|实施意见|若干规定"
)
_OWN_SUBJECT = re.compile(rf"本[\u4e00-\u9fff]{{0,10}}?(?:{_DOC_WORDS})")
_BARE_LEAD = re.compile(
    r"(?:第[\d一二三四五六七八九十百零〇]+条)?[\s　]*(?:(?:以上|上述)[^，,]{0,12}[，,]?)?[\s　]*"
    r"(?:自|从|于)?[\s　]*"
)
_TAKES_EFFECT = re.compile(
    r"[\s　]*(?:零时|0时)?[\s　]*(?:起|开始|以后)?[\s　]*(?:正式)?[\s　]*"
    r"(?:施行|实施|执行|生效|试行)(?!的)"
)
_ENDS = re.compile(r"[\s　]*(?:起|后)?[\s　]*(?:废止|失效|停止(?:施行|执行))(?!的)")
_UNTIL = re.compile(r"(?:截至|截止(?:日期)?(?:为|到)?|至|到)[\s　]*$")
_FROM_ISSUE = re.compile(r"自(?:公布|发布|印发|签发|颁布|下发)之日起[\s　]*(?:施行|实施|执行|生效|试行)")
_CLAUSE_END = re.compile(r"[，,：:]")
_TRAILING = re.compile(r"[\s　()（）\[\]【】、]*(?:根据|依据|按照)?[\s　()（）\[\]【】、]*$")
_AMENDED = re.compile(r"(?:修正|修订|修改|修正案)$")
_ADOPTED = re.compile(r"通过$")
_ISSUED = re.compile(r"(?:公布|发布|印发|颁布)$")
_REPEAL = re.compile(r"(?:同时|予以|一并)(?:废止|失效)")
CLAUSE_MAX = 120  # characters from a date to the keyword that says what the date is


@dataclass(frozen=True)
class PolicyDates:
    """Dates a policy states of itself (ISO text; '' or () where it states none)."""

    effective: str = ""
    adopted: str = ""
    amended: tuple[str, ...] = ()
    expires: str = ""
    repeals: tuple[str, ...] = ()


def iso_date(value: tuple[int | None, int | None, int | None]) -> str:
    """(2000, 12, 1) -> '2000-12-01'; (2000, 12, None) -> '2000-12'; '' without a year or month."""
    y, m, d = value
    if y is None or m is None:
        return ""
    return f"{y:04d}-{m:02d}" + (f"-{d:02d}" if d is not None else "")


def _dated(sentence: str) -> list[tuple[int, int, str]]:
    """(start, end, ISO date) of every date with a year and a month in ``sentence``, left to right."""
    spans: list[tuple[int, int, str]] = []
    for f in extract(sentence):
        if f.kind != "date" or f.value is None:
            continue
        iso = iso_date(cast(tuple[int | None, int | None, int | None], f.value))
        if not iso:
            continue
        spans += [(m.start(), m.end(), iso) for m in re.finditer(re.escape(f.text), sentence)]
    spans.sort()
    out: list[tuple[int, int, str]] = []
    for s in spans:
        if not out or s[0] >= out[-1][1]:
            out.append(s)
    return out


def _own(before: str) -> int:
    """How surely the text before a date makes it this document's: 2 names it (本条例), 1 nothing else, 0 not."""
    if _OWN_SUBJECT.search(before):
        return 2
    return 1 if _BARE_LEAD.fullmatch(before) else 0


def _clause(sentence: str, end: int, next_start: int) -> str:
    """What follows a date up to the next date or comma, titles left out, trailing brackets and 根据 cut."""
    stop = _CLAUSE_END.search(sentence, end, next_start)
    text = sentence[end : stop.start() if stop else next_start][: CLAUSE_MAX + 1]
    if len(text) > CLAUSE_MAX:
        return ""
    return _TRAILING.sub("", _TITLES.sub("", text)).strip()


def policy_dates(text: str, issued: str = "") -> PolicyDates:
    """The dates ``text`` states of itself. ``issued``: the document's own date (front matter, page), used when
    it takes effect on the day it is issued and the text does not date that day."""
    text = plain(text).replace("○", "〇")  # 二○○○: a white circle often stands for 〇
    effective: list[tuple[int, str]] = []  # (how surely its own, date)
    adopted: list[str] = []
    amended: list[str] = []
    issued_in_text: list[str] = []
    expires: list[tuple[int, str]] = []
    repeals: list[str] = []
    from_issue = 0
    for m in _SENTENCE.finditer(text):
        s = m.group(0)
        if not _KEYWORDS.search(s):
            continue
        repeal = _REPEAL.search(s)
        if repeal:
            repeals += [t.strip("《》") for t in re.findall(r"《[^《》]+》", s[: repeal.start()])]
        issue = _FROM_ISSUE.search(s)
        if issue:
            from_issue = max(from_issue, _own(s[: issue.start()]))
        dates = _dated(s)
        for i, (a, b, iso) in enumerate(dates):
            prev_end = dates[i - 1][1] if i else 0
            next_start = dates[i + 1][0] if i + 1 < len(dates) else len(s)
            before, after = s[:a], s[b:next_start]
            own = _own(before)
            if _TAKES_EFFECT.match(after) and own:
                effective.append((own, iso))
                continue
            if _UNTIL.search(s[prev_end:a]) and ("有效" in s or re.search(r"施行|实施|执行", s[:a])):
                expires.append((2, iso))
                continue
            if _ENDS.match(after) and own and not repeal:
                expires.append((own, iso))
                continue
            clause = _clause(s, b, next_start)
            if _AMENDED.search(clause):
                amended.append(iso)
            elif _ADOPTED.search(clause):
                adopted.append(iso)
            elif _ISSUED.search(clause):
                issued_in_text.append(iso)
    eff = _best(effective)
    if not eff and from_issue:
        eff = issued_in_text[0] if issued_in_text else issued
    return PolicyDates(
        effective=eff,
        adopted=min(adopted, default=""),
        amended=tuple(sorted(set(amended))),
        expires=_best(expires),
        repeals=tuple(dict.fromkeys(repeals)),
    )


def _best(found: list[tuple[int, str]]) -> str:
    """The first date of the surest kind."""
    if not found:
        return ""
    top = max(k for k, _ in found)
    return next(d for k, d in found if k == top)


def valid_iso(value: str) -> str:
    """``value`` as an ISO date if it reads as one ('2000-12-01', '2000年12月1日'), else ''."""
    for f in extract(value or ""):
        if f.kind == "date" and f.value is not None and not isinstance(f.value, Decimal):
            return iso_date(cast(tuple[int | None, int | None, int | None], f.value))
    return ""
