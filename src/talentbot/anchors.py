"""Anchors: what a question names (places, 《titles》, development zones, “programmes”, years) that an answer
must match.

A passage may answer a question only when its article matches every anchor: a question about 北京 is
never answered from a Henan regulation. Places come from the administrative-division table
(:mod:`talentbot.places`), so the hierarchy counts: an article naming 定襄县 matches a question about
山西 (定襄 ⊂ 忻州 ⊂ 山西), but not the reverse.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .normalize import simplified
from .places import ZONE_WORDS, gazetteer

if TYPE_CHECKING:
    import numpy as np

    from .lexical import LexicalIndex

_TITLE = re.compile(r"《([^《》]{2,60})》")
# a name the question quotes: a programme, card, campaign or organisation (“青年英才计划”, 「人才卡」)
_QUOTED = re.compile(r"[“「『\"]([^“”「」『』\"\s，。？！、：；,.?!:;]{2,20})[”」』\"]")
_YEAR = re.compile(r"(?<!\d)((?:19|20)\d{2})\s*年(?!代)")
_CJK = re.compile(r"^[\u4e00-\u9fff]+$")
_PAREN = re.compile(r"[（(][^（）()]*[）)]")


@dataclass(frozen=True)
class Anchors:
    """What a question names. ``places`` holds (surface form, candidate division codes) pairs."""

    places: tuple[tuple[str, frozenset[str]], ...] = ()
    titles: tuple[str, ...] = ()
    zones: tuple[str, ...] = ()
    years: tuple[str, ...] = ()
    names: tuple[str, ...] = ()  # quoted names of programmes, cards, campaigns, organisations

    def __bool__(self) -> bool:
        return bool(self.places or self.titles or self.zones or self.years or self.names)

    @property
    def place_names(self) -> list[str]:
        return [form for form, _ in self.places]


def norm_title(title: str) -> str:
    """A title as compared: no spaces, no brackets, no parenthesised remarks (（2021年修订）)."""
    return re.sub(r"[\s《》〈〉“”\"']", "", _PAREN.sub("", title))


def question_anchors(question: str) -> Anchors:
    """The places, 《titles》, development zones and years that ``question`` names."""
    g = gazetteer()
    question = simplified(question)
    titles = tuple(dict.fromkeys(t.strip() for t in _TITLE.findall(question)))
    rest = _TITLE.sub(" ", question)  # a title's own words are matched as the title
    places: dict[str, frozenset[str]] = {}
    for _, form, codes in g.find(rest):
        places[form] = places.get(form, frozenset()) | codes
    for form, codes in _english_places(rest):
        places[form] = places.get(form, frozenset()) | codes
    zones = [z for z in _zones(rest) if not any(p in z or z in p for p in places)]
    years = tuple(dict.fromkeys(_YEAR.findall(question)))
    names = tuple(
        dict.fromkeys(
            n
            for n in _QUOTED.findall(rest)
            if re.search(r"[\u4e00-\u9fff]", n) and n not in places and not any(n in z for z in zones)
        )
    )
    return Anchors(tuple(places.items()), titles, tuple(dict.fromkeys(zones)), years, names)


_LATIN_NAME = re.compile(r"\b[A-Z][a-z]{3,}\b")


def _english_places(text: str) -> list[tuple[str, frozenset[str]]]:
    """Capitalised pinyin names of provinces and cities in English text ('Shanghai' -> 上海市)."""
    names = _LATIN_NAME.findall(text)
    if not names:
        return []
    table = gazetteer().pinyin_names()
    return [(n, table[n.lower()]) for n in names if n.lower() in table]


def _zones(text: str) -> list[str]:
    """Development zones named in ``text``: the words just before a zone word, without the zone word's
    own generic parts ('郑洛新自主创新示范区' -> '郑洛新自主创新'; '山西开发区' -> '山西')."""
    from .lexical import STOPWORDS, words

    ws = words(text)
    generic = _zone_parts()
    out = []
    for i, w in enumerate(ws):
        if not w.endswith(ZONE_WORDS):
            continue
        name: list[str] = []
        for prev in reversed(ws[max(0, i - 3) : i]):
            if prev in STOPWORDS or not _CJK.match(prev) or len(prev) < 2 and not name:
                break
            name.insert(0, prev)
        while name and name[-1] in generic:
            name.pop()
        stem = w[: -len(next(z for z in ZONE_WORDS if w.endswith(z)))]
        phrase = "".join(name) + (stem if stem not in generic else "")
        if len(phrase) >= 2:
            out.append(phrase)
    return out


def _zone_parts() -> set[str]:
    from .lexical import words

    return {p for z in ZONE_WORDS for p in words(z)} | set(ZONE_WORDS)


def place_codes(*texts: str) -> list[str]:
    """Codes of every division named in ``texts`` and of the divisions above them, sorted."""
    g = gazetteer()
    return sorted(set().union(*(g.codes_in(t) for t in texts if t)))


def place_label(codes: list[str] | set[str], limit: int = 6) -> str:
    """Names for a few division codes, provinces and cities first ('北京市、上海市')."""
    g = gazetteer()
    places = sorted((g.by_code[c] for c in codes if c in g.by_code), key=lambda p: (p.level, p.code))
    return "、".join(p.name for p in places[:limit])


def missing_title_message(title: str, titles: list[str]) -> str:
    """'资料中没有《X》' and, when the corpus has documents of the same kind, which ones."""
    g = gazetteer()
    kind = title
    for _, form, _ in g.find(title):
        kind = kind.replace(form, "")
    kind = kind.strip("　 的")
    same = [t for t in dict.fromkeys(titles) if len(kind) >= 4 and kind in norm_title(t)]
    msg = f"资料中没有《{title}》"
    if same:
        msg += "；现有" + "、".join(f"《{t}》" for t in same[:6])
    return msg + "。"


def missing_place_message(names: list[str], present: set[str]) -> str:
    """'资料中没有关于X的内容' and which places the documents do cover."""
    msg = f"资料中没有关于{'、'.join(names)}的内容"
    label = place_label({c for c in present if len(c) == 6 and c.endswith("0000")}, limit=10)
    if label:
        msg += f"；现有资料涉及{label}等地"
    return msg + "。"


@dataclass
class Scope:
    """The articles a question may be answered from. ``keys`` None: any; ``missing``: why none may."""

    keys: set[str] | None = None
    missing: str | None = None


def record_places(rec: Any) -> set[str]:
    """Division codes of an article record: those stored at ingest, else from its title and source."""
    stored = getattr(rec, "places", None)
    if stored is None:  # a record from before place codes were stored
        return set(place_codes(rec.title, rec.source))
    return set(stored.split(",")) if stored else set()


@dataclass
class Profiles:
    """Per-article facts the anchors are matched against, computed once per store generation."""

    places: dict[str, set[str]]
    titles: dict[str, str]
    dates: dict[str, str]
    all_places: set[str]
    all_titles: list[str]


def profiles(manifest: Mapping[str, object]) -> Profiles:
    """The :class:`Profiles` of a manifest (article key -> record)."""
    places = {k: record_places(r) for k, r in manifest.items()}
    return Profiles(
        places,
        {k: norm_title(getattr(r, "title", "")) for k, r in manifest.items()},
        {k: getattr(r, "date", "") for k, r in manifest.items()},
        set().union(*places.values()) if places else set(),
        [getattr(r, "title", "") for r in manifest.values()],
    )


def scope(
    anchors: Anchors,
    manifest: Mapping[str, object],
    articles_with: Callable[[str], set[str]],
    rarest: Callable[[str], str],
    known: Profiles | None = None,
) -> Scope:
    """Which articles match every anchor of a question.

    ``articles_with(text)`` gives the keys of articles whose text holds ``text``; ``rarest(phrase)`` the
    most specific word of a phrase (for zones: 郑洛新 of 郑洛新自主创新示范区); ``known``, the manifest's
    :func:`profiles` when cached.
    """
    if not anchors:
        return Scope()
    known = known or profiles(manifest)
    allowed = set(manifest)
    places = known.places
    g = gazetteer()
    # Within a kind, anchors add up (a question comparing 上海 and 河南 may quote both); each must exist.
    kind: set[str] = set()
    for form, codes in anchors.places:
        ok = {k for k, p in places.items() if codes & p}
        names = {g.name(c) for c in codes} | {
            g.by_code[c].short for c in codes if len(g.by_code[c].short) >= 2
        }
        for name in names | ({form} if not form.isascii() else set()):
            ok |= articles_with(name)  # or its text names the place
        if not ok:
            return Scope(set(), missing_place_message([form], known.all_places))
        kind |= ok
    if anchors.places:
        allowed &= kind
    titles = known.titles
    kind = set()
    for title in anchors.titles:
        t = norm_title(title)
        ok = {k for k, mine in titles.items() if mine and (t in mine or mine in t)} | articles_with(title)
        if not ok:
            return Scope(set(), missing_title_message(t, known.all_titles))
        kind |= ok
    if anchors.titles:
        allowed &= kind
    for zone in anchors.zones:
        word = rarest(zone)
        ok = articles_with(word) if word else set(manifest)
        if not ok:
            return Scope(set(), f"资料中没有关于{zone}的内容。")
        allowed &= ok
    for name in anchors.names:  # a quoted programme or organisation is named by the article's own text
        ok = articles_with(name)
        if not ok:
            return Scope(set(), f"资料中没有关于“{name}”的内容。")
        allowed &= ok
    if anchors.years:
        allowed &= {
            k for k, d in known.dates.items() for y in anchors.years if d.startswith(y)
        } | set().union(*(articles_with(y) for y in anchors.years))
    if not allowed:
        named = [
            *anchors.place_names,
            *(f"《{t}》" for t in anchors.titles),
            *anchors.zones,
            *(f"“{n}”" for n in anchors.names),
            *(f"{y}年" for y in anchors.years),
        ]
        return Scope(set(), f"资料中没有同时涉及{'、'.join(named)}的内容。")
    return Scope(allowed)


def index_lookups(
    index: LexicalIndex | None, articles: np.ndarray, rows_code: np.ndarray
) -> tuple[Callable[[str], set[str]], Callable[[str], str]]:
    """``articles_with`` and ``rarest`` for :func:`scope`, over a lexical index whose row ``i`` belongs to
    article ``articles[rows_code[i]]``. A Chinese text is held by a chunk holding all of its character pairs."""
    import numpy as np

    from .lexical import tokenize, words

    def articles_with(text: str) -> set[str]:
        if index is None or not index.ids:
            return set()
        toks = tokenize(text)
        pairs = [t for t in toks if t.startswith("#")] or toks
        if not pairs or any(t not in index.vocab for t in pairs):
            return set()
        # each pair's column of the matrix (no scoring of every chunk), the rarest first: the rows holding
        # it narrowed down by the others'
        columns = sorted((index.rows_with(t) for t in dict.fromkeys(pairs)), key=len)
        rows = columns[0]
        for col in columns[1:]:
            if not len(rows):
                break
            held = np.zeros(len(index.ids), dtype=bool)
            held[col] = True
            rows = rows[held[rows]]
        seen = np.zeros(len(articles), dtype=bool)
        seen[rows_code[rows]] = True  # per distinct article, not per chunk: thousands of chunks hold 人才
        return set(articles[seen].tolist())

    def rarest(phrase: str) -> str:
        cands = [w for w in words(phrase) if len(w) >= 2 and not any(w in z for z in ZONE_WORDS)]
        if not cands or index is None or not index.ids:
            return ""
        return min(cands, key=lambda w: index.doc_freq(w) if w in index.vocab else -1)

    return articles_with, rarest
