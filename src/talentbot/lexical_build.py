"""Streaming build of the BM25 index: chunks are added page by page, the index is built at the end.

Holding every chunk's token list in Python (as ``bm25s.BM25.index`` needs) cost about 3 GB at 100,000 chunks.
Here each page's tokens become (row, word, count) triples at once, spilled to a temporary file. The sparse
matrix is then written a block of columns at a time, each block filled from the spill file: given a
folder, straight to its ``.npy`` files, which the index then maps (the memory is one block, never the
matrix); without one, into memory.

The scores are bm25s's own, to the bit: the same formula (Lucene BM25: Robertson's term weight with
Lucene's idf, float64 arithmetic stored as float32, the idf from ``math.log``) and the same CSC layout
(columns in vocabulary order, rows ascending within a column). Only the column numbering differs (first
appearance here; bm25s numbers a set), which no score depends on. tests/test_lexical_build.py checks the
scores against ``bm25s.BM25.index`` on real chunk tokens.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import tempfile
from array import array
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    import bm25s

DATA_FILE, INDICES_FILE = "data.csc.index.npy", "indices.csc.index.npy"  # bm25s's names
_SLICE = 1 << 18  # triples read from the spill file per step (~10 MB of temporaries)
_BLOCK = 1 << 21  # matrix entries written per block of columns (16 MB of data and indices)
_WORD_BITS = 32

logger = logging.getLogger(__name__)


def close_and_remove(fh: IO[bytes] | None, paths: Iterable[Path]) -> None:
    """What a file writer that gives up leaves: ``fh`` closed (if open), ``paths`` removed."""
    if fh is not None:
        with contextlib.suppress(OSError):
            fh.close()
    for path in paths:
        path.unlink(missing_ok=True)


def write_npy_header(fh: IO[bytes], dtype: np.dtype, shape: tuple[int, ...]) -> None:
    """Write a ``.npy`` header for a C-ordered array (its data follows, written by the caller)."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(fh, header)


class BM25Builder:
    """Collects chunk tokens page by page (:meth:`add`) and builds the bm25s index (:meth:`build`)."""

    def __init__(self) -> None:
        import bm25s

        self._bm25 = bm25s.BM25()
        if self._bm25.method != "lucene" or self._bm25.idf_method != "lucene":  # the only formula coded here
            raise RuntimeError(f"bm25s defaults to {self._bm25.method}: the streaming build needs lucene")
        self.ids: list[str] = []
        self.vocab: dict[str, int] = {}
        self._lengths = array("q")  # tokens per chunk
        self._df = np.zeros(0, dtype=np.int64)  # chunks per word
        self._spill: IO[bytes] | None = None
        self._pages: list[int] = []  # triples per spilled page

    def __enter__(self) -> BM25Builder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove the spill file (also done by :meth:`build`)."""
        if self._spill is not None:
            self._spill.close()
            self._spill = None

    def add(self, ids: Sequence[str], token_lists: Sequence[Sequence[str]]) -> None:
        """Add one page of chunks: their ids and each chunk's tokens."""
        if not ids:
            return
        vocab = self.vocab
        flat = [vocab.setdefault(t, len(vocab)) for tokens in token_lists for t in tokens]
        lengths = [len(tokens) for tokens in token_lists]
        first = len(self.ids)
        self.ids.extend(ids)
        self._lengths.extend(lengths)
        if not flat:
            return
        rows = np.repeat(np.arange(first, first + len(ids), dtype=np.int64), lengths)
        keys, counts = np.unique((rows << _WORD_BITS) | np.asarray(flat, dtype=np.int64), return_counts=True)
        words = (keys & ((1 << _WORD_BITS) - 1)).astype(np.int32)
        if len(self._df) < len(vocab):
            self._df = np.concatenate([self._df, np.zeros(len(vocab) - len(self._df), dtype=np.int64)])
        self._df += np.bincount(words, minlength=len(self._df))
        if self._spill is None:
            self._spill = tempfile.TemporaryFile(prefix="talentbot-bm25-")  # noqa: SIM115 - closed by close()
        for part in ((keys >> _WORD_BITS).astype(np.int32), words, counts.astype(np.float32)):
            self._spill.write(part.tobytes())
        self._pages.append(len(keys))

    def build(self, folder: Path | None = None) -> bm25s.BM25 | None:
        """The bm25s index of every chunk added (None when none was), as ``bm25s.BM25.index`` makes it.
        ``folder``: write its data and indices arrays there (bm25s's file names) and map them."""
        try:
            return self._build(folder) if self.ids else None
        finally:
            self.close()

    def _build(self, folder: Path | None) -> bm25s.BM25:
        bm25 = self._bm25
        n_docs, n_words = len(self.ids), len(self.vocab)
        lengths = np.asarray(self._lengths, dtype=np.int64)
        df = self._df[:n_words]
        idf = np.zeros(n_words, dtype=bm25.dtype)
        for value in np.unique(df).tolist():  # bm25s: math.log per word, stored in the index dtype
            idf[df == value] = math.log(1 + (n_docs - value + 0.5) / (value + 0.5))
        # bm25s's term weight: tf / (k1 * ((1 - b) + b * l_d / l_avg) + tf), l_d the chunk's token count and
        # l_avg their mean (of an int64 array, as bm25s takes it); here the denominator less tf, per chunk
        norm = bm25.k1 * ((1 - bm25.b) + bm25.b * lengths / lengths.mean())
        indptr = np.zeros(n_words + 1, dtype=np.int64)
        np.cumsum(df, out=indptr[1:])
        total = int(indptr[-1])
        written = self._write(folder, indptr, idf, norm) if folder is not None else None
        if written is not None:
            data, indices = written
        else:
            data = np.empty(total, dtype=bm25.dtype)
            indices = np.empty(total, dtype=bm25.int_dtype)
            self._fill(0, n_words, indptr, idf, norm, data, indices)
        bm25.scores = {"data": data, "indices": indices, "indptr": indptr, "num_docs": n_docs}
        vocab = dict(self.vocab)
        if "" not in vocab:  # bm25s adds the empty word after the others, without a column
            vocab[""] = n_words
        bm25.vocab_dict = vocab
        bm25.unique_token_ids_set = set(vocab.values())
        bm25.nonoccurrence_array = None
        return bm25

    def _write(
        self, folder: Path, indptr: np.ndarray, idf: np.ndarray, norm: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Write the data and indices arrays to ``folder``, a block of columns at a time, and map them;
        None (and no files) when they can't be written (a full disk: the matrix is built in memory)."""
        paths = folder / DATA_FILE, folder / INDICES_FILE
        try:
            return self._write_files(paths, indptr, idf, norm)
        except OSError as e:
            logger.info("cannot write the BM25 matrix to %s (%s): building it in memory", folder, e)
            for path in paths:
                path.unlink(missing_ok=True)
            return None

    def _write_files(
        self, paths: tuple[Path, Path], indptr: np.ndarray, idf: np.ndarray, norm: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        bm25, total, n_words = self._bm25, int(indptr[-1]), len(indptr) - 1
        with open(paths[0], "wb") as fd, open(paths[1], "wb") as fi:
            write_npy_header(fd, np.dtype(bm25.dtype), (total,))
            write_npy_header(fi, np.dtype(bm25.int_dtype), (total,))
            start = 0
            while start < n_words:  # columns [start, end) hold at most _BLOCK entries (or one column)
                end = max(start + 1, int(np.searchsorted(indptr, indptr[start] + _BLOCK, side="right")) - 1)
                end = min(end, n_words)
                size = int(indptr[end] - indptr[start])
                data = np.empty(size, dtype=bm25.dtype)
                indices = np.empty(size, dtype=bm25.int_dtype)
                self._fill(start, end, indptr, idf, norm, data, indices)
                fd.write(data.data)  # its buffer: no copy
                fi.write(indices.data)
                start = end
        mode: Literal["r"] | None = (
            "r" if os.name == "posix" else None
        )  # elsewhere a mapped file can't be moved
        return (
            np.load(paths[0], mmap_mode=mode, allow_pickle=False),
            np.load(paths[1], mmap_mode=mode, allow_pickle=False),
        )

    def _fill(
        self,
        first: int,
        end: int,
        indptr: np.ndarray,
        idf: np.ndarray,
        norm: np.ndarray,
        data: np.ndarray,
        indices: np.ndarray,
    ) -> None:
        """Fill the entries of columns [first, end) into ``data``/``indices`` (offset ``indptr[first]``)."""
        filled = indptr[first:end] - indptr[first]
        everything = first == 0 and end == len(indptr) - 1
        for rows, words, tf in self._slices():
            if not everything:
                keep = (words >= first) & (words < end)
                rows, words, tf = rows[keep], words[keep], tf[keep]
                if not len(words):
                    continue
            scores = idf[words] * (tf / (norm[rows] + tf))
            local = words - first
            order = np.argsort(local, kind="stable")  # by word; rows stay ascending within a word
            local, rows, scores = local[order], rows[order], scores[order]
            starts = np.flatnonzero(np.r_[True, local[1:] != local[:-1]])
            rank = np.arange(len(local)) - np.repeat(starts, np.diff(np.r_[starts, len(local)]))
            at = filled[local] + rank
            data[at] = scores
            indices[at] = rows
            filled += np.bincount(local, minlength=end - first)

    def _slices(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """The spilled triples, in order, at most :data:`_SLICE` at a time."""
        if self._spill is None:
            return
        self._spill.seek(0)
        for count in self._pages:
            offset = self._spill.tell()
            for i in range(0, count, _SLICE):
                m = min(_SLICE, count - i)
                part = []
                for k, dtype in enumerate((np.int32, np.int32, np.float32)):
                    self._spill.seek(offset + 4 * (k * count + i))
                    part.append(np.frombuffer(self._spill.read(4 * m), dtype=dtype))
                yield part[0].astype(np.int64), part[1], part[2]
            self._spill.seek(offset + 12 * count)
