"""`talentbot ingest | ask | serve | mcp | eval`: a thin adapter over :class:`TalentBot`.

Imports stay lazy so that `talentbot --help` does not load torch, chromadb or gradio.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .errors import TalentBotError

if TYPE_CHECKING:
    from .bot import TalentBot
    from .config import Settings

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Grounded, cited answers about talent policies (人才政策) from your own documents.",
)

StoreOpt = Annotated[Path | None, typer.Option("--store", help="Store folder (env TALENTBOT_STORE).")]
ChromaOpt = Annotated[str | None, typer.Option("--chroma-url", help="Use a `chroma run` server at this URL.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _settings(store: Path | None = None, chroma_url: str | None = None, **extra: Any) -> Settings:
    from .config import load_settings

    overrides = {
        k: v for k, v in {"store": store, "chroma_url": chroma_url, **extra}.items() if v is not None
    }
    return load_settings(**overrides)  # a bad value: ConfigError, one line, exit 2


def _bot(settings: Settings) -> TalentBot:
    from .bot import TalentBot

    return TalentBot(settings)


_PROGRAM = {"main": False}  # set by main(): this process is the `talentbot` command, not a test's CliRunner


def _leave() -> None:
    """End a read-only command whose output is written: flush it and leave without tearing the interpreter
    down (freeing the index, the word tables and the models took 0.4 s of a `talentbot ask` at 100,000
    chunks). Only in the `talentbot` command itself (:func:`main`); called from a CliRunner, it returns."""
    if not _PROGRAM["main"]:
        return
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more can be said
            stream.flush()
    os._exit(0)


def _one_shot() -> None:
    """Start a command that answers once and then leaves (:func:`_leave`): the cyclic garbage collector is
    switched off for the rest of the process, which frees everything at once when it leaves (its passes over
    the loaded libraries, index and word tables took 0.2 s of a cold `talentbot ask`). Only in the
    `talentbot` command itself (:func:`main`)."""
    if _PROGRAM["main"]:
        gc.disable()


def _fail(err: TalentBotError) -> typer.Exit:
    typer.echo(f"error: {err}", err=True)
    return typer.Exit(err.exit_code)


@app.command()
def ingest(
    paths: Annotated[list[Path] | None, typer.Argument(help="Files or folders (default: corpus/).")] = None,
    rebuild: Annotated[
        bool,
        typer.Option(
            "--rebuild",
            help="Index everything again into new collections built aside; questions are answered from the old ones until the switch.",
        ),
    ] = False,
    store: StoreOpt = None,
    chroma_url: ChromaOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Index new and changed articles; remove deleted ones. Exit 1 if a file failed (the rest is indexed)."""
    from rich.console import Console

    console = Console(stderr=True)
    try:
        bot = _bot(_settings(store, chroma_url))
        if console.is_terminal and not as_json:
            from rich.progress import Progress

            with Progress(console=console, transient=True) as bar:
                task = bar.add_task("ingesting", total=None)

                def progress(done: int, total: int, name: str) -> None:
                    bar.update(task, completed=done, total=total, description=name or "indexing")

                report = bot.ingest(paths, rebuild=rebuild, progress=progress)
        else:
            report = bot.ingest(paths, rebuild=rebuild)
    except TalentBotError as e:
        raise _fail(e) from None
    if as_json:
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        from .render import ingest_table

        Console().print(ingest_table(report))
    raise typer.Exit(1 if report.failed else 0)


@app.command()
def ask(
    question: Annotated[
        str, typer.Argument(help="The question, e.g. 北京无许可证从事人才市场中介服务，最高罚款多少？")
    ],
    k: Annotated[int | None, typer.Option("--k", help="Passages to retrieve.")] = None,
    region: Annotated[str | None, typer.Option(help="Only articles about this province/city.")] = None,
    source: Annotated[str | None, typer.Option(help="Only articles from this publisher.")] = None,
    file: Annotated[str | None, typer.Option(help="Only this file name.")] = None,
    date_from: Annotated[
        str | None, typer.Option("--from", help="Only articles dated on/after (YYYY[-MM-DD]).")
    ] = None,
    date_to: Annotated[
        str | None, typer.Option("--to", help="Only articles dated on/before (YYYY[-MM-DD]).")
    ] = None,
    store: StoreOpt = None,
    chroma_url: ChromaOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Answer a question with numbered citations of the passages it used."""
    _one_shot()
    from .retrieval import Filters

    try:
        filters = Filters(file=file, source=source, region=region, date_from=date_from, date_to=date_to)
        answer = _bot(_settings(store, chroma_url)).ask(question, filters=filters, k=k)
    except TalentBotError as e:
        raise _fail(e) from None
    if as_json:
        d = answer.as_dict()
        keep = ("n", "title", "source", "date", "path", "text", "label", "page", "quote")
        d["citations"] = [{k2: c[k2] for k2 in keep} for c in d["citations"]]
        typer.echo(json.dumps(d, ensure_ascii=False))
    else:
        from rich.console import Console

        from .render import answer_renderables

        Console().print(*answer_renderables(answer))
    _leave()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 7860).")] = None,
    store: StoreOpt = None,
    chroma_url: ChromaOpt = None,
) -> None:
    """Start the browser chat (Gradio). Its URL is printed once it accepts requests; a port in use exits 1,
    an address that cannot be bound 2, each with a one-line error."""
    try:
        settings = _settings(store, chroma_url, host=host, port=port)
        from .web import launch

        def ready(url: str) -> None:
            typer.echo(
                f"talentbot chat on {url}  (Ctrl+C to stop); OpenAI API {url}v1, MCP {url}mcp, "
                f"Dify {url}retrieval",
                err=True,
            )

        launch(_bot(settings), on_ready=ready)
    except TalentBotError as e:
        raise _fail(e) from None
    except KeyboardInterrupt:  # Ctrl+C while starting, or the signal passed on after a clean shutdown
        raise typer.Exit(0) from None


@app.command()
def mcp(store: StoreOpt = None, chroma_url: ChromaOpt = None) -> None:
    """Serve the MCP tools (search_policies, ask) and the article list over stdio, for Claude Desktop, Cursor
    and other MCP clients. `talentbot serve` also serves them over Streamable HTTP at /mcp."""
    try:
        from .mcp_server import run_stdio

        run_stdio(_bot(_settings(store, chroma_url)))
    except TalentBotError as e:
        raise _fail(e) from None
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


@app.command("eval")
def eval_cmd(
    qa_file: Annotated[Path, typer.Argument(help="JSONL question set ({q, a, doc, type}).")],
    k: Annotated[int | None, typer.Option("--k", help="Passages to retrieve.")] = None,
    store: StoreOpt = None,
    chroma_url: ChromaOpt = None,
    as_json: JsonOpt = False,
    show: Annotated[bool, typer.Option("--show", help="List the questions that missed.")] = False,
) -> None:
    """Measure retrieval (hit@1, hit@k, MRR) and answers (contains, cited, no-answer) on a question set."""
    from .evaluate import run_eval

    try:
        result = run_eval(_bot(_settings(store, chroma_url)), qa_file, k)
    except TalentBotError as e:
        raise _fail(e) from None
    if as_json:
        typer.echo(json.dumps({**result.summary(), "rows": result.rows}, ensure_ascii=False))
    else:
        from rich.console import Console

        from .render import eval_table

        Console().print(eval_table(result, show))
    _leave()


def main() -> None:
    """Console-script entry point."""
    # The level goes on the handler too: records of a library logger set to DEBUG by its own package (bm25s)
    # reach the root's handlers whatever the root's level is.
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    logging.basicConfig(
        level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", handlers=[handler]
    )
    _PROGRAM["main"] = True
    app()
