"""store_errors.classify with real exceptions: raised by chromadb (embedded, in memory, or its HTTP client
against real loopback sockets), httpx, sqlite3 and the OS; and the user-facing errors they become."""

from __future__ import annotations

import errno
import http.server
import json
import os
import socket
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import chromadb
import httpx
import pytest
from chromadb.api.base_http_client import BaseHTTPClient
from chromadb.config import Settings as ChromaSettings
from chromadb.errors import InternalError

from fixtures.helpers import free_port
from talentbot.config import Settings
from talentbot.errors import StoreCorruptError, StoreError
from talentbot.store import Store
from talentbot.store_client import open_client
from talentbot.store_errors import Failure, classify, first_line, untyped_http
from talentbot.store_files import SQLITE_FILE, _release_embedded


def _chroma() -> ChromaSettings:
    """Fresh settings for each client: chromadb.HttpClient writes the host and port into them."""
    return ChromaSettings(anonymized_telemetry=False)


def _raised(fn: Callable[[], object]) -> BaseException:
    with pytest.raises(BaseException) as err:  # noqa: PT011 - the test is about which exception comes out
        fn()
    return err.value


def _name() -> str:
    return f"c-{uuid.uuid4().hex[:8]}"


# ----------------------------------------------------------------------------------- chromadb, embedded
def test_a_missing_or_deleted_collection_is_gone(ephemeral_client):
    assert classify(_raised(lambda: ephemeral_client.get_collection(_name()))) is Failure.GONE
    assert classify(_raised(lambda: ephemeral_client.delete_collection(_name()))) is Failure.GONE
    name = _name()
    col = ephemeral_client.create_collection(name, embedding_function=None)
    col.add(ids=["a"], embeddings=[[1.0, 0.0]])
    ephemeral_client.delete_collection(name)
    assert classify(_raised(lambda: col.get(ids=["a"]))) is Failure.GONE  # a handle kept across a rebuild


def test_other_chroma_errors_are_store_failures_and_validation_errors_are_not(ephemeral_client):
    col = ephemeral_client.create_collection(_name(), embedding_function=None)
    col.add(ids=["a"], embeddings=[[1.0, 0.0]])
    wrong_dim = _raised(lambda: col.add(ids=["b"], embeddings=[[1.0, 0.0, 0.0]]))
    assert classify(wrong_dim) is Failure.OTHER
    empty_ids = _raised(lambda: col.get(ids=[]))  # chromadb checks its arguments with a plain ValueError
    assert isinstance(empty_ids, ValueError)
    assert classify(empty_ids) is None


def test_a_stopped_embedded_chroma_is_told_apart(tmp_path):
    path = str(tmp_path / "store")
    col = chromadb.PersistentClient(path=path, settings=_chroma()).create_collection(
        _name(), embedding_function=None
    )
    _release_embedded(path)  # what Store.failure does after a failure
    stopped = _raised(lambda: col.count())
    assert isinstance(stopped, AttributeError)
    assert classify(stopped) is Failure.STOPPED
    assert classify(_raised(lambda: object().bindings)) is None  # type: ignore[attr-defined]  # another AttributeError


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_sqlite_file_is_damaged(tmp_path, damage):
    path = tmp_path / "store"
    client = chromadb.PersistentClient(path=str(path), settings=_chroma())
    client.create_collection(_name(), embedding_function=None).add(
        ids=[str(i) for i in range(200)],
        embeddings=[[float(i), 1.0] for i in range(200)],
        documents=["x" * 200] * 200,
    )
    _release_embedded(str(path))
    db = path / SQLITE_FILE
    if damage == "garbage":
        db.write_bytes(os.urandom(db.stat().st_size))
    else:
        os.truncate(db, db.stat().st_size // 2 + 123)
    e = _raised(lambda: chromadb.PersistentClient(path=str(path), settings=_chroma()))
    _release_embedded(str(path))
    assert isinstance(e, InternalError)
    assert classify(e) is Failure.DAMAGED
    with pytest.raises(StoreCorruptError, match=r"vector store at .* is damaged.*talentbot ingest --rebuild"):
        open_client(Settings(store=path))


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        # as chromadb 1.5.9 words them (reproduced on a real full tmpfs and a read-only remount)
        (
            "Query error: Database error: error returned from database: (code: 13) database or disk is full",
            Failure.NO_SPACE,
        ),
        ("error returned from database: (code: 8) attempt to write a readonly database", Failure.READ_ONLY),
        ("Read-only file system (os error 30)", Failure.READ_ONLY),
        ("Permission denied (os error 13)", Failure.DENIED),
        (
            "Error executing plan: Internal error: error returned from database: (code: 11) database disk image is "
            "malformed",
            Failure.DAMAGED,
        ),
        ("Missing field: [Missing metadata segment]", Failure.GONE),
        ("error returned from database: (code: 5) database is locked", Failure.OTHER),
        ("something else", Failure.OTHER),
    ],
)
def test_the_codes_in_chromas_internal_errors(text, kind):
    assert classify(InternalError(text)) is kind


def test_the_text_fallback_reads_no_other_type():
    assert classify(ValueError("(code: 13) database or disk is full")) is None
    assert classify(KeyError("Missing metadata segment")) is None
    assert classify(RuntimeError("boom")) is None
    assert classify(StoreError("(code: 11)")) is None


# --------------------------------------------------------------------------------------- HTTP, servers
class _Reply(http.server.BaseHTTPRequestHandler):
    status, body, ctype = 502, b"<html>Bad Gateway</html>", "text/html"

    def do_GET(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Type", self.ctype)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    do_POST = do_GET

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def replying() -> Iterator[Callable[[int, bytes], str]]:
    """A loopback HTTP server answering every request with one status and body; gives its URL."""
    servers: list[http.server.HTTPServer] = []

    def start(status: int, body: bytes) -> str:
        handler = type("Handler", (_Reply,), {"status": status, "body": body})
        server = http.server.HTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_server_that_is_not_listening_cannot_be_reached(tmp_path):
    port = free_port()
    e = _raised(lambda: chromadb.HttpClient(host="127.0.0.1", port=port, settings=_chroma()))
    assert isinstance(e, ValueError)  # chromadb wraps httpx's ConnectError
    assert classify(e) is Failure.UNREACHABLE
    assert classify(_raised(lambda: httpx.get(f"http://127.0.0.1:{port}/"))) is Failure.UNREACHABLE
    with pytest.raises(
        StoreError, match=r"cannot reach the Chroma server at http://127\.0\.0\.1:\d+.*chroma run"
    ):
        open_client(Settings(store=tmp_path, chroma_url=f"http://127.0.0.1:{port}"))


def test_a_server_that_never_answers_times_out():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        e = _raised(lambda: httpx.get(url, timeout=0.3))
    assert isinstance(e, httpx.TimeoutException)
    assert classify(e) is Failure.UNREACHABLE


@pytest.mark.parametrize(
    ("status", "kind"),
    [(502, Failure.UNREACHABLE), (504, Failure.UNREACHABLE), (403, Failure.DENIED), (404, Failure.OTHER)],
)
def test_a_proxy_error_page_is_classified_by_its_status(replying, status, kind):
    url = replying(status, b"<html>proxy page</html>")
    response = httpx.get(url)
    untyped = _raised(
        lambda: BaseHTTPClient._raise_chroma_error(response)
    )  # as chromadb raises it mid-session
    assert type(untyped) is Exception
    assert untyped_http(untyped)
    assert classify(untyped) is kind
    host, port = url.rsplit(":", 1)
    at_start = _raised(lambda: chromadb.HttpClient(host=host[7:], port=int(port), settings=_chroma()))
    assert classify(at_start) is kind


def test_a_chroma_error_from_a_server_keeps_its_type(replying):
    body = json.dumps({"error": "NotFoundError", "message": "Collection [x] does not exist"}).encode()
    response = httpx.get(replying(404, body))
    e = _raised(lambda: BaseHTTPClient._raise_chroma_error(response))
    assert classify(e) is Failure.GONE
    assert not untyped_http(e)
    assert not untyped_http(Exception("plain"))


def test_the_server_messages_name_what_to_do(tmp_path, replying, ephemeral_client):
    url = replying(502, b"<html>Bad Gateway</html>")
    store = Store(Settings(store=tmp_path, chroma_url=url), client=ephemeral_client)  # only failure() is used
    response = httpx.get(url)
    lost = store.failure(_raised(lambda: BaseHTTPClient._raise_chroma_error(response)), "reading passages")
    assert str(lost).startswith(f"lost the Chroma server at {url} while reading passages")
    assert "chroma run" in str(lost)
    other = store.failure(
        InternalError("Collection expecting embedding with dimension of 2, got 3"), "writing"
    )
    assert (
        str(other) == f"the Chroma server at {url} failed while writing: Collection expecting embedding with "
        "dimension of 2, got 3"
    )


# ------------------------------------------------------------------------------------- sqlite3 and the OS
def test_sqlite_errors_by_their_result_codes(tmp_path):
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database" * 400)
    notadb = _raised(lambda: sqlite3.connect(garbage).execute("PRAGMA quick_check").fetchall())
    assert classify(notadb) is Failure.DAMAGED

    db = tmp_path / "ok.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE t (x)")
    con.close()
    ro = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    assert classify(_raised(lambda: ro.execute("INSERT INTO t VALUES (1)"))) is Failure.READ_ONLY
    ro.close()

    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    other = sqlite3.connect(db, timeout=0)
    busy = _raised(lambda: other.execute("SELECT * FROM t").fetchall())
    assert classify(busy) is Failure.OTHER  # a store failure, but none of the specific ones
    holder.rollback()
    holder.close()
    other.close()
    assert classify(sqlite3.OperationalError("no code")) is Failure.OTHER


def test_os_errors_by_their_errno(tmp_path):
    def full() -> None:
        with open("/dev/full", "wb") as fh:
            fh.write(b"x")

    if Path("/dev/full").exists():
        assert classify(_raised(full)) is Failure.NO_SPACE
    assert classify(OSError(errno.ENOSPC, "No space left on device")) is Failure.NO_SPACE
    assert classify(OSError(errno.EROFS, "Read-only file system")) is Failure.READ_ONLY
    assert classify(PermissionError(errno.EACCES, "Permission denied")) is Failure.DENIED
    assert classify(_raised(lambda: (tmp_path / "absent").read_bytes())) is Failure.OTHER
    assert classify(ConnectionRefusedError(errno.ECONNREFUSED, "refused")) is Failure.UNREACHABLE


def test_the_embedded_messages_name_what_to_do(tmp_path, ephemeral_client):
    store = Store(Settings(store=tmp_path), client=ephemeral_client)
    read_only = store.failure(
        InternalError("error returned from database: (code: 8) attempt to write a readonly database"),
        "writing passages",
    )
    assert str(read_only).startswith(
        f"the vector store at {tmp_path} is on a read-only file system, so writing"
    )
    assert not isinstance(read_only, StoreCorruptError)
    full = store.failure(OSError(errno.ENOSPC, "No space left on device"), "writing passages")
    assert "is full" in str(full)
    assert "talentbot ingest" in str(full)
    malformed = store.failure(
        InternalError("(code: 11) database disk image is malformed"), "reading passages"
    )
    assert isinstance(malformed, StoreCorruptError)
    assert "talentbot ingest --rebuild" in str(malformed)


# ------------------------------------------------------------------------------------------ the Store
def test_a_bug_in_a_store_call_is_not_reported_as_a_store_failure(tmp_path, ephemeral_client):
    store = Store(Settings(store=tmp_path), client=ephemeral_client)
    with pytest.raises(ValueError, match="Expected metadata value"):  # our bug, not a failure of the store
        store.write_chunks(["a"], [[1.0, 0.0]], ["text"], [{"bad": object()}])
    store.write_chunks(["a"], [[1.0, 0.0]], ["text"], [{"article": "k", "ordinal": 0}])
    with pytest.raises(StoreError, match="failed while searching passages: Collection expecting embedding"):
        store.query([1.0, 0.0, 0.0], 1)
    assert store.get_chunks([]) == {}


def test_a_read_after_the_collection_was_dropped_reopens(tmp_path, ephemeral_client):
    store = Store(Settings(store=tmp_path), client=ephemeral_client)
    store.write_chunks(["a"], [[1.0, 0.0]], ["text"], [{"article": "k", "ordinal": 0}])
    ephemeral_client.delete_collection(store.name)  # as another process's rebuild does
    assert store.count() == 0  # reopened (a fresh, empty collection), not a StoreError


def test_first_line_drops_the_trace_id():
    assert first_line(Exception("Bad thing happened. (trace ID: 0123abcd)\nmore")) == "Bad thing happened"
    assert first_line(ValueError("")) == "ValueError"


def test_the_read_only_view_says_a_missing_collection_as_chroma_does(tmp_path):
    from talentbot.store_readonly import readonly_client

    path = tmp_path / "store"
    chromadb.PersistentClient(path=str(path), settings=_chroma()).create_collection(
        _name(), embedding_function=None
    )
    _release_embedded(str(path))
    view = readonly_client(path)
    assert view is not None
    assert classify(_raised(lambda: view.get_collection(_name()))) is Failure.GONE
    assert classify(_raised(lambda: view.get_or_create_collection(_name()))) is Failure.NO_SPACE
