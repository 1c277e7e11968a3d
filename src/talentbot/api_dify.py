"""Dify's External Knowledge API: ``POST /retrieval`` (Dify appends /retrieval to the endpoint it is given).

Request ``{knowledge_id, query, retrieval_setting: {top_k, score_threshold}, metadata_condition?}``; response
``{records: [{content, score, title, metadata}]}``. The knowledge id is ``talentbot`` (the one knowledge base
this server holds). ``score`` is the share of the query's weighted terms the passage holds (0-1), the same
measure the answers are held to (``TALENTBOT_MIN_COVERAGE``). Errors: ``{error_code, error_msg}`` with
Dify's codes, 1001 (malformed Authorization header), 1002 (authorization failed), 2001 (no such knowledge
base); a malformed request is a 400 with the same shape.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import fastapi  # the adapters are imported by the server only (web.py), never by `import talentbot`
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import Response

from .api_shared import BusyError, Gate, api_key, doc_url
from .errors import EmptyStoreError, InputError, TalentBotError

if TYPE_CHECKING:
    from .bot import TalentBot
    from .retrieval import Passage

logger = logging.getLogger(__name__)

KNOWLEDGE_ID = "talentbot"
BAD_HEADER, AUTH_FAILED, NO_KNOWLEDGE = 1001, 1002, 2001


class RetrievalSetting(BaseModel):
    top_k: int = Field(ge=1, le=50)
    score_threshold: float = Field(0.0, ge=0, le=1)


class RetrievalRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    knowledge_id: str = Field(max_length=200)
    query: str
    retrieval_setting: RetrievalSetting
    metadata_condition: dict[str, Any] | None = None


def dify_error(status: int, message: str, authorization: str | None = None) -> dict[str, Any]:
    """``{error_code, error_msg}`` for a refusal (used by the request guard too)."""
    if status in (401, 403):
        scheme = (authorization or "").partition(" ")[0]
        code = BAD_HEADER if scheme.lower() != "bearer" else AUTH_FAILED
        message = (
            "Invalid Authorization header format. Expected 'Bearer <api-key>' format."
            if code == BAD_HEADER
            else "Authorization failed: the API key is not this server's."
        )
        return {"error_code": code, "error_msg": message}
    return {"error_code": status, "error_msg": message}


def record(p: Passage, url: str | None) -> dict[str, Any]:
    """One Dify record: the passage text, its score and title, and where it comes from."""
    m = p.meta
    meta = {k: m.get(k, "") for k in ("source", "date", "effective", "label", "file", "region")}
    return {
        "content": p.text,
        "score": round(float(p.coverage), 4),
        "title": str(m.get("title", "")),
        "metadata": {**meta, "id": p.id, "url": url or ""},
    }


def dify_router(bot: TalentBot, gate: Gate) -> fastapi.APIRouter:
    """The ``/retrieval`` route over ``bot``'s retrieval, run under ``gate``."""
    from fastapi.responses import JSONResponse

    router = fastapi.APIRouter()
    s = bot.settings
    key = api_key(s)

    def search(query: str, k: int) -> list[Passage]:
        if not bot.retriever.manifest:
            raise EmptyStoreError("nothing is indexed yet: run `talentbot ingest corpus` first")
        return bot.retriever.search(query, k)

    @router.post("/retrieval", include_in_schema=False)
    async def retrieval(request: fastapi.Request) -> Response:
        try:
            req = RetrievalRequest.model_validate_json(await request.body())
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(x) for x in err.get("loc", ()))
            return JSONResponse(
                {"error_code": 400, "error_msg": f"invalid request: {where}: {err['msg']}"}, 400
            )
        if req.knowledge_id != KNOWLEDGE_ID:
            return JSONResponse(
                {
                    "error_code": NO_KNOWLEDGE,
                    "error_msg": f"The knowledge does not exist: use the knowledge id '{KNOWLEDGE_ID}'.",
                },
                404,
            )
        try:
            passages = await gate.run(search, bot.check_question(req.query), req.retrieval_setting.top_k)
        except InputError as e:
            return JSONResponse({"error_code": 400, "error_msg": str(e)}, 400)
        except BusyError as e:
            return JSONResponse({"error_code": 429, "error_msg": str(e)}, 429)
        except TalentBotError as e:
            logger.warning("dify retrieval failed: %s", e)
            return JSONResponse(
                {"error_code": 500, "error_msg": str(e)}, 503 if isinstance(e, EmptyStoreError) else 500
            )
        base = s.public_url or str(request.base_url)
        threshold = req.retrieval_setting.score_threshold
        records = [record(p, doc_url(base, p.id, key)) for p in passages if p.coverage >= threshold]
        return JSONResponse({"records": records})

    return router
