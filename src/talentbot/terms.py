"""Term weighting: what a question's terms count for in coverage (IDF per term, English words through their
Chinese renderings), and the renderings added to its lexical terms."""

from __future__ import annotations

from .english import renderings as english_renderings
from .lexical import LexicalIndex
from .passages import TermGroup


def expand(terms: list[str], index: LexicalIndex) -> list[str]:
    """``terms`` plus the Chinese words English words stand for (:mod:`talentbot.english`: dictionary
    renderings, pinyin names 'Hefei' -> 合肥), counted twice as the question's words are."""
    extra = [w for found in english_renderings(terms, index).values() for w in sorted(found)]
    return terms + extra * 2


def term_groups(terms: list[str], index: LexicalIndex) -> list[TermGroup]:
    """Weigh the question's terms for coverage: IDF per Chinese term (repeats add up); an English word
    counts once through its Chinese renderings, or, with none, as content the Chinese passages cannot show."""
    renderings = english_renderings(terms, index)
    rendered = set().union(*renderings.values()) if renderings else set()
    weights: dict[frozenset[str], float] = {}
    for t in terms:
        if t in renderings:
            found = renderings[t]
            # no rendering: as much as a Chinese term the corpus lacks ('?' never occurs in a passage)
            w = max((index.idf(a) for a in found), default=index.idf(f"?{t}"))
            key = found or frozenset({f"?{t}"})
        elif t in rendered or (t.isascii() and t not in index.vocab):
            continue  # counted through its English word, or unknown but not content (digits, 'a')
        else:
            w, key = idf(t, index), frozenset({t})
        weights[key] = weights.get(key, 0.0) + w
    return [TermGroup(w, alts) for alts, w in weights.items() if w > 0]


def idf(term: str, index: LexicalIndex) -> float:
    """The term's IDF; 0 for a word jieba cut differently here (a name cut in two in the text), whose
    bigrams count instead."""
    if term not in index.vocab:
        pairs = [f"#{term[i : i + 2]}" for i in range(len(term) - 1)]
        if pairs and all(p in index.vocab for p in pairs):
            return 0.0
    return index.idf(term)
