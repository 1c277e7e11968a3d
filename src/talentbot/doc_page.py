"""``GET /doc/{id}``: one article as HTML, with the cited passage highlighted (the target of API citation links).

``id`` is a passage id as the API hands it out (``<article key>:<ordinal>``). Anything else, an unknown
article or passage, or (when an API key is set) a link without the right signature is a 404: the page is
built from the store's passages only, so nothing a client sends reaches the filesystem. Every piece of
text is HTML-escaped, as in the chat; the page carries no script and a CSP that allows none.
"""

from __future__ import annotations

import html
import logging
from typing import TYPE_CHECKING

import fastapi  # the adapters are imported by the server only (web.py), never by `import talentbot`
from fastapi.responses import HTMLResponse

from .api_shared import PASSAGE_ID, api_key, bearer_ok, doc_token

if TYPE_CHECKING:
    from .bot import TalentBot

logger = logging.getLogger(__name__)

HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_CSS = (
    "body{font:16px/1.7 system-ui,sans-serif;max-width:46em;margin:2em auto;padding:0 1em;color:#222}"
    "h1{font-size:1.4em}.meta{color:#666;font-size:.9em}.text{white-space:pre-wrap}"
    "mark{background:#fff2a8;padding:.1em 0;scroll-margin-top:4em}"
)
MAX_CHUNKS = 5000  # passages one page may show


def overlap(prev: str, cur: str, limit: int) -> int:
    """How many leading characters of ``cur`` repeat the end of ``prev`` (chunks overlap by whole sentences)."""
    for k in range(min(len(prev), len(cur), limit), 0, -1):
        if prev.endswith(cur[:k]):
            return k
    return 0


def article_html(title: str, meta: list[str], texts: list[str], cited: int, limit: int) -> str:
    """The page: ``texts`` (the article's passages in order) joined without their overlaps, passage
    ``cited`` whole and marked."""
    shared = [0] + [overlap(texts[i - 1], texts[i], limit) for i in range(1, len(texts))]
    parts = []
    for i, text in enumerate(texts):
        start = 0 if i == cited else shared[i]
        end = len(text) - shared[i + 1] if i + 1 == cited else len(text)
        piece = html.escape(text[start : max(start, end)])
        parts.append(f"<mark id='cited'>{piece}</mark>" if i == cited else piece)
    head = " · ".join(html.escape(m) for m in meta if m)
    return (
        "<!doctype html><html lang='zh'><head><meta charset='utf-8'><meta name='robots' content='noindex'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><div class='meta'>{head}</div>"
        "<p class='meta'><a href='#cited'>跳到引用的段落 · Jump to the cited passage</a></p>"
        f"<div class='text'>{''.join(parts)}</div></body></html>"
    )


def doc_router(bot: TalentBot) -> fastapi.APIRouter:
    """The router serving ``/doc/{passage_id}`` from ``bot``'s store."""

    router = fastapi.APIRouter()
    key = api_key(bot.settings)

    def not_found() -> HTMLResponse:
        return HTMLResponse("<!doctype html><title>404</title><p>No such passage.</p>", 404, headers=HEADERS)

    @router.get("/doc/{passage_id}", include_in_schema=False)
    def doc(passage_id: str, request: fastapi.Request, t: str = "") -> HTMLResponse:
        if len(passage_id) > 40 or not PASSAGE_ID.match(passage_id):
            return not_found()
        if key and not (
            bearer_ok(request.headers.get("authorization"), key)
            or (len(t) < 100 and _same(t, doc_token(key, passage_id)))
        ):
            return not_found()
        article, ordinal = passage_id.split(":")
        rec = bot.retriever.manifest.get(article)
        n = int(ordinal)
        if rec is None or n >= min(int(rec.chunks or 0), MAX_CHUNKS):
            return not_found()
        rows = bot.store.get_chunks([f"{article}:{i}" for i in range(min(int(rec.chunks), MAX_CHUNKS))])
        order = sorted(rows, key=lambda cid: int(cid.rsplit(":", 1)[1]))
        if passage_id not in rows:
            return not_found()
        texts = [rows[cid][0] for cid in order]
        meta = rows[passage_id][1]
        effective = f"施行 effective {rec.effective}" if rec.effective else ""
        where = " ".join(str(x) for x in (meta.get("chapter", ""), meta.get("label", "")) if x)
        page = article_html(
            rec.title or rec.file,
            [rec.source, rec.date, effective, rec.file, where],
            texts,
            order.index(passage_id),
            2 * bot.settings.chunk_overlap + 200,
        )
        return HTMLResponse(page, headers=HEADERS)

    return router


def _same(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a.encode(), b.encode())
