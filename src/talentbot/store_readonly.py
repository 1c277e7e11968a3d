"""A read-only view of an embedded store, for answering when the disk is full.

Chroma cannot open its store on a full disk: every open begins a write transaction (and SQLite needs room
for its journal), so it fails with "database or disk is full" although answering needs no write at all.
This view reads the same SQLite file through Python's ``sqlite3`` in read-only mode (shared lock, no
journal), implementing only the reads talentbot makes: records by id, the article records, pages of
chunks, and counts. Every write raises ``ENOSPC``, which the store reports as a full disk. Vector search
is not available (the HNSW files are Chroma's own), so answers use the lexical ranking alone.

The view is used only when the schema it expects is there; otherwise the full-disk error stands.
"""

from __future__ import annotations

import contextlib
import errno
import sqlite3
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .store_files import SQLITE_FILE

DOCUMENT_KEY = "chroma:document"
_SCHEMA = {
    "collections": {"id", "name"},
    "segments": {"id", "scope", "collection"},
    "embeddings": {"id", "segment_id", "embedding_id"},
    "embedding_metadata": {"id", "key", "string_value", "int_value", "float_value", "bool_value"},
}
_BATCH = 500  # SQLite's bound-parameter limit is far above this


def _no_space(what: str) -> OSError:
    return OSError(errno.ENOSPC, f"No space left on device (the store is open read-only; cannot {what})")


class ReadOnlyClient:
    """The subset of a Chroma client that talentbot reads through, over ``chroma.sqlite3`` in ``folder``."""

    readonly = True

    def __init__(self, folder: Path) -> None:
        self.db = folder / SQLITE_FILE
        self.opened = time.monotonic()
        self.reason = ""  # why the store is open read-only ('only 0.0 MB free')

    def connect(self) -> contextlib.closing[sqlite3.Connection]:
        """A fresh read-only connection, closed on leaving ``with`` (one per call keeps the view thread-safe)."""
        return contextlib.closing(sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5))

    def schema_ok(self) -> bool:
        """Whether the file has the tables and columns this view reads."""
        try:
            with self.connect() as con:
                for table, columns in _SCHEMA.items():
                    have = {row[1] for row in con.execute(f"PRAGMA table_info({table})")}
                    if not columns <= have:
                        return False
        except sqlite3.Error:
            return False
        return True

    def get_collection(self, name: str, **_: Any) -> ReadOnlyCollection:
        with self.connect() as con:
            row = con.execute(
                "SELECT c.id, s.id FROM collections c JOIN segments s ON s.collection = c.id AND s.scope = 'METADATA' "
                "WHERE c.name = ?",
                (name,),
            ).fetchone()
        if row is None:
            from chromadb.errors import NotFoundError  # as Chroma says it

            raise NotFoundError(f"Collection [{name}] does not exist")
        return ReadOnlyCollection(self, name, row[0], row[1])

    def get_or_create_collection(self, name: str, **kwargs: Any) -> ReadOnlyCollection:
        from chromadb.errors import NotFoundError

        try:
            return self.get_collection(name)
        except NotFoundError:
            raise _no_space(f"create the collection {name}") from None

    def delete_collection(self, name: str) -> None:
        raise _no_space(f"delete the collection {name}")

    def create_collection(self, name: str, **_: Any) -> ReadOnlyCollection:
        raise _no_space(f"create the collection {name}")

    def get_max_batch_size(self) -> int:
        return 1000


class ReadOnlyCollection:
    """Reads of one collection: ``get`` (by ids, by one equality ``where``, or a page) and ``count``."""

    def __init__(self, client: ReadOnlyClient, name: str, collection_id: str, segment: str) -> None:
        self.client, self.name, self.id, self._segment = client, name, uuid.UUID(collection_id), segment

    def count(self) -> int:
        with self.client.connect() as con:
            return int(
                con.execute(
                    "SELECT count(*) FROM embeddings WHERE segment_id = ?", (self._segment,)
                ).fetchone()[0]
            )

    def get(
        self,
        ids: Sequence[str] | None = None,
        where: dict | None = None,
        include: Sequence[str] = (),
        limit: int | None = None,
        offset: int | None = None,
    ) -> dict[str, Any]:
        with self.client.connect() as con:
            rows = self._rows(con, ids, where, limit, offset)
            metas = self._metadata(con, [r for r, _ in rows]) if include else {}
        out: dict[str, Any] = {"ids": [cid for _, cid in rows], "embeddings": None}
        if "metadatas" in include:
            out["metadatas"] = [
                {k: v for k, v in metas.get(r, {}).items() if not k.startswith("chroma:")} for r, _ in rows
            ]
        if "documents" in include:
            out["documents"] = [metas.get(r, {}).get(DOCUMENT_KEY) for r, _ in rows]
        return out

    def _rows(
        self,
        con: sqlite3.Connection,
        ids: Sequence[str] | None,
        where: dict[str, Any] | None,
        limit: int | None,
        offset: int | None,
    ) -> list[tuple[int, str]]:
        seg = self._segment
        if ids is not None:
            rows: list[tuple[int, str]] = []
            for i in range(0, len(ids), _BATCH):
                part = list(ids[i : i + _BATCH])
                rows += con.execute(
                    f"SELECT id, embedding_id FROM embeddings WHERE segment_id = ? AND embedding_id "
                    f"IN ({','.join('?' * len(part))}) ORDER BY id",
                    (seg, *part),
                ).fetchall()
            return rows
        sql = "SELECT e.id, e.embedding_id FROM embeddings e"
        args: list[str | int] = [seg]
        if where:
            if len(where) != 1 or not isinstance(next(iter(where.values())), str):
                raise NotImplementedError(f"the read-only view filters on one text field only, not {where}")
            key, value = next(iter(where.items()))
            sql += " JOIN embedding_metadata m ON m.id = e.id AND m.key = ? AND m.string_value = ?"
            args = [key, value, seg]
        sql += " WHERE e.segment_id = ? ORDER BY e.id"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            args += [int(limit), int(offset or 0)]
        return con.execute(sql, args).fetchall()

    @staticmethod
    def _metadata(con: sqlite3.Connection, rowids: list[int]) -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {r: {} for r in rowids}
        for i in range(0, len(rowids), _BATCH):
            part = rowids[i : i + _BATCH]
            for rid, key, s, n, f, b in con.execute(
                "SELECT id, key, string_value, int_value, float_value, bool_value FROM embedding_metadata "
                f"WHERE id IN ({','.join('?' * len(part))})",
                part,
            ):
                out[rid][key] = (
                    s
                    if s is not None
                    else n
                    if n is not None
                    else f
                    if f is not None
                    else (bool(b) if b is not None else None)
                )
        return out

    def query(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise NotImplementedError("vector search is not available in the read-only view")

    def upsert(self, *args: Any, **kwargs: Any) -> None:
        raise _no_space(f"write to {self.name}")

    def add(self, *args: Any, **kwargs: Any) -> None:
        raise _no_space(f"write to {self.name}")

    def delete(self, *args: Any, **kwargs: Any) -> None:
        raise _no_space(f"delete from {self.name}")


def readonly_client(folder: Path) -> ReadOnlyClient | None:
    """A read-only view of the embedded store in ``folder``, or None when there is none to read."""
    if not (folder / SQLITE_FILE).is_file():
        return None
    client = ReadOnlyClient(folder)
    return client if client.schema_ok() else None
