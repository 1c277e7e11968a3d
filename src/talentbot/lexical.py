"""Lexical retrieval: jieba tokens scored with BM25 (bm25s, sparse matrices), persisted beside Chroma.

Chunk tokens are computed once at ingest and stored in Chroma metadata, so this index can always be
rebuilt from the collection alone (also when the collection lives on a `chroma run` server). It is built
page by page (:mod:`talentbot.lexical_build`). The index folder also keeps a copy of the chunks' vectors,
rows in the order of its ids, for the dense search within articles (:mod:`talentbot.dense`), and of their
texts and metadata, read instead of Chroma's (:mod:`talentbot.passage_copy`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .dense import VECTORS_FILE, load_vectors
from .lexical_build import DATA_FILE, BM25Builder
from .lexical_files import (
    IDS_FILE,
    PASSAGE_COPY,
    VECTOR_COPY,
    IndexProblem,
    check_params,
    check_structure,
    pinyin_table_ok,
    read_ids,
    record_sound,
    verify_files,
    write_manifest,
)
from .normalize import simplified
from .passage_copy import PASSAGES_FILE, PassageRows

if TYPE_CHECKING:
    import bm25s

logger = logging.getLogger(__name__)

_jieba_lock = threading.Lock()
_jieba = None  # the rjieba module, imported on first use

# Function words and question words carry no evidence: they neither score nor count for coverage.
STOPWORDS = set(
    "的 了 是 在 和 与 及 或 等 对 为 由 将 把 被 从 向 以 于 其 该 并 也 都 就 而 之 所 有 中 上 下 个 这 那 哪 "
    "什么 哪些 哪个 哪一 哪一天 哪一部 多少 几 何时 何 怎么 怎样 如何 是否 吗 呢 吧 啊 给 要 会 可以 能 应当 "
    "按照 根据 规定 请问 一下 一个 我 你 他 她 它 我们 他们 它们 条例 本 市 省 "
    "a an the of to in on for and or is are was were be by with what which who whom when where how "
    "many much does do did can could should would will shall under according its it this that these those "
    "there their from as at any all s give".split()
)
_TOKEN_OK = re.compile(r"[\w\u4e00-\u9fff]", re.U)


def _tokenizer() -> Any:
    """jieba-rs (rjieba): jieba's dictionary and algorithm, compiled. It cuts like jieba 0.42 on the whole
    corpus and eval set (except hyphenated runs, split below), 14x faster, and loads in 0.1 s instead of 0.45 s."""
    global _jieba
    if _jieba is None:
        with _jieba_lock:
            if _jieba is None:
                import rjieba

                _jieba = rjieba
    return _jieba


def words(text: str) -> list[str]:
    """Plain jieba words (precise mode) of the simplified text, for finding what a question asks about."""
    return _tokenizer().cut(simplified(text).replace("-", " "))


_CJK_RUN = re.compile(r"[\u4e00-\u9fff]{2,}")


def tokenize(text: str) -> list[str]:
    """jieba search-mode words plus CJK character bigrams ('#' + pair), lower-cased, no stop words.

    The bigrams make matching robust where jieba cuts the same name differently in question and text
    (a company name may be one word in a
    question and two in a sentence, when jieba joins its last character to the next word).
    """
    text = simplified(text).lower()  # traditional characters meet simplified ones
    words = _tokenizer().cut_for_search(text.replace("-", " "))  # '2020-2035' -> 2020 | 2035, as jieba does
    out = [w for w in (w.strip() for w in words) if w and w not in STOPWORDS and _TOKEN_OK.search(w)]
    if BIGRAMS:
        for run in _CJK_RUN.findall(text):
            out.extend("#" + run[i : i + 2] for i in range(len(run) - 1))
    return out


BIGRAMS = True
WORD_WEIGHT = 2  # query words count twice as much as bigrams (measured: docs/retrieval.md)


def query_tokens(text: str) -> list[str]:
    """Tokens of a question: words (counted WORD_WEIGHT times) and bigrams. English words are rendered
    in Chinese against the index (:mod:`talentbot.english`)."""
    toks = tokenize(text)
    return [t for t in toks if not t.startswith("#")] * WORD_WEIGHT + [t for t in toks if t.startswith("#")]


class LexicalIndex:
    """BM25 over chunk tokens. ``ids[i]`` is the chunk id of row ``i``."""

    def __init__(self, ids: list[str], bm25: bm25s.BM25 | None, generation: int = -1) -> None:
        self.ids = ids
        self.bm25 = bm25
        self.generation = generation
        vocab = bm25.vocab_dict if bm25 is not None else {}
        self.vocab = vocab
        self._df: np.ndarray | None = None
        self._pinyin: dict[str, list[str]] | None = None
        self.folder: Path | None = None  # where it was saved or loaded from
        self.vectors: np.ndarray | None = None  # the chunks' vectors, row i of ids[i] (saved or loaded only)
        self.copies_vectors = True  # False: loaded from a version that did not save the vectors with it
        self.passages: PassageRows | None = None  # the chunks' texts and metadata (saved or loaded only)
        self.copies_passages = True  # False: loaded from a version that did not save the passages with it
        self.staging: Path | None = None  # a folder the build wrote files of it to (see staging_for)

    @property
    def pinyin(self) -> dict[str, list[str]]:
        """Toneless pinyin -> the index's Chinese words of 2-4 characters. Built on first use (only English
        questions need it, so ingest doesn't pay for it) and then saved beside the index."""
        if self._pinyin is None:
            from pypinyin import lazy_pinyin

            table: dict[str, list[str]] = {}
            for word in self.vocab:
                if 2 <= len(word) <= 4 and _CJK_RUN.fullmatch(word):
                    table.setdefault("".join(lazy_pinyin(word)), []).append(word)
            self._pinyin = table
            if self.folder is not None:
                self._save_pinyin(self.folder)
        return self._pinyin

    def _save_pinyin(self, folder: Path) -> None:
        """Write the pinyin table, stamped with the index generation it belongs to (atomic replace)."""
        data = json.dumps({"generation": self.generation, "table": self._pinyin}, ensure_ascii=False)
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=".pinyin-", dir=folder)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(data)
            os.replace(tmp, folder / "pinyin.json")
        except OSError as e:  # read-only, full or vanished folder: keep it in memory only
            logger.info("cannot save the pinyin table to %s: %s", folder, e)
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)

    def pinyin_words(self, syllables: str) -> list[str]:
        """Chinese words of the index whose toneless pinyin is ``syllables`` ('hefei' -> ['合肥'])."""
        return self.pinyin.get(syllables, [])

    @classmethod
    def build(
        cls, ids: Sequence[str], token_lists: Sequence[list[str]], generation: int = -1
    ) -> LexicalIndex:
        with BM25Builder() as builder:
            builder.add(ids, token_lists)
            return cls.from_builder(builder, generation)

    @classmethod
    def from_builder(
        cls, builder: BM25Builder, generation: int = -1, staging: Path | None = None
    ) -> LexicalIndex:
        """The index of every chunk added to ``builder``. ``staging`` (:meth:`staging_for`): the folder its
        matrix is written to and mapped from (and the chunks' vectors were, as ``vectors.npy``); :meth:`save`
        completes it and moves it into place."""
        index = cls(builder.ids, builder.build(staging), generation)
        index.staging = staging
        return index

    @staticmethod
    def staging_for(folder: Path) -> Path | None:
        """A fresh folder beside ``folder`` to build its next index in, or None when none can be made."""
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
            return Path(tempfile.mkdtemp(prefix=".lexical-", dir=folder.parent))
        except OSError as e:
            logger.info("cannot build the lexical index beside %s (%s): building it in memory", folder, e)
            return None

    def scores(self, tokens: Sequence[str]) -> np.ndarray:
        """BM25 score of every chunk for ``tokens`` (zeros for unknown words)."""
        known = [t for t in tokens if t in self.vocab]
        if self.bm25 is None or not known:
            return np.zeros(len(self.ids), dtype=np.float32)
        return self.bm25.get_scores(known)

    def rows_with(self, token: str) -> np.ndarray:
        """The rows (chunks) whose tokens include ``token``: its column of the BM25 matrix, no scoring."""
        col = self.vocab.get(token)
        if self.bm25 is None or col is None or col + 1 >= len(self.bm25.scores["indptr"]):
            return np.empty(0, dtype=np.int64)  # bm25s's vocabulary has one word without a column
        mat = self.bm25.scores
        start, end = int(mat["indptr"][col]), int(mat["indptr"][col + 1])
        return np.asarray(mat["indices"][start:end], dtype=np.int64)

    def doc_freq(self, token: str) -> int:
        """In how many chunks ``token`` occurs."""
        if self._df is None:
            assert self.bm25 is not None, "doc_freq of an empty index"  # callers check: idf(), anchors
            mat = self.bm25.scores
            indptr = np.asarray(mat["indptr"])
            self._df = np.diff(indptr)
        idx = self.vocab.get(token)
        return 0 if idx is None else int(self._df[idx])

    def idf(self, token: str) -> float:
        n = max(1, len(self.ids))
        df = self.doc_freq(token) if self.bm25 is not None else 0
        return float(np.log(1 + (n - df + 0.5) / (df + 0.5)))

    # ----------------------------------------------------------------------------- persistence
    def save(self, folder: Path) -> None:
        """Write atomically: a temp folder beside ``folder`` with a checksum manifest, then rename."""
        tmp, self.staging = self.staging, None
        if tmp is None:
            folder.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".lexical-", dir=folder.parent))
        try:
            if self.bm25 is not None:
                self._save_bm25(tmp)
            (tmp / IDS_FILE).write_text(json.dumps({"generation": self.generation, "ids": self.ids}))
            write_manifest(tmp, self.generation, len(self.ids))
            if self._pinyin is not None:
                self._save_pinyin(tmp)
            old = folder.with_name(folder.name + ".old")
            if folder.exists():
                shutil.rmtree(old, ignore_errors=True)
                os.replace(folder, old)
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
            self.folder = folder
            if (folder / VECTORS_FILE).exists():
                try:
                    self.vectors = load_vectors(folder / VECTORS_FILE, len(self.ids))
                except ValueError as e:  # not what was written: search within articles through Chroma
                    logger.warning("cannot use the saved vectors in %s: %s", folder, e)
            if (folder / PASSAGES_FILE).exists():
                try:
                    self.passages = PassageRows(folder, self.ids)
                except (OSError, ValueError) as e:  # not what was written: read passages from Chroma
                    logger.warning("cannot use the saved passages in %s: %s", folder, e)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # a mapped matrix stays readable (POSIX) when not saved

    def _save_bm25(self, tmp: Path) -> None:
        """bm25s's files in ``tmp``; a matrix the build wrote there already is kept, not written again
        (writing it from its mapping would read all of it into memory)."""
        assert self.bm25 is not None
        if not (tmp / DATA_FILE).exists():
            self.bm25.save(str(tmp), show_progress=False)
            return
        scores = self.bm25.scores
        self.bm25.scores = {**scores, "data": scores["data"][:0], "indices": scores["indices"][:0]}
        try:
            self.bm25.save(str(tmp), data_name=".data.npy", indices_name=".indices.npy", show_progress=False)
        finally:
            self.bm25.scores = scores
        for name in (".data.npy", ".indices.npy"):
            (tmp / name).unlink()

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex | None:
        """The saved index, or None when none was saved; :class:`IndexProblem` says why a saved one is unusable.

        Checked before use: every file against the checksums written at save, then the BM25 parameters
        and the matrix shapes against the ids (see :mod:`talentbot.lexical_files`); the shapes and ids only
        until a load finds them sound, then again once a file changes.
        """
        import bm25s

        if not folder.is_dir():
            return None
        manifest, unchecked = verify_files(folder)
        sound = unchecked is None  # the very files a load found sound: their structure is not checked again
        try:
            generation, ids = read_ids(folder, sound)
            if manifest.get("generation") != generation or manifest.get("count") != len(ids):
                raise IndexProblem("ids.json disagrees with the manifest")
            bm25 = None
            if ids:
                check_params(json.loads((folder / "params.index.json").read_text()))
                # mapped where the OS lets a mapped file be replaced (a rebuild swaps the folder)
                bm25 = bm25s.BM25.load(str(folder), show_progress=False, mmap=os.name == "posix")
                if not sound:
                    check_structure(bm25, ids)
            vectors = None
            if VECTORS_FILE in manifest["files"]:
                vectors = load_vectors(folder / VECTORS_FILE, len(ids))
            passages = PassageRows(folder, ids) if PASSAGES_FILE in manifest["files"] else None
        except IndexProblem:
            raise
        except Exception as e:  # noqa: BLE001 - numpy, json and bm25s each raise their own errors on bad files
            raise IndexProblem(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
        if unchecked is not None:
            record_sound(folder, unchecked)
        index = cls(ids, bm25, generation)
        index.folder = folder
        index.vectors = vectors
        index.copies_vectors = bool(manifest.get(VECTOR_COPY))
        index.passages, index.copies_passages = passages, bool(manifest.get(PASSAGE_COPY))
        try:
            saved = json.loads((folder / "pinyin.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            saved = None
        if (
            isinstance(saved, dict)
            and saved.get("generation") == index.generation
            and pinyin_table_ok(saved.get("table"), index.vocab)
        ):
            index._pinyin = saved.get("table")
        return index
