"""The LCEL chain behind ``TalentBot.ask`` and ``stream``: condense -> retrieve -> answer.

``build_chain`` returns a LangChain Runnable. Input: ``{"question": str, "history": [(role, text), ...] or
messages, "filters": Filters | None, "k": int | None}``. ``chain.stream(inputs)`` yields :class:`TextEvent`
pieces, then one :class:`AnswerEvent`; ``chain.invoke(inputs)`` returns that AnswerEvent, so the chain
composes with other Runnables (``chain | RunnableLambda(lambda ev: ev.answer.text)``).

- **condense** (condense.py): a follow-up becomes a standalone question, by rule or, in LLM mode, by the
  model (``PromptTemplate | ChatOpenAI | StrOutputParser``);
- **clarify** (clarify.py): a vague question ("有什么补贴？") names nothing to narrow it down; it gets a
  clarifying reply listing the regions and topics the corpus covers, with example questions;
- **retrieve**: the hybrid retriever, limited to the articles that match the places and titles the question
  names; when none does, the answer stage refuses and says what is missing. Passages of a document that
  another replaces give way to the version in force (in_force.py), and the answer says so;
- **answer**: extractive (a streaming generator over the chosen sentences), or in LLM mode
  ``prompt | ChatOpenAI | verify`` behind the extractive answer (llm.py), whose figures are checked before
  any text is streamed.

A refusal given while a filter is active ends with a line naming the filter (:func:`clarify.filter_note`).

``bot.as_retriever()`` is the retrieval alone as a LangChain ``BaseRetriever``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from langchain_core.runnables import Runnable, RunnableBranch, RunnableConfig, RunnableLambda

from .anchors import question_anchors
from .answer import (
    Answer,
    AnswerEvent,
    Event,
    TextEvent,
    is_english,
    no_answer,
)
from .clarify import Clarifier, clarify_text, filter_note
from .compare import PartResult, parts_events, split_parts
from .condense import Condensed, History, condense_rule_based, llm_condense
from .config import Settings
from .extractive import extractive_events
from .in_force import Swap, Versions, note, prefer
from .passages import Passage, coverage
from .quoting import Siblings
from .retrieval import Retriever, Search

if TYPE_CHECKING:
    from .llm import LLMAnswerer

__all__ = ["History", "build_chain", "final_answer"]


def build_chain(settings: Settings, retriever: Retriever, llm: LLMAnswerer | None = None) -> Runnable:
    """The chain as a LangChain Runnable over ``retriever``; ``llm`` is an ``LLMAnswerer`` or None."""

    def condense(inputs: dict) -> dict:
        question = inputs["question"]
        if llm is not None:
            c = llm_condense(llm.plain_model, question, inputs.get("history"), settings.max_question_chars)
        else:
            c = condense_rule_based(question, inputs.get("history"))
        return {**inputs, "condensed": c}

    clarifier, versions = Clarifier(retriever), Versions(retriever)

    def in_force(inputs: dict, question: str, passages: list[Passage], k: int) -> list[Passage]:
        """``passages`` with a superseded document's giving way to the version in force (in_force.py)."""
        manifest, lineage = versions.current()
        if not lineage or not passages:
            return passages
        c: Condensed = inputs["condensed"]

        def search_in(key: str) -> list[Passage]:
            return retriever.search(question, k, inputs.get("filters"), within={key})

        kept, swaps = prefer(passages, lineage, manifest, search_in, question_anchors(c.standalone).years)
        inputs.setdefault("swaps", []).extend(swaps)
        return kept

    def retrieve(inputs: dict) -> dict:
        c: Condensed = inputs["condensed"]
        k = inputs.get("k") or settings.k
        inputs = {**inputs, "swaps": []}
        parts = split_parts(c.question) if llm is None and c.standalone == c.question else []
        for question in [p.question for p in parts] if 0 < len(parts) <= k else [c.standalone]:
            retriever.prefetch(question)  # embedded while the checks below and the lexical search run
        if clarifier.vague(c.standalone, inputs.get("filters")):
            _trace(inputs, Search())
            return {**inputs, "passages": [], "missing": None, "clarify": True}
        results: list[PartResult] = []
        if (
            len(parts) <= k
        ):  # each part within its own scope, the k passages shared: "北京和上海…分别" is two questions
            for part in parts:
                scope = retriever.scope(part.anchors)
                found = (
                    []
                    if scope.missing
                    else retriever.search(
                        part.question, max(1, k // len(parts)), inputs.get("filters"), within=scope.keys
                    )
                )
                results.append(PartResult(part, in_force(inputs, part.question, found, k), scope.missing))
        if results:
            merged = _interleave([r.passages for r in results])  # every part's passages, best first
            _trace(inputs, Search(merged))
            return {**inputs, "passages": merged, "parts": results, "missing": None}
        # a follow-up that names its own place or title ("那河南的呢？") is anchored by it alone
        own = question_anchors(c.question)
        scope = retriever.scope(own if own.places or own.titles else c.standalone)
        if scope.missing:
            _trace(inputs, Search())
            return {**inputs, "passages": [], "missing": scope.missing}
        searched = retriever.run(
            c.standalone, inputs.get("k"), inputs.get("filters"), terms=c.terms, within=scope.keys
        )
        searched.passages = in_force(inputs, c.standalone, searched.passages, k)
        _trace(inputs, searched)
        return {**inputs, "passages": searched.passages, "missing": None}

    def refuse(inputs: dict) -> Iterator[Event]:
        """The question names a place or title that no document matches: say what is missing."""
        refusal = no_answer(inputs["question"], inputs["missing"])
        yield TextEvent(refusal.text)
        yield AnswerEvent(refusal)

    def clarify(inputs: dict) -> Iterator[Event]:
        """A vague question: what the corpus covers, and example questions (clarify.py)."""
        question = inputs["question"]
        text = clarify_text(is_english(question), clarifier.catalogue())
        yield TextEvent(text)
        yield AnswerEvent(Answer(text=text, no_answer=True, question=question, clarify=True))

    siblings = article_unit(retriever)

    def extractive(inputs: dict) -> Iterator[Event]:
        if inputs.get("parts"):
            yield from parts_events(inputs["question"], inputs["parts"], settings.min_coverage, siblings)
            return
        yield from extractive_events(inputs["question"], inputs["passages"], settings.min_coverage, siblings)

    answer = (
        llm.answer_chain(settings.min_coverage)
        if llm is not None
        else RunnableLambda(extractive, name="extractive")
    )
    branch = RunnableBranch(
        (lambda inputs: bool(inputs.get("clarify")), RunnableLambda(clarify, name="clarify")),
        (lambda inputs: bool(inputs["missing"]), RunnableLambda(refuse, name="refuse")),
        answer,
    )

    def finish(inputs: dict, config: RunnableConfig) -> Iterator[Event]:
        """The answer, with the lines that say which version it follows or which filter a refusal had."""
        for ev in branch.stream(inputs, config):
            if isinstance(ev, AnswerEvent):
                extra = closing_lines(ev.answer, inputs, versions)
                if extra:
                    yield TextEvent("\n" + extra)
                    ev = AnswerEvent(replace(ev.answer, text=f"{ev.answer.text}\n{extra}"))
            yield ev

    return (
        RunnableLambda(condense, name="condense")
        | RunnableLambda(retrieve, name="retrieve")
        | RunnableLambda(finish, name="answer")
    ).with_config(run_name="talentbot")


def closing_lines(answer: Answer, inputs: dict, versions: Versions) -> str:
    """What an answer ends with: for a refusal under an active filter, the filter; for an answer quoting a
    document another replaces (or the version in force, in its place), which version it follows."""
    english = is_english(inputs["question"])
    if answer.no_answer:
        return "" if answer.clarify else filter_note(inputs.get("filters"), english)
    swaps: list[Swap] = inputs.get("swaps") or []
    if not swaps:
        return ""
    cited = {c.id.rsplit(":", 1)[0] for c in answer.citations}
    manifest, _ = versions.current()
    lines = [
        note(s, manifest, english)
        for s in swaps
        if (s.by.old if s.kept else s.by.new) in cited and s.by.old in manifest and s.by.new in manifest
    ]
    return "\n".join(dict.fromkeys(lines))


def _trace(inputs: dict, found: Search) -> None:
    """Fill the caller's ``trace`` (a :class:`Search`, from :meth:`TalentBot.stream`) with what was found."""
    trace = inputs.get("trace")
    if trace is not None:
        trace.passages, trace.timings = found.passages, found.timings


REACH = 8  # chunks looked at on each side of a passage for the rest of its 第X条


def article_unit(retriever: Retriever) -> Siblings:
    """The chunks of a passage's article unit (same article, 第X条 label and chapter; consecutive ordinals),
    in order, read from the store (its copy saved with the index): a list that runs over several chunks is
    quoted whole."""

    def siblings(p: Passage) -> list[Passage]:
        key, ordinal = p.meta.get("article"), p.meta.get("ordinal")
        if not key or ordinal is None:
            return [p]
        o = int(ordinal)
        rows = retriever.chunks([f"{key}:{i}" for i in range(max(0, o - REACH), o + REACH + 1)])

        def same(i: int) -> Passage | None:
            row = rows.get(f"{key}:{i}")
            if row is None or any(row[1].get(f) != p.meta.get(f) for f in ("label", "chapter")):
                return None
            text, meta = row
            return Passage(
                f"{key}:{i}",
                text,
                meta,
                p.score,
                coverage(p.groups, set(meta.get("tokens", "").split())),
                p.terms,
                p.groups,
            )

        before: list[Passage] = []
        after: list[Passage] = []
        for step, out in ((-1, before), (1, after)):
            i = o + step
            while abs(i - o) <= REACH and (q := same(i)) is not None:
                out.append(q)
                i += step
        return [*reversed(before), p, *after]

    return siblings


def _interleave(rankings: list[list[Passage]]) -> list[Passage]:
    """The passages of several rankings, best of each first: a1, b1, a2, b2…, each once."""
    out: dict[str, Passage] = {}
    for i in range(max(map(len, rankings), default=0)):
        for r in rankings:
            if i < len(r):
                out.setdefault(r[i].id, r[i])
    return list(out.values())


def final_answer(events: Iterable[Event]) -> Answer | None:
    """The Answer carried by the last :class:`AnswerEvent` of a stream."""
    result = None
    for ev in events:
        if isinstance(ev, AnswerEvent):
            result = ev.answer
    return result
