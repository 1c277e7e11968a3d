"""Comparisons and multi-part questions: "北京和上海的罚款分别是多少？", "《A》和《B》哪一部施行得更早？".

A question naming two or more places (none inside another) or 《titles》, joined by 和/与/、 or asking
分别/哪个/更早/有何不同, is split into one sub-question per place or title, the rest of the question shared
(:func:`split_parts`). Each part is retrieved within its own scope and answered by the extractive answerer
with its own refusal gate (:func:`talentbot.extractive.compose`), as a labelled line; a part that the documents
lack is refused by name while the others are answered. When the question asks which is earlier, more or
longer, a last line states the comparison, computed from the figures quoted for each part and naming
only the parts' labels (:func:`comparison`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from .anchors import Anchors, question_anchors
from .answer import Answer, AnswerEvent, Event, TextEvent, is_english, no_answer
from .extractive import cite, compose, quote_lines
from .figures import extract, is_date
from .normalize import simplified
from .passages import Passage
from .places import gazetteer
from .quoting import Quote, Siblings
from .shape import no_ordinals, with_unit

_CUE = re.compile(
    r"分别|各自|各是|哪(?:一)?[个部家项条]|哪里|谁|[更较](?:早|晚|多|少|高|低|长|短|大|小)|最(?:早|晚)"
    r"|不同|区别|差异|异同|相比|比较|对比|相同|一样"
)
_CONNECTOR = re.compile(r"以及|或者|还是|[和与及、跟同或，,]")
_COMPARATIVE = re.compile(
    r"[更较最](早|晚|多|少|高|低|长|短|大|小)|(早|晚)于|(?:哪(?:一)?[个部家项条]|谁)([先后])"
)
_ASKS_WHICH = re.compile(
    r"(?:的)?(?:是)?哪(?:一)?[个部家项条](?:条例|规定|地方)?(?!先|后)|谁(?=[更较最])|分别|各自"
)
_REWRITE = [
    (re.compile(r"(?:哪(?:一)?[个部家项条]|谁)[先后]"), "何时"),
    (re.compile(r"[更较最](?:早|晚)"), "何时"),
    (re.compile(r"[更较最](?:长|短)"), "多长"),
    (re.compile(r"[更较最](?:多|少|高|低|大|小)"), "多少"),
    (
        re.compile(
            r"有(?:什么|何)(?:不一样|不同|区别|差异)|的?(?:区别|差异|异同|不同之处)(?:是什么|在哪里|有哪些)?"
        ),
        "是什么",
    ),
]
_RELATION = {
    "早": "早于",
    "晚": "晚于",
    "多": "多于",
    "少": "少于",
    "高": "高于",
    "低": "低于",
    "长": "长于",
    "短": "短于",
    "大": "大于",
    "小": "小于",
}
_ASCENDING = set("早少低短小")
_DOC_KIND = re.compile(r"条例|办法|规定|细则|意见|通知|决定|方案|政策|计划|纲要|示范区|开发区|新区|知识城")


@dataclass
class Part:
    """One part of a multi-part question: ``label`` as the question names it, the sub-question, and the
    anchors its answer must match."""

    label: str
    question: str
    anchors: Anchors


@dataclass
class PartResult:
    """A part and what retrieval found for it: passages, or why there are none (``missing``)."""

    part: Part
    passages: list[Passage] = field(default_factory=list)
    missing: str | None = None


def _nested(a: frozenset[str], b: frozenset[str]) -> bool:
    """One of two places lies in the other (or they are the same): 忻州 and 山西."""
    g = gazetteer()
    return bool(a & b) or any(set(g.ancestors(c)) & b for c in a) or any(set(g.ancestors(c)) & a for c in b)


def _names(question: str, anchors: Anchors) -> list[tuple[str, int, int, Anchors]]:
    """The parts' names with their place in ``question`` and their own anchors, in order of appearance."""
    out = []
    if len(anchors.titles) >= 2:
        for t in anchors.titles:
            at = question.find(f"《{t}》")
            out.append(
                (f"《{t}》", at, at + len(t) + 2, Anchors(anchors.places, (t,), anchors.zones, anchors.years))
            )
    elif len(anchors.places) >= 2:
        # a broader place only says where the parts lie (山西 of 山西忻州和太原)
        places = [
            (f, c)
            for f, c in anchors.places
            if not any(_deeper(c2, c) for f2, c2 in anchors.places if f2 != f)
        ]
        if any(_nested(a, b) for i, (_, a) in enumerate(places) for _, b in places[i + 1 :]):
            return []  # the same place twice (山西, 山西省): not parts
        for f, c in places:
            at = question.find(f)
            out.append((f, at, at + len(f), Anchors(((f, c),), anchors.titles, anchors.zones, anchors.years)))
    out = [x for x in out if x[1] >= 0]
    return sorted(out, key=lambda x: x[1]) if len(out) >= 2 else []


def _deeper(inner: frozenset[str], outer: frozenset[str]) -> bool:
    """``inner`` lies inside ``outer`` (定襄 in 山西): the broader one only says where the parts are."""
    g = gazetteer()
    return any(set(g.ancestors(c)[1:]) & outer for c in inner)


def split_parts(question: str) -> list[Part]:
    """The parts of a multi-part Chinese question, or [] when it asks about one thing."""
    if is_english(question):
        return []
    q = simplified(question)
    return _by_sentence(q) or _by_name(q)


def _by_sentence(q: str) -> list[Part]:
    """'深圳…由哪个部门主管？北京…由哪个部门牵头？': questions in a row, each about its own place or title."""
    parts = []
    for m in re.finditer(r"[^？?；;]+[？?；;]*", q):
        sentence = m.group(0).strip()
        anchors = question_anchors(sentence)
        if len(anchors.places) + len(anchors.titles) > 1:
            return []  # one of them is itself about several things
        label = anchors.titles[0] if anchors.titles else anchors.place_names[0] if anchors.places else ""
        if label and len(re.sub(r"\W|呢|吗|的", "", sentence.replace(label, ""))) < 6:
            return []  # "无锡呢？" asks nothing by itself: a follow-up, not a part
        if label:
            parts.append(Part(f"《{label}》" if anchors.titles else label, sentence, anchors))
    return parts if len(parts) >= 2 and len({p.label for p in parts}) == len(parts) else []


def _by_name(q: str) -> list[Part]:
    """'北京和上海的罚款分别是多少？': one sub-question per name, the rest of the question shared."""
    names = _names(q, question_anchors(q))
    if not names:
        return []
    gaps = [
        q[a_end:b_start].strip("省市区县的 ")
        for (_, _, a_end, _), (_, b_start, _, _) in zip(names, names[1:], strict=False)
    ]
    if not all(_CONNECTOR.fullmatch(g) for g in gaps) and not _CUE.search(q):
        return []
    spans = _phrases(q, names, adjacent=all(not g or _CONNECTOR.fullmatch(g) for g in gaps))
    parts = []
    for i, (label, _, _, anchors) in enumerate(names):
        text = q
        for j in sorted(range(len(names)), key=lambda j: -spans[j][0]):
            if j != i:
                text = _cut(text, *spans[j], first=j == 0)
        first, *rest = _REWRITE  # 哪一项先实施 -> 何时实施, then the other 哪个 go, then 更早 -> 何时
        text = _ASKS_WHICH.sub("", first[0].sub(first[1], text))
        for pattern, word in rest:
            text = pattern.sub(word, text)
        parts.append(Part(label, text, anchors))
    return parts


def _phrases(q: str, names: list[tuple[str, int, int, Anchors]], adjacent: bool) -> list[tuple[int, int]]:
    """Where each name's own words lie: the name alone (北京和上海的…), or from the connector or clause start
    before it to the connector or cue after it (甲省人才引进办法和乙市人才发展条例分别…)."""
    if adjacent:
        return [(s, e) for _, s, e, _ in names]
    out: list[tuple[int, int]] = []
    for k, (_, s, e, _) in enumerate(names):
        floor = out[-1][1] if out else 0
        before = [m.end() for m in re.finditer(rf"{_CONNECTOR.pattern}|[。？！?!：:；;]", q[floor:s])]
        start = floor + before[-1] if before else floor
        limit = names[k + 1][1] if k + 1 < len(names) else len(q)
        stops = [m.start() for m in (_CONNECTOR.search(q, e, limit), _CUE.search(q, e, limit)) if m]
        stop = min(stops, default=limit)
        kinds = [m.end() for m in _DOC_KIND.finditer(q, e, stop)]  # 甲省人才引进办法: ends with its kind
        out.append((start if s - start <= 4 else s, kinds[-1] if kinds else stop))
    return out


def _cut(text: str, start: int, end: int, first: bool) -> str:
    """``text`` without text[start:end] and the connector joining it to the name before it (after it,
    for the first name)."""
    before = re.search(rf"(?:{_CONNECTOR.pattern})$", text[:start])
    if before and not first:
        return text[: before.start()] + text[end:]
    after = _CONNECTOR.match(text, end)
    return text[:start] + text[after.end() if after else end :]


def _figure(quotes: list[Quote], kind: str) -> tuple[str, str, tuple] | None:
    """The one figure of a part's lead quote that a comparison is about, as (text, unit, sort key): a date
    with its year, or a number with its unit; None when there is not exactly one."""
    found = [
        f
        for f in extract(no_ordinals(quotes[0].text))
        if (is_date(f) if kind == "date" else f.kind == "number" and f.unit)
    ]
    if len(found) != 1:
        return None
    f = found[0]
    if isinstance(f.value, tuple) and f.kind == "date" and f.value[0] is not None:
        return f.text, "date", tuple(v or 0 for v in f.value)
    if isinstance(f.value, Decimal):
        return with_unit(quotes[0].text, f.text), str(f.unit), (f.value,)
    return None


def comparison(question: str, answered: list[tuple[str, list[Quote]]]) -> str | None:
    """'比较：北京（5万元）高于上海（3万元）。' from the figures quoted for each part, when ``question`` asks
    which is earlier, more, longer…; None when it does not, or the figures cannot be compared."""
    m = _COMPARATIVE.search(question)
    if not m or len(answered) < 2:
        return None
    word = {"先": "早", "后": "晚"}.get(m.group(3), m.group(1) or m.group(2) or m.group(3))
    kind = "date" if word in "早晚" else "number"
    figures = []
    for label, quotes in answered:
        f = _figure(quotes, kind)
        if f is None:
            return None
        figures.append((label, f))
    if len({f[1] for _, f in figures}) != 1:
        return None  # 万元 against 人: not comparable
    ordered = sorted(figures, key=lambda x: x[1][2], reverse=word not in _ASCENDING)
    keys = {f[2] for _, f in ordered}
    if len(keys) == 1:
        return "比较：" + "与".join(label for label, _ in ordered) + f"相同（{ordered[0][1][0]}）。"
    if len(keys) < len(ordered):
        return None  # a tie among three or more: no single order to state
    return "比较：" + _RELATION[word].join(f"{label}（{f[0]}）" for label, f in ordered) + "。"


def parts_events(
    question: str, results: list[PartResult], min_coverage: float, siblings: Siblings | None = None
) -> Iterator[Event]:
    """Stream the answer to a multi-part question: one labelled block per part, then the comparison."""
    numbers: dict[str, int] = {}
    lines: list[str] = []
    quoted: list[Quote] = []
    answered: list[tuple[str, list[Quote]]] = []
    table: list[dict] = []
    highlights: list[str] = []
    reasons = []
    for r in results:
        label = r.part.label
        shaped = None if r.missing else compose(r.part.question, r.passages, min_coverage, siblings)
        if shaped is None:
            reason = r.missing or "资料中没有找到这一部分的答案。"
            reasons.append(r.missing or "")
            lines.append(f"{label}：{reason}")
            table.append({"label": label, "answer": reason, "n": None})
            continue
        title = str(shaped.quotes[0].passage.meta.get("title", "")).strip("《》")
        prefix = "" if label.strip("《》") == title else f"{label}："
        lines += quote_lines(shaped.quotes, numbers, False, prefix)
        quoted += shaped.quotes
        answered.append((label, shaped.quotes))
        highlights += shaped.highlights
        table.append(
            {"label": label, "answer": shaped.quotes[0].text, "n": numbers[shaped.quotes[0].passage.id]}
        )
    if not answered:
        refusal = no_answer(question, "".join(dict.fromkeys(x for x in reasons if x)) or None)
        yield TextEvent(refusal.text)
        yield AnswerEvent(refusal)
        return
    stated = comparison(question, answered)
    if stated:
        lines.append(stated)
    for i, line in enumerate(lines):
        yield TextEvent(line if i == 0 else "\n" + line)
    yield AnswerEvent(
        Answer(
            text="\n".join(lines),
            no_answer=False,
            citations=cite(quoted, numbers),
            question=question,
            highlights=list(dict.fromkeys(highlights)),
            parts=table,
        )
    )
