"""The streaming BM25 build (lexical_build.BM25Builder) makes bm25s's own index, to the bit, page by page;
and the vector copy saved with the lexical index (dense.py) answers searches within articles like Chroma.

Tokens are those of the real corpus/ chunks (the loaders, chunker and tokenizer of an ingest).
"""

from __future__ import annotations

import bm25s
import numpy as np
import pytest

from fixtures.helpers import corpus_files
from talentbot import lexical_build
from talentbot.chunking import chunk_article
from talentbot.config import Settings
from talentbot.dense import VectorWriter, load_vectors
from talentbot.lexical import LexicalIndex, query_tokens, tokenize
from talentbot.lexical_build import BM25Builder
from talentbot.lexical_files import check_structure
from talentbot.loaders import load


@pytest.fixture(scope="module")
def chunks() -> list[tuple[str, list[str]]]:
    """(id, tokens) of every chunk of corpus/, plus a chunk with no tokens at all."""
    s = Settings()
    rows = []
    for i, path in enumerate(corpus_files()):
        article = load(path)
        for c in chunk_article(article, s.chunk_size, s.chunk_overlap):
            rows.append((f"{i}:{c.ordinal}", tokenize(c.indexed_text)))
    rows.insert(len(rows) // 2, ("empty:0", []))
    return rows


def _columns(bm25: bm25s.BM25) -> dict[str, tuple[list[int], list[float]]]:
    """word -> (rows, scores) of its column: the matrix independent of how columns are numbered."""
    data, indices, indptr = (np.asarray(bm25.scores[k]) for k in ("data", "indices", "indptr"))
    return {
        w: (indices[indptr[c] : indptr[c + 1]].tolist(), data[indptr[c] : indptr[c + 1]].tolist())
        for w, c in bm25.vocab_dict.items()
        if c < len(indptr) - 1
    }


@pytest.mark.parametrize(
    ("page", "block", "files"),
    [(1, None, False), (7, 257, True), (100, None, True), (100_000, 4096, False)],
    ids=["page 1", "page 7, small blocks, to files", "page 100, to files", "one page"],
)
def test_streamed_index_is_bm25s_index_to_the_bit(chunks, page, block, files, tmp_path, monkeypatch):
    """Pages of any size, the matrix in memory or written to files a block of columns at a time (and
    read back in slices smaller than a page): the same matrix and scores as bm25s's own index."""
    monkeypatch.setattr(lexical_build, "_SLICE", 1000)
    if block:
        monkeypatch.setattr(lexical_build, "_BLOCK", block)
    ids = [cid for cid, _ in chunks]
    reference = bm25s.BM25()
    reference.index([t for _, t in chunks], show_progress=False)
    with BM25Builder() as builder:
        for i in range(0, len(chunks), page):
            builder.add(ids[i : i + page], [t for _, t in chunks[i : i + page]])
        built = builder.build(tmp_path if files else None)
    assert built is not None
    assert isinstance(built.scores["data"], np.memmap) == files
    assert builder.ids == ids
    assert set(built.vocab_dict) == set(reference.vocab_dict)
    assert built.scores["num_docs"] == len(ids)
    check_structure(built, ids)
    assert _columns(built) == _columns(reference)
    for _, tokens in chunks[:: max(1, len(chunks) // 25)]:
        query = [t for t in dict.fromkeys(tokens) if t in built.vocab_dict][:12]
        assert query, tokens
        assert np.array_equal(built.get_scores(query), reference.get_scores(query))
    index, expected = LexicalIndex.build(ids, [t for _, t in chunks]), LexicalIndex(ids, reference)
    for question in ("人才公寓租金怎么收取", "青年创业团队场租补贴", "博士后 安家费"):
        terms = [t for t in query_tokens(question) if t in index.vocab]
        assert np.array_equal(index.scores(terms), expected.scores(terms))


def test_an_empty_builder_builds_nothing():
    with BM25Builder() as builder:
        builder.add([], [])
        assert builder.build() is None
    assert LexicalIndex.build([], []).bm25 is None


def test_vector_writer_streams_rows_to_an_npy_file(tmp_path):
    rng = np.random.default_rng(3)
    rows = rng.standard_normal((11, 6)).astype(np.float32)
    path = tmp_path / "v.npy"
    writer = VectorWriter(path)
    for i in range(0, 11, 4):
        writer.add(list(rows[i : i + 4]))
    assert writer.finish(11)
    assert np.array_equal(np.load(path), rows)
    assert np.array_equal(load_vectors(path, 11), rows)
    with pytest.raises(ValueError, match="not 12 float32 rows"):
        load_vectors(path, 12)


@pytest.mark.parametrize(
    "bad", [[[1.0, 2.0], [1.0]], [[1.0, 2.0], None]], ids=["another length", "a missing vector"]
)
def test_vector_writer_leaves_no_file_for_rows_it_cannot_hold(tmp_path, bad):
    writer = VectorWriter(tmp_path / "v.npy")
    writer.add([[0.0, 1.0]])
    writer.add(bad)
    assert not writer.finish(3)
    assert list(tmp_path.iterdir()) == []
    writer = VectorWriter(tmp_path / "v.npy")
    writer.add([[0.0, 1.0]])
    assert not writer.finish(2)  # fewer rows than the index has
    assert list(tmp_path.iterdir()) == []


def test_rows_with_a_word_are_the_rows_it_scores(chunks):
    """LexicalIndex.rows_with reads a word's column (anchors' 'which articles hold it') instead of scoring
    every chunk: the same rows as a positive score."""
    index = LexicalIndex.build([cid for cid, _ in chunks], [toks for _, toks in chunks], 1)
    columns = len(index.bm25.scores["indptr"]) - 1
    words = [w for w in sorted(index.vocab) if index.vocab[w] < columns][:: max(1, len(index.vocab) // 300)]
    assert len(words) >= 100
    for w in words:
        assert sorted(index.rows_with(w).tolist()) == np.flatnonzero(index.scores([w]) > 0).tolist(), w
        assert len(index.rows_with(w)) == index.doc_freq(w)
    assert len(index.rows_with("不在词表里的词")) == 0
