"""The default answerer (no LLM): quotes the sentence(s) of the retrieved passages that best cover the
question, so every figure, date and name in an answer is copied from a passage it cites. Sentences
addressed to a language model (injection.py) are never quoted and lend a passage no support.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from .answer import (
    Answer,
    AnswerEvent,
    Citation,
    Event,
    TextEvent,
    answer_sentences,
    citation_for,
    is_english,
    no_answer,
    source_phrase,
)
from .asked import asked_units, named_in_question, states_unit
from .evidence import dated_event, dates_event, focus_terms, other_degree, unknown_names
from .figures import missing
from .injection import is_injection, strip_injections
from .lexical import tokenize
from .quoting import Quote, Shaped, Siblings, plain_quotes, shape_quotes
from .retrieval import Passage, coverage
from .shape import question_kind, yes_no_match

_ANAPHORA = re.compile(r"^(该|其|此|这|上述|他们|它们)(?!外)")
_ASKS_NUMBER = re.compile(
    r"多少|几|何时|哪一天|哪天|什么时候|日期|期限|金额|多长|多大|规模|how many|how much|when|date|how long",
    re.I,
)
_HAS_NUMBER = re.compile(r"\d|[一二三四五六七八九十百千万两]+(?:日|天|个月|年|倍|名|元|人|项|%)")
_ASKS_LIST = re.compile(r"哪些|哪几|包括|包含|有什么|分别|what are|which .*(?:are|were)|list", re.I)
_COMPARE = re.compile(r"哪一部|哪一个|哪个|较短|较长|更晚|更早|更长|更短|earlier|later|which", re.I)


def passage_support(p: Passage) -> float:
    """``p.coverage`` of the question, counted without the passage's sentences addressed to a model."""
    text = strip_injections(p.text)
    if text == p.text:
        return p.coverage
    header = " ".join(str(p.meta.get(k, "")) for k in ("title", "chapter", "label"))
    return coverage(
        p.groups, set(tokenize(text)) | (set() if is_injection(header) else set(tokenize(header)))
    )


def pick_sentences(
    question: str, passages: list[Passage], max_sentences: int = 2
) -> list[tuple[float, int, str]]:
    """Choose (coverage, passage index, sentence) triples that answer ``question``, best first."""
    groups = passages[0].groups if passages else []
    wants_number = bool(_ASKS_NUMBER.search(question))
    wants_list = bool(_ASKS_LIST.search(question))
    yes_no = question_kind(question) == "yesno"
    units = asked_units(question) - {"number"}
    scored: list[tuple[float, float, int, str]] = []
    for pi, p in enumerate(passages):
        header_text = " ".join(str(p.meta.get(k, "")) for k in ("title", "chapter", "label"))
        header = set() if is_injection(header_text) else set(tokenize(header_text))
        sents = answer_sentences(strip_injections(p.text))
        p_coverage = passage_support(p)
        for si, s in enumerate(sents):
            if is_injection(s):  # defence in depth: answer_sentences cuts differently from strip_injections
                continue
            if _ANAPHORA.match(s) and si > 0:
                s = sents[si - 1] + s  # give the subject that "该市" refers to
            toks = set(tokenize(s)) | header
            cov = coverage(groups, toks)
            score = cov + 0.3 * p_coverage + 0.15 / (1 + pi)
            if wants_number and _HAS_NUMBER.search(s):
                score += 0.15
            if units and all(states_unit(s, u) for u in units):
                score += 0.15  # the figure in the unit asked for: 多少元 -> 1000元
            if wants_list and (s.count("、") >= 2 or "——" in s):
                score += 0.15
            if yes_no and yes_no_match(question, s):
                score += 0.15  # 可以…补偿吗 -> the sentence that says 可以索取补偿, not its neighbour on 应当
            if (
                wants_number
                and not _HAS_NUMBER.search(s)
                and si + 1 < len(sents)
                and _HAS_NUMBER.search(sents[si + 1])
            ):
                s += sents[si + 1]  # the figure asked for follows in the next sentence
            scored.append((score, cov, pi, s))
    scored.sort(key=lambda x: -x[0])
    if not scored:
        return []
    best = scored[0]
    chosen = [(best[1], best[2], best[3])]
    compare = bool(_COMPARE.search(question))
    for score, cov, pi, s in scored[1:]:
        if len(chosen) >= max_sentences:
            break
        other_article = passages[pi].meta.get("article") != passages[best[2]].meta.get("article")
        if s in best[3] or best[3] in s:
            continue
        if (compare and other_article and score >= 0.6 * best[0]) or (
            pi != best[2] and score >= 0.9 * best[0]
        ):
            chosen.append((cov, pi, s))
    return chosen


# A passage both rankings put first (the words and the meaning agree) needs 90% of ``min_coverage``: a
# paraphrase shares fewer words with its answer. Measured in docs/retrieval.md ("Agreement").
AGREED_SHARE = 0.9


def refused(question: str, quoted: list[tuple[Passage, str]], support: float, min_coverage: float) -> bool:
    """The refusal gate, applied to what is quoted: 'not found' when the support is under ``min_coverage``
    of the question's weighted terms (:data:`AGREED_SHARE` of it for a passage both rankings put first),
    when a quantity question's subject ('多少交通补助') is absent from the quotes, or when they state no figure in the unit asked for ('多少岁' needs an age, '何时' a date, any
    多少 some figure), or when they are about another degree level than the one asked for (硕士 asked,
    本科生 quoted), or date another event than the one asked, or name another 第X批 than the one asked, or
    when an English question names something (a capitalised word) no document has a word for."""
    text = "".join(s for _, s in quoted)
    cited = [
        f"{p.meta.get('title', '')} {p.meta.get('label', '')}\n{p.text}" for p, _ in quoted
    ]  # a later chunk of 第十二条 does not repeat its label in its text
    titles = "".join(str(p.meta.get("title", "")) for p, _ in quoted)
    return (
        not quoted
        or support < min_coverage * (AGREED_SHARE if any(p.agreed for p, _ in quoted) else 1.0)
        or not all(f.held_by(text) for f in focus_terms(question))
        or not all(states_unit(text, u) for u in asked_units(question))
        or other_degree(question, text + titles)
        or not dates_event([s for _, s in quoted], dated_event(question))
        or bool(missing(named_in_question(question), cited))
        or bool(unknown_names(question, quoted[0][0].groups))
    )  # 'in Paris': a name the documents never use


def compose(
    question: str, passages: list[Passage], min_coverage: float, siblings: Siblings | None = None
) -> Shaped | None:
    """The quotes that answer ``question`` from ``passages``, shaped for it (:mod:`talentbot.quoting`), or
    None when the refusal gate (:func:`refused`) turns the best sentences down. A shaped answer passes the
    gate too, else the chosen sentences are quoted as they are."""
    chosen = pick_sentences(question, passages) if passages else []
    support = (
        max([c for c, _, _ in chosen] + [passage_support(passages[pi]) for _, pi, _ in chosen])
        if chosen
        else 0.0
    )
    pairs = [(passages[pi], s) for _, pi, s in chosen]
    if refused(question, pairs, support, min_coverage):
        return None
    shaped = shape_quotes(question, pairs, siblings)
    if refused(question, [(q.passage, q.text) for q in shaped.quotes], support, min_coverage):
        return plain_quotes(pairs)
    return shaped


def quote_lines(quotes: list[Quote], numbers: dict[str, int], english: bool, label: str = "") -> list[str]:
    """The answer lines of ``quotes``: [n] per passage (numbered in ``numbers``, by passage id, as they come),
    the source named on each lead line, ``label`` ('北京：') before the first line."""
    lines: list[str] = []
    for q in quotes:
        n = numbers.setdefault(q.passage.id, len(numbers) + 1)
        source = source_phrase(q.passage, q.text, english) if q.lead else ""
        lines.append(f"{label if not lines else ''}{source}{q.text}[{n}]")
    return lines


def cite(quotes: list[Quote], numbers: dict[str, int]) -> list[Citation]:
    """One :class:`Citation` per numbered passage, with the text quoted from it."""
    by_id: dict[str, tuple[Passage, list[str]]] = {}
    for q in quotes:
        by_id.setdefault(q.passage.id, (q.passage, []))[1].append(q.text)
    out = []
    for pid, n in sorted(numbers.items(), key=lambda x: x[1]):
        p, texts = by_id[pid]
        out.append(citation_for(n, p, " ".join(_spans_of(p.text, texts))))
    return out


def _spans_of(text: str, quoted: list[str]) -> list[str]:
    """The quoted texts as runs of ``text``: the items of a list, quoted one by one, are one run again."""
    spans, loose = [], []
    for t in dict.fromkeys(quoted):
        at = text.find(t)
        if at < 0:
            loose.append(t)
        else:
            spans.append([at, at + len(t)])
    spans.sort()
    merged: list[list[int]] = []
    for a, b in spans:
        if merged and not text[merged[-1][1] : a].strip():
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [text[a:b] for a, b in merged] + [t for t in loose if not any(t in text[a:b] for a, b in merged)]


def extractive_events(
    question: str, passages: list[Passage], min_coverage: float, siblings: Siblings | None = None
) -> Iterator[Event]:
    """Stream an extractive answer: text events, then the final :class:`AnswerEvent`. ``siblings`` gives
    the other chunks of a passage's 第X条, so that a list is quoted whole."""
    shaped = compose(question, passages, min_coverage, siblings)
    if shaped is None:
        answer = no_answer(question)
        yield TextEvent(answer.text)
        yield AnswerEvent(answer)
        return
    numbers: dict[str, int] = {}
    lines = quote_lines(shaped.quotes, numbers, is_english(question))
    for i, line in enumerate(lines):
        yield TextEvent(line if i == 0 else "\n" + line)
    yield AnswerEvent(
        Answer(
            text="\n".join(lines),
            no_answer=False,
            citations=cite(shaped.quotes, numbers),
            question=question,
            highlights=shaped.highlights,
        )
    )
