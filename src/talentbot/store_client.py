"""Opening a Chroma client for a talentbot store, and telling Chroma's failures apart.

An embedded store on a full disk cannot be opened by Chroma (its open writes); it is then opened through a
read-only view (:mod:`talentbot.store_readonly`), so that questions are still answered.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlparse

from .config import Settings
from .errors import ConfigError, StoreCorruptError, StoreError
from .store_files import (
    _OPEN_LOCK,
    SQLITE_FILE,
    _disk_full_error,
    _release_embedded,
    integrity_problem,
    low_disk,
)
from .store_readonly import readonly_client

REBUILD_HINT = "run `talentbot ingest --rebuild` to index the documents again into a fresh store"


def _first_line(e: BaseException) -> str:
    text = re.sub(r"\s*\(trace ID: [0-9a-f]+\)", "", str(e)).strip()
    return text.splitlines()[0].rstrip(".") if text else type(e).__name__


def _server_label(settings: Settings) -> str:
    """The server URL without credentials, for messages."""
    url = urlparse(settings.chroma_url or "")
    host = url.hostname or ""
    host = f"[{host}]" if ":" in host else host
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{host}{port}{url.path.rstrip('/')}"


def _server_target(settings: Settings) -> tuple[str, int, bool]:
    """(host argument, port, ssl) for ``chromadb.HttpClient``; ConfigError if the URL is unusable."""
    raw = settings.chroma_url or ""
    url = urlparse(raw)
    try:
        port = url.port
    except ValueError as e:  # a port that is not a number or out of range
        raise ConfigError(f"TALENTBOT_CHROMA_URL has a bad port for host {url.hostname}: {e}") from None
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ConfigError(f"TALENTBOT_CHROMA_URL '{raw}' is not an http(s) URL such as http://127.0.0.1:8000")
    if url.query or url.fragment or url.username or url.password:
        raise ConfigError(f"TALENTBOT_CHROMA_URL '{_server_label(settings)}' must not carry credentials, a query "
                          "or a fragment: give only scheme, host, port and (behind a proxy) a path")
    ssl = url.scheme == "https"
    port = port or (443 if ssl else 80)
    path = url.path.rstrip("/")
    if path:  # behind a reverse proxy: chromadb accepts a full URL as host and appends /api/v2 to its path
        host = url.hostname if ":" not in url.hostname else f"[{url.hostname}]"
        return f"{url.scheme}://{host}:{port}{path}", port, ssl
    return url.hostname, port, ssl


def open_client(settings: Settings) -> Any:
    """A Chroma client for the settings: HttpClient when ``chroma_url`` is set, else PersistentClient
    (or, when the disk is full and Chroma cannot open the store, a read-only view of it)."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        host, port, ssl = _server_target(settings)
        try:
            return chromadb.HttpClient(host=host, port=port, ssl=ssl, settings=chroma_settings)
        except Exception as e:  # chromadb raises bare Exceptions/ValueErrors for connection errors
            raise StoreError(
                f"cannot reach the Chroma server at {_server_label(settings)}: {_first_line(e)}. Start it with "
                "`chroma run --path DIR --host 127.0.0.1 --port 8000`, or fix TALENTBOT_CHROMA_URL / --chroma-url"
            ) from e
    folder = settings.store
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StoreError(f"cannot create the store folder {folder}: {e.strerror or e}") from e
    problem = integrity_problem(folder)
    if problem:
        raise StoreCorruptError(f"the vector store at {folder} is damaged ({problem}); {REBUILD_HINT}")
    try:
        with _OPEN_LOCK:  # chromadb creates its per-path System without a lock
            return chromadb.PersistentClient(path=str(folder), settings=chroma_settings)
    except Exception as e:  # chromadb surfaces sqlite damage as bare/internal errors
        _release_embedded(str(folder))  # else the failed System stays cached for this path
        left = low_disk(folder)
        if left:
            view = readonly_client(folder)
            if view is None:
                raise _disk_full_error(folder, "opening it", _first_line(e), left) from e
            view.reason = left
            return view
        problem = integrity_problem(folder, thorough=True)
        if problem:
            raise StoreCorruptError(f"the vector store at {folder} is damaged ({problem}); {REBUILD_HINT}") from e
        if (folder / SQLITE_FILE).exists():
            raise StoreCorruptError(f"the vector store at {folder} cannot be opened ({_first_line(e)}); "
                                    f"if it is damaged, {REBUILD_HINT}") from e
        raise StoreError(f"cannot open the vector store at {folder}: {_first_line(e)}") from e


def _collection_gone(e: Exception) -> bool:
    """A collection dropped under this reader: not found, or (read while it is being deleted, as another
    process's ``--rebuild`` switches) its segments already gone."""
    text = str(e).lower()
    return type(e).__name__ == "NotFoundError" or ("collection" in text and "does not exist" in text) \
        or "missing metadata segment" in text


def _system_stopped(e: Exception) -> bool:
    """The embedded Chroma this client used was stopped (see :func:`_release_embedded`)."""
    return isinstance(e, AttributeError) and "bindings" in str(e)
