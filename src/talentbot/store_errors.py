"""Telling Chroma's failures apart by their types, and the user-facing errors they become.

:func:`classify` maps an exception raised by a Chroma call to a :class:`Failure`, or to None when it is no
store failure at all (a bug: the caller raises it again). It looks at the exception and at what it was
raised from or while handling (``__cause__``/``__context__``): chromadb wraps some errors in a ValueError.

The types, as chromadb 1.5.9 raises them (each reproduced, and covered by ``tests/test_store_errors.py``):

- a collection that does not exist, or was deleted while a handle to it was kept, embedded or through a
  server: ``chromadb.errors.NotFoundError``;
- a server that is not listening, or went away: ``httpx.ConnectError`` (also other ``httpx.TransportError``);
  while ``chromadb.HttpClient()`` connects it is wrapped in a ``ValueError`` whose ``__context__`` it is;
- an HTTP error whose body is not a Chroma error (a reverse proxy's 502 page): a bare ``Exception`` raised
  while handling an ``httpx.HTTPStatusError``, which has the status;
- a client whose embedded System was stopped: ``AttributeError`` with ``name == "bindings"`` on chromadb's
  ``RustBindingsAPI``;
- the read-only view (:mod:`talentbot.store_readonly`) and the SQLite checks: ``OSError`` with an errno and
  ``sqlite3.Error`` with ``sqlite_errorcode``.

The narrow fallback: the embedded (Rust) Chroma raises every SQLite and file-system failure as
``chromadb.errors.InternalError``, with the code only in its text: SQLite's result code as ``(code: N)``
(a damaged file: ``(code: 26) file is not a database`` or ``(code: 11) database disk image is malformed``; a
full disk: ``(code: 13) database or disk is full``; a read-only file system: ``(code: 8) attempt to write a
readonly database``), or an OS error as ``(os error N)`` (``Read-only file system (os error 30)``). A read
that races the deletion of its collection gets ``InternalError: Missing field: [Missing metadata segment]``.
Those codes and the two segment messages are read from the text of an ``InternalError``, of chromadb's bare
``Exception`` and of a ``RuntimeError`` (which stand-ins of these errors raise); nothing else is.
"""

from __future__ import annotations

import errno
import functools
import re
import sqlite3
import sys
from enum import Enum
from pathlib import Path

from .errors import StoreCorruptError, StoreError, TalentBotError

REBUILD_HINT = "run `talentbot ingest --rebuild` to index the documents again into a fresh store"


class Failure(Enum):
    """What went wrong in a Chroma call."""

    UNREACHABLE = "the server cannot be reached"  # refused, reset, timed out, a gateway error
    GONE = "the collection is gone"  # deleted (by another process's rebuild) while this one used it
    STOPPED = "the embedded Chroma was stopped"  # this process restarted it after a failure
    NO_SPACE = "no space left"
    READ_ONLY = "read-only file system"
    DENIED = "permission denied"  # file permissions, or the server's authentication
    DAMAGED = "the store is damaged"
    OTHER = "another failure of the store"


_SQLITE_CODES = {  # primary result codes (https://sqlite.org/rescode.html)
    sqlite3.SQLITE_FULL: Failure.NO_SPACE,
    sqlite3.SQLITE_READONLY: Failure.READ_ONLY,
    sqlite3.SQLITE_PERM: Failure.DENIED,
    sqlite3.SQLITE_AUTH: Failure.DENIED,
    sqlite3.SQLITE_CORRUPT: Failure.DAMAGED,
    sqlite3.SQLITE_NOTADB: Failure.DAMAGED,
}
_ERRNOS = {
    errno.ENOSPC: Failure.NO_SPACE,
    errno.EDQUOT: Failure.NO_SPACE,
    errno.EROFS: Failure.READ_ONLY,
    errno.EACCES: Failure.DENIED,
    errno.EPERM: Failure.DENIED,
}
_GATEWAY = {502, 503, 504}  # a proxy in front of a server that is down
_CODE = re.compile(r"\(code: (\d+)\)")
_OS_ERROR = re.compile(r"\(os error (\d+)\)")
_SEGMENT_GONE = ("Missing metadata segment", "Missing vector segment")
BUSY_CODES = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}  # another connection holds a lock: not damage


@functools.cache
def chroma_errors() -> tuple[type[BaseException], ...]:
    """The exception types a Chroma call fails with; use as ``except chroma_errors() as e``, then
    :func:`classify` (ValueError, AttributeError and RuntimeError are store failures only when it says so).
    chromadb's bare ``Exception`` is not among them: see :func:`untyped_http`."""
    import httpx
    from chromadb.errors import ChromaError

    return (ChromaError, httpx.HTTPError, OSError, sqlite3.Error, ValueError, AttributeError, RuntimeError)


def untyped_http(e: BaseException) -> bool:
    """Whether ``e`` is chromadb's bare ``Exception(response text)`` for an HTTP error that is not Chroma's."""
    import httpx

    return type(e) is Exception and isinstance(e.__context__, httpx.HTTPStatusError)


def _chain(e: BaseException) -> list[BaseException]:
    """``e``, then what it was raised from (or while handling), without cycles."""
    out: list[BaseException] = []
    link: BaseException | None = e
    while link is not None and link not in out and len(out) < 10:
        out.append(link)
        link = link.__cause__ or (None if link.__suppress_context__ else link.__context__)
    return out


def _from_text(e: BaseException) -> Failure | None:
    """The narrow fallback for errors the embedded Chroma raises without a type of their own."""
    text = str(e)
    if any(s in text for s in _SEGMENT_GONE):
        return Failure.GONE
    code = _CODE.search(text)
    if code:
        return _SQLITE_CODES.get(int(code.group(1)) & 0xFF, Failure.OTHER)
    os_error = _OS_ERROR.search(text)
    if os_error:
        return _ERRNOS.get(int(os_error.group(1)), Failure.OTHER)
    return None


def _stopped(e: AttributeError) -> bool:
    rust = sys.modules.get("chromadb.api.rust")  # only loaded where an embedded Chroma ran
    return e.name == "bindings" and rust is not None and isinstance(e.obj, rust.RustBindingsAPI)


def _one(e: BaseException) -> Failure | None:
    """The failure ``e`` itself says, or None when it says none."""
    import httpx
    from chromadb.errors import AuthorizationError, ChromaAuthError, ChromaError, InternalError, NotFoundError

    if isinstance(e, NotFoundError):
        return Failure.GONE
    if isinstance(e, ChromaAuthError | AuthorizationError):
        return Failure.DENIED
    if isinstance(e, InternalError | RuntimeError) or type(e) is Exception:
        return _from_text(e) or (Failure.OTHER if isinstance(e, ChromaError) else None)
    if isinstance(e, ChromaError):
        return Failure.OTHER
    if isinstance(
        e, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError | httpx.ProxyError
    ):
        return Failure.UNREACHABLE
    if isinstance(e, httpx.HTTPStatusError):
        status = e.response.status_code
        return (
            Failure.UNREACHABLE
            if status in _GATEWAY
            else Failure.DENIED
            if status in (401, 403)
            else Failure.OTHER
        )
    if isinstance(e, httpx.HTTPError):
        return Failure.OTHER
    if isinstance(e, ConnectionError | TimeoutError):
        return Failure.UNREACHABLE
    if isinstance(e, OSError):
        return _ERRNOS.get(e.errno or 0, Failure.OTHER)
    if isinstance(e, sqlite3.Error):
        code = getattr(e, "sqlite_errorcode", None)
        return Failure.OTHER if code is None else _SQLITE_CODES.get(code & 0xFF, Failure.OTHER)
    if isinstance(e, AttributeError) and _stopped(e):
        return Failure.STOPPED
    return None


def classify(e: BaseException) -> Failure | None:
    """What failed in a Chroma call that raised ``e``; None when ``e`` is no store failure (raise it again).

    The most telling link of the chain wins: a specific failure over :attr:`Failure.OTHER`."""
    if isinstance(e, TalentBotError):
        return None
    found = None
    for link in _chain(e):
        kind = _one(link)
        if kind is not None and kind is not Failure.OTHER:
            return kind
        found = found or kind
    return found


def first_line(e: BaseException) -> str:
    """The first line of an error's text, without chromadb's trace ID, for messages."""
    text = re.sub(r"\s*\(trace ID: [0-9a-f]+\)", "", str(e)).strip()
    return text.splitlines()[0].rstrip(".") if text else type(e).__name__


def server_error(kind: Failure, where: str, action: str | None, detail: str) -> StoreError:
    """The user-facing error for a failed call to the Chroma server at ``where`` (``action`` None: connecting)."""
    if kind is Failure.DENIED:
        return StoreError(
            f"the Chroma server at {where} refused access{f' while {action}' if action else ''} "
            f"({detail}); talentbot sends no credentials: let it in from this host"
        )
    if action is None:
        return StoreError(
            f"cannot reach the Chroma server at {where}: {detail}. Start it with "
            "`chroma run --path DIR --host 127.0.0.1 --port 8000`, or fix TALENTBOT_CHROMA_URL / "
            "--chroma-url"
        )
    if kind is Failure.UNREACHABLE:
        return StoreError(
            f"lost the Chroma server at {where} while {action} ({detail}); check that `chroma run` "
            "is up, then try again"
        )
    return StoreError(f"the Chroma server at {where} failed while {action}: {detail}")


def local_error(kind: Failure, folder: Path, action: str, detail: str) -> StoreError:
    """The user-facing error for a failed call to the embedded store in ``folder`` that is neither a full disk
    nor damage SQLite's own check finds (the callers test those first)."""
    if kind is Failure.READ_ONLY:
        return StoreError(
            f"the vector store at {folder} is on a read-only file system, so {action} failed "
            f"({detail}); make it writable, or point TALENTBOT_STORE at a writable folder"
        )
    if kind is Failure.DENIED:
        return StoreError(
            f"no permission to use the vector store at {folder}, so {action} failed ({detail}); "
            "check the owner and permissions of the folder and its files"
        )
    if kind is Failure.DAMAGED:
        return StoreCorruptError(
            f"the vector store at {folder} cannot be read ({detail}); if it is damaged, {REBUILD_HINT}"
        )
    return StoreError(f"the vector store at {folder} failed while {action}: {detail}")
