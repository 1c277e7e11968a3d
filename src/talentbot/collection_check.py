"""A saved lexical index against its collection: the chunk ids, and sampled rows of the matrix, the vector
copy and the passage copy against the chunks they were built from (:func:`check_against_collection`). The
checks of the files on their own are in :mod:`talentbot.lexical_files`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from .dense import VECTORS_FILE
from .lexical_files import IndexProblem
from .passage_copy import PASSAGES_FILE

if TYPE_CHECKING:
    import bm25s

    from .passage_copy import PassageRows

_SAMPLE_ROWS = 64  # rows compared with their chunk's tokens on load (all of them in a small index)


def _sample(n: int) -> list[int]:
    if n <= _SAMPLE_ROWS:
        return list(range(n))
    return sorted({round(i * (n - 1) / (_SAMPLE_ROWS - 1)) for i in range(_SAMPLE_ROWS)})


def check_against_collection(
    bm25: bm25s.BM25,
    ids: Sequence[str],
    collection_ids: Iterable[str] | None,
    chunks_of: Callable[[list[str]], Mapping[str, tuple[str, dict]]],
    vectors: np.ndarray | None = None,
    vectors_of: Callable[[list[str]], Mapping[str, object]] | None = None,
    passages: PassageRows | None = None,
) -> None:
    """The index covers exactly the collection's chunks, and sampled rows hold exactly their tokens (read
    with their texts by ``chunks_of``); given the saved ``vectors`` and ``vectors_of``, which reads chunks'
    vectors from the collection, their vectors; given the saved ``passages``, their texts and metadata.
    ``collection_ids`` None: the ids were compared before, with these very files (the caller compared the
    count); then, given ``passages``, whose metadata hold the tokens, the matrix is not read again (a pass
    over all of it, 0.05 s at 100,000 chunks): its rows matched the copy's then, and the copy is compared."""
    if collection_ids is not None:
        have, want = set(ids), set(collection_ids)
        if have != want:
            raise IndexProblem(
                f"it lists {len(have)} chunks, {len(have - want)} not in the collection, "
                f"while the collection holds {len(want)}, {len(want - have)} not in it"
            )
    if bm25 is None:
        return
    rows = _sample(len(ids))
    stored_rows = chunks_of([ids[r] for r in rows])
    if collection_ids is not None or passages is None:
        _check_words(bm25, ids, rows, stored_rows)
    _check_copies(ids, rows, stored_rows, vectors, vectors_of, passages)


def _check_words(
    bm25: bm25s.BM25, ids: Sequence[str], rows: list[int], stored_rows: Mapping[str, tuple[str, dict]]
) -> None:
    """The sampled ``rows`` of the matrix hold exactly the tokens stored with their chunks."""
    tokens = {cid: (meta or {}).get("tokens", "").split() for cid, (_, meta) in stored_rows.items()}
    indices, indptr, vocab = (
        np.asarray(bm25.scores["indices"]),
        np.asarray(bm25.scores["indptr"]),
        bm25.vocab_dict,
    )
    # one pass over the matrix for all sampled rows (a pass per row took 0.36 s at 100,000 chunks, this
    # 0.03 s); check_structure has kept every index within the rows
    sampled = np.zeros(len(ids), dtype=bool)
    sampled[rows] = True
    positions = np.flatnonzero(sampled[indices])
    row_of = indices[positions]
    column_of = np.searchsorted(indptr, positions, side="right") - 1
    for r in rows:
        columns = set(column_of[row_of == r].tolist())
        expected = {vocab.get(t, -1) for t in tokens.get(ids[r], [])}
        if columns != expected:
            raise IndexProblem(f"row {r} does not hold the words of chunk {ids[r]}")


def _check_copies(
    ids: Sequence[str],
    rows: list[int],
    stored_rows: Mapping[str, tuple[str, dict]],
    vectors: np.ndarray | None,
    vectors_of: Callable[[list[str]], Mapping[str, object]] | None,
    passages: PassageRows | None,
) -> None:
    """The sampled ``rows`` of the vector and passage copies hold their chunks' vectors, texts and metadata."""
    if vectors is not None and vectors_of is not None:
        stored = vectors_of([ids[r] for r in rows])
        for r in rows:
            vec = stored.get(ids[r])
            if vec is None or not np.allclose(vectors[r], np.asarray(vec, dtype=np.float32), atol=1e-6):
                raise IndexProblem(f"row {r} of {VECTORS_FILE} is not the vector of chunk {ids[r]}")
    if passages is not None:
        for r in rows:
            row = stored_rows.get(ids[r])
            try:
                if row is None or passages.read(r) != (row[0], row[1] or {}):
                    raise ValueError
            except ValueError:
                raise IndexProblem(f"line {r} of {PASSAGES_FILE} is not the text of chunk {ids[r]}") from None
