"""Shared fixtures: every test gets its own store under tmp_path; a session-wide store holds corpus/.

Tiers. ``pytest -m "not slow and not browser and not model"`` is the fast tier: no embedding model, no
corpus ingest, no server, no process of its own (the sandboxed PDF/Word parser still runs). A test that uses
the real model or the corpus store is marked ``model``: by hand, or here, for every test that uses one of
``MODEL_FIXTURES``. Tests that start servers or processes (the CLI, `chroma run`, kill -9) are marked ``slow``.
A fast-tier test that uses the real model fails, naming the marker. Vectors there come from ``FakeEmbedder``
(tests/fixtures/fake_embedder.py; the ``fake_embedder`` fixture gives it to every TalentBot of a test) and,
where a store is wanted without files, from ``ephemeral_client`` (an in-memory Chroma).
Shared helpers (EVAL, row_for, free_port, ...) live in tests/fixtures/helpers.py.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.fake_embedder import FakeEmbedder, use_fake_embedder
from fixtures.helpers import CORPUS, free_port

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

MODEL_FIXTURES = {"corpus_store", "corpus_bot", "corpus_dir", "server"}
HEAVY_MARKERS = ("model", "slow", "browser")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.model)


_MODEL = {"allowed": True, "refused": []}  # whether the running test may load the model; what was refused


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Before any fixture of ``item`` is set up (module-scoped ones included): may it load the model?"""
    _MODEL["allowed"] = _heavy(item)
    _MODEL["refused"].clear()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.call_failed = report.failed
    return report


def _heavy(node) -> bool:
    return any(node.get_closest_marker(m) for m in HEAVY_MARKERS)


@pytest.fixture(scope="session", autouse=True)
def _no_model_in_the_fast_tier() -> Iterator[None]:
    """Using the real embedding model (``Embedder.model``) fails a test that is not marked model, slow or
    browser, even when another test of the session has loaded it already. FakeEmbedder is always allowed."""
    from talentbot.embeddings import Embedder

    real = Embedder.model

    def model(self):
        if not _MODEL["allowed"] and not isinstance(self, FakeEmbedder):
            _MODEL["refused"].append(self.model_name)
            pytest.fail(
                f"a fast-tier test used the embedding model '{self.model_name}': mark it "
                "@pytest.mark.model, or give it the fake_embedder fixture",
                pytrace=False,
            )
        return real.fget(self)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Embedder, "model", property(model))
        yield


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory) -> Iterator[Path]:
    """Where this session converts the bundled e5 model (once per session, never the user's cache); set in
    the environment for the whole session, so module-scoped fixtures and subprocesses use it too."""
    folder = tmp_path_factory.mktemp("model-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TALENTBOT_MODEL_CACHE", str(folder))
        yield folder


@pytest.fixture(autouse=True)
def _store_in_tmp(request, tmp_path, monkeypatch, model_cache):
    """Point the default store at tmp_path, the model cache at the session's, and clear TALENTBOT_* settings
    from the environment. After a fast-tier test: the model was not used (a refusal swallowed by a thread or
    a broad ``except`` still fails it)."""
    for key in list(os.environ):
        if key.startswith("TALENTBOT_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("TALENTBOT_STORE", str(tmp_path / "vectorstore"))
    monkeypatch.setenv("TALENTBOT_MODEL_CACHE", str(model_cache))
    yield
    if not getattr(request.node, "call_failed", False):
        assert not _MODEL["refused"], (
            f"a fast-tier test used the embedding model {_MODEL['refused']}: mark it @pytest.mark.model"
        )


@pytest.fixture
def fake_embedder(monkeypatch) -> list[FakeEmbedder]:
    """Every TalentBot made in the test embeds with a FakeEmbedder instead of the real model (a module-scoped
    fixture can call ``use_fake_embedder`` itself). Returns the embedders made."""
    return use_fake_embedder(monkeypatch)


@pytest.fixture
def ephemeral_client() -> Iterator[object]:
    """An in-memory Chroma client for ``Store(settings, client=...)``: nothing on disk. Chroma shares one
    in-memory system between its ephemeral clients, so it is emptied before and after the test."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    client = chromadb.EphemeralClient(settings=ChromaSettings(anonymized_telemetry=False, allow_reset=True))
    client.reset()
    yield client
    client.reset()


@pytest.fixture(scope="session")
def corpus_store(tmp_path_factory, model_cache) -> Path:
    """A store holding the real corpus/, ingested once per test session with the real model."""
    from talentbot import TalentBot

    store = tmp_path_factory.mktemp("corpus-store")
    corpus = tmp_path_factory.mktemp("corpus-copy") / "corpus"
    shutil.copytree(CORPUS, corpus)
    report = TalentBot(store=store, model_cache=model_cache).ingest([corpus])
    assert report.added == sum(1 for f in corpus.iterdir() if f.is_file())
    assert not report.failed
    return store


@pytest.fixture
def corpus_bot(corpus_store):
    """A fresh TalentBot over the session's corpus store (extractive mode)."""
    from talentbot import TalentBot

    return TalentBot(store=corpus_store)


@pytest.fixture(scope="module")
def corpus_dir(corpus_store) -> Path:
    """The corpus folder the session store was built from (re-ingesting it changes nothing)."""
    from talentbot import TalentBot

    return Path(TalentBot(store=corpus_store).articles()[0].path).parent


@pytest.fixture(scope="module")
def server(corpus_store, corpus_dir, model_cache):
    """One real chat server over the corpus store for the module: default (secure) settings, loopback, a
    free port, no TALENTBOT_* from the developer's shell. ``server.bot`` is its TalentBot."""
    from talentbot import TalentBot
    from talentbot.web import launch

    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith("TALENTBOT_")]:
            mp.delenv(key)
        bot = TalentBot(store=corpus_store, corpus=corpus_dir, port=free_port(), model_cache=model_cache)
        srv = launch(bot, block=False)
    srv.bot = bot
    yield srv
    srv.close()
