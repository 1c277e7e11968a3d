"""`talentbot ask` through the CLI: the --json shape, --k, filters, bad input and an empty store."""

from __future__ import annotations

import gc
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fixtures.helpers import row_for
from talentbot.cli import app

CITATION_KEYS = {"n", "title", "source", "date", "path", "text"}


def ask(*args: str):
    return CliRunner().invoke(app, ["ask", *args])


def ask_json(store: Path, *args: str) -> dict:
    result = ask(*args, "--store", str(store), "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_ask_json_shape(corpus_store):
    row = row_for("山东省人才发展促进条例》自哪一天起施行")
    out = ask_json(corpus_store, row["q"])
    assert {"question", "answer", "no_answer", "citations"} <= set(out)
    assert out["question"] == row["q"]
    assert out["no_answer"] is False
    assert all(e in out["answer"] for e in row["a"])
    assert out["citations"], "an answer cites its passages"
    for c in out["citations"]:
        assert set(c) >= CITATION_KEYS
        assert isinstance(c["n"], int)
        assert c["text"]
        assert Path(c["path"]).name.endswith((".md", ".txt"))
        assert f"[{c['n']}]" in out["answer"]
    assert Path(out["citations"][0]["path"]).name in row["doc"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", out["citations"][0]["date"])


def test_ask_json_no_answer(corpus_store):
    out = ask_json(corpus_store, "火星移民的签证费是多少？")
    assert out["no_answer"] is True
    assert out["citations"] == []
    assert "资料中没有找到" in out["answer"]


def test_ask_plain_output_lists_sources(corpus_store):
    row = row_for("垣曲经济技术开发区的三大产业基地有哪些")
    result = ask(row["q"], "--store", str(corpus_store))
    assert result.exit_code == 0, result.output
    text = re.sub(r"\s+", "", result.stdout)
    assert all(e in text for e in row["a"])
    assert "[1]" in result.stdout


def test_ask_k_limits_the_passages(corpus_store):
    q = row_for("哪一部施行得更晚")["q"]
    wide = ask_json(corpus_store, q, "--k", "4")
    assert len(wide["citations"]) >= 2, "a comparison cites both regulations"
    narrow = ask_json(corpus_store, q, "--k", "1")
    assert len(narrow["citations"]) == 1


def test_ask_region_filter(corpus_store):
    out = ask_json(corpus_store, "人才发展促进", "--region", "河南")
    assert out["citations"]
    assert all("河南" in c["title"] + c["source"] for c in out["citations"])


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([""], "empty"),
        (["   "], "empty"),
        (["😀😀😀"], "emoji"),
        (["人才补贴", "--from", "yesterday"], "YYYY"),
    ],
    ids=["empty", "blank", "emoji", "bad-date"],
)
def test_ask_bad_input_exits_2_with_a_message(tmp_path, args, says):
    result = ask(*args, "--store", str(tmp_path / "empty"), "--json")  # refused before the store is opened
    assert result.exit_code == 2
    assert says in result.output
    assert "Traceback" not in result.output
    assert result.stdout == "", "nothing on stdout for --json consumers"


def test_ask_on_an_empty_store(tmp_path):
    result = ask("人才公寓有哪些支持方式？", "--store", str(tmp_path / "empty"), "--json")
    assert result.exit_code == 3  # EmptyStoreError, a StoreError (errors.py)
    assert "ingest" in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow  # fresh `talentbot` processes
def test_the_talentbot_command_writes_all_its_output_before_it_leaves(corpus_store, tmp_path):
    """`ask` and `eval` leave without tearing the interpreter down (cli._leave): what they print through a
    pipe still arrives whole, and the exit status is still 0, or the error's."""
    import subprocess
    import sys

    exe = str(Path(sys.executable).with_name("talentbot"))
    row = row_for("山东省人才发展促进条例》自哪一天起施行")
    done = subprocess.run(
        [exe, "ask", row["q"], "--store", str(corpus_store), "--json"], capture_output=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert all(e in out["answer"] for e in row["a"])
    plain = subprocess.run(
        [exe, "ask", row["q"], "--store", str(corpus_store)], capture_output=True, text=True, timeout=300
    )
    assert plain.returncode == 0, plain.stderr
    assert "[1]" in plain.stdout
    qa = tmp_path / "qa.jsonl"
    rows = [row_for("垣曲经济技术开发区的三大产业基地有哪些"), row]
    qa.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    evaluated = subprocess.run(
        [exe, "eval", str(qa), "--store", str(corpus_store), "--json"], capture_output=True, timeout=300
    )
    assert evaluated.returncode == 0, evaluated.stderr
    assert len(json.loads(evaluated.stdout)["rows"]) == len(rows)
    empty = subprocess.run(
        [exe, "ask", "人才公寓有哪些支持方式？", "--store", str(tmp_path / "empty")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert empty.returncode == 3
    assert "ingest" in empty.stderr


@pytest.mark.slow  # fresh interpreters
def test_the_talentbot_command_answers_with_the_garbage_collector_off(corpus_store):
    """`talentbot ask` switches the cyclic collector off (cli._one_shot) and leaves right after its answer;
    a CliRunner's ask, a test's process, keeps it."""
    import subprocess
    import sys

    row = row_for("山东省人才发展促进条例》自哪一天起施行")
    probe = (
        "import gc, os, sys; from talentbot import cli; real = os._exit; "
        "full = lambda: gc.get_stats()[2]['collections']; before = full(); "
        "os._exit = lambda code: (print('collections', full() - before, gc.isenabled(), "
        "file=sys.stderr), real(code)); "
        "sys.argv = ['talentbot', 'ask', sys.argv[1], '--store', sys.argv[2], '--json']; cli.main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, row["q"], str(corpus_store)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert all(e in json.loads(done.stdout)["answer"] for e in row["a"])
    assert "collections 0 False" in done.stderr  # no full collection from the command's start, and it is off
    result = ask(row["q"], "--store", str(corpus_store), "--json")
    assert result.exit_code == 0
    assert gc.isenabled()
