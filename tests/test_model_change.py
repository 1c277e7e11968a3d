"""Changing the embedding model on an existing store is detected; vectors of two models are never mixed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.fake_embedder import FakeEmbedder
from fixtures.helpers import corpus_files
from talentbot.config import Settings
from talentbot.errors import ModelMismatchError
from talentbot.ingest import run_ingest
from talentbot.retrieval import Retriever
from talentbot.store import Store


def _docs(tmp_path, name="a.md", text="甲市人才公寓租金按市场价五折收取。"):
    docs = tmp_path / "docs"
    docs.mkdir(exist_ok=True)
    (docs / name).write_text(f"---\ntitle: 甲市通知\n---\n{text}\n", encoding="utf-8")
    return docs


def test_other_model_name_is_refused_with_the_fix(tmp_path):
    docs = _docs(tmp_path)
    first = Settings(store=tmp_path / "s", embedding_model=str(tmp_path / "model-a"))
    assert run_ingest(Store(first), FakeEmbedder(dim=8), first, [docs]).added == 1
    other = Settings(store=tmp_path / "s", embedding_model=str(tmp_path / "model-b"))
    _docs(tmp_path, "b.md", "乙市博士安家补贴十万元。")
    with pytest.raises(ModelMismatchError) as e:
        run_ingest(Store(other), FakeEmbedder(dim=8), other, [docs])
    assert "model-a" in str(e.value)
    assert "model-b" in str(e.value)
    assert "talentbot ingest --rebuild" in str(e.value)
    assert len(Store(first).manifest()) == 1  # nothing of b.md was written with the other model
    with pytest.raises(ModelMismatchError):  # a question vector of model b against model a's vectors
        Retriever(other.model_copy(update={"fusion": "rrf"}), Store(other), FakeEmbedder(dim=8)).search(
            "补贴"
        )
    lexical = other.model_copy(update={"fusion": "lexical"})  # no vector is compared: answers still work
    assert Retriever(lexical, Store(lexical), FakeEmbedder(dim=8)).search("租金")
    assert run_ingest(Store(other), FakeEmbedder(dim=8), other, [docs], rebuild=True).added == 2


def test_same_name_other_dimension_is_refused(tmp_path):
    docs = _docs(tmp_path)
    s = Settings(store=tmp_path / "s", embedding_model=str(tmp_path / "model"))
    run_ingest(Store(s), FakeEmbedder(dim=8), s, [docs])
    _docs(tmp_path, "b.md", "乙市博士安家补贴十万元。")
    with pytest.raises(ModelMismatchError, match="8-dimensional.*16-dimensional"):
        run_ingest(Store(s), FakeEmbedder(dim=16), s, [docs])
    assert len(Store(s).manifest()) == 1


def test_store_without_a_recorded_model_is_refused(tmp_path):
    docs = _docs(tmp_path)
    s = Settings(store=tmp_path / "s", embedding_model=str(tmp_path / "model"))
    run_ingest(Store(s), FakeEmbedder(dim=8), s, [docs])
    Store(s).set_state(
        embedding_model=None, embedding_dim=None
    )  # as a store built before models were recorded
    with pytest.raises(ModelMismatchError, match="does not record"):
        run_ingest(Store(s), FakeEmbedder(dim=8), s, [docs])
    empty = Settings(store=tmp_path / "fresh", embedding_model=str(tmp_path / "model"))
    assert run_ingest(Store(empty), FakeEmbedder(dim=8), empty, [docs]).added == 1  # a new store is fine


@pytest.mark.slow
@pytest.mark.model
def test_cli_switching_between_the_bundled_models(tmp_path):
    """Real models through the CLI: one line, exit code 2, and the rebuild it names works."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_bytes(corpus_files()[0].read_bytes())
    env_store = ["--store", str(tmp_path / "s")]

    def cli(*args, model=""):
        env = {**os.environ, "TALENTBOT_EMBEDDING_MODEL": model}
        return subprocess.run(
            [str(Path(sys.executable).parent / "talentbot"), *args], capture_output=True, text=True, env=env
        )

    assert cli("ingest", str(docs), *env_store).returncode == 0
    switched = cli("ingest", str(docs), *env_store, model="all-MiniLM-L6-v2")
    assert switched.returncode == 2
    lines = [line for line in switched.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, switched.stderr
    assert "--rebuild" in lines[0], switched.stderr
    assert "multilingual-e5-small" in lines[0], switched.stderr
    assert cli("ingest", str(docs), "--rebuild", *env_store, model="all-MiniLM-L6-v2").returncode == 0
    assert cli("ingest", str(docs), *env_store, model="all-MiniLM-L6-v2").returncode == 0
