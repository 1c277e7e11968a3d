"""Vague questions ("有什么补贴？", "人才政策"): a short clarifying reply instead of an arbitrary quote.

A question is vague (:func:`is_vague`) when it names nothing to narrow it down (no place, 《title》, zone
or year; no region, file or source filter; no pronoun or demonstrative pointing at one thing), asks for no
figure or date (多少, 何时), and, once its question words, stop words and framing words
(了解, 相关, 介绍…) are left out, at most one content word remains that is not corpus-wide (held by more
than half of the articles, as 人才 is in a talent-policy corpus), and that one is a topic several articles
share. A lone word held by one article picks that article, and one held by none is about something the
corpus lacks: such questions are answered, or refused, as usual.

The reply (:func:`clarify_text`) lists what the corpus covers, read from the store (:func:`catalogue`):
the regions of its articles (provinces with their cities), the topics its titles and chapter headings
name most often (nouns by jieba's part-of-speech tags, in the most articles first; places, document kinds
and corpus-wide words left out), and example questions built from real titles, regions and topics.

A refusal given under an active filter ends with a line naming the filter, so that the user can clear it
and ask again (:func:`filter_note`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .anchors import question_anchors
from .asked import asked_units
from .lexical import STOPWORDS, words
from .places import gazetteer

if TYPE_CHECKING:
    from .lexical import LexicalIndex
    from .passages import Filters
    from .retrieval import Retriever
    from .store import ArticleRecord

# Words that frame a question without saying what it is about (Chinese and English).
_FRAMING_WORDS = (
    "有没有 有无 什么样 哪儿 哪里 怎么样 相关 方面 情况 内容 信息 资料 介绍 关于 具体 主要 有关 现在 目前 "
    "最新 想 了解 知道 咨询 告诉 请 问问 查询 查 看看 一些 享受 享有 获得 得到 提供 出台 具体内容 "
    "there available about tell know want please some get have has exist exists offer offered provide "
    "provided kind kinds type types information info me us"
)
FRAMING = set(_FRAMING_WORDS.split())
_DOC_KIND = re.compile(
    r"(?:条例|办法|规定|细则|意见|通知|决定|方案|措施|规划|计划|纲要|公告|通告|指引|政策|法)$"
)
_STRUCTURE = {"总则", "附则", "附录", "目录", "前言", "正文", "章节"}
_TOPIC_TAGS = {"n", "nz", "vn", "l", "i", "j", "nt"}
_CONNECTOR = re.compile(r"[与和及、，,；;：:（）()“”\"《》]|的|中")
# a pronoun or demonstrative means one thing the user has in mind (它给了多少奖励？), not a whole topic
_POINTS_BACK = re.compile(
    r"[它他她]|(?:该|这|那|此|上述)[个些项家部条市省区县镇类种所位]|\b(?:it|its|they|them|their|this|that)\b",
    re.I,
)
_HEADING_NUMBER = re.compile(r"^\s*第[一二三四五六七八九十百零〇\d]+[章节编篇]\s*")
MAX_TOPICS = 8
MAX_PROVINCES = 12


def content_terms(question: str) -> list[str]:
    """The words of ``question`` that may say what it is about: no stop, question or framing words, no
    kind of document (措施, 政策), no single Chinese character (mostly function words), no English word shorter than three letters."""
    out: list[str] = []
    for w in words(question):
        w = w.strip().lower()
        if not w or not re.search(r"\w", w) or w in STOPWORDS or w in FRAMING or _DOC_KIND.fullmatch(w):
            continue  # a kind of document (措施, 政策) says nothing about what it is about
        if (w.isascii() and len(w) < 3) or (not w.isascii() and len(w) < 2):
            continue
        out.append(w)
    return list(dict.fromkeys(out))


def is_vague(
    question: str, held_by: Callable[[str], int], total: int, filters: Filters | None = None
) -> bool:
    """Whether ``question`` is too broad to answer by quoting: see the module docstring. ``held_by(term)``
    counts the articles whose text holds a term; ``total`` is the number of articles."""
    if question_anchors(question) or total == 0 or _POINTS_BACK.search(question):
        return False
    if asked_units(question):  # 多少, 何时, 多久: one figure or date is asked for, not a whole topic
        return False
    if filters is not None and (filters.region or filters.file or filters.source):
        return False
    specific = [t for t in content_terms(question) if held_by(t) * 2 <= total or held_by(t) < 2]
    if len(specific) > 1:
        return False
    return not specific or held_by(specific[0]) >= 2


@dataclass
class Catalogue:
    """What a corpus covers, for a clarifying reply."""

    regions: list[str] = field(default_factory=list)  # '广东（广州、深圳）'
    regions_en: list[str] = field(default_factory=list)  # 'Guangdong (Guangzhou, Shenzhen)'
    topics: list[str] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)  # Chinese example questions
    examples_en: list[str] = field(default_factory=list)


def _pinyin(name: str) -> str:
    from pypinyin import lazy_pinyin

    return "".join(lazy_pinyin(name)).capitalize()


def _regions(records: Sequence[ArticleRecord]) -> tuple[list[str], list[str], dict[str, str]]:
    """Provinces with the cities under them, most articles first, in Chinese ('广东（广州、深圳）') and in
    pinyin ('Guangdong (Guangzhou, Shenzhen)'); and each article's most specific region name (key -> name)."""
    g = gazetteer()
    count: dict[str, int] = {}
    cities: dict[str, dict[str, None]] = {}
    deepest: dict[str, str] = {}
    for rec in records:
        codes = [c for c in rec.region_codes.split(",") if c in g.by_code]
        for c in codes:
            p = g.by_code[c]
            if p.level == 0:
                count[c] = count.get(c, 0) + 1
            elif p.level == 1 and p.parent:
                cities.setdefault(p.parent, {})[p.short or p.name] = None
        if codes:
            best = max(codes, key=lambda c: g.by_code[c].level)
            deepest[rec.key] = g.by_code[best].short or g.by_code[best].name
    ordered = sorted(count, key=lambda c: (-count[c], c))[:MAX_PROVINCES]
    labels, english = [], []
    for c in ordered:
        name = g.by_code[c].short or g.by_code[c].name
        under = [x for x in cities.get(c, {}) if x != name][:4]
        labels.append(f"{name}（{'、'.join(under)}）" if under else name)
        english.append(_pinyin(name) + (f" ({', '.join(map(_pinyin, under))})" if under else ""))
    return labels, english, deepest


def _topic_words(text: str) -> list[str]:
    """Topics a title or heading names: its phrases between connectors (人才引进与流动 -> 人才引进) of two
    to six characters, and its noun-like words; places, document kinds and structural headings left out."""
    import rjieba

    text = re.sub(r"\s+", "", _HEADING_NUMBER.sub("", text))
    g = gazetteer()

    def plain(w: str) -> bool:
        return w not in STOPWORDS and w not in _STRUCTURE and not _DOC_KIND.search(w) and not g.find(w)

    out = []
    for piece in _CONNECTOR.split(text):
        ws = [w for w, _ in rjieba.tag(piece)]
        while ws and not plain(ws[0]):
            ws.pop(0)
        while ws and not plain(ws[-1]):
            ws.pop()
        phrase = "".join(ws)
        if len(ws) > 1 and 2 <= len(phrase) <= 6 and all(re.fullmatch(r"[\u4e00-\u9fff]+", w) for w in ws):
            out.append(phrase)
    for w, tag in rjieba.tag(text):
        if tag in _TOPIC_TAGS and len(w) >= 2 and plain(w):
            out.append(w)
    return out


def catalogue(records: Sequence[ArticleRecord], headings: Mapping[str, Sequence[str]]) -> Catalogue:
    """The regions, topics and example questions of a corpus: ``records`` (the manifest's articles) and
    ``headings`` (article key -> its chapter headings)."""
    records = sorted(records, key=lambda r: (r.title, r.key))
    regions, regions_en, deepest = _regions(records)
    holders: dict[str, list[str]] = {}  # topic -> keys of the articles whose title or headings name it
    for rec in records:
        for text in [rec.title, *headings.get(rec.key, ())]:
            for w in _topic_words(text):
                keys = holders.setdefault(w, [])
                if rec.key not in keys:
                    keys.append(rec.key)
    total = len(records)
    ranked = sorted(
        (w for w, keys in holders.items() if total < 3 or len(keys) * 2 <= total),
        key=lambda w: -len(holders[w]) * len(w),
    )  # articles naming it times its length: common and specific (人才流动 before 机构); ties as met
    topics = ranked[:MAX_TOPICS]
    zh: list[str] = []
    en: list[str] = []
    dated = next((r for r in records if r.effective and 0 < len(r.title) <= 30), None)
    if dated is not None:
        zh.append(f"《{dated.title}》自何时起施行？")
        en.append(f"When does 《{dated.title}》 take effect?")
    used: set[str] = set()
    for topic in topics:
        key = next((k for k in holders[topic] if k in deepest and deepest[k] not in used), None)
        if key is None:
            continue
        used.add(deepest[key])
        zh.append(f"{deepest[key]}对{topic}有什么规定？")
        en.append(f"What does {deepest[key]} provide on {topic}?")
        if len(zh) >= 3:
            break
    return Catalogue(regions, regions_en, topics, zh, en)


def clarify_text(english: bool, cat: Catalogue) -> str:
    """The clarifying reply: what to add to the question, what the corpus covers, example questions."""
    if english:
        lines = ["Your question is broad: please name a place, a document or what exactly you want to know."]
        if cat.regions_en:
            lines.append(f"The documents cover these regions: {'; '.join(cat.regions_en)}.")
        if cat.topics:
            lines.append(f"Topics they deal with include: {'、'.join(cat.topics)}.")
        if cat.examples_en:
            lines.append("For example:")
            lines += [f"- {q}" for q in cat.examples_en]
        return "\n".join(lines)
    lines = ["这个问题比较宽泛，请说明地区、文件名称或具体事项。"]
    if cat.regions:
        lines.append(f"现有资料涉及的地区：{'、'.join(cat.regions)}。")
    if cat.topics:
        lines.append(f"涉及的主题有：{'、'.join(cat.topics)}等。")
    if cat.examples:
        lines.append("可以这样问：")
        lines += [f"- {q}" for q in cat.examples]
    return "\n".join(lines)


def filter_note(filters: Filters | None, english: bool = False) -> str:
    """The line a refusal ends with when a filter was active: which one, and to clear it and try again."""
    if filters is None or not filters.active:
        return ""
    f = filters
    if english:
        dates = _span(f.date_from, f.date_to, "{} to {}", "from {}", "up to {}")
        parts = [
            f"region {f.region}" if f.region else "",
            f"dates {dates}" if dates else "",
            f"file {f.file}" if f.file else "",
            f"source {f.source}" if f.source else "",
        ]
        return f"(Filter in force: {'; '.join(p for p in parts if p)}. Clear the filter and try again.)"
    dates = _span(f.date_from, f.date_to, "{}至{}", "{}起", "至{}")
    parts = [
        f"地区 {f.region}" if f.region else "",
        f"日期 {dates}" if dates else "",
        f"文件 {f.file}" if f.file else "",
        f"来源 {f.source}" if f.source else "",
    ]
    return f"（当前已启用筛选：{'；'.join(p for p in parts if p)}。清除筛选后再试一次。）"


def _span(start: str | None, end: str | None, both: str, since: str, until: str) -> str:
    if start and end:
        return both.format(start, end)
    return since.format(start) if start else until.format(end) if end else ""


class Clarifier:
    """:func:`is_vague` and :func:`catalogue` over a retriever's store, the catalogue read once per
    manifest (the chapter headings from the manifest, or from the chunks of a store ingested before them)."""

    def __init__(self, retriever: Retriever) -> None:
        self.retriever = retriever
        self._cached: tuple[object, Catalogue] | None = None
        self._lock = threading.Lock()

    def vague(self, question: str, filters: Filters | None = None) -> bool:
        """Whether ``question`` (a standalone one) is too broad to answer by quoting."""
        from .anchors import index_lookups

        self.retriever.refresh()
        index, manifest, articles, rows_code = self.retriever.cache.view
        articles_with, _ = index_lookups(index, articles, rows_code)
        counts: dict[str, int] = {}

        def held_by(term: str) -> int:
            if term not in counts:
                counts[term] = len(self._holders(term, articles_with, index))
            return counts[term]

        return is_vague(question, held_by, len(manifest), filters)

    @staticmethod
    def _holders(term: str, articles_with: Callable[[str], set[str]], index: LexicalIndex | None) -> set[str]:
        """The articles holding ``term``; an English word through its Chinese renderings."""
        if not term.isascii():
            return articles_with(term)
        from .english import renderings

        found: set[str] = set()
        if index is not None and index.ids:
            rendered = renderings([term], index)
            for w in rendered.get(term, frozenset()):
                found |= articles_with(w)
        return found

    def catalogue(self) -> Catalogue:
        """The current store's :class:`Catalogue`."""
        manifest = self.retriever.manifest
        with self._lock:
            if self._cached is not None and self._cached[0] is manifest:
                return self._cached[1]
        records = list(manifest.values())
        if all(rec.headings is not None for rec in records):  # kept in the manifest since they were
            headings = {rec.key: (rec.headings or "").split("\n") for rec in records if rec.headings}
        else:  # a store ingested before: read them from every chunk once (seconds at 100,000 chunks)
            headings = self._headings_from_chunks()
        cat = catalogue(records, headings)
        with self._lock:
            self._cached = (manifest, cat)
        return cat

    def _headings_from_chunks(self) -> dict[str, list[str]]:
        """Article key -> the chapter headings of its stored chunks, in order."""
        headings: dict[str, list[str]] = {}
        for row in self.retriever.store.iter_chunks():
            meta = row["metadata"] or {}
            chapter = str(meta.get("chapter") or "")
            if chapter and chapter not in headings.setdefault(str(meta.get("article", "")), []):
                headings[str(meta.get("article", ""))].append(chapter)
        return headings
