"""The LCEL chain: condense the follow-up with the history -> retrieve -> answer (streamed events).

Input: ``{"question": str, "history": [(role, text), ...], "filters": Filters | None, "k": int | None}``.
Output stream: :class:`TextEvent` pieces, then one :class:`AnswerEvent`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from langchain_core.runnables import Runnable, RunnableGenerator, RunnableLambda

from .anchors import question_anchors
from .answer import AnswerEvent, TextEvent, extractive_events, no_answer
from .config import Settings
from .lexical import query_tokens
from .retrieval import Passage, Retriever

_FOLLOW_UP = re.compile(r"^(那|它|其|该|这|此|那么|还有|另外|and |what about|how about|and what)|[它其该这那]|呢[？?]?$|\b(it|its|they|them|that|there|this)\b",
                        re.I)

History = Sequence[tuple[str, str]] | Sequence[dict] | None


@dataclass
class Condensed:
    """A standalone question for retrieval. ``terms`` weight the current turn three times."""

    question: str
    standalone: str
    terms: list[str]


def normalize_history(history: History) -> list[tuple[str, str]]:
    """Accept [(role, text)], [{"role", "content"}] or Gradio-style pairs; return (role, text) tuples."""
    out: list[tuple[str, str]] = []
    for item in history or []:
        if isinstance(item, dict):
            content = item.get("content")
            if isinstance(content, list):  # gradio 6 message content blocks
                content = " ".join(c.get("text", "") for c in content if isinstance(c, dict))
            out.append((str(item.get("role", "user")), str(content or "")))
        else:
            role, text = item
            out.append((str(role), str(text or "")))
    return out


def is_follow_up(question: str) -> bool:
    """A question that leans on the previous turn ("它给了多少奖励？", "那博士呢？")."""
    q = question.strip()
    return bool(_FOLLOW_UP.search(q)) or len(re.sub(r"\W", "", q)) <= 6


def condense_rule_based(question: str, history: History) -> Condensed:
    """Without an LLM: prefix the last user question; the current question's terms count three times."""
    turns = normalize_history(history)
    last_user = next((t for r, t in reversed(turns) if r in ("user", "human")), "")
    terms = query_tokens(question)
    if not last_user or not is_follow_up(question):
        return Condensed(question, question, terms)
    return Condensed(question, f"{last_user} {question}", terms * 3 + query_tokens(last_user))


def build_chain(settings: Settings, retriever: Retriever, llm=None) -> Runnable:
    """The chain as a LangChain Runnable; ``chain.stream(inputs)`` yields answer events."""

    def condense(inputs: dict) -> dict:
        question = inputs["question"]
        if llm is not None and inputs.get("history"):
            c = llm.condense(question, normalize_history(inputs["history"]))
        else:
            c = condense_rule_based(question, inputs.get("history"))
        return {**inputs, "condensed": c}

    def retrieve(inputs: dict) -> dict:
        c: Condensed = inputs["condensed"]
        # a follow-up that names its own place or title ("那河南的呢？") is anchored by it alone
        own = question_anchors(c.question)
        scope = retriever.scope(own if own.places or own.titles else c.standalone)
        if scope.missing:
            retriever.search(c.standalone, inputs.get("k"), within=set())  # records the empty result
            return {**inputs, "passages": [], "missing": scope.missing}
        passages = retriever.search(c.standalone, inputs.get("k"), inputs.get("filters"), terms=c.terms,
                                    within=scope.keys)
        return {**inputs, "passages": passages}

    def answer(stream: Iterator[dict]) -> Iterator[object]:
        for inputs in stream:
            passages: list[Passage] = inputs["passages"]
            question = inputs["question"]
            if inputs.get("missing"):  # the question names a place or title no document matches
                refusal = no_answer(question, inputs["missing"])
                yield TextEvent(refusal.text)
                yield AnswerEvent(refusal)
            elif llm is not None:
                yield from llm.answer_events(question, passages, settings.min_coverage)
            else:
                yield from extractive_events(question, passages, settings.min_coverage)

    return (RunnableLambda(condense, name="condense") | RunnableLambda(retrieve, name="retrieve")
            | RunnableGenerator(answer, name="answer"))


def final_answer(events) -> object:
    """The Answer carried by the last :class:`AnswerEvent` of a stream."""
    result = None
    for ev in events:
        if isinstance(ev, AnswerEvent):
            result = ev.answer
    return result
