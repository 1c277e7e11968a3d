"""Faults of the store: a damaged Chroma file and a full disk.

A damaged store is detected on first use with a message naming `talentbot ingest --rebuild`, and the
rebuild works even when Chroma cannot open the file at all (only Chroma's own files are removed).
A full disk during ingest fails with a StoreError about disk space, the previous store still answers,
and the next ingest, once there is room, repairs it. Two variants: "simulated" makes Chroma's writes raise
ENOSPC, everywhere; "tmpfs" is a real 20 MB tmpfs and is collected only where this process may mount one
(root, as in CI), so that it never skips and never quietly runs the simulation under its name.
At 0 bytes free Chroma cannot even open the store; questions are then answered through a read-only view.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fixtures.docs import write_article
from fixtures.fake_embedder import use_fake_embedder
from fixtures.storecheck import assert_consistent
from talentbot import TalentBot
from talentbot.cli import app
from talentbot.errors import StoreCorruptError, StoreError, StoreLockedError

QUESTION = "星火人才公寓哪一天起接受申请？"
FIGURE = "2023年3月8日"
REBUILD = "talentbot ingest --rebuild"


def _base_docs(folder: Path) -> Path:
    """Two small articles; one holds the figure the tests ask for."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "xinghuo.md").write_text(
        "---\ntitle: 星火人才公寓管理办法\nsource: 测试日报\ndate: 2023-02-01\n---\n"
        "第一条 星火人才公寓自2023年3月8日起接受申请，每套月租金800元。\n\n"
        "第二条 申请人须与开发区内企业签订三年以上劳动合同。\n",
        encoding="utf-8",
    )
    write_article(folder / "brief.md", 1, paragraphs=2)
    return folder


def _answers(bot: TalentBot) -> None:
    answer = bot.ask(QUESTION)
    assert not answer.no_answer, answer.text
    assert FIGURE in answer.text, answer.text
    assert any(FIGURE in c.text and c.file == "xinghuo.md" for c in answer.citations)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[Path, Path]:
    """(docs folder, ingested store) built once with FakeEmbedder vectors; tests damage copies of the store
    (and take the fake_embedder fixture, to ask with the same vectors)."""
    root = tmp_path_factory.mktemp("faults")
    docs = _base_docs(root / "docs")
    store = root / "store"
    with pytest.MonkeyPatch.context() as mp:
        use_fake_embedder(mp)
        report = TalentBot(store=store).ingest([docs])
    assert report.added == 2
    assert not report.failed
    return docs, store


# ------------------------------------------------------------------------------------------ damage
def _garbage(db: Path) -> None:
    db.write_bytes(os.urandom(db.stat().st_size))


def _truncated(db: Path) -> None:
    os.truncate(db, db.stat().st_size // 2 + 123)


def _emptied(db: Path) -> None:
    os.truncate(db, 0)


def _scribbled(db: Path) -> None:
    """Valid header, random bytes over the middle pages (only SQLite's integrity check sees it)."""
    size = db.stat().st_size
    with open(db, "r+b") as fh:
        fh.seek(size // 3)
        fh.write(os.urandom(size // 3))


DAMAGE = {"garbage": _garbage, "truncated": _truncated, "emptied": _emptied, "scribbled": _scribbled}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_store_is_detected_and_rebuild_replaces_it(tmp_path, template, fake_embedder, damage):
    docs, original = template
    store = tmp_path / "store"
    shutil.copytree(original, store)
    (store / "my-notes.txt").write_text("not Chroma's")  # rebuild must leave the user's files alone
    foreign = store / "00000000-0000-0000-0000-000000000000"
    foreign.mkdir()
    (foreign / "keep.me").write_text("a UUID-named folder that is not a Chroma segment")
    DAMAGE[damage](store / "chroma.sqlite3")

    with pytest.raises(StoreCorruptError, match=r"vector store at .* is damaged.*talentbot ingest --rebuild"):
        TalentBot(store=store).ask(QUESTION)

    runner = CliRunner()
    asked = runner.invoke(app, ["ask", QUESTION, "--store", str(store)])
    assert asked.exit_code == 3, asked.output
    assert asked.output.startswith("error: the vector store at")
    assert REBUILD in asked.output
    assert "Traceback" not in asked.output
    plain = runner.invoke(app, ["ingest", str(docs), "--store", str(store), "--json"])
    assert plain.exit_code == 3
    assert REBUILD in plain.output

    rebuilt = runner.invoke(app, ["ingest", str(docs), "--store", str(store), "--json", "--rebuild"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert '"added": 2' in rebuilt.stdout
    bot = TalentBot(store=store)
    _answers(bot)
    assert_consistent(bot)
    assert (store / "my-notes.txt").read_text() == "not Chroma's"
    assert (foreign / "keep.me").exists()


def test_the_same_bot_object_can_rebuild_after_the_error(tmp_path, template, fake_embedder):
    docs, original = template
    store = tmp_path / "store"
    shutil.copytree(original, store)
    _garbage(store / "chroma.sqlite3")
    bot = TalentBot(store=store)
    with pytest.raises(StoreCorruptError, match=REBUILD):
        bot.ask(QUESTION)
    with pytest.raises(StoreCorruptError, match=REBUILD):
        bot.ingest([docs])
    assert bot.ingest([docs], rebuild=True).added == 2
    _answers(bot)


def test_the_web_app_refuses_to_start_on_a_damaged_store(tmp_path, template, fake_embedder):
    from talentbot.web import create_app

    store = tmp_path / "store"
    shutil.copytree(template[1], store)
    _truncated(store / "chroma.sqlite3")
    with pytest.raises(StoreCorruptError, match=REBUILD):
        create_app(TalentBot(store=store))


def test_a_rebuild_does_not_reuse_the_lexical_index_of_the_store_it_replaced(
    tmp_path, template, fake_embedder
):
    """The generation restarts with a new store; a saved index of the old one must not pass for it."""
    docs, original = template
    store = tmp_path / "store"
    shutil.copytree(original, store)
    other = _base_docs(tmp_path / "other")
    (other / "xinghuo.md").unlink()
    write_article(other / "extra.md", 7, paragraphs=3)
    bot = TalentBot(store=store)
    bot.ingest([other], rebuild=True)  # different articles, and the generation count starts again
    assert {r.file for r in bot.articles()} == {"brief.md", "extra.md"}
    fresh = TalentBot(store=store)
    fresh.retriever.refresh()
    assert set(fresh.retriever.index.ids) == {row["id"] for row in fresh.store.iter_chunks()}


# --------------------------------------------------------------------------------------- full disk
CAN_MOUNT = os.geteuid() == 0 and shutil.which("mount") is not None  # a real full disk needs a tmpfs
DISKS = ["tmpfs", "simulated"] if CAN_MOUNT else ["simulated"]


def _mount_tmpfs(folder: Path, size: str = "20m") -> None:
    """Mount a real tmpfs on ``folder``; a process that may mount and still cannot fails the test."""
    folder.mkdir(parents=True, exist_ok=True)
    assert CAN_MOUNT, "only tests collected where CAN_MOUNT holds mount a tmpfs"
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.fail(
            f"cannot mount a tmpfs as root ({done.stderr.strip()}): the real full-disk test cannot run"
        )


def _unmount(folder: Path) -> None:
    from talentbot.store import _release_embedded

    _release_embedded(str(folder / "store"))  # Chroma's open files would keep the mount busy
    if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def _big_docs(folder: Path, n: int = 60) -> Path:
    for i in range(n):
        write_article(folder / f"big{i:03d}.md", 100 + i, paragraphs=5)
    return folder


def _fill(mount: Path, filler: Path, leave: int) -> None:
    """Write ``filler`` until ``leave`` bytes are free on ``mount`` (0: until the disk refuses a byte more)."""
    free = shutil.disk_usage(mount).free
    with open(filler, "wb") as fh:
        fh.truncate(0)
        block = b"\0" * 2**20
        left = free - leave
        while left > 0:
            fh.write(block[: min(left, len(block))])
            left -= len(block)
    if leave == 0:
        with open(mount / "filler-tail.bin", "wb", buffering=0) as fh:
            with pytest.raises(OSError, match="No space left") as err:  # noqa: PT012 - loops until the disk is full
                while True:
                    fh.write(b"\0" * 4096)
            assert err.value.errno == errno.ENOSPC, err.value
        assert shutil.disk_usage(mount).free == 0


@pytest.fixture(params=DISKS)
def disk(request, tmp_path, monkeypatch):
    """(kind, folder for the store, fill(), free_up()): a real 20 MB tmpfs, or a disk whose writes raise
    ENOSPC on demand. The tmpfs case exists only where mounting is allowed (DISKS)."""
    mount = tmp_path / "disk"
    if request.param == "tmpfs":
        _mount_tmpfs(mount)
        filler = mount / "filler.bin"

        def fill(leave: int = 512 * 1024) -> None:
            _fill(mount, filler, leave)

        def free_up() -> None:
            filler.unlink(missing_ok=True)
            (mount / "filler-tail.bin").unlink(missing_ok=True)

        try:
            yield "tmpfs", mount, fill, free_up
        finally:
            _unmount(mount)
        return
    # Simulated: a write to the chunk collection stores the first half of its batch, then fails with ENOSPC.
    mount.mkdir(parents=True, exist_ok=True)
    from chromadb.api.models.Collection import Collection

    real_upsert = Collection.upsert
    state = {"full": False}

    def upsert(self, ids, embeddings=None, metadatas=None, documents=None, **kwargs):
        if state["full"] and not self.name.endswith("_articles"):
            half = max(1, len(ids) // 2)
            real_upsert(
                self,
                ids=ids[:half],
                embeddings=embeddings[:half],
                metadatas=metadatas[:half],
                documents=documents[:half],
            )
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_upsert(
            self, ids=ids, embeddings=embeddings, metadatas=metadatas, documents=documents, **kwargs
        )

    monkeypatch.setattr(Collection, "upsert", upsert)

    def fill(leave: int = 0) -> None:
        state["full"] = True

    def free_up() -> None:
        state["full"] = False

    yield "simulated", mount, fill, free_up


@pytest.mark.slow
def test_a_full_disk_fails_the_ingest_cleanly_and_the_previous_store_still_answers(
    tmp_path, disk, fake_embedder
):
    kind, mount, fill, free_up = disk
    docs = _base_docs(tmp_path / "docs")
    store = mount / "store"
    bot = TalentBot(store=store, corpus=docs)
    assert bot.ingest([docs]).added == 2
    _answers(bot)
    before = bot.store.count()

    big = _big_docs(docs / "big")
    fill()
    with pytest.raises(
        StoreError, match=r"disk holding the vector store .* is full.*talentbot ingest"
    ) as err:
        bot.ingest([docs])
    assert not isinstance(err.value, StoreLockedError)
    assert "Traceback" not in str(err.value)

    # The failed ingest released its lock and left the earlier articles answerable, in this process
    # and in a new one.
    _answers(bot)
    _answers(TalentBot(store=store))
    assert {r.file for r in TalentBot(store=store).articles()} >= {"xinghuo.md", "brief.md"}

    # Room again (the big files are gone too): the next ingest repairs what the failed one left.
    free_up()
    shutil.rmtree(big)
    again = TalentBot(store=store)
    report = again.ingest([docs])
    assert not report.failed
    assert report.unchanged == 2
    if kind == "simulated":  # half a batch of chunks reached Chroma: the repair drops those articles
        assert report.repaired >= 1
    rows = assert_consistent(again)
    assert len(rows) == before
    _answers(again)


# --------------------------------------------------------------------------- answering on a full disk
def _ask_cli(store: Path, *extra: str) -> subprocess.CompletedProcess:
    """`talentbot ask` in a process of its own: a fresh open of the store, as a user would run it."""
    exe = Path(sys.executable).with_name("talentbot")
    return subprocess.run(
        [str(exe), "ask", QUESTION, "--store", str(store), "--json", *extra],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )


def _answers_read_only(store: Path, docs: Path, caplog) -> TalentBot:
    """Questions are answered through the read-only view; an ingest fails with the full-disk message."""
    from talentbot.store import _release_embedded

    _release_embedded(str(store))  # as a new process: Chroma must open the store again
    caplog.set_level(logging.INFO, logger="talentbot")
    bot = TalentBot(store=store)
    _answers(bot)
    assert bot.store.readonly
    assert any("answering from a read-only view" in r.getMessage() for r in caplog.records)
    _answers(TalentBot(store=store, fusion="rrf"))  # the dense ranking is off; the lexical one answers
    assert {r.file for r in bot.articles()} == {"xinghuo.md", "brief.md"}
    (docs / "more.md").write_text("---\ntitle: 新增\n---\n第一条 新增的人才政策条款。\n", encoding="utf-8")
    with pytest.raises(StoreError, match=r"disk holding the vector store .* is full"):
        bot.ingest([docs])
    _answers(bot)  # the failed ingest changed nothing
    return bot


@pytest.mark.slow
@pytest.mark.model
@pytest.mark.skipif(
    not CAN_MOUNT,
    reason="a real disk at 0 bytes free needs a tmpfs, and mounting one needs root; "
    "test_ask_answers_when_chroma_cannot_open_a_full_disk_simulated covers the rest",
)
def test_ask_answers_at_zero_bytes_free_on_a_real_disk(tmp_path, caplog):
    mount = tmp_path / "disk"
    _mount_tmpfs(mount)
    try:
        docs = _base_docs(tmp_path / "docs")
        store = mount / "store"
        assert TalentBot(store=store).ingest([docs]).added == 2
        shutil.rmtree(store / "lexical")  # the index must be rebuilt from the collection, and cannot be saved
        _fill(mount, mount / "filler.bin", 0)

        done = _ask_cli(store)
        assert done.returncode == 0, done.stderr
        out = json.loads(done.stdout)
        assert FIGURE in out["answer"]
        assert not out["no_answer"]
        assert "read-only view" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr, done.stderr

        bot = _answers_read_only(store, docs, caplog)

        (mount / "filler.bin").unlink()  # room again: the same bot writes again
        (mount / "filler-tail.bin").unlink()
        report = bot.ingest([docs])
        assert report.added == 1
        assert not report.failed
        assert not bot.store.readonly
        assert_consistent(bot)
    finally:
        _unmount(mount)


def test_ask_answers_when_chroma_cannot_open_a_full_disk_simulated(
    tmp_path, template, fake_embedder, monkeypatch, caplog
):
    """Chroma's open fails as it does on a full disk (SQLite code 13), and the disk reports no space."""
    import chromadb

    from talentbot import store_client

    docs, original = template
    store = tmp_path / "store"
    shutil.copytree(original, store)
    shutil.copytree(docs, tmp_path / "docs")

    def full(*args, **kwargs):
        raise RuntimeError("error returned from database: (code: 13) database or disk is full")

    monkeypatch.setattr(chromadb, "PersistentClient", full)
    monkeypatch.setattr(store_client, "low_disk", lambda folder: "only 0.0 MB free")
    monkeypatch.setattr("talentbot.store.low_disk", lambda folder: "only 0.0 MB free")
    _answers_read_only(store, tmp_path / "docs", caplog)


def test_the_read_only_view_reads_what_chroma_reads(tmp_path, template, fake_embedder):
    """Every read the store makes gives the same through the read-only view as through Chroma."""
    from talentbot.config import Settings
    from talentbot.store import Store
    from talentbot.store_readonly import readonly_client

    store = tmp_path / "store"
    shutil.copytree(template[1], store)
    settings = Settings(store=store)
    chroma = Store(settings)
    view = Store(settings, client=readonly_client(store))
    assert view.readonly
    assert not chroma.readonly
    assert view.state() == chroma.state()
    assert view.count() == chroma.count() > 2
    assert view.manifest() == chroma.manifest()
    assert view.chunk_ids() == chroma.chunk_ids()
    rows = {r["id"]: r for r in chroma.iter_chunks(include=("metadatas", "documents"))}
    assert {r["id"]: r for r in view.iter_chunks(include=("metadatas", "documents"), page=2)} == rows
    ids = sorted(rows)[:3]
    assert view.get_chunks(ids) == chroma.get_chunks(ids)
    # With room on the disk, a write opens the store writable again first.
    view.put_record("x", {"kind": "test"})
    assert not view.readonly
    assert chroma.get_record("x") == {"kind": "test"}
