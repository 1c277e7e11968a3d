"""kill -9 in the middle of an ingest: the next ingest repairs the store to exactly what a clean one builds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

from fixtures.docs import write_article
from fixtures.storecheck import assert_consistent
from talentbot import TalentBot

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
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(store), str(folder), str(pause)],
                            stdout=subprocess.PIPE, stderr=log, text=True)
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


@pytest.mark.slow
@pytest.mark.parametrize(("after_writes", "pause"), [(3, 1.0), (1, 0.0)], ids=["between-writes", "during-writes"])
def test_kill_9_mid_ingest_is_repaired_by_the_next_ingest(tmp_path, after_writes, pause):
    folder = _make_folder(tmp_path)
    store = tmp_path / "killed-store"
    with open(tmp_path / "child.log", "w") as log:
        _kill_mid_ingest(store, folder, after_writes, pause, log)
    # Written in order a00 (update), a01 (new), a03 (new)...: with the pause, the kill came after a03's
    # chunks were written and before its manifest record. Its file goes away before the next run, so
    # only the repair can find those chunks.
    (folder / "a03.md").unlink()

    recovered = TalentBot(store=store)
    report = recovered.ingest([folder])
    assert not report.failed
    assert report.added + report.updated > 0  # the kill left work undone
    if pause:
        assert report.repaired >= 1
    rows = assert_consistent(recovered)

    clean = TalentBot(store=tmp_path / "clean-store")
    assert clean.ingest([folder]).added == N - 1
    expected = assert_consistent(clean)
    assert set(rows) == set(expected)  # same ids: nothing missing, no orphan
    assert recovered.store.count() == clean.store.count() == len(expected)
    for cid, (doc, meta) in expected.items():
        assert rows[cid] == (doc, meta), cid
    docs = [doc for doc, _ in rows.values()]
    assert not any("第3号文章" in d for d in docs) and not any("第4号文章第" in d for d in docs)

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
