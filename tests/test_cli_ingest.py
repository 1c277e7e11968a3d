"""`talentbot ingest` through typer's CliRunner: exit codes, --json shape, the summary table (FakeEmbedder vectors)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from filelock import FileLock
from typer.testing import CliRunner

from fixtures.docs import make_bad_files, write_article
from talentbot.cli import app

KEYS = {"added", "updated", "unchanged", "removed", "failed", "chunks", "seconds"}


def _folder(tmp_path: Path, n: int = 2) -> Path:
    for i in range(n):
        write_article(tmp_path / "docs" / f"a{i}.md", i)
    return tmp_path / "docs"


def _json(result) -> dict:
    data = json.loads(result.stdout)
    assert set(data) == KEYS
    assert all(isinstance(data[k], int) for k in KEYS - {"failed", "seconds"})
    assert isinstance(data["seconds"], float)
    assert data["seconds"] >= 0
    assert isinstance(data["failed"], list)
    return data


def test_json_output_and_exit_codes_across_runs(tmp_path, fake_embedder):
    folder = _folder(tmp_path, n=2)
    store = tmp_path / "cli-store"
    runner = CliRunner()
    first = runner.invoke(app, ["ingest", str(folder), "--store", str(store), "--json"])
    assert first.exit_code == 0, first.output
    data = _json(first)
    assert (data["added"], data["updated"], data["unchanged"], data["removed"], data["failed"]) == (
        2,
        0,
        0,
        0,
        [],
    )
    assert data["chunks"] > 2
    assert (store / "chroma.sqlite3").exists()  # --store was used, not the environment's store
    assert not Path(os.environ["TALENTBOT_STORE"]).exists()

    second = runner.invoke(app, ["ingest", str(folder), "--store", str(store), "--json"])
    assert second.exit_code == 0
    assert _json(second) | {"seconds": 0} == {**data, "added": 0, "unchanged": 2, "seconds": 0}

    write_article(folder / "a0.md", 0, variant="改")
    (folder / "a1.md").unlink()
    third = _json(runner.invoke(app, ["ingest", str(folder), "--store", str(store), "--json"]))
    assert (third["added"], third["updated"], third["unchanged"], third["removed"]) == (0, 1, 0, 1)

    rebuilt = runner.invoke(app, ["ingest", str(folder), "--store", str(store), "--json", "--rebuild"])
    assert rebuilt.exit_code == 0
    assert (_json(rebuilt)["added"], _json(rebuilt)["chunks"]) == (1, third["chunks"])


def test_a_failed_file_exits_1_and_is_listed_while_the_rest_is_indexed(tmp_path, fake_embedder):
    folder = _folder(tmp_path, n=1)
    bad = make_bad_files(folder)
    result = CliRunner().invoke(app, ["ingest", str(folder), "--json"])
    assert result.exit_code == 1, result.output
    data = _json(result)
    assert data["added"] == 1
    assert data["chunks"] > 0
    assert all(set(f) == {"path", "error"} for f in data["failed"])
    assert {Path(f["path"]).name for f in data["failed"]} == set(bad)
    assert all(f["error"] and "\n" not in f["error"] for f in data["failed"])


def test_the_summary_table_without_json(tmp_path, fake_embedder):
    folder = _folder(tmp_path, n=1)
    (folder / "empty.txt").write_bytes(b"")
    result = CliRunner().invoke(app, ["ingest", str(folder)], env={"COLUMNS": "400"})
    assert result.exit_code == 1
    out = result.stdout
    for column in ("added", "updated", "unchanged", "removed", "failed", "chunks in store", "seconds"):
        assert column in out
    assert "empty.txt" in out
    assert "empty file" in out
    assert not out.lstrip().startswith("{")


def test_a_missing_path_is_a_usage_error_with_exit_2(tmp_path, fake_embedder):
    folder = _folder(tmp_path, n=1)
    result = CliRunner().invoke(app, ["ingest", str(folder), str(tmp_path / "no-such-dir"), "--json"])
    assert result.exit_code == 2
    assert "no such file or folder" in result.stderr
    assert "no-such-dir" in result.stderr
    assert result.stdout == ""


def test_an_unknown_option_is_a_usage_error_with_exit_2(tmp_path, fake_embedder):
    result = CliRunner().invoke(app, ["ingest", "--no-such-option"])
    assert result.exit_code == 2
    assert "No such option" in result.output


def test_a_second_ingest_on_a_locked_store_exits_4_with_a_clear_message(tmp_path, fake_embedder):
    folder = _folder(tmp_path, n=1)
    store = Path(os.environ["TALENTBOT_STORE"])
    store.mkdir(parents=True)
    runner = CliRunner()
    with FileLock(str(store / ".ingest.lock")):
        result = runner.invoke(app, ["ingest", str(folder), "--json"])
        assert result.exit_code == 4
        assert "another ingest is running" in result.stderr
        assert str(store) in result.stderr
        assert result.stdout == ""
    after = runner.invoke(app, ["ingest", str(folder), "--json"])
    assert after.exit_code == 0
    assert _json(after)["added"] == 1
