"""Dense search: the nearest passages to a question vector, over the whole store or within some articles.

A search over the whole store asks Chroma's HNSW index (about a millisecond at 100,000 chunks). A search
within some articles (a question's scope or filters) does not use Chroma's ``where`` filter, which cost 40 to
460 ms at 100,000 chunks (its metadata lookup and filtered graph walk), but:

* when the articles hold few passages (at most :data:`EXACT_ROWS`), an exact search over their vectors,
  read from a copy saved with the lexical index (``vectors.npy``, rows in the order of its chunk ids);
* when they hold many, an unfiltered HNSW search for enough neighbours that about :data:`OVERSAMPLE` times
  ``n`` of them fall in those articles, kept if at least ``n`` do (else the exact search).

Without a saved copy (an index saved by an older version, or kept in memory only) the filter goes to Chroma.
The vector copy is written by :class:`VectorWriter` while the lexical index is rebuilt from the collection:
row by row to a file, never held in memory.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .lexical_build import close_and_remove, write_npy_header

if TYPE_CHECKING:
    from .lexical import LexicalIndex
    from .store import Store

VECTORS_FILE = "vectors.npy"
EXACT_ROWS = 8192  # within articles of at most this many passages: exact search over their saved vectors
OVERSAMPLE = 2.0  # else: HNSW neighbours for about this many times n passages of those articles
_HEADER = (
    128  # bytes kept for the .npy header ahead of the rows (written at the end, when their number is known)
)


class VectorWriter:
    """Writes float32 rows to the ``.npy`` file ``path`` as they come (:meth:`add`), never holding them.

    Any failure (a folder that can't be written, rows of another length, fewer rows than the index has)
    leaves no file, and the dense search falls back on Chroma's filter. ``path`` None: writes nothing.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.rows = 0
        self.dim = 0
        self._fh: Any = None
        if path is None:
            return
        try:
            self._fh = open(path, "wb")  # noqa: SIM115 - closed by finish() or discard()
            self._fh.write(b"\x00" * _HEADER)
        except OSError:
            self.discard()

    def add(self, vectors: Sequence[Any]) -> None:
        """Append rows (one vector each); a missing vector or another length abandons the file."""
        if self._fh is None or not len(vectors):
            return
        try:
            block = np.asarray(vectors, dtype=np.float32)
        except (ValueError, TypeError):  # a missing (None) or ragged vector
            self.discard()
            return
        if block.ndim != 2 or (self.dim and block.shape[1] != self.dim) or not block.shape[1]:
            self.discard()
            return
        self.dim = block.shape[1]
        try:
            self._fh.write(np.ascontiguousarray(block).data)
        except OSError:
            self.discard()
            return
        self.rows += block.shape[0]

    def finish(self, rows: int) -> bool:
        """Write the header and close; whether the file holds ``rows`` vectors of one length (else it is gone)."""
        if self._fh is None or self.rows != rows or not self.dim:
            self.discard()
            return False
        try:
            self._fh.seek(0)
            write_npy_header(self._fh, np.dtype(np.float32), (self.rows, self.dim))
            if self._fh.tell() != _HEADER:  # numpy pads the header to 64 bytes: 128 for any real shape
                raise OSError(f"a .npy header of {self._fh.tell()} bytes")
            self._fh.close()
        except OSError:
            self.discard()
            return False
        self._fh = None
        return True

    def discard(self) -> None:
        """Close and remove the file."""
        close_and_remove(self._fh, [self.path] if self.path is not None else [])
        self._fh, self.path = None, None


def load_vectors(path: Path, rows: int) -> np.ndarray:
    """The saved vectors (mapped from the file where the OS lets a mapped file be replaced), checked to be
    ``rows`` float32 rows; raises ValueError otherwise."""
    vectors = np.load(path, mmap_mode="r" if os.name == "posix" else None, allow_pickle=False)
    if vectors.dtype != np.float32 or vectors.ndim != 2 or vectors.shape[0] != rows or not vectors.shape[1]:
        raise ValueError(f"{path.name} holds {vectors.dtype} {vectors.shape}, not {rows} float32 rows")
    return vectors


def rows_within(articles: np.ndarray, rows_code: np.ndarray, keys: Sequence[str]) -> np.ndarray:
    """The index rows of the chunks of the articles ``keys``: per distinct article (``articles``), then per
    row through its article (``rows_code``); the row maps of one :class:`IndexCache` snapshot."""
    return np.flatnonzero(np.isin(articles, list(keys))[rows_code])


def search(
    store: Store,
    index: LexicalIndex | None,
    vector: Sequence[float],
    n: int,
    keys: Sequence[str] | None,
    rows: np.ndarray | None,
) -> list[tuple[str, float]]:
    """The ``n`` nearest chunks to ``vector`` as (id, cosine similarity), best first, within the articles
    ``keys`` (None: all), whose rows of ``index`` are ``rows`` (:func:`rows_within`)."""
    vectors = index.vectors if index is not None else None
    if (
        keys is None
        or rows is None
        or store.readonly
        or index is None
        or vectors is None
        or vectors.shape[1] != len(vector)
        or len(index.ids) != vectors.shape[0]
    ):
        return store.query(vector, n, keys)
    if not keys or n <= 0:
        return []
    if not len(rows):
        return []
    if len(rows) > EXACT_ROWS:
        total = vectors.shape[0]
        wanted = min(total, math.ceil(OVERSAMPLE * n * total / len(rows)))
        allowed = set(keys)
        hits = [(cid, s) for cid, s in store.query(vector, wanted, None) if cid.split(":", 1)[0] in allowed]
        if len(hits) >= n:
            return hits[:n]
    return _exact(index.ids, vectors, rows, np.asarray(vector, dtype=np.float32), n)


def _exact(
    ids: Sequence[str], vectors: np.ndarray, rows: np.ndarray, query: np.ndarray, n: int
) -> list[tuple[str, float]]:
    """Cosine similarity of ``query`` to each of ``rows``: the ``n`` best, best first."""
    block = np.asarray(vectors[rows], dtype=np.float32)
    norms = np.linalg.norm(block, axis=1) * (float(np.linalg.norm(query)) or 1.0)
    sims = block @ query / np.where(norms > 0, norms, 1.0)
    n = min(n, len(rows))
    top = np.argpartition(-sims, n - 1)[:n]
    top = top[np.argsort(-sims[top], kind="stable")]
    return [(ids[int(rows[i])], float(sims[i])) for i in top]
