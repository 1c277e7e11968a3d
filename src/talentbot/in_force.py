"""Prefer the document in force: when two documents answer and one replaces the other, answer from it.

Two articles are versions of one another (:func:`lineage`) when

- one's repeal list (``ArticleRecord.repeals``, read by :mod:`talentbot.policy_dates` from "《X》同时废止")
  names the other's title: the repealing one is in force; or
- their titles have the same stem (:func:`title_stem`: no years, no 修订/修正/试行/暂行 remarks, brackets
  left out) and they are about the same regions: the one that takes effect later is in force (its
  effective date, else its own date); with no dates, or equal ones, neither is preferred.

:func:`prefer` applies this to the passages chosen to answer: a superseded article's passages give way to
those of the article in force (searched within it when none of its passages was retrieved), and a line
says so (:func:`note`). When the version in force does not cover the question as well, the old passages
stay, with a line saying that their document has been replaced. A question naming a year that only the
old version's title or date has asks about that version, and is left alone.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .anchors import norm_title

if TYPE_CHECKING:
    from .passages import Passage
    from .retrieval import Retriever
    from .store import ArticleRecord

_YEAR = re.compile(r"(?:19|20)\d{2}\s*年?(?:版|修订版|修订|修正)?")
_REMARK = re.compile(r"修订版|修订|修正|暂行|试行|草案|征求意见稿")
KEEP_SHARE = 0.8  # the version in force answers when its best passage covers this share of the old one's


@dataclass(frozen=True)
class Supersession:
    """``old`` (an article key) is replaced by ``new``, the version in force; ``repealed``: ``new`` repeals
    it by name, else it is only older."""

    old: str
    new: str
    repealed: bool


@dataclass
class Swap:
    """What :func:`prefer` did about one superseded article: answered from ``new`` instead (``kept`` False),
    or kept the old passages because the version in force does not cover the question (``kept`` True)."""

    by: Supersession
    kept: bool = False


def title_stem(title: str) -> str:
    """A title without what tells its versions apart: '某市人才办法（2021年修订）' -> '某市人才办法'."""
    return _REMARK.sub("", _YEAR.sub("", norm_title(title)))


def _when(rec: ArticleRecord) -> str:
    return rec.effective or rec.date


def lineage(manifest: Mapping[str, ArticleRecord]) -> dict[str, Supersession]:
    """Article key -> the :class:`Supersession` that replaces it by the article in force (the last of a
    chain of versions)."""
    by_title: dict[str, list[str]] = {}
    by_stem: dict[tuple[str, str], list[str]] = {}
    for key, rec in manifest.items():
        by_title.setdefault(norm_title(rec.title), []).append(key)
        stem = title_stem(rec.title)
        if stem:
            by_stem.setdefault((stem, rec.region_codes), []).append(key)
    step: dict[str, Supersession] = {}
    for key, rec in manifest.items():  # named in a repeal list
        for title in filter(None, (t.strip() for t in rec.repeals.split("；"))):
            for old in by_title.get(norm_title(title), []):
                if old != key:
                    step[old] = Supersession(old, key, True)
    for keys in by_stem.values():  # versions of one title: the latest is in force
        dated = [k for k in keys if _when(manifest[k])]
        if len(dated) < 2:
            continue
        latest = max(dated, key=lambda k: _when(manifest[k]))
        if sum(_when(manifest[k]) == _when(manifest[latest]) for k in dated) > 1:
            continue  # two versions of the same date: no telling which is in force
        for k in dated:
            if k != latest and k not in step:
                step[k] = Supersession(k, latest, False)
    out: dict[str, Supersession] = {}
    for old, s in step.items():  # follow a chain of versions to its end
        seen, last = {old}, s
        while last.new in step and last.new not in seen:
            seen.add(last.new)
            last = step[last.new]
        if last.new != old:
            out[old] = Supersession(old, last.new, s.repealed)
    return out


def _article(p: Passage) -> str:
    return str(p.meta.get("article", ""))


def asks_for(question_years: tuple[str, ...], old: ArticleRecord, new: ArticleRecord) -> bool:
    """The question names a year of the old version (in its title or dates) and none of the new one's."""

    def years(rec: ArticleRecord) -> set[str]:
        return set(re.findall(r"(?:19|20)\d{2}", " ".join((rec.title, rec.date, rec.effective))))

    asked = set(question_years)
    return bool(asked & years(old)) and not asked & years(new)


def prefer(
    passages: list[Passage],
    versions: Mapping[str, Supersession],
    manifest: Mapping[str, ArticleRecord],
    search_in: Callable[[str], list[Passage]] | None = None,
    question_years: tuple[str, ...] = (),
) -> tuple[list[Passage], list[Swap]]:
    """``passages`` with those of superseded articles replaced by the article in force's, and what was done.
    ``search_in(key)`` retrieves the question's passages within one article."""
    swaps: list[Swap] = []
    out = list(passages)
    for old in dict.fromkeys(_article(p) for p in passages):
        s = versions.get(old)
        if s is None or s.new not in manifest or asks_for(question_years, manifest[old], manifest[s.new]):
            continue
        olds = [p for p in out if _article(p) == old]
        have = [p for p in out if _article(p) == s.new]
        found = have or (search_in(s.new) if search_in is not None else [])
        if not found or max(p.coverage for p in found) < KEEP_SHARE * max(p.coverage for p in olds):
            swaps.append(Swap(s, kept=True))
            continue
        at = out.index(olds[0])  # no passage of ``old`` before it: ``rest[:at]`` is ``out[:at]``
        rest = [p for p in out if _article(p) != old]
        out = rest if have else [*rest[:at], *found, *rest[at:]]
        swaps.append(Swap(s))
    return out, swaps


def _date(iso: str, english: bool) -> str:
    parts = [int(x) for x in iso.split("-") if x.isdigit()]
    if english or len(parts) < 2:
        return iso
    return f"{parts[0]}年{parts[1]}月" + (f"{parts[2]}日" if len(parts) > 2 else "")


def note(swap: Swap, manifest: Mapping[str, ArticleRecord], english: bool = False) -> str:
    """One line saying which version the answer follows and why."""
    old, new = manifest[swap.by.old], manifest[swap.by.new]
    o, n = f"《{old.title.strip('《》')}》", f"《{new.title.strip('《》')}》"
    when = _date(_when(new), english)
    if english:
        how = f"{n} repeals {o}" if swap.by.repealed else f"{n} is a later version of {o}"
        since = f" (in force since {when})" if when else ""
        if swap.kept:
            return f"(Note: {how}{since}; it has no passage on this, so the answer quotes the old text.)"
        return f"({how}{since}; the answer follows the text in force.)"
    since = f"自{when}起施行，" if when else ""
    if swap.kept:
        done = "废止" if swap.by.repealed else "取代"
        return f"（注意：{o}已被{n}{done}；{n}中没有找到这一内容，以上引自旧文本。）"
    if swap.by.repealed:
        return f"（{n}{since}同时废止{o}；以上按现行文本回答。）"
    older = _date(_when(old), english)
    return f"（{n}{since}晚于{o}" + (f"（{older}起施行）" if older else "") + "；以上按较新的文本回答。）"


class Versions:
    """:func:`lineage` of a retriever's manifest, computed once per manifest."""

    def __init__(self, retriever: Retriever) -> None:
        self.retriever = retriever
        self._cached: tuple[object, dict[str, Supersession]] | None = None
        self._lock = threading.Lock()

    def current(self) -> tuple[Mapping[str, ArticleRecord], dict[str, Supersession]]:
        """The manifest and its lineage."""
        manifest = self.retriever.manifest
        with self._lock:
            if self._cached is None or self._cached[0] is not manifest:
                self._cached = (manifest, lineage(manifest))
            return manifest, self._cached[1]
