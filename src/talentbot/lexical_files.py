"""The saved lexical index on disk: a checksum manifest written at save, and the checks made on load.

A saved index is trusted only when every file matches the sha256 recorded in ``manifest.json`` at save
time, when its arrays are shaped like a BM25 matrix of its ids, and when it agrees with the collection
(same chunk ids; sampled rows hold exactly their chunk's tokens: :mod:`talentbot.collection_check`). Any
failure names the reason, and the caller rebuilds the index from the collection. Files are hashed before
numpy or JSON ever parse them, so a scribbled ``.npy`` header never makes numpy allocate what it claims.

A file whose size, modification time and inode are those it had when it last matched its checksum
(recorded in :data:`HASHED_FILE`) is not hashed again: reading the 290 MB of a 100,000-chunk index took
0.2 s of every cold ``talentbot ask``. Only files last modified :data:`SETTLED_S` before they were hashed are
recorded: a write within the same tick of the file system's clock could otherwise leave the time unchanged.
The record also says when the files it lists passed the structure checks of a load (:func:`record_sound`):
those are not made again while no file changes (they read the whole matrix, 0.07 s of a cold ``ask`` at
100,000 chunks).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .dense import VECTORS_FILE
from .passage_copy import OFFSETS_FILE, PASSAGES_FILE

if TYPE_CHECKING:
    import bm25s


MANIFEST = "manifest.json"
FORMAT = 1
VECTOR_COPY = "copies_vectors"  # in the manifests of indexes saved by versions that copy the vectors
PASSAGE_COPY = "copies_passages"  # and the passages (passage_copy.py)
BM25_FILES = (
    "data.csc.index.npy",
    "indices.csc.index.npy",
    "indptr.csc.index.npy",
    "vocab.index.json",
    "params.index.json",
)
IDS_FILE = "ids.json"
_FILES = (*BM25_FILES, IDS_FILE, VECTORS_FILE, PASSAGES_FILE, OFFSETS_FILE)  # the last three: optional
HASHED_FILE = "hashed.json"  # beside the index files (not one of them): the files found to match, by stat
SETTLED_S = 2.0
_MAX_MANIFEST_BYTES = 1 << 20
_METHODS = {"robertson", "atire", "bm25l", "bm25+", "lucene"}


class IndexProblem(Exception):
    """Why a saved lexical index cannot be used (the message is one line)."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(folder: Path, generation: int, count: int) -> None:
    """Record the size and sha256 of every index file in ``folder`` (call last, once they are written)."""
    files = {
        p.name: {"size": p.stat().st_size, "sha256": _sha256(p)}
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name in _FILES
    }
    data = {
        "format": FORMAT,
        "generation": generation,
        "count": count,
        "files": files,
        VECTOR_COPY: True,
        PASSAGE_COPY: True,
    }
    (folder / MANIFEST).write_text(json.dumps(data, indent=1))


def verify_files(folder: Path) -> tuple[dict, dict | None]:
    """The manifest of ``folder`` once every file it lists matches its size and checksum, and None when they are
    the very files a load found sound before (their structure needs no check), else what to pass to
    :func:`record_sound` once it has checked them."""
    path = folder / MANIFEST
    try:
        if path.stat().st_size > _MAX_MANIFEST_BYTES:
            raise IndexProblem(f"{MANIFEST} is implausibly large")
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise IndexProblem(f"no {MANIFEST} (saved by an older version, or cut short)") from None
    except (OSError, ValueError) as e:
        raise IndexProblem(f"{MANIFEST} is unreadable ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IndexProblem(f"{MANIFEST} has an unknown format")
    files, count = manifest.get("files"), manifest.get("count")
    if not isinstance(files, dict) or IDS_FILE not in files or type(count) is not int:
        raise IndexProblem(f"{MANIFEST} lists no files")
    if count and not all(name in files for name in BM25_FILES):
        raise IndexProblem(f"{MANIFEST} does not list every BM25 file")
    if (PASSAGES_FILE in files) != (OFFSETS_FILE in files):
        raise IndexProblem(f"{MANIFEST} lists only one of the passage copy's two files")
    record = _read_json_dict(folder / HASHED_FILE) or {}
    hashed: dict = record["files"] if isinstance(record.get("files"), dict) else {}
    matched: dict[str, list] = {}
    for name, want in files.items():
        if name not in _FILES or not isinstance(want, dict):
            raise IndexProblem(f"{MANIFEST} lists an unexpected entry {name!r}")
        p = folder / name
        try:
            st = p.stat()
            if st.st_size != want.get("size"):
                raise IndexProblem(f"{name} has changed size since it was saved")
            seen = [st.st_size, st.st_mtime_ns, st.st_ino, want.get("sha256")]
            if hashed.get(name) != seen:
                settled = time.time_ns() - st.st_mtime_ns > SETTLED_S * 1e9
                if _sha256(p) != want.get("sha256"):
                    raise IndexProblem(f"{name} fails its checksum")
                if not settled:
                    continue
        except OSError as e:
            raise IndexProblem(f"{name} cannot be read ({e.strerror or e})") from None
        matched[name] = seen
    complete = len(matched) == len(files)  # none too fresh to be recorded
    if matched != hashed:
        _write_hashed(folder, matched, sound=False)
    elif complete and record.get("sound") is True:
        return manifest, None
    return manifest, matched if complete else {}


def record_sound(folder: Path, matched: dict) -> None:
    """Record that the files :func:`verify_files` found matching (``matched``: their size, time and inode)
    passed every check of a load; nothing when ``matched`` is empty (a file was too fresh to be recorded)."""
    if matched:
        _write_hashed(folder, matched, sound=True)


def _read_json_dict(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_hashed(folder: Path, files: dict, sound: bool) -> None:
    with contextlib.suppress(OSError):  # a read-only folder: hashed (and checked) again next time
        (folder / HASHED_FILE).write_text(json.dumps({"files": files, "sound": sound}), encoding="utf-8")


def read_ids(folder: Path, sound: bool = False) -> tuple[int, list[str]]:
    """(generation, ids) from ``ids.json``, checked: a list of distinct non-empty strings (``sound``: the file
    passed that check before and has not changed since, so its ids are not compared again)."""
    meta = json.loads((folder / IDS_FILE).read_text())
    ids = meta.get("ids") if isinstance(meta, dict) else None
    generation = meta.get("generation") if isinstance(meta, dict) else None
    if not isinstance(ids, list) or (not sound and not all(isinstance(i, str) and i for i in ids)):
        raise IndexProblem("ids.json does not hold a list of chunk ids")
    if not sound and len(set(ids)) != len(ids):
        raise IndexProblem("ids.json repeats chunk ids")
    if not isinstance(generation, int) or isinstance(generation, bool):
        raise IndexProblem("ids.json has no generation")
    return generation, ids


def check_params(params: Mapping) -> None:
    """BM25 parameters that bm25s would accept and that score sensibly."""
    for key, low, high in (("k1", 0.0, 100.0), ("b", 0.0, 1.0), ("delta", 0.0, 100.0)):
        value = params.get(key)
        if (
            not isinstance(value, (int, float))
            or isinstance(value, bool)
            or not math.isfinite(value)
            or not low <= value <= high
        ):
            raise IndexProblem(f"params.index.json has a bad {key} ({value!r})")
    if params.get("method") not in _METHODS or params.get("idf_method") not in _METHODS:
        raise IndexProblem("params.index.json names an unknown BM25 method")
    if params.get("dtype") not in ("float32", "float64") or params.get("int_dtype") not in ("int32", "int64"):
        raise IndexProblem("params.index.json names an unknown dtype")
    if params.get("backend") not in ("numpy", "auto"):
        raise IndexProblem("params.index.json names an unknown backend")
    expected = {
        "k1",
        "b",
        "delta",
        "method",
        "idf_method",
        "dtype",
        "int_dtype",
        "num_docs",
        "version",
        "backend",
    }
    if set(params) - expected:
        raise IndexProblem(f"params.index.json has unknown keys {sorted(set(params) - expected)}")


def check_structure(bm25: bm25s.BM25, ids: Sequence[str]) -> None:
    """The BM25 matrix is a well-formed CSC matrix of ``len(ids)`` rows with one column per word."""
    vocab = bm25.vocab_dict
    mat = bm25.scores
    if not isinstance(vocab, dict) or not vocab:
        raise IndexProblem("vocab.index.json is not a word table")
    if not isinstance(mat, dict) or mat.get("num_docs") != len(ids):
        raise IndexProblem(
            f"the matrix has {mat.get('num_docs') if isinstance(mat, dict) else '?'} rows for {len(ids)} ids"
        )
    data, indices, indptr = (np.asarray(mat.get(k)) for k in ("data", "indices", "indptr"))
    if indptr.ndim != 1 or indices.ndim != 1 or data.ndim != 1 or len(indptr) < 1:
        raise IndexProblem("the matrix arrays are not 1-dimensional")
    if not (
        np.issubdtype(indptr.dtype, np.integer)
        and np.issubdtype(indices.dtype, np.integer)
        and np.issubdtype(data.dtype, np.floating)
    ):
        raise IndexProblem("the matrix arrays have the wrong types")
    columns = len(indptr) - 1
    if (
        indptr[0] != 0
        or np.any(np.diff(indptr) < 0)
        or indptr[-1] != len(indices)
        or len(indices) != len(data)
    ):
        raise IndexProblem("indptr is not a monotone pointer array ending at the data length")
    if len(indices) and (indices.min() < 0 or indices.max() >= len(ids)):
        raise IndexProblem("indices point outside the rows")
    if not np.all(np.isfinite(data)):
        raise IndexProblem("data holds non-finite scores")
    if getattr(bm25, "method", "") != "robertson" and len(data) and data.min() <= 0:
        raise IndexProblem(
            "data holds scores of zero or less (every BM25 weight but Robertson's is positive)"
        )
    values = list(vocab.values())
    if not all(isinstance(w, str) for w in vocab) or not all(type(v) is int for v in values):
        raise IndexProblem("vocab.index.json is not a word -> column table")
    if (
        len(set(values)) != len(values)
        or min(values) < 0
        or max(values) >= len(vocab)
        or len(vocab) - columns not in (0, 1)
    ):
        raise IndexProblem(
            f"the word table ({len(vocab)} words) does not match the matrix ({columns} columns)"
        )
    if any(v >= columns for w, v in vocab.items() if w != ""):  # bm25s keeps '' as a column-less extra word
        raise IndexProblem("the word table points past the matrix")


def pinyin_table_ok(table: object, vocab: Mapping[str, int]) -> bool:
    """A saved pinyin table is a syllables -> [index words] mapping."""
    return isinstance(table, dict) and all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(w, str) and w in vocab for w in v)
        for k, v in table.items()
    )
