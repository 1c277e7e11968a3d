"""`talentbot eval` through the CLI: the JSON report, the quality floors, and malformed question sets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fixtures.helpers import EVAL, eval_rows
from talentbot.cli import app

SETS = ["qa_regulations.jsonl", "qa_shanxi.jsonl"]

# Floors a little under the current figures (README), so that a regression fails CI.
FLOORS = {
    "qa_regulations.jsonl": {"hit1": 0.93, "answer_contains": 0.95, "no_answer_recall": 0.99},
    "qa_shanxi.jsonl": {"hit1": 0.88, "answer_contains": 0.80, "no_answer_recall": 0.99},
}
CEILINGS = {
    "qa_regulations.jsonl": {"false_no_answer": 0.05},
    "qa_shanxi.jsonl": {"false_no_answer": 0.09},
}
KEYS = {
    "n",
    "answerable",
    "unanswerable",
    "hit1",
    "hitk",
    "mrr",
    "answer_contains",
    "doc_cited",
    "no_answer_precision",
    "no_answer_recall",
    "false_no_answer",
    "latency_p50_ms",
    "latency_p95_ms",
    "k",
    "rows",
}


@pytest.fixture(scope="module")
def reports(corpus_store) -> dict[str, dict]:
    """`talentbot eval SET --store <corpus> --json` for both sets, run once for the module."""
    out = {}
    for name in SETS:
        result = CliRunner().invoke(app, ["eval", str(EVAL / name), "--store", str(corpus_store), "--json"])
        assert result.exit_code == 0, result.output
        out[name] = json.loads(result.stdout)
    return out


@pytest.mark.parametrize("name", SETS)
def test_eval_json_report(reports, name):
    report = reports[name]
    assert set(report) >= KEYS
    questions = eval_rows(name)
    assert report["n"] == len(questions) == len(report["rows"])
    assert report["unanswerable"] == sum(not q["a"] for q in questions)
    assert report["answerable"] + report["unanswerable"] == report["n"]
    assert report["k"] == 4
    for key in (
        "hit1",
        "hitk",
        "mrr",
        "answer_contains",
        "doc_cited",
        "no_answer_precision",
        "no_answer_recall",
        "false_no_answer",
    ):
        assert 0.0 <= report[key] <= 1.0, key
    assert report["hit1"] <= report["hitk"]
    assert report["hit1"] <= report["mrr"] <= report["hitk"]
    assert 0 < report["latency_p50_ms"] <= report["latency_p95_ms"]
    for row, q in zip(report["rows"], questions, strict=True):
        assert row["q"] == q["q"]
        assert {"no_answer", "rank", "answer", "cited"} <= set(row)
        if q["a"] and row.get("contains"):
            assert all(e.replace(" ", "") in row["answer"].replace(" ", "") for e in q["a"])


@pytest.mark.parametrize("name", SETS)
def test_eval_figures_stay_above_floors(reports, name):
    report = reports[name]
    low = {k: report[k] for k, floor in FLOORS[name].items() if report[k] < floor}
    high = {k: report[k] for k, ceiling in CEILINGS[name].items() if report[k] > ceiling}
    missed = [(r["q"], r["rank"], r["answer"][:60]) for r in report["rows"] if r.get("contains") is False]
    assert not low, f"{name}: below floor {low}, above ceiling {high}; missed: {missed}"
    assert not high, f"{name}: below floor {low}, above ceiling {high}; missed: {missed}"


@pytest.fixture
def small_set(tmp_path) -> Path:
    """Six questions of the Shanxi set: four answerable, two not."""
    rows = eval_rows(SETS[1])
    picked = [r for r in rows if r["a"] and not r.get("history")][:4] + [r for r in rows if not r["a"]][:2]
    path = tmp_path / "small.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in picked) + "\n", encoding="utf-8")
    return path


def test_eval_k_option(corpus_store, small_set):
    result = CliRunner().invoke(
        app, ["eval", str(small_set), "--store", str(corpus_store), "--json", "--k", "2"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["k"] == 2
    assert report["n"] == 6
    assert report["unanswerable"] == 2
    assert all(r["rank"] in (None, 1, 2) for r in report["rows"])


def test_eval_table_output(corpus_store, small_set):
    result = CliRunner().invoke(app, ["eval", str(small_set), "--store", str(corpus_store)])
    assert result.exit_code == 0, result.output
    for word in ("hit@1", "hit@4", "MRR"):
        assert word.lower() in result.stdout.lower()


@pytest.mark.parametrize(
    ("bad_line", "says"),
    [
        ('{"q": "没有结尾的问题", "a": [', "not valid JSON"),
        ('["a list", "not an object"]', "JSON object"),
        ('{"a": ["40万元"]}', "'q'"),
        ('{"q": "问题？", "a": "40万元"}', "'a'"),
    ],
    ids=["broken-json", "not-object", "no-q", "a-not-list"],
)
def test_malformed_line_is_named(tmp_path, bad_line, says):
    qa = tmp_path / "qa.jsonl"
    good = json.dumps(eval_rows(SETS[0])[0], ensure_ascii=False)
    qa.write_text("\n".join([good, "", good, bad_line, good]) + "\n", encoding="utf-8")
    store = tmp_path / "empty"  # the set is read, and refused, before the store is opened
    result = CliRunner().invoke(app, ["eval", str(qa), "--store", str(store), "--json"])
    assert result.exit_code == 2, result.output
    assert f"{qa}:4" in result.output
    assert says in result.output
    assert "Traceback" not in result.output


def test_missing_or_empty_question_set(tmp_path):
    store = tmp_path / "empty"
    result = CliRunner().invoke(app, ["eval", str(tmp_path / "nope.jsonl"), "--store", str(store)])
    assert result.exit_code == 2
    assert "nope.jsonl" in result.output
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["eval", str(empty), "--store", str(store)])
    assert result.exit_code == 2
    assert "no questions" in result.output


def test_eval_on_an_empty_store_fails_clearly(tmp_path):
    result = CliRunner().invoke(app, ["eval", str(EVAL / SETS[1]), "--store", str(tmp_path / "empty")])
    assert result.exit_code == 3  # EmptyStoreError, a StoreError (errors.py)
    assert "ingest" in result.output
    assert "Traceback" not in result.output
