"""The LCEL chain behind ``TalentBot.ask`` and ``stream``: condense -> retrieve -> answer.

``build_chain`` returns a LangChain Runnable. Input: ``{"question": str, "history": [(role, text), ...] or
messages, "filters": Filters | None, "k": int | None}``. ``chain.stream(inputs)`` yields :class:`TextEvent`
pieces, then one :class:`AnswerEvent`; ``chain.invoke(inputs)`` returns that AnswerEvent, so the chain
composes with other Runnables (``chain | RunnableLambda(lambda ev: ev.answer.text)``).

- **condense** (condense.py): a follow-up becomes a standalone question, by rule or, in LLM mode, by the
  model (``PromptTemplate | ChatOpenAI | StrOutputParser``);
- **retrieve**: the hybrid retriever, limited to the articles that match the places and titles the question
  names; when none does, the answer stage refuses and says what is missing;
- **answer**: extractive (a streaming generator over the chosen sentences), or in LLM mode
  ``prompt | ChatOpenAI | verify`` behind the extractive answer (llm.py), whose figures are checked before
  any text is streamed.

``bot.as_retriever()`` is the retrieval alone as a LangChain ``BaseRetriever``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from langchain_core.runnables import Runnable, RunnableBranch, RunnableLambda

from .anchors import question_anchors
from .answer import Answer, AnswerEvent, Event, TextEvent, extractive_events, no_answer
from .condense import Condensed, History, condense_rule_based, llm_condense
from .config import Settings
from .retrieval import Retriever

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
        return {**inputs, "passages": passages, "missing": None}

    def refuse(inputs: dict) -> Iterator[Event]:
        """The question names a place or title that no document matches: say what is missing."""
        refusal = no_answer(inputs["question"], inputs["missing"])
        yield TextEvent(refusal.text)
        yield AnswerEvent(refusal)

    def extractive(inputs: dict) -> Iterator[Event]:
        yield from extractive_events(inputs["question"], inputs["passages"], settings.min_coverage)

    answer = llm.answer_chain(settings.min_coverage) if llm is not None else RunnableLambda(extractive,
                                                                                          name="extractive")
    return (RunnableLambda(condense, name="condense") | RunnableLambda(retrieve, name="retrieve")
            | RunnableBranch((lambda inputs: bool(inputs["missing"]), RunnableLambda(refuse, name="refuse")),
                             answer)).with_config(run_name="talentbot")


def final_answer(events: Iterable[Event]) -> Answer | None:
    """The Answer carried by the last :class:`AnswerEvent` of a stream."""
    result = None
    for ev in events:
        if isinstance(ev, AnswerEvent):
            result = ev.answer
    return result
