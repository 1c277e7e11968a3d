"""kill -9 in the middle of an ingest: the next ingest repairs the store to exactly what a clean one builds.
A rebuild fills fresh collections aside: questions are answered from the old ones until it switches, and a
rebuild killed mid-way leaves the old store answering and its half-built collections for the next ingest to drop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from fixtures.docs import write_article
from fixtures.storecheck import assert_consistent, chunk_rows
from talentbot import TalentBot
from talentbot.ingest import article_key

# The child ingests the even-numbered articles, then copies edited versions of some of them over the
# originals and ingests the whole folder (updates and additions). Store.write_chunks is wrapped only to
# tell the parent, on stdout, that an article's chunks are in Chroma; the write itself is the real one.
CHILD = r"""
import shutil, sys, time
from pathlib import Path
from talentbot import TalentBot
from talentbot import ingest
from talentbot.store import Store

ingest.FLUSH_CHUNKS = 8  # several batches, so that the kill can land between two of them
store, folder, pause = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3])
bot = TalentBot(store=store)
bot.ingest(sorted(p for p in folder.glob("*.md") if int(p.stem[1:]) % 2 == 0))
for p in sorted((folder / ".next").iterdir()):
    shutil.copy(p, folder / p.name)

real_write = Store.write_chunks
def write_chunks(self, *args, **kwargs):
    real_write(self, *args, **kwargs)
    print("wrote", flush=True)
    time.sleep(pause)
Store.write_chunks = write_chunks
print("phase2", flush=True)
bot.ingest([folder])
print("done", flush=True)
"""

N = 30


def _make_folder(tmp_path):
    folder = tmp_path / "articles"
    for i in range(N):
        write_article(folder / f"a{i:02d}.md", i, paragraphs=1 + i % 4)
    for i in range(0, N, 4):  # edited versions: a00 and a08... grow, a04, a12... shrink to one paragraph
        write_article(folder / ".next" / f"a{i:02d}.md", i, paragraphs=5 if i % 8 == 0 else 1, variant="改")
    return folder


def _kill_mid_ingest(store, folder, after_writes: int, pause: float, log) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(store), str(folder), str(pause)],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    watchdog = threading.Timer(240, proc.kill)
    watchdog.start()
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line.strip())
            if lines.count("wrote") == after_writes and "phase2" in lines:
                os.kill(proc.pid, signal.SIGKILL)
                break
        proc.wait(timeout=60)
    finally:
        watchdog.cancel()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, lines)
    assert "done" not in lines


def _killed_state(store) -> tuple[dict, dict, set[str]]:
    """What the kill left, read before anything repairs it: (state record, chunk rows, keys of the articles
    whose chunks disagree with their manifest record: missing, extra, another hash or a gap)."""
    killed = TalentBot(store=store)
    manifest = killed.store.manifest()
    rows = chunk_rows(killed)
    stored: dict[str, list[tuple[int, str]]] = {}
    for _, meta in rows.values():
        stored.setdefault(meta["article"], []).append((int(meta["ordinal"]), meta["hash"]))
    broken = {
        key
        for key in set(stored) | set(manifest)
        if key not in manifest
        or sorted(stored.get(key, [])) != [(i, manifest[key].hash) for i in range(manifest[key].chunks)]
    }
    return killed.store.state(), rows, broken


@pytest.mark.slow
@pytest.mark.model
@pytest.mark.parametrize(
    ("after_writes", "pause"), [(3, 1.0), (1, 0.0)], ids=["between-writes", "during-writes"]
)
def test_kill_9_mid_ingest_is_repaired_by_the_next_ingest(tmp_path, after_writes, pause):
    folder = _make_folder(tmp_path)
    store = tmp_path / "killed-store"
    with open(tmp_path / "child.log", "w") as log:
        _kill_mid_ingest(store, folder, after_writes, pause, log)
    state, killed_rows, broken = _killed_state(store)
    assert state.get("dirty") is True, "the kill interrupted an ingest, and the store records it"
    phase2 = [
        cid for cid, (doc, meta) in killed_rows.items() if "改" in doc or int(Path(meta["file"]).stem[1:]) % 2
    ]
    assert phase2, "the kill came after the second ingest had written chunks"
    second = {article_key(folder / f"a{i:02d}.md") for i in range(N) if i % 2 or i % 4 == 0}  # new or edited
    assert broken <= second, "only what the second ingest was writing can disagree with its records"
    if pause:  # the kill came in the pause after a batch's chunks were written, before their records
        assert broken, "chunks without their records were left"
    # a03, new in the second ingest, goes away before the next run: whatever of it reached Chroma must go
    (folder / "a03.md").unlink()

    recovered = TalentBot(store=store)
    report = recovered.ingest([folder])
    assert not report.failed
    assert report.added + report.updated > 0  # the kill left work undone
    assert report.repaired == len(broken)
    rows = assert_consistent(recovered)

    clean = TalentBot(store=tmp_path / "clean-store")
    assert clean.ingest([folder]).added == N - 1
    expected = assert_consistent(clean)
    assert set(rows) == set(expected)  # same ids: nothing missing, no orphan
    assert recovered.store.count() == clean.store.count() == len(expected)
    for cid, (doc, meta) in expected.items():
        assert rows[cid] == (doc, meta), cid
    docs = [doc for doc, _ in rows.values()]
    assert not any("第3号文章" in d for d in docs)
    assert not any("第4号文章第" in d for d in docs)

    ids = sorted(expected)
    got_r = recovered.store.chunks.get(ids=ids, include=["embeddings"])
    got_c = clean.store.chunks.get(ids=ids, include=["embeddings"])
    vec_r = dict(zip(got_r["ids"], np.asarray(got_r["embeddings"]), strict=True))
    vec_c = dict(zip(got_c["ids"], np.asarray(got_c["embeddings"]), strict=True))
    assert min(float(vec_r[i] @ vec_c[i]) for i in ids) > 0.99
    hits = recovered.store.query(vec_c[ids[0]], 3)
    assert hits[0][0] == ids[0]  # the vector index answers for the repaired store

    again = recovered.ingest([folder])
    assert (again.unchanged, again.embedded, again.repaired) == (N - 1, 0, 0)


# ------------------------------------------------------------------------------------ rebuild aside
OLD_Q, OLD_FIGURE = "星火人才公寓哪一天起接受申请？", "2023年3月8日"
NEW_Q, NEW_FIGURE = "月光创业园对入驻团队给予多少场租补贴？", "每年3万元"


def _policy(folder, name: str, title: str, sentence: str):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(
        f"---\ntitle: {title}\nsource: 测试日报\ndate: 2023-02-01\n---\n{sentence}\n\n"
        "第二条 申请人须与开发区内企业签订三年以上劳动合同。\n",
        encoding="utf-8",
    )
    return path


def _two_corpora(tmp_path):
    """(old, new): the old corpus answers OLD_Q only, the new one NEW_Q only."""
    old, new = tmp_path / "old", tmp_path / "new"
    _policy(
        old,
        "xinghuo.md",
        "星火人才公寓管理办法",
        "第一条 星火人才公寓自2023年3月8日起接受申请，每套月租金800元。",
    )
    _policy(
        new,
        "yueguang.md",
        "月光创业园扶持办法",
        "第一条 月光创业园对入驻的青年创业团队给予场租补贴每年3万元。",
    )
    for i in range(3):
        write_article(old / f"brief{i}.md", 50 + i, paragraphs=2)
        write_article(new / f"brief{i}.md", 60 + i, paragraphs=2)
    return old, new


def _answered(bot, question, figure) -> None:
    answer = bot.ask(question)
    assert not answer.no_answer, (question, answer.text)
    assert figure in answer.text, (question, answer.text)


def _collections(bot) -> set[str]:
    return {c if isinstance(c, str) else c.name for c in bot.store.client.list_collections()}


@pytest.mark.slow
@pytest.mark.model
def test_questions_are_answered_from_the_old_store_while_a_rebuild_runs(tmp_path):
    old, new = _two_corpora(tmp_path)
    store = tmp_path / "store"
    TalentBot(store=store).ingest([old])
    reader = TalentBot(store=store)  # another user of the same store, already answering
    _answered(reader, OLD_Q, OLD_FIGURE)

    written, release = threading.Event(), threading.Event()

    def progress(done: int, total: int, name: str) -> None:
        if done == total:  # every new chunk is written: hold the rebuild just before it switches
            written.set()
            assert release.wait(120), "the test never released the rebuild"

    rebuilder = TalentBot(store=store)
    outcome: dict = {}

    def rebuild() -> None:
        try:
            outcome["report"] = rebuilder.ingest([new], rebuild=True, progress=progress)
        except BaseException as e:  # noqa: BLE001 - reported by the assertion below
            outcome["error"] = e

    thread = threading.Thread(target=rebuild)
    thread.start()
    try:
        assert written.wait(180), outcome
        time.sleep(1.1)  # past the readers' freshness interval: they look at the store again
        _answered(reader, OLD_Q, OLD_FIGURE)
        _answered(TalentBot(store=store), OLD_Q, OLD_FIGURE)  # a process starting now answers too
        _answered(rebuilder, OLD_Q, OLD_FIGURE)  # and so does the rebuilding bot itself
        assert reader.ask(NEW_Q).no_answer  # nothing of the new corpus shows before the switch
    finally:
        release.set()
        thread.join(180)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["report"].added == 4

    time.sleep(1.1)
    for bot in (reader, rebuilder, TalentBot(store=store)):
        _answered(bot, NEW_Q, NEW_FIGURE)
        assert bot.ask(OLD_Q).no_answer  # the old articles went with the old collections
        assert_consistent(bot)
    fresh = TalentBot(store=store)
    assert len(_collections(fresh)) == 3  # chunks, articles and the pointer: the old pair was dropped
    assert {r.file for r in fresh.articles()} == {"yueguang.md", "brief0.md", "brief1.md", "brief2.md"}


REBUILD_CHILD = r"""
import sys, time
from talentbot import TalentBot
from talentbot.store import Store
store, folder = sys.argv[1], sys.argv[2]
real_write = Store.write_chunks
def write_chunks(self, *args, **kwargs):
    real_write(self, *args, **kwargs)
    print("wrote", flush=True)
    time.sleep(60)
Store.write_chunks = write_chunks
TalentBot(store=store).ingest([folder], rebuild=True)
print("done", flush=True)
"""


@pytest.mark.slow
@pytest.mark.model
def test_kill_9_mid_rebuild_leaves_a_store_that_answers_and_the_next_ingest_repairs(tmp_path):
    old, new = _two_corpora(tmp_path)
    store = tmp_path / "store"
    TalentBot(store=store).ingest([old])
    collections = _collections(TalentBot(store=store))

    proc = subprocess.Popen(
        [sys.executable, "-c", REBUILD_CHILD, str(store), str(new)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    watchdog = threading.Timer(240, proc.kill)
    watchdog.start()
    try:
        assert proc.stdout.readline().strip() == "wrote"  # the new chunks are in Chroma, not switched to
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        watchdog.cancel()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL

    after = TalentBot(store=store)
    _answered(after, OLD_Q, OLD_FIGURE)  # the store still answers, from the old collections
    assert after.ask(NEW_Q).no_answer
    assert len(_collections(after)) > len(collections)  # the half-built ones are still there

    report = after.ingest([old])  # the next ingest drops what the killed rebuild left
    assert (report.unchanged, report.added, report.failed) == (4, 0, [])
    assert _collections(after) <= collections | {"talentbot_active"}
    assert_consistent(after)
    _answered(after, OLD_Q, OLD_FIGURE)

    rebuilt = TalentBot(store=store).ingest([new], rebuild=True)  # and a rebuild then completes
    assert rebuilt.added == 4
    again = TalentBot(store=store)
    _answered(again, NEW_Q, NEW_FIGURE)
    assert len(_collections(again)) == 3


def test_a_read_that_races_a_dropped_collection_reopens_and_retries(tmp_path, fake_embedder):
    """A reader whose collection is deleted under it as another process's --rebuild switches gets Chroma's
    'Missing metadata segment' error: it reopens the store (following the pointer) and asks again."""
    folder = tmp_path / "docs"
    write_article(folder / "a.md", 1)
    bot = TalentBot(store=tmp_path / "store")
    bot.ingest([folder])
    store = bot.store
    before = store.chunk_ids()
    real, failures = store.chunks, []

    class Vanishing:  # the collection object as it behaves while its segments are being dropped
        def __getattr__(self, name):
            return getattr(real, name)

        def get(self, *args, **kwargs):
            failures.append(name := "get")
            raise RuntimeError(f"Missing field: [Missing metadata segment] ({name})")

    store._chunks = Vanishing()
    assert store.chunk_ids() == before  # answered after one reopen, not a StoreError
    assert failures == ["get"]
    assert not isinstance(store.chunks, Vanishing)
