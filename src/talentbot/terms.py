"""Term weighting: what a question's terms count for in coverage (IDF per term, English words through their
Chinese renderings), and the renderings added to its lexical terms."""

from __future__ import annotations

import functools
import importlib.util
import logging
import weakref
import zipfile
from pathlib import Path

from .english import renderings as english_renderings
from .lexical import LexicalIndex
from .passages import TermGroup

logger = logging.getLogger(__name__)


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
    bigrams count instead. A word the corpus never uses weighs what its rarity in general Chinese says,
    on the corpus's scale (:func:`unseen_weight`): a small corpus lacks 打算 or 以前 without their being
    specific, while a name no dictionary lists (a housing estate, a programme) keeps the full weight."""
    if term not in index.vocab:
        pairs = [f"#{term[i : i + 2]}" for i in range(len(term) - 1)]
        if pairs and all(p in index.vocab for p in pairs):
            return 0.0
        return unseen_weight(term, index)
    return index.idf(term)


def unseen_weight(term: str, index: LexicalIndex) -> float:
    """The weight of a word the corpus lacks: its general-language IDF (:func:`general_idf`) times the
    median ratio of corpus to general IDF over the words the corpus has, at most the IDF of an unseen word."""
    top = index.idf(term)
    general = general_idf().get(term)
    if general is None or term.startswith("#"):
        return top
    return min(top, float(general) * _scale(index))


_scales: weakref.WeakKeyDictionary[LexicalIndex, float] = weakref.WeakKeyDictionary()


def _scale(index: LexicalIndex) -> float:
    """Median of corpus IDF / general IDF over the index's words (once per index)."""
    if index not in _scales:
        import numpy as np

        table = general_idf()
        words = [w for w in index.vocab if not w.startswith("#") and w in table]
        if not words:
            _scales[index] = 1.0
        else:
            ratios = np.array([index.idf(w) / float(table[w]) for w in words])
            _scales[index] = float(np.median(ratios))
    return _scales[index]


@functools.cache
def general_idf() -> dict[str, str]:
    """IDF of Chinese words in general text (word -> value as text): the table jionlp ships and maintains
    (``dictionary/idf.zip``, 270k words), read on first use. Empty when jionlp is not installed."""
    spec = importlib.util.find_spec("jionlp")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(next(iter(spec.submodule_search_locations))) / "dictionary" / "idf.zip"
    try:
        with zipfile.ZipFile(path) as z:
            parts = z.read(z.namelist()[0]).decode("utf-8").split()  # word TAB value NEWLINE …
    except (OSError, IndexError, zipfile.BadZipFile, UnicodeDecodeError) as e:
        logger.warning("general word weights unavailable (%s): unseen words weigh in full", e)
        return {}
    return dict(zip(parts[::2], parts[1::2], strict=False))
