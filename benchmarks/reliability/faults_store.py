"""Faults of the store for faults.py: a damaged chroma.sqlite3 (part ``corrupt``) and a full disk (part ``disk``,
root only: a 20 MB tmpfs), with the helpers every faults part uses (a `talentbot` command in its own process,
a dump of a store's contents).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from common import OUT, PY, TALENTBOT, env, md_table

QUESTION = "《山东省人才发展促进条例》自哪一天起施行？"
FIGURE = "2020年6月1日"

DUMP = r"""
import hashlib, json, sys
from collections import Counter
import numpy as np
from talentbot import TalentBot
bot = TalentBot(store=sys.argv[1])
got = bot.store.chunks.get(include=["documents", "metadatas", "embeddings"])
ids = got["ids"]
rows = {}
for cid, doc, meta, vec in zip(ids, got["documents"], got["metadatas"], got["embeddings"]):
    rows[cid] = {"doc": hashlib.sha1((doc + json.dumps(meta, sort_keys=True, ensure_ascii=False)).encode()).hexdigest(),
                 "vec": np.asarray(vec, dtype=np.float32).round(4).tolist()}
slots = Counter((m["article"], m["ordinal"]) for m in got["metadatas"])
manifest = bot.store.manifest()
expected = {f"{k}:{i}" for k, r in manifest.items() for i in range(r.chunks)}
print(json.dumps({"ids": ids, "rows": rows, "count": bot.store.count(), "dup_ids": len(ids) - len(set(ids)),
                  "dup_slots": sum(n - 1 for n in slots.values()), "articles": len(manifest),
                  "orphans": len(set(ids) - expected), "missing": len(expected - set(ids)),
                  "state": bot.store.state()}))
"""


def run(args: list[str], timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env(), capture_output=True, text=True, timeout=timeout)


def dump(store: Path) -> dict:
    done = run([PY, "-c", DUMP, str(store)])
    if done.returncode:
        return {
            "error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"rc {done.returncode}"
        }
    return json.loads(done.stdout)


def ingest_cmd(corpus: Path, store: Path, *extra: str) -> list[str]:
    return [TALENTBOT, "ingest", str(corpus), "--store", str(store), "--json", *extra]


def first_line(text: str) -> str:
    """The first line of a command's message, scratch paths shortened to $OUT."""
    lines = [ln for ln in text.strip().splitlines() if ln.strip() and not ln.startswith(("WARNING", "INFO"))]
    return lines[0].replace(str(OUT), "$OUT") if lines else ""


# ------------------------------------------------------------------------------------------ corrupt
def garbage(db: Path) -> None:
    db.write_bytes(os.urandom(db.stat().st_size))


def truncate(db: Path) -> None:
    os.truncate(db, db.stat().st_size // 2 + 123)


def scribble(db: Path) -> None:
    size = db.stat().st_size
    with open(db, "r+b") as fh:
        fh.seek(size // 3)
        fh.write(os.urandom(size // 3))


def part_corrupt(corpus: Path, store: Path) -> str:
    rows = []
    for name, damage in (("garbage", garbage), ("truncated", truncate), ("scribbled", scribble)):
        copy = OUT / "faults" / f"corrupt-{name}"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(store, copy)
        damage(copy / "chroma.sqlite3")
        t0 = time.perf_counter()
        asked = run([TALENTBOT, "ask", QUESTION, "--store", str(copy)])
        t_ask = time.perf_counter() - t0
        t0 = time.perf_counter()
        rebuilt = run(ingest_cmd(corpus, copy, "--rebuild"))
        t_rebuild = time.perf_counter() - t0
        again = run([TALENTBOT, "ask", QUESTION, "--store", str(copy), "--json"])
        ok = again.returncode == 0 and FIGURE in again.stdout
        message = first_line(asked.stderr)
        rows.append(
            [
                name,
                asked.returncode,
                f"{t_ask:.1f} s",
                message,
                "Traceback" in asked.stderr,
                rebuilt.returncode,
                f"{t_rebuild:.1f} s",
                "yes" if ok else "NO",
            ]
        )
        print("corrupt", rows[-1], flush=True)
    return "\n".join(
        [
            "**Damaged store**: copies of the store above with `chroma.sqlite3` damaged three ways.\n",
            md_table(
                [
                    "damage",
                    "`ask` exit code",
                    "`ask` time",
                    "message",
                    "traceback",
                    "`ingest --rebuild` exit code",
                    "rebuild time",
                    "answers again",
                ],
                rows,
            ),
        ]
    )


# --------------------------------------------------------------------------------------------- disk
def part_disk(corpus: Path) -> str:
    mount = OUT / "faults" / "disk"
    mount.mkdir(parents=True, exist_ok=True)
    ok = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if ok.returncode:
        return (
            f"**Full disk**: not run here: cannot mount a tmpfs ({ok.stderr.strip()}). "
            "`tests/test_faults.py` simulates ENOSPC instead."
        )
    try:
        small = OUT / "faults" / "small"
        shutil.rmtree(small, ignore_errors=True)
        small.mkdir()
        for f in sorted(corpus.glob("*.md"))[:2]:
            shutil.copy(f, small / f.name)
        shutil.copy(corpus / "shandong-rencai-fazhan-cujin-tiaoli.md", small)
        store = mount / "store"
        first = run(ingest_cmd(small, store))
        before = dump(store)
        filler = mount / "filler"
        free = shutil.disk_usage(mount).free
        with open(filler, "wb") as fh:
            fh.write(b"\0" * max(0, free - 512 * 1024))
        t0 = time.perf_counter()
        full = run(ingest_cmd(corpus, store))
        t_full = time.perf_counter() - t0
        asked = run([TALENTBOT, "ask", QUESTION, "--store", str(store), "--json"])
        answers = asked.returncode == 0 and FIGURE in asked.stdout
        zero = ask_at_zero_bytes(mount, store)
        filler.unlink()
        (mount / "filler-tail").unlink(missing_ok=True)
        repair = run(ingest_cmd(small, store))
        after = dump(store)
        consistent = (
            after.get("count") == before.get("count")
            and not after.get("orphans")
            and not after.get("missing")
            and not after["state"].get("dirty")
            and set(after["ids"]) == set(before["ids"])
        )
        row = [
            first.returncode,
            before.get("count"),
            full.returncode,
            f"{t_full:.1f} s",
            first_line(full.stderr),
            "Traceback" in full.stderr,
            "yes" if answers else "NO",
            repair.returncode,
            first_line(repair.stdout)[:120],
            "yes" if consistent else "NO",
        ]
        print("disk", row, flush=True)
        return "\n".join(
            [
                "**Full disk**: a 20 MB tmpfs holds a store of 3 articles; a file then fills it to 0.5 MB free and "
                "`talentbot ingest` of the whole corpus runs.\n",
                md_table(
                    [
                        "first ingest",
                        "chunks",
                        "ingest on the full disk: exit code",
                        "time",
                        "message",
                        "traceback",
                        "`ask` still answers",
                        "ingest after freeing space",
                        "its report",
                        "store = before",
                    ],
                    [row],
                ),
                "\n**0 bytes free** (issue #16, item 7): the lexical index folder removed (it must be rebuilt from the "
                "collection and cannot be saved), the disk then filled until a 4 KB write fails, and `talentbot ask` run "
                '(before the fix: "opening it failed").\n',
                md_table(
                    [
                        "free bytes",
                        "`ask` exit code",
                        "answer holds " + FIGURE,
                        "answered through the read-only view",
                        "traceback",
                        "verdict",
                    ],
                    [zero],
                ),
            ]
        )
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def ask_at_zero_bytes(mount: Path, store: Path) -> list:
    """Fill ``mount`` to 0 bytes free (the lexical index removed first) and ask: a row of the disk table."""
    shutil.rmtree(store / "lexical", ignore_errors=True)
    with open(mount / "filler-tail", "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError:
            pass
    free = shutil.disk_usage(mount).free
    asked = run([TALENTBOT, "ask", QUESTION, "--store", str(store), "--json"])
    ok = asked.returncode == 0 and FIGURE in asked.stdout
    view = "read-only view" in asked.stderr
    tb = "Traceback" in asked.stderr
    return [
        free,
        asked.returncode,
        "yes" if ok else "NO",
        "yes" if view else "no",
        tb,
        "held" if ok and not tb else "**NOT held**",
    ]
