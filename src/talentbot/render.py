"""Rich renderables for the CLI (kept apart so that cli.py only parses and dispatches)."""

from __future__ import annotations

from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from .answer import Answer
from .evaluate import EvalResult
from .ingest import IngestReport


def ingest_table(report: IngestReport) -> Table:
    table = Table(title="talentbot ingest", show_header=True)
    for col in ("added", "updated", "unchanged", "removed", "failed", "chunks in store", "seconds"):
        table.add_column(col, justify="right")
    table.add_row(
        *(
            str(x)
            for x in (
                report.added,
                report.updated,
                report.unchanged,
                report.removed,
                len(report.failed),
                report.chunks,
                f"{report.seconds:.2f}",
            )
        )
    )
    if report.failed:
        table.caption = "\n".join(f"skipped {f['path']}: {f['error']}" for f in report.failed)
    return table


def answer_renderables(answer: Answer) -> list:
    style = "yellow" if answer.no_answer else "green"
    out: list = [
        Panel(Text(answer.text), title="answer" if not answer.no_answer else "no answer", style=style)
    ]
    for c in answer.citations:
        where = " ".join(x for x in (c.file, c.label, f"p.{c.page}" if c.page else "") if x)
        head = Text(f"[{c.n}] {c.title}", style="bold")
        head.append(f"\n{c.source} · {c.date} · {where}", style="dim")
        body = Text(c.text)
        if c.quote:
            for q in c.quote.split(" "):
                start = c.text.find(q)
                if start >= 0:
                    body.stylize("bold underline", start, start + len(q))
        out.append(Panel(Text.assemble(head, "\n", body)))
    return out


def eval_table(result: EvalResult, show: bool = False) -> Table:
    table = Table(title=f"talentbot eval ({result.n} questions, k={result.k})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("answerable / unanswerable", f"{result.answerable} / {result.unanswerable}"),
        ("hit@1", f"{result.hit1:.3f}"),
        (f"hit@{result.k}", f"{result.hitk:.3f}"),
        ("MRR", f"{result.mrr:.3f}"),
        ("answer contains expected", f"{result.answer_contains:.3f}"),
        ("expected document cited", f"{result.doc_cited:.3f}"),
        ("no-answer precision", f"{result.no_answer_precision:.3f}"),
        ("no-answer recall", f"{result.no_answer_recall:.3f}"),
        ("answerable given no-answer", f"{result.false_no_answer:.3f}"),
        ("latency p50 / p95 (ms)", f"{result.latency_p50_ms:.1f} / {result.latency_p95_ms:.1f}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    if show:
        misses = [
            r
            for r in result.rows
            if ("contains" in r and (r["rank"] != 1 or not r["contains"]))
            or ("contains" not in r and not r["no_answer"])
        ]
        table.caption = escape("\n".join(f"miss [{r['type']}] rank={r['rank']} {r['q']}" for r in misses))
    return table
