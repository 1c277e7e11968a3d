"""Faults: kill -9 of `talentbot ingest` at random points, a damaged store, a full disk, and the ingest and
index attacks of issue #16.

  kill       a clean ingest of a copy of corpus/ is timed; then `talentbot ingest` is killed (SIGKILL) at a
             random moment 10 times on another store (before some runs a file is edited, some runs use
             --rebuild), then run once to the end. Its store is compared with a clean ingest of the same
             files: same ids, same count, no duplicates, same documents and metadata, same vectors.
  corrupt    copies of that store with chroma.sqlite3 overwritten with garbage, truncated, or scribbled over:
             `talentbot ask` exit code and message, then `talentbot ingest --rebuild`, then `ask` again.
  disk       (needs root: a 20 MB tmpfs) a store on the tmpfs, the disk filled, `talentbot ingest` of the
             corpus: exit code and message; `ask` still answers, also at 0 bytes free with the lexical index
             gone; space freed, the next ingest repairs.
(the attacks of issue #16:)
  dataloss   uploads named like an article or rejected by the ingest; unreadable folder and file, a non-UTF-8
             file name, a FIFO, a link to /dev/zero (faults_ingest.py)
  bombs      .docx zip bombs, YAML alias bombs, a text over the character cap, a slow .docx: time, peak RSS,
             CPU, and a second ingest (faults_ingest.py)
  index      each corruption of the saved lexical index: questions, then `ingest` (faults_index.py)
  rebuild    questions asked while `ingest --rebuild` runs (faults_index.py)

    .venv/bin/python benchmarks/reliability/faults.py               # all, about 15 minutes on 2 cores
    .venv/bin/python benchmarks/reliability/faults.py --parts corrupt,disk --kills 3
    .venv/bin/python benchmarks/reliability/faults.py --parts dataloss,bombs,index,rebuild
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from common import (
    OUT,
    copy_corpus,
    corpus_store,
    env,
    machine,
    md_table,
    setup_env,
    write_section,
)
from faults_store import dump, ingest_cmd, part_corrupt, part_disk, run


# ------------------------------------------------------------------------------------------- kill -9
def log_position(store: Path) -> int:
    """The last sequence number of Chroma's write log (embeddings_queue), read without blocking the writer."""
    db = store / "chroma.sqlite3"
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.05)
        try:
            return int(con.execute("SELECT coalesce(max(seq_id), 0) FROM embeddings_queue").fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def edit(corpus: Path, rnd: random.Random, k: int) -> str:
    f = rnd.choice(sorted(corpus.glob("*.md")))
    with open(f, "a", encoding="utf-8") as fh:
        fh.write(f"\n第二百{k}条 本条为故障测试第{k}次追加，自2031年{k % 12 + 1}月{k % 27 + 1}日起施行。\n")
    return f.name


def part_kill(kills: int, seed: int) -> tuple[str, Path, Path]:
    rnd = random.Random(seed)
    base = OUT / "faults"
    corpus = copy_corpus(base / "corpus")
    clean0 = base / "clean0"
    shutil.rmtree(clean0, ignore_errors=True)
    t0 = time.perf_counter()
    done = run(ingest_cmd(corpus, clean0))
    t_clean = time.perf_counter() - t0
    assert done.returncode == 0, done.stderr
    print(f"clean ingest: {t_clean:.1f} s", flush=True)

    # The window where a kill hits work: from the end of process start-up (an ingest with nothing to do)
    # to the end of a full ingest in a warm page cache (a second clean ingest).
    t0 = time.perf_counter()
    run(ingest_cmd(corpus, clean0))
    t_start = time.perf_counter() - t0
    warm = base / "clean-warm"
    shutil.rmtree(warm, ignore_errors=True)
    t0 = time.perf_counter()
    run(ingest_cmd(corpus, warm))
    t_full = time.perf_counter() - t0
    print(f"start-up (nothing to do) {t_start:.1f} s, full ingest (warm) {t_full:.1f} s", flush=True)
    window = (max(0.5, 0.8 * t_start), max(t_start + 1, t_full))

    killed = base / "killed"
    shutil.rmtree(killed, ignore_errors=True)
    rows = []
    for k in range(1, kills + 1):
        edited = edit(corpus, rnd, k) if k > 1 and rnd.random() < 0.5 else "-"
        rebuild = k > 1 and rnd.random() < 0.6  # so that most runs have the whole corpus to write
        after_writes = k % 2 == 0  # every other run: kill once chunk writes have begun
        delay = rnd.uniform(0.0, 2.0) if after_writes else rnd.uniform(*window)
        seq0 = log_position(killed)
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            ingest_cmd(corpus, killed, *(["--rebuild"] if rebuild else [])),
            env=env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        point = ""
        if after_writes:  # Chroma's write log grows by one entry per record written
            while proc.poll() is None and time.perf_counter() - t0 < 120:
                now = log_position(killed)
                seq0 = min(seq0, now)  # a --rebuild drops the collections, and their log entries with them
                if now - seq0 >= 50:
                    point = f"{time.perf_counter() - t0:.1f} s (writes seen) + "
                    break
                time.sleep(0.05)
        try:
            proc.wait(timeout=delay)
            outcome = f"finished first (rc {proc.returncode})"
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            outcome = "killed" if proc.returncode == -signal.SIGKILL else f"rc {proc.returncode}"
        proc.communicate()
        point += f"{delay:.1f} s" + ("" if point or not after_writes else " (no writes seen)")
        d = dump(killed)
        state = d.get("state", {})
        rows.append(
            [
                k,
                point,
                "yes" if rebuild else "no",
                edited,
                outcome,
                d.get("count", d.get("error")),
                d.get("articles", "-"),
                d.get("orphans", "-"),
                "dirty" if state.get("dirty") else "clean",
            ]
        )
        print("kill", rows[-1], flush=True)

    t0 = time.perf_counter()
    final = run(ingest_cmd(corpus, killed))
    t_final = time.perf_counter() - t0
    report = json.loads(final.stdout) if final.stdout.strip().startswith("{") else {}
    clean = base / "clean"
    shutil.rmtree(clean, ignore_errors=True)
    assert run(ingest_cmd(corpus, clean)).returncode == 0
    a, b = dump(killed), dump(clean)
    same_ids = set(a["ids"]) == set(b["ids"])
    same_rows = same_ids and all(a["rows"][i]["doc"] == b["rows"][i]["doc"] for i in b["ids"])
    vec_diff = (
        max(
            (
                max(abs(x - y) for x, y in zip(a["rows"][i]["vec"], b["rows"][i]["vec"], strict=True))
                for i in b["ids"]
            ),
            default=0.0,
        )
        if same_ids
        else float("nan")
    )
    verdict = (
        same_ids
        and same_rows
        and a["count"] == b["count"]
        and not a["dup_ids"]
        and not a["dup_slots"]
        and not a["orphans"]
        and not a["missing"]
        and not a["state"].get("dirty")
    )
    summary = [
        [
            "after the kills + one full run",
            a["count"],
            a["articles"],
            a["dup_ids"],
            a["dup_slots"],
            a["orphans"],
            a["missing"],
            "dirty" if a["state"].get("dirty") else "clean",
        ],
        [
            "clean ingest of the same files",
            b["count"],
            b["articles"],
            b["dup_ids"],
            b["dup_slots"],
            b["orphans"],
            b["missing"],
            "dirty" if b["state"].get("dirty") else "clean",
        ],
    ]
    print(
        f"final run {t_final:.1f} s: {report}; same ids {same_ids}, same docs/meta {same_rows}, "
        f"max vector diff {vec_diff:.4f}; verdict {verdict}",
        flush=True,
    )
    body = "\n".join(
        [
            f"**kill -9 during ingest**, {kills} times (seed {seed}). Two clean ingests of `corpus/` took "
            f"{t_clean:.1f} s and {t_full:.1f} s here (the machine is shared, so runs vary); a run with nothing to do "
            f"(process start-up, imports, store open) {t_start:.1f} s. Each run below was killed (SIGKILL) after a "
            "random delay "
            f"between {window[0]:.1f} and {window[1]:.1f} s (odd runs), or 0-2 s after its writes (chunks, or the "
            "repair's deletions) showed in Chroma's write log (even runs: the parent polls `max(seq_id)` of "
            "`embeddings_queue` "
            "read-only), on the same store; before some runs a file was edited, some ran with `--rebuild`. "
            "Columns after the outcome describe the store the kill left (read in a separate process).\n",
            md_table(
                [
                    "run",
                    "killed after",
                    "--rebuild",
                    "file edited before",
                    "outcome",
                    "chunks",
                    "articles",
                    "orphan chunks",
                    "state",
                ],
                rows,
            ),
            f"\nThen `talentbot ingest` ran to the end ({t_final:.1f} s): "
            f"{json.dumps({k: report.get(k) for k in ('added', 'updated', 'unchanged', 'removed', 'chunks')})}.\n",
            md_table(
                [
                    "store",
                    "chunks",
                    "articles",
                    "duplicate ids",
                    "duplicate (article, ordinal)",
                    "orphans",
                    "missing",
                    "state",
                ],
                summary,
            ),
            f"\nSame ids: **{same_ids}**; same documents and metadata: **{same_rows}**; largest difference of a "
            f"vector component: {vec_diff:.4f}. Equal to a clean ingest: **{'yes' if verdict else 'NO'}**.",
        ]
    )
    return body, corpus, killed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="kill,corrupt,disk,dataloss,bombs,index,rebuild")
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    setup_env()
    parts = args.parts.split(",")
    intro = "\n\n".join(
        [
            "## Faults (`benchmarks/reliability/faults.py`)",
            "```bash\n.venv/bin/python benchmarks/reliability/faults.py     # every part: about 15 minutes\n"
            ".venv/bin/python benchmarks/reliability/faults.py --parts corrupt,disk\n"
            ".venv/bin/python benchmarks/reliability/faults.py --parts dataloss,bombs,index,rebuild   # issue #16\n```",
            "Every `talentbot` command runs as its own process, as a user would run it. The disk part needs root "
            "(it mounts a tmpfs). Without root, `tests/test_faults.py` covers the full disk and `ask` at 0 bytes "
            "free by simulating them (Chroma's writes, or its open, fail as on a full disk); its real-tmpfs tests "
            "are skipped. Run as root, the unreadable-folder attack of `dataloss` drops CAP_DAC_OVERRIDE and "
            "CAP_DAC_READ_SEARCH with `setpriv`, so that file modes bite as they do for any other user.",
        ]
    )
    if not args.no_write:
        write_section("faults", intro)
    corpus = OUT / "faults" / "corpus"
    store = OUT / "faults" / "killed"
    if "kill" in parts:
        body, corpus, store = part_kill(args.kills, args.seed)
        body = f"### kill -9\n\nLast run: {machine()}.\n\n{body}"
        print(body)
        if not args.no_write:
            write_section("faults-kill", body)
    elif not store.exists():
        copy_corpus(corpus)
        run(ingest_cmd(corpus, store))
    if "corrupt" in parts:
        body = f"### corrupt store\n\nLast run: {machine()}.\n\n{part_corrupt(corpus, store)}"
        print(body)
        if not args.no_write:
            write_section("faults-corrupt", body)
    if "disk" in parts:
        body = f"### full disk\n\nLast run: {machine()}.\n\n{part_disk(corpus)}"
        print(body)
        if not args.no_write:
            write_section("faults-disk", body)
    issue16(parts, args.no_write)


def issue16(parts: list[str], no_write: bool) -> None:
    """The attacks of issue #16 (items 2, 3, 5 and 7), one RELIABILITY.md section each."""
    import faults_index
    import faults_ingest

    sections = []
    if "dataloss" in parts:
        sections.append(("dataloss", faults_ingest.part_dataloss()))
    if "bombs" in parts:
        sections.append(("bombs", faults_ingest.part_bombs()))
    if "index" in parts or "rebuild" in parts:
        corpus, store = corpus_store("faults-index")
        if "index" in parts:
            sections.append(("index", faults_index.part_index(corpus, store)))
        if "rebuild" in parts:
            sections.append(("rebuild", faults_index.part_rebuild(corpus, store)))
    for name, text in sections:
        body = f"{text}\n\nLast run: {machine()}."
        print(body, flush=True)
        if not no_write:
            write_section(f"faults-{name}", body)


if __name__ == "__main__":
    main()
