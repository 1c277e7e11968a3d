"""The MCP server (official ``mcp`` SDK, v2: ``MCPServer``, formerly FastMCP): tools and a resource over the bot.

Tools: ``search_policies`` (passages with their citation fields) and ``ask`` (a cited answer, or ``no_answer``),
each returning ``structuredContent`` under an output schema and text with [n] markers. Resource
``talentbot://articles``: the indexed articles. ``talentbot mcp`` serves it over stdio; ``talentbot serve``
mounts it as Streamable HTTP at ``/mcp``, behind the same Host, origin, size, API-key and concurrency checks
as the rest of the server (:mod:`talentbot.web_guard`, :class:`talentbot.api_shared.Gate`).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from .api_shared import Gate, WarmUp, answer_json, api_key, citation_urls, doc_url, references
from .errors import InputError, TalentBotError
from .retrieval import Filters

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from .bot import TalentBot

logger = logging.getLogger(__name__)

ARTICLES_URI = "talentbot://articles"


class PassageOut(BaseModel):
    """A retrieved passage with what a citation needs."""

    id: str
    title: str
    source: str
    date: str
    effective: str = ""
    label: str = ""
    file: str = ""
    text: str
    score: float = Field(description="share of the query's weighted terms the passage holds (0-1)")
    url: str | None = Field(None, description="page showing the passage in its article (HTTP transport)")


class SearchResult(BaseModel):
    query: str
    passages: list[PassageOut]


class CitationOut(BaseModel):
    """A passage the answer cites as [n]; ``quote`` is the sentence(s) taken from it."""

    n: int
    id: str
    title: str
    source: str
    date: str
    effective: str = ""
    label: str = ""
    page: int | None = None
    file: str = ""
    quote: str = ""
    text: str
    url: str | None = None


class AskResult(BaseModel):
    answer: str = Field(description="the answer, with [n] markers for its citations")
    no_answer: bool = Field(description="true when the documents do not cover the question")
    citations: list[CitationOut]


class HistoryMessage(BaseModel):
    role: str = Field(pattern="^(user|assistant)$")
    content: str = Field(max_length=100_000)


def _base(ctx: Context | None, public_url: str | None) -> str | None:
    """The server address for /doc links: the setting, else the HTTP request's; None over stdio."""
    if public_url:
        return public_url
    try:
        request = ctx.request_context.request if ctx is not None else None
    except ValueError:  # no request (called outside one)
        return None
    return str(request.base_url) if request is not None and hasattr(request, "base_url") else None


def build_mcp(bot: TalentBot, gate: Gate) -> MCPServer:
    """The MCP server over ``bot``; tool calls are computed under ``gate``."""
    s = bot.settings
    key = api_key(s)
    server = _quiet_server()

    def _filters(region: str | None, date_from: str | None, date_to: str | None) -> Filters:
        for name, value in (("region", region), ("date_from", date_from), ("date_to", date_to)):
            if value is not None and len(value) > s.max_filter_chars:
                raise InputError(f"{name} is longer than {s.max_filter_chars} characters")
        return Filters(region=region or None, date_from=date_from or None, date_to=date_to or None)

    @server.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
    async def search_policies(
        query: str,
        ctx: Context,
        region: str | None = None,
        date_from: str | None = None,
        date_to: str | None = None,
        k: Annotated[int | None, Field(ge=1, le=50)] = None,
    ) -> Annotated[CallToolResult, SearchResult]:
        """Search the indexed talent-policy documents (人才政策). Returns the best passages, each with title,
        source, date, article label and text. Optional filters: region (a province or city, e.g. 山西),
        date_from / date_to (YYYY, YYYY-MM or YYYY-MM-DD)."""
        try:
            q = bot.check_question(query)
            passages = await gate.run(_search, q, k, _filters(region, date_from, date_to))
        except TalentBotError as e:
            raise ToolError(str(e)) from None
        base = _base(ctx, s.public_url)
        out = SearchResult(
            query=q,
            passages=[
                PassageOut(
                    id=p.id,
                    title=str(p.meta.get("title", "")),
                    source=str(p.meta.get("source", "")),
                    date=str(p.meta.get("date", "")),
                    effective=str(p.meta.get("effective", "")),
                    label=str(p.meta.get("label", "")),
                    file=str(p.meta.get("file", "")),
                    text=p.text,
                    score=round(float(p.coverage), 4),
                    url=doc_url(base, p.id, key),
                )
                for p in passages
            ],
        )
        text = (
            "\n\n".join(
                f"[{i}] 《{p.title}》 {p.label}（{p.source}，{p.date}）\n{p.text}"
                for i, p in enumerate(out.passages, 1)
            )
            or "没有找到相关段落。No passage matches."
        )
        return CallToolResult(
            content=[TextContent(type="text", text=text)], structured_content=out.model_dump(mode="json")
        )

    @server.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
    async def ask(
        question: str,
        ctx: Context,
        history: list[HistoryMessage] | None = None,
    ) -> Annotated[CallToolResult, AskResult]:
        """Answer a question about the indexed talent-policy documents with numbered citations [n] of the
        passages used, or say that the documents do not cover it (no_answer). ``history``: earlier turns of
        the conversation, for follow-up questions."""
        turns = [(m.role, m.content[: s.max_message_chars]) for m in (history or [])][
            -2 * s.max_history_turns :
        ]
        try:
            answer = await gate.run(bot.ask, bot.check_question(question), turns)
        except TalentBotError as e:
            raise ToolError(str(e)) from None
        urls = citation_urls(answer, _base(ctx, s.public_url), key)
        data = answer_json(answer, urls)
        out = AskResult(answer=answer.text, no_answer=answer.no_answer, citations=data["citations"])
        return CallToolResult(
            content=[TextContent(type="text", text=answer.text + references(answer, urls))],
            structured_content=out.model_dump(mode="json"),
        )

    @server.resource(
        ARTICLES_URI,
        name="articles",
        title="Indexed articles",
        mime_type="application/json",
        description="The articles talentbot answers from: title, source, date, region, file.",
    )
    def articles() -> str:
        rows = [
            {
                "title": a.title,
                "source": a.source,
                "date": a.date,
                "effective": a.effective,
                "region": a.region,
                "file": a.file,
                "passages": int(a.chunks or 0),
            }
            for a in bot.articles()
        ]
        return json.dumps(rows, ensure_ascii=False)

    def _search(query: str, k: int | None, filters: Filters) -> list[Any]:
        if not bot.retriever.manifest:
            raise InputError("nothing is indexed yet: run `talentbot ingest corpus` first")
        return bot.retriever.search(query, k, filters)

    return server


def _quiet_server() -> MCPServer:
    """An ``MCPServer`` without the process-wide logging setup its constructor does (``logging.basicConfig``
    with a rich handler when the root logger has none): the root logger is put back as it was."""
    import logging as _logging

    root = _logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        return MCPServer(
            "talentbot",
            title="talentbot",
            version=_version(),
            log_level="WARNING",
            instructions="Grounded, cited answers about Chinese talent policies (人才政策) from the "
            "indexed documents. Use search_policies for passages, ask for a cited answer.",
        )
    finally:
        root.handlers[:], root.level = handlers, level


def _version() -> str:
    from . import __version__

    return __version__


def http_routes(server: MCPServer, max_body: int) -> list[BaseRoute]:
    """The Streamable HTTP endpoint at ``/mcp`` (stateless: no session is kept between requests), as routes
    for the server's app. Host and origin checks are the outer app's (TrustedHost, the request guard)."""
    from mcp.server.transport_security import TransportSecuritySettings

    app = server.streamable_http_app(
        streamable_http_path="/mcp",
        stateless_http=True,
        json_response=True,
        max_request_body_size=max_body,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    return list(app.routes)


def run_stdio(bot: TalentBot) -> None:
    """Serve the MCP server over stdin/stdout until the client closes it (``talentbot mcp``), warming the bot
    up meanwhile."""
    s = bot.settings
    server = build_mcp(bot, Gate(s.concurrency, s.max_queue))
    warming = WarmUp(bot)
    try:
        server.run("stdio")
    finally:
        warming.stop()  # never exit while it runs inside ONNX Runtime or Chroma
