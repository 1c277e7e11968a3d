"""Shared fixtures: every test gets its own store under tmp_path; a session-wide store holds corpus/."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus"
EVAL = ROOT / "eval"


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory) -> Iterator[Path]:
    """Where this session converts the bundled e5 model (once per session, never the user's cache); set in
    the environment for the whole session, so module-scoped fixtures and subprocesses use it too."""
    folder = tmp_path_factory.mktemp("model-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TALENTBOT_MODEL_CACHE", str(folder))
        yield folder


@pytest.fixture(autouse=True)
def _store_in_tmp(tmp_path, monkeypatch, model_cache):
    """Point the default store at tmp_path, the model cache at the session's, and clear TALENTBOT_* settings
    from the environment."""
    for key in list(os.environ):
        if key.startswith("TALENTBOT_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("TALENTBOT_STORE", str(tmp_path / "vectorstore"))
    monkeypatch.setenv("TALENTBOT_MODEL_CACHE", str(model_cache))


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
