"""The regions an article is about, and the region filter, over the division table (:mod:`talentbot.places`).

Which places an article is about (the rule; a place named once in passing is not one of them):

1. a ``region`` its front matter declares, where its parts are places (a part that is not, such as 人才, is
   dropped);
2. else the places its title names, at any level (广东省中新广州知识城条例: 广东, 广州);
3. else the places that dominate its text: every mention counts for the province and the city it lies in
   (a county's mention counts for its city and province); a province is kept with at least
   ``MIN_MENTIONS`` mentions and at least ``DOMINANT_SHARE`` of the top province's, a city likewise against
   the top city, and only inside a kept province;
4. else the places its source (the publisher) names.

The divisions above each kept place are kept too, so a filter on a province matches an article about one
of its cities or districts, while a filter on a city never matches an article about another city.
"""

from __future__ import annotations

import functools

from .places import Gazetteer, gazetteer

MIN_MENTIONS = 2  # mentions a place needs in the text to be what an untitled article is about
DOMINANT_SHARE = 0.5  # ...and this share of the most-mentioned place's (of its level)


def resolve(value: str) -> frozenset[str]:
    """Division codes a region name stands for: a full or short name at any level (广东, 广州市, 浦东),
    a pinyin name of a province or city (Guangdong), or the deepest places a longer text names (广东省广州市);
    empty when it names no place."""
    return _resolve(value.strip())


@functools.lru_cache(maxsize=512)
def _resolve(value: str) -> frozenset[str]:
    if not value:
        return frozenset()
    g = gazetteer()
    codes = g.full.get(value, frozenset()) | g.short.get(value, frozenset())
    if not codes and value.isascii():
        codes = g.pinyin_names().get(value.lower().replace(" ", ""), frozenset())
    if not codes:
        found = {c for _, _, cs in g.find(value) for c in cs}
        above = {a for c in found for a in g.ancestors(c)[1:]}
        codes = frozenset(found - above)
    return frozenset(codes)


def _with_ancestors(g: Gazetteer, codes: set[str] | frozenset[str]) -> list[str]:
    return sorted({a for c in codes for a in g.ancestors(c)})


def _names(g: Gazetteer, codes: list[str]) -> str:
    return ",".join(dict.fromkeys(g.by_code[c].short or g.by_code[c].name for c in codes if c in g.by_code))


def _title_codes(g: Gazetteer, title: str, text: str) -> set[str]:
    """Places the title names. A name several divisions share (南沙区, 朝阳) keeps the ones inside another
    place the title names (广州市南沙区), else inside a place the text names, else all of them."""
    found = [cands for _, _, cands in g.find(title)]
    out = {c for cands in found if len(cands) == 1 for c in cands}
    context: set[str] | None = None
    for cands in (c for c in found if len(c) > 1):
        inside = {c for c in cands if not out.isdisjoint(g.ancestors(c)[1:])}
        if not inside:
            context = g.codes_in(text) if context is None else context
            inside = {c for c in cands if not context.isdisjoint(g.ancestors(c)[1:])}
        out |= inside or cands
    return out


def _dominant(g: Gazetteer, text: str) -> set[str]:
    """Provinces and cities that dominate ``text`` (rule 3 of the module's docstring)."""
    counts: dict[str, float] = {}
    for _, _, cands in g.find(text):
        share = 1 / len(cands)
        for c in cands:
            for a in g.ancestors(c):
                if g.by_code[a].level < 2:
                    counts[a] = counts.get(a, 0.0) + share
    out: set[str] = set()
    for level in (0, 1):
        here = {
            c: n
            for c, n in counts.items()
            if g.by_code[c].level == level and (level == 0 or g.by_code[c].parent in out)
        }
        top = max(here.values(), default=0)
        out |= {c for c, n in here.items() if n >= MIN_MENTIONS and n >= DOMINANT_SHARE * top}
    return out


def article_regions(title: str, source: str, text: str, declared: str = "") -> tuple[str, str]:
    """(names, codes) of the regions an article is about, each comma-joined: names short and for the
    region list ('广东,广州'), codes with every division above ('440000,440100')."""
    g = gazetteer()
    codes: set[str] = set()
    for part in declared.replace("，", ",").replace("、", ",").split(","):
        codes |= resolve(part)
    if not codes and title:
        codes = _title_codes(g, title, text)
    if not codes and text:
        codes = _dominant(g, text)
    if not codes and source:
        codes = {c for _, _, cs in g.find(source) for c in cs}
    full = _with_ancestors(g, codes)
    shown = [c for c in full if g.by_code[c].level < 2 or c in codes]  # districts only where named
    return _names(g, shown), ",".join(full)


def region_matches(value: str, region: str, region_codes: str) -> bool:
    """Whether an article with ``region`` names and ``region_codes`` is about the place ``value`` names, or
    about a place inside it. A value that names no place matches only a region name written the same way.
    Records written before codes were kept fall back on their names."""
    wanted = resolve(value)
    names = [n for n in region.split(",") if n]
    if not wanted:
        return value.strip() in names
    have = set(region_codes.split(",")) if region_codes else _codes_of_names(tuple(names))
    return not wanted.isdisjoint(have)


@functools.lru_cache(maxsize=512)
def _codes_of_names(names: tuple[str, ...]) -> frozenset[str]:
    g = gazetteer()
    return frozenset({a for n in names for c in resolve(n) if g.by_code[c].level < 2 for a in g.ancestors(c)})
