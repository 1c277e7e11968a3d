"""Handing freed C heap memory back to the OS between the large steps of an ingest.

Chroma's Rust core reads and writes on its own worker threads, and glibc keeps what they free in per-thread
arenas, where the next step (on another thread, or numpy on the main one) does not reuse it: at 100,000
chunks one read of the article list left about 150 MB freed but resident, and each batch of 2,048 chunks
written about 50 MB. ``malloc_trim(0)`` returns it. Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_trim: list[Callable[[int], int] | None] = []  # [malloc_trim or None], looked up once


def _malloc_trim() -> Callable[[int], int] | None:
    with _lock:
        if not _trim:
            fn = None
            if sys.platform.startswith("linux"):
                try:
                    fn = getattr(
                        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), "malloc_trim", None
                    )
                except OSError as e:  # no C library to load: nothing to trim
                    logger.debug("no malloc_trim: %s", e)
            _trim.append(fn)
    return _trim[0]


def release_free_memory() -> None:
    """Return the C heap's free pages to the OS (glibc's ``malloc_trim``; a no-op elsewhere)."""
    fn = _malloc_trim()
    if fn is not None:
        fn(0)
