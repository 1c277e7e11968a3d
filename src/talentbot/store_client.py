"""Opening a Chroma client for a talentbot store (its failures are told apart in :mod:`talentbot.store_errors`).

An embedded store on a full disk cannot be opened by Chroma (its open writes); it is then opened through a
read-only view (:mod:`talentbot.store_readonly`), so that questions are still answered.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .config import Settings
from .errors import ConfigError, StoreCorruptError, StoreError
from .store_errors import (
    REBUILD_HINT,
    Failure,
    chroma_errors,
    classify,
    first_line,
    local_error,
    server_error,
)
from .store_files import (
    _OPEN_LOCK,
    SQLITE_FILE,
    _disk_full_error,
    _release_embedded,
    integrity_problem,
    low_disk,
)
from .store_readonly import readonly_client


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
        raise ConfigError(
            f"TALENTBOT_CHROMA_URL '{_server_label(settings)}' must not carry credentials, a query "
            "or a fragment: give only scheme, host, port and (behind a proxy) a path"
        )
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
        except (
            chroma_errors()
        ) as e:  # a ValueError raised while handling httpx's ConnectError, or a ChromaError
            kind = classify(e)
            if kind is None:
                raise
            raise server_error(kind, _server_label(settings), None, first_line(e)) from e
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
    except chroma_errors() as e:  # an InternalError naming the SQLite or OS error (see store_errors)
        kind = classify(e)
        _release_embedded(str(folder))  # else the failed System stays cached for this path
        if kind is None:
            raise
        left = low_disk(folder)
        if left or kind is Failure.NO_SPACE:  # answer from a read-only view of it, if there is one
            view = readonly_client(folder)
            if view is not None:
                view.reason = left or "no space left"
                return view
        raise _open_error(folder, kind, first_line(e), left) from e


def _open_error(folder: Path, kind: Failure, detail: str, left: str | None) -> StoreError:
    """The error for an embedded store that Chroma cannot open."""
    if left or kind is Failure.NO_SPACE:
        return _disk_full_error(folder, "opening it", detail, left or "no space left")
    problem = integrity_problem(folder, thorough=True)
    if problem:
        return StoreCorruptError(f"the vector store at {folder} is damaged ({problem}); {REBUILD_HINT}")
    if kind in (Failure.READ_ONLY, Failure.DENIED):
        return local_error(kind, folder, "opening it", detail)
    if (folder / SQLITE_FILE).exists():
        return StoreCorruptError(
            f"the vector store at {folder} cannot be opened ({detail}); if it is damaged, {REBUILD_HINT}"
        )
    return StoreError(f"cannot open the vector store at {folder}: {detail}")
