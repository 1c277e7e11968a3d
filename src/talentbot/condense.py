"""Condensing: turn a follow-up question ("它给了多少奖励？", "那博士呢？") into one that retrieval can use alone.

- :func:`normalize_history` is the one place chat history is read: ``[(role, text)]``,
  ``[{"role", "content"}]`` and Gradio content blocks all become ``(role, text)`` tuples.
- :func:`is_follow_up` decides whether a question leans on the previous turn, by a general rule: a
  third-person pronoun, a demonstrative with a classifier (该市, 这些, 那个), a pronoun or deictic that opens a
  clause (其补贴…, 那河南的呢？), or a question with no content of its own (very short, or an elliptical
  "…呢？" without a question word). Words that only contain such a character (其他, 尤其, 应该, 那么) are not
  deictic, so "其他城市有哪些人才政策？" stands alone.
- :func:`condense_rule_based` (no LLM) prefixes the last user question; :func:`llm_condense` asks the LLM
  for a standalone rewrite and falls back to the rule-based one.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .lexical import query_tokens, words

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

logger = logging.getLogger(__name__)

History = Sequence[tuple[str, str]] | Sequence[dict] | None

CONDENSE = """Rewrite the last user question as one standalone question, in its own language, using the \
conversation for missing names. Output only the question.

Conversation:
{history}
Last question: {question}"""

_CLAUSE = re.compile(r"[，,。；;：:！？!?、\n]")
_PRONOUN = {"它", "它们", "他", "他们", "她", "她们"}  # third person: always points back
_DEICTIC = set("该这那此其")  # demonstratives; alone, they point back only when they open a clause
_CLASSIFIER = set("个些里项家部条市省区县镇类种次批位名所届")  # 这些, 该市, 那个: a demonstrative determiner
_OPENERS = {"上述", "前述", "前者", "后者"}
_QUESTION_WORD = re.compile(r"什么|哪|多少|几|何|怎|谁|吗|是否|能否|可否|有没有|多久|多长|多大|为什么")
_EN_OPENER = re.compile(r"^\s*(?:and|so|then|also|what about|how about|what of)\b", re.I)
_EN_PRONOUN = re.compile(r"\b(?:it|its|they|them|their|theirs)\b", re.I)
_EN_DEICTIC = re.compile(r"(?:^|[,;.!?]\s*)(?:this|that|these|those)\b", re.I)
_SHORT = 6  # word characters: "博士呢？", "PhDs?" have no content of their own


@dataclass
class Condensed:
    """A standalone question for retrieval. ``terms`` weight the current turn three times."""

    question: str
    standalone: str
    terms: list[str]


def normalize_history(history: History) -> list[tuple[str, str]]:
    """Accept [(role, text)], [{"role", "content"}] or Gradio content blocks; return (role, text) tuples."""
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


def _deictic(word: str) -> bool:
    """A demonstrative determiner: 这些, 该市, 那个 (not 其他, 这么, 此外, 应该)."""
    return len(word) == 2 and word[0] in _DEICTIC and word[1] in _CLASSIFIER


def is_follow_up(question: str) -> bool:
    """A question that leans on the previous turn ("它给了多少奖励？", "那博士呢？", "What about Henan?")."""
    q = question.strip()
    content = re.sub(r"\W", "", q)
    if len(content) <= _SHORT:
        return True
    if _EN_OPENER.search(q) or _EN_PRONOUN.search(q) or _EN_DEICTIC.search(q):
        return True
    for clause in _CLAUSE.split(q):
        ws = [w for w in words(clause) if re.search(r"\w", w)]
        if not ws:
            continue
        if ws[0] in _DEICTIC or ws[0] in _OPENERS or any(w in _PRONOUN or _deictic(w) for w in ws):
            return True
    # elliptical: "如果是硕士研究生呢？" asks nothing by itself
    return bool(re.search(r"呢\W*$", q)) and not _QUESTION_WORD.search(q)


def last_user_question(turns: list[tuple[str, str]]) -> str:
    """The most recent user message of normalised ``turns`` ('' when there is none)."""
    return next((t for r, t in reversed(turns) if r in ("user", "human")), "")


def condense_rule_based(question: str, history: History) -> Condensed:
    """Without an LLM: prefix the last user question; the current question's terms count three times."""
    last_user = last_user_question(normalize_history(history))
    terms = query_tokens(question)
    if not last_user or not is_follow_up(question):
        return Condensed(question, question, terms)
    return Condensed(question, f"{last_user} {question}", terms * 3 + query_tokens(last_user))


def llm_condense(model: BaseChatModel, question: str, history: History, max_chars: int) -> Condensed:
    """The LLM's standalone rewrite of ``question`` (``model``: a LangChain chat model, not streamed); the
    rule-based one when there is no history or the endpoint fails."""
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import PromptTemplate

    from .llm import describe_error  # LLM mode only: extractive answers never load the LLM module

    turns = normalize_history(history)
    if not turns:
        return condense_rule_based(question, turns)
    text = "\n".join(f"{role}: {content[:500]}" for role, content in turns[-6:])
    rewrite = PromptTemplate.from_template(CONDENSE) | model | StrOutputParser()
    try:
        out = rewrite.invoke({"history": text, "question": question}).strip()
    except Exception as e:  # noqa: BLE001 - any endpoint failure degrades to the rule-based condense
        logger.warning("LLM condense failed (%s); using the rule-based one", describe_error(e))
        return condense_rule_based(question, turns)
    standalone = (out.splitlines() or [""])[0][:max_chars] or question
    return Condensed(question, standalone, query_tokens(standalone))
