"""`talentbot eval`: retrieval and answer quality on a JSONL question set.

Each line: ``{"q": ..., "a": [expected strings], "doc": [file names], "type": ..., "history": [...]?}``;
type ``unanswerable`` has ``a: []``.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InputError

if TYPE_CHECKING:
    from .bot import TalentBot


@dataclass
class EvalResult:
    """Figures of one eval run; ``rows`` holds the per-question outcome."""

    n: int = 0
    answerable: int = 0
    unanswerable: int = 0
    hit1: float = 0.0
    hitk: float = 0.0
    mrr: float = 0.0
    answer_contains: float = 0.0
    doc_cited: float = 0.0
    no_answer_precision: float = 0.0
    no_answer_recall: float = 0.0
    false_no_answer: float = 0.0
    latency_p50_ms: float = 0.0
    latency_p95_ms: float = 0.0
    k: int = 0
    rows: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        return {
            k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items() if k != "rows"
        }


def _row_problem(row: object) -> str | None:
    """What is wrong with one parsed line, or None."""
    if not isinstance(row, dict):
        return "expected a JSON object"
    if not isinstance(row.get("q"), str) or not row["q"].strip():
        return "'q' must be a non-empty text"
    for key in ("a", "doc", "history"):
        value = row.get(key, [])
        if not isinstance(value, list) or not all(
            isinstance(v, (str, dict) if key == "history" else str) for v in value
        ):
            return f"'{key}' must be a list of texts"
    return None


def read_questions(path: Path) -> list[dict]:
    """Parse a QA JSONL file, saying which line is wrong when one is. Each row gets its ``line`` number."""
    rows = []
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
        raise InputError(f"cannot read question set {path}: {reason}") from e
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(
                f"{path}:{i}: not valid JSON ({e.msg}); expected an object with 'q' (text) "
                "and 'a' (list of expected strings)"
            ) from e
        problem = _row_problem(row)
        if problem:
            raise InputError(f"{path}:{i}: {problem}; expected an object with 'q' (text) and 'a' (list)")
        rows.append({**row, "line": i})
    if not rows:
        raise InputError(f"{path} holds no questions")
    return rows


def _norm(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _holds(text: str, expected: list[str]) -> bool:
    t = _norm(text)
    return all(_norm(e) in t for e in expected)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def run_eval(bot: TalentBot, path: Path, k: int | None = None) -> EvalResult:
    """Ask every question of ``path`` and measure retrieval and answers against the expectations."""
    k = k or bot.settings.k
    from .retrieval import Search

    questions = read_questions(path)
    res = EvalResult(n=len(questions), k=k)
    hit1 = hitk = rr = contains = cited = 0.0
    tp = fp = fn_answerable = 0
    latencies = []
    if bot.store.count():  # load the model and the index outside the timings (an empty store fails in ask)
        bot.retriever.search(questions[0]["q"], k)
    for row in questions:
        history: list[Any] = [h if isinstance(h, dict) else ("user", h) for h in row.get("history", [])]
        expected = row.get("a", [])
        t0 = time.perf_counter()
        trace = Search()  # filled with the passages retrieved, which the ranks are measured on
        try:
            answer = bot.ask(row["q"], history=history, k=k, trace=trace)
        except InputError as e:
            raise InputError(f"{path}:{row['line']}: {e}") from e
        latencies.append((time.perf_counter() - t0) * 1000)
        passages = trace.passages
        rank = next((i + 1 for i, p in enumerate(passages) if expected and _holds(p.text, expected)), None)
        out = {
            "q": row["q"],
            "type": row.get("type", ""),
            "no_answer": answer.no_answer,
            "rank": rank,
            "answer": answer.text,
            "cited": [c.file for c in answer.citations],
            "ms": round(latencies[-1], 1),
        }
        if expected:
            res.answerable += 1
            hit1 += rank == 1
            hitk += rank is not None
            rr += 1 / rank if rank else 0
            ok = not answer.no_answer and _holds(answer.text, expected)
            contains += ok
            doc_ok = bool(set(row.get("doc", [])) & set(out["cited"]))
            cited += doc_ok
            fp += answer.no_answer
            fn_answerable += answer.no_answer
            out.update(contains=ok, doc_cited=doc_ok)
        else:
            res.unanswerable += 1
            tp += answer.no_answer
        res.rows.append(out)
    a = max(res.answerable, 1)
    res.hit1, res.hitk, res.mrr = hit1 / a, hitk / a, rr / a
    res.answer_contains, res.doc_cited = contains / a, cited / a
    res.false_no_answer = fn_answerable / a
    res.no_answer_precision = tp / (tp + fp) if tp + fp else 1.0
    res.no_answer_recall = tp / res.unanswerable if res.unanswerable else 1.0
    res.latency_p50_ms = statistics.median(latencies)
    res.latency_p95_ms = percentile(latencies, 0.95)
    return res
