"""A copy of the chunks' texts and metadata, saved with the lexical index and read instead of Chroma.

Chroma reads a passage with its metadata in 0.2 to 0.5 ms (a row per metadata key in its SQLite file, and
about half a millisecond a call); an answer reads 10 to 40 passages (the fused first k, those of a version in
force, the rest of a quoted 第X条), which took 7 to 8 ms of a question at 100,000 chunks. The copy is two
files beside the index: ``passages.jsonl``, one JSON ``[text, metadata]`` a line, in the order of the index's
chunk ids, and ``passages.offsets.npy``, where each line starts (and one more: where the last ends).

:class:`PassageWriter` writes them while the index is rebuilt from the collection, a page at a time; they are
checksummed with the index files and sampled rows are compared with the collection on load (collection_check).
Read through the index it was saved with (``LexicalIndex.passages``), a search gets the passages of the
snapshot its ids came from.
"""

from __future__ import annotations

import json
import mmap
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .lexical_build import close_and_remove

PASSAGES_FILE = "passages.jsonl"
OFFSETS_FILE = "passages.offsets.npy"


class PassageWriter:
    """Writes the copy into ``folder`` as rows come (:meth:`add`); ``folder`` None: writes nothing.

    Any failure (a folder that can't be written, a chunk without text, fewer rows than the index has) leaves
    no files, and passages are read from Chroma."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self._offsets = [0]
        self._fh: Any = None
        if folder is None:
            return
        try:
            self._fh = open(folder / PASSAGES_FILE, "wb")  # noqa: SIM115 - closed by finish() or discard()
        except OSError:
            self.discard()

    def add(self, texts: Sequence[str | None], metas: Sequence[dict | None]) -> None:
        """Append one row per chunk: its text and metadata."""
        if self._fh is None:
            return
        try:
            for text, meta in zip(texts, metas, strict=True):
                if not isinstance(text, str):  # read without its document: no copy
                    raise ValueError("a chunk without text")
                line = json.dumps([text, meta or {}], ensure_ascii=False).encode("utf-8") + b"\n"
                self._fh.write(line)
                self._offsets.append(self._offsets[-1] + len(line))
        except (OSError, ValueError, TypeError):
            self.discard()

    def finish(self, rows: int) -> bool:
        """Write the offsets and close; whether the copy holds ``rows`` rows (else it is gone)."""
        if self._fh is None or len(self._offsets) != rows + 1:
            self.discard()
            return False
        try:
            self._fh.close()
            self._fh = None
            assert self.folder is not None
            np.save(self.folder / OFFSETS_FILE, np.asarray(self._offsets, dtype=np.int64), allow_pickle=False)
        except OSError:
            self.discard()
            return False
        return True

    def discard(self) -> None:
        """Close and remove both files."""
        folder = self.folder
        close_and_remove(self._fh, [folder / PASSAGES_FILE, folder / OFFSETS_FILE] if folder else [])
        self._fh, self.folder = None, None


class PassageRows:
    """The saved copy in ``folder`` of the chunks ``ids`` (in row order), checked to hold as many rows; raises
    ValueError otherwise. The text is mapped where the OS lets a mapped file be replaced (a rebuild swaps the
    folder), else read whole."""

    def __init__(self, folder: Path, ids: Sequence[str]) -> None:
        rows = len(ids)
        offsets = np.load(folder / OFFSETS_FILE, allow_pickle=False)
        size = (folder / PASSAGES_FILE).stat().st_size
        if (
            offsets.dtype != np.int64
            or offsets.shape != (rows + 1,)
            or offsets[0] != 0
            or offsets[-1] != size
            or (rows and np.any(np.diff(offsets) <= 0))
        ):
            raise ValueError(f"{OFFSETS_FILE} does not mark {rows} lines of {PASSAGES_FILE}")
        self.offsets = offsets
        self._ids = ids
        self._rows: dict[str, int] | None = None  # chunk id -> row, made on first use
        self._data: mmap.mmap | bytes = b""
        if size:
            with open(folder / PASSAGES_FILE, "rb") as fh:
                self._data = (
                    mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if os.name == "posix" else fh.read()
                )

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def get(self, cid: str) -> tuple[str, dict] | None:
        """Chunk ``cid``'s (text, metadata); None when it is not one of the ids. ValueError: an unreadable line."""
        if self._rows is None:
            self._rows = {c: i for i, c in enumerate(self._ids)}
        row = self._rows.get(cid)
        return None if row is None else self.read(row)

    def read(self, row: int) -> tuple[str, dict]:
        """Row ``row``'s (text, metadata); ValueError when its line is not one."""
        start, end = int(self.offsets[row]), int(self.offsets[row + 1])
        try:
            value = json.loads(self._data[start:end])
        except ValueError:
            value = None
        if not (
            isinstance(value, list)
            and len(value) == 2
            and isinstance(value[0], str)
            and isinstance(value[1], dict)
        ):
            raise ValueError(f"line {row} of {PASSAGES_FILE} is not [text, metadata]")
        return value[0], value[1]
