"""Vectors an ingest need not compute again: those of passages whose indexed text is already in the store.

By id, for a re-indexed article (a loader or chunker change re-indexes every file, and most passages come
out the same); and by text, across the whole store, when some indexed articles were not found among the
files (moved or renamed folders come back under new ids). The store's embedding model is the ingest's
(claimed at its start), so a stored vector is the one the model would compute.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from .chunking import Chunk
from .store import Store

logger = logging.getLogger(__name__)


def _stored_text(document: str, meta: dict) -> str:
    """The indexed text a stored chunk was embedded from (its title, chapter and label, then its text)."""
    return Chunk(
        text=document,
        ordinal=int(meta.get("ordinal", 0)),
        title=str(meta.get("title", "")),
        chapter=str(meta.get("chapter", "")),
        label=str(meta.get("label", "")),
    ).indexed_text


def _digest(text: str) -> bytes:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).digest()


class StoredVectors:
    """Finds stored vectors for pending passages. ``moved``: some indexed articles are not among the files
    of this ingest, so a passage may come back under another id: look it up by text too (the store's
    passages are read once, on first need, and the vectors of those found by text when found)."""

    def __init__(self, store: Store, moved: bool) -> None:
        self.store = store
        self.moved = moved
        self._by_text: dict[bytes, str] | None = None

    def find(self, pending: list) -> dict[str, Any]:
        """Chunk id -> stored vector for the pending (record, article, chunks, is_update) whose indexed text
        is stored, under the same id or, when ``moved``, under any."""
        wanted = {f"{rec.key}:{c.ordinal}": c.indexed_text for rec, _, chunks, _ in pending for c in chunks}
        updated = [
            f"{rec.key}:{c.ordinal}" for rec, _, chunks, is_update in pending if is_update for c in chunks
        ]
        kept = {
            cid: vector
            for cid, (doc, meta, vector) in self.store.chunk_vectors(updated).items()
            if vector is not None and _stored_text(doc, meta or {}) == wanted[cid]
        }
        if self.moved:
            by_text = self._texts()
            found = {
                cid: stored
                for cid, text in wanted.items()
                if cid not in kept and (stored := by_text.get(_digest(text))) is not None
            }
            vectors = self.store.chunk_vectors(sorted(set(found.values()))) if found else {}
            for cid, stored in found.items():
                if stored in vectors and vectors[stored][2] is not None:
                    kept[cid] = vectors[stored][2]
        return kept

    def _texts(self) -> dict[bytes, str]:
        """Digest of each stored passage's indexed text -> its chunk id (its vector is read when wanted: the
        vectors of a whole store are hundreds of MB)."""
        if self._by_text is None:
            self._by_text = {}
            for row in self.store.iter_chunks(include=("documents", "metadatas"), page=500):
                self._by_text[_digest(_stored_text(row.get("document") or "", row["metadata"] or {}))] = row[
                    "id"
                ]
            logger.info(
                "looking up %d stored passages by text (indexed files were moved or renamed)",
                len(self._by_text),
            )
        return self._by_text
