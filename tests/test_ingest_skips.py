"""Ingest never loses indexed articles to a file or folder it can't read, and never stops at one odd file:
an unreadable folder or file, a file name that is not UTF-8, a FIFO, a link to /dev/zero."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fixtures.docs import article_text, write_article
from fixtures.storecheck import assert_consistent
from talentbot import TalentBot
from talentbot.cli import app

# Root reads everything whatever the mode bits say; without these two capabilities it obeys them.
DROP_DAC = "--bounding-set=-dac_override,-dac_read_search"


def _cli_ingest(folder: Path, store: Path, obey_permissions: bool = False) -> tuple[int, dict]:
    """`talentbot ingest FOLDER --store STORE --json` in a child process: (exit code, JSON report)."""
    cmd = [
        sys.executable,
        "-c",
        "from talentbot.cli import main; main()",
        "ingest",
        str(folder),
        "--store",
        str(store),
        "--json",
    ]
    if obey_permissions and os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: file permissions can't be made to bite")
        cmd = [setpriv, DROP_DAC, *cmd]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


@pytest.mark.slow  # two `talentbot ingest` processes with the real model
@pytest.mark.model
def test_an_unreadable_folder_or_file_keeps_its_articles_and_is_reported(tmp_path):
    folder = tmp_path / "docs"
    write_article(folder / "top.md", 1)
    write_article(folder / "locked.md", 2)
    write_article(folder / "sub" / "inner.md", 3)
    write_article(folder / "sub" / "deeper" / "x.md", 4)
    store = tmp_path / "store"
    rc, first = _cli_ingest(folder, store)
    assert rc == 0
    assert first["added"] == 4
    assert first["failed"] == []

    (folder / "sub").chmod(0)
    (folder / "locked.md").chmod(0)
    try:
        rc, second = _cli_ingest(folder, store, obey_permissions=True)
    finally:
        (folder / "sub").chmod(0o755)
        (folder / "locked.md").chmod(0o644)
    assert rc == 1  # reported: not a silent exit 0
    assert (second["added"], second["updated"], second["unchanged"], second["removed"]) == (0, 0, 1, 0)
    assert second["chunks"] == first["chunks"]
    failed = {Path(f["path"]).name: f["error"] for f in second["failed"]}
    assert set(failed) == {"sub", "locked.md"}
    assert failed["sub"] == (
        "cannot read folder: Permission denied; its 2 indexed article(s) are kept until it can be read"
    )
    assert failed["locked.md"] == "cannot read file: Permission denied; the version indexed earlier is kept"

    bot = TalentBot(store=store)
    assert {Path(r.path).name for r in bot.store.manifest().values()} == {
        "top.md",
        "locked.md",
        "inner.md",
        "x.md",
    }
    docs = " ".join(doc for doc, _ in assert_consistent(bot).values())
    assert "第3号文章第0段第0句" in docs
    assert "第4号文章第0段第0句" in docs
    assert "第2号文章第0段第0句" in docs

    readable = bot.ingest([folder])  # permissions back: nothing to redo, nothing to report
    assert (readable.unchanged, readable.added, readable.removed, readable.failed) == (4, 0, 0, [])


def test_a_file_name_that_is_not_utf8_is_skipped_and_the_rest_is_indexed(tmp_path, fake_embedder):
    folder = tmp_path / "docs"
    write_article(folder / "a.md", 1)
    with open(os.path.join(os.fsencode(folder), b"latin1-\xe9.md"), "wb") as f:
        f.write(article_text(2).encode("utf-8"))
    write_article(folder / "z.md", 3)  # sorted after the bad name: the ingest must go on past it
    bot = TalentBot()
    report = bot.ingest([folder])
    assert report.added == 2
    (failure,) = report.failed
    assert failure["path"].endswith("latin1-\\xe9.md")
    assert failure["error"] == "its file name is not valid UTF-8: rename it in UTF-8 to index it"
    assert {Path(r.path).name for r in bot.store.manifest().values()} == {"a.md", "z.md"}
    assert_consistent(bot)

    result = CliRunner().invoke(app, ["ingest", str(folder), "--json"])  # the CLI prints it, exit 1
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["unchanged"] == 2
    assert [f["path"] for f in data["failed"]] == [failure["path"]]


def test_a_fifo_and_a_link_to_dev_zero_are_skipped_with_a_reason(tmp_path, fake_embedder):
    folder = tmp_path / "docs"
    write_article(folder / "a.md", 1)
    os.mkfifo(folder / "pipe.md")  # no writer ever comes: a blocking open() would hang the ingest
    (folder / "zero.txt").symlink_to("/dev/zero")  # a read() would never end
    write_article(folder / "z.md", 2)
    out: dict = {}
    worker = threading.Thread(target=lambda: out.update(report=TalentBot().ingest([folder])), daemon=True)
    worker.start()
    worker.join(timeout=240)
    assert not worker.is_alive(), "the ingest hung on a FIFO or a device"
    report = out["report"]
    assert report.added == 2
    failed = {Path(f["path"]).name: f["error"] for f in report.failed}
    assert failed == {
        "pipe.md": "a named pipe (FIFO), not a regular file: only regular files are read",
        "zero.txt": "a character device, not a regular file: only regular files are read",
    }

    named = TalentBot().ingest([folder / "pipe.md"])  # named on the command line: the same reason
    assert [f["error"] for f in named.failed] == [failed["pipe.md"]]
