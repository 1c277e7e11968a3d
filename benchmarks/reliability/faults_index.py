"""The lexical index attacked as issue #16 attacked it (item 5), and questions asked during `ingest --rebuild`.

  index      each corruption of the issue applied to the saved BM25 index of a corpus store (vocabulary [], null
             or shortened ids, garbage params, scribbled indices, shuffled ids, a zeroed indptr, scribbled data):
             questions in a new process (answered right? warning? traceback?), then the same corruption again
             under `talentbot ingest` (exit code, unchanged, repaired?) and the questions again. The corruptions
             are made as on disk (the checksum manifest no longer matches) and, for the questions, also with the
             manifest re-stamped to match (only the shape checks and the comparison with the collection can tell)
  rebuild    a process already answering, and new `talentbot ask` processes, ask while `ingest --rebuild` runs

Used by faults.py (``--parts``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from common import OUT, PY, ROOT, TALENTBOT, env, md_table, run_measured

sys.path.insert(0, str(ROOT / "tests"))
from fixtures.corruptions import CORRUPTIONS, corrupt

QUESTIONS = [
    ("《山东省人才发展促进条例》自哪一天起施行？", "2020年6月1日"),
    ("文水经济开发区2023年为盛达威公司兑现了多少人才奖励资金？", "40万元"),
]
ASK = r"""
import json, sys
from talentbot import TalentBot
out = []
try:
    bot = TalentBot(store=sys.argv[1])
except Exception as e:
    print(json.dumps([{"ok": False, "error": f"{type(e).__name__}: {e}"[:160]}])); sys.exit()
for q, fig in json.loads(sys.argv[2]):
    try:
        a = bot.ask(q)
        out.append({"ok": (not a.no_answer) and fig in a.text, "no_answer": a.no_answer})
    except Exception as e:
        out.append({"ok": False, "error": f"{type(e).__name__}: {e}"[:160]})
print(json.dumps(out, ensure_ascii=False))
"""
INDEX_DIR = r"""
import sys
from talentbot import TalentBot
print(TalentBot(store=sys.argv[1]).retriever.index_dir)
"""


def held(ok: bool) -> str:
    return "held" if ok else "**NOT held**"


def ask(store: Path) -> tuple[list[dict], str]:
    done = subprocess.run(
        [PY, "-c", ASK, str(store), json.dumps(QUESTIONS, ensure_ascii=False)],
        env=env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    try:
        return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr
    except (ValueError, IndexError):
        return [
            {"ok": False, "error": (done.stderr.strip().splitlines() or ["no output"])[-1][:160]}
        ], done.stderr


def outcome(answers: list[dict], stderr: str) -> tuple[str, str, bool]:
    """(answers right, what went wrong, traceback)."""
    right = sum(a.get("ok", False) for a in answers)
    wrong = "; ".join(
        sorted(
            {
                a.get("error") or ("no answer" if a.get("no_answer") else "wrong answer")
                for a in answers
                if not a.get("ok")
            }
        )
    )
    return f"{right}/{len(QUESTIONS)}", wrong or "-", "Traceback" in stderr


def part_index(corpus: Path, template: Path) -> str:
    rel = Path(
        subprocess.run(
            [PY, "-c", INDEX_DIR, str(template)], env=env(), capture_output=True, text=True, timeout=300
        ).stdout.strip()
    ).relative_to(template)
    base = OUT / "faults-index"
    rows = []
    for name in CORRUPTIONS:
        for restamp in (False, True):
            store = base / "store"
            shutil.rmtree(store, ignore_errors=True)
            shutil.copytree(template, store)
            corrupt(store / rel, name, restamp)
            answers, err = ask(store)
            right, wrong, tb = outcome(answers, err)
            warned = err.count("failed its check")
            row = [name, "re-stamped" if restamp else "stale (as on disk)", right, wrong, warned, tb]
            if not restamp:
                corrupt(store / rel, name, False)
                rc, out, ierr, secs, _, _ = run_measured(
                    [TALENTBOT, "ingest", str(corpus), "--store", str(store), "--json"]
                )
                rep = json.loads(out) if out.strip().startswith("{") else {}
                right2, wrong2, tb2 = outcome(*ask(store))
                row += [
                    rc,
                    rep.get("unchanged", "-"),
                    ierr.count("failed its check"),
                    f"{secs:.1f} s",
                    right2,
                ]
                ok = (
                    right == right2 == f"{len(QUESTIONS)}/{len(QUESTIONS)}" and not tb and not tb2 and rc == 0
                )
            else:
                row += ["-", "-", "-", "-", "-"]
                ok = right == f"{len(QUESTIONS)}/{len(QUESTIONS)}" and not tb
            rows.append([*row, held(ok and warned == 1)])
            print("index", rows[-1], flush=True)
    bad = sum("NOT" in r[-1] for r in rows)
    return "\n".join(
        [
            "### Corrupted lexical index (issue #16, item 5)\n",
            f"A store of `corpus/`; each corruption is made to its saved BM25 index (`{rel.as_posix()}`), then two "
            "questions are asked in a new process (the Shandong date, 2020年6月1日, and the Wenshui award, 40万元). "
            "Then the same corruption is made again and `talentbot ingest corpus/` runs (every article unchanged), "
            "and the questions are asked again. Before the fixes these gave a traceback on every question, an "
            'ingest that crashed or reported "unchanged" over a bad index, or a silent "资料中没有找到".\n',
            md_table(
                [
                    "corruption",
                    "checksum manifest",
                    "answered right",
                    "what went wrong",
                    "warnings logged",
                    "traceback",
                    "then `ingest`: exit",
                    "unchanged",
                    "warnings",
                    "time",
                    "answered right after",
                    "verdict",
                ],
                rows,
            ),
            f"\nResult: **{'held' if not bad else f'NOT held ({bad} rows)'}**.",
        ]
    )


# --------------------------------------------------------------------------------------------- rebuild
READER = r"""
import json, sys, threading, time
from talentbot import TalentBot
store, q, fig, pause = sys.argv[1:5]
bot = TalentBot(store=store)
bot.ask(q)
print("READY", flush=True)
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
while not stop.is_set():
    t = time.time()
    try:
        a = bot.ask(q)
        r = {"t": t, "ok": (not a.no_answer) and fig in a.text, "no_answer": a.no_answer}
    except Exception as e:
        r = {"t": t, "ok": False, "error": f"{type(e).__name__}: {e}"[:300]}
    print(json.dumps(r, ensure_ascii=False), flush=True)
    time.sleep(float(pause))
"""


def part_rebuild(corpus: Path, template: Path) -> str:
    store = OUT / "faults-index" / "rebuild-store"
    shutil.rmtree(store, ignore_errors=True)
    shutil.copytree(template, store)
    q, fig = QUESTIONS[0]
    reader = subprocess.Popen(
        [PY, "-c", READER, str(store), q, fig, "0.1"],
        env=env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert reader.stdout.readline().startswith("READY")
    t0 = time.time()
    rebuild = subprocess.Popen(
        [TALENTBOT, "ingest", str(corpus), "--store", str(store), "--json", "--rebuild"],
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    fresh = []
    while rebuild.poll() is None:
        done = subprocess.run(
            [TALENTBOT, "ask", q, "--store", str(store), "--json"],
            env=env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        if rebuild.poll() is None:  # only answers given while the rebuild still ran count
            ok = done.returncode == 0 and fig in done.stdout and '"no_answer": false' in done.stdout
            lines = [ln for ln in done.stderr.strip().splitlines() if ln.strip()]
            fresh.append("ok" if ok else (lines[-1][:120] if lines else f"exit {done.returncode}"))
    t1 = time.time()
    out, _ = rebuild.communicate()
    time.sleep(1.5)
    reader.stdin.close()
    seen = [json.loads(ln) for ln in reader.stdout.read().splitlines() if ln.startswith("{")]
    reader.wait(30)
    during = [r for r in seen if t0 <= r["t"] <= t1]
    after = [r for r in seen if r["t"] > t1 + 0.5]
    problems = sorted(
        {
            (r.get("error") or ("no answer" if r.get("no_answer") else "wrong")).replace(str(OUT), "$OUT")
            + f" (x{sum(1 for x in during if x.get('error') == r.get('error'))}, the first "
            f"{t1 - min(x['t'] for x in during if x.get('error') == r.get('error')):.1f} s before the rebuild "
            "ended)"
            for r in during
            if not r["ok"]
        }
    )
    race = switch_race(corpus)
    ok = (
        rebuild.returncode == 0
        and during
        and all(r["ok"] for r in during)
        and all(x == "ok" for x in fresh)
        and "NOT" not in race[-1]
    )
    report = json.loads(out) if out.strip().startswith("{") else {}
    return "\n".join(
        [
            "### Questions during `ingest --rebuild` (issue #16, item 5)\n",
            f"`talentbot ingest corpus/ --rebuild` on a store of `corpus/` took {t1 - t0:.1f} s (exit "
            f"{rebuild.returncode}, added {report.get('added')}). Meanwhile a process opened before it asked "
            f"`{q}` every 0.1 s, and new `talentbot ask` processes asked it one after another. Before the fix every "
            'question got "nothing is indexed yet" until the rebuild finished.\n',
            md_table(
                [
                    "asker",
                    "questions during the rebuild",
                    "answered right (2020年6月1日)",
                    "other outcomes",
                    "answered right after the switch",
                    "verdict",
                ],
                [
                    [
                        "process already answering",
                        len(during),
                        sum(r["ok"] for r in during),
                        "; ".join(problems) or "-",
                        f"{sum(r['ok'] for r in after)}/{len(after)}",
                        held(bool(during) and not problems),
                    ],
                    [
                        "new `talentbot ask` processes",
                        len(fresh),
                        fresh.count("ok"),
                        "; ".join(sorted({x for x in fresh if x != "ok"})) or "-",
                        "-",
                        held(bool(fresh) and all(x == "ok" for x in fresh)),
                    ],
                    race,
                ],
            ),
            f"\nResult: **{'held' if ok else 'NOT held'}**.",
        ]
    )


def switch_race(corpus: Path, rounds: int = 3) -> list:
    """The moment of the switch, looked at closely: a small store (the Shandong regulation and two more) rebuilt
    ``rounds`` times while a process asks in a tight loop; a table row."""
    base = OUT / "faults-index" / "race"
    shutil.rmtree(base, ignore_errors=True)
    docs = base / "docs"
    docs.mkdir(parents=True)
    for name in sorted(p.name for p in corpus.glob("*.md"))[:2] + ["shandong-rencai-fazhan-cujin-tiaoli.md"]:
        shutil.copy(corpus / name, docs / name)
    store = base / "store"
    subprocess.run(
        [TALENTBOT, "ingest", str(docs), "--store", str(store)], env=env(), capture_output=True, timeout=600
    )
    q, fig = QUESTIONS[0]
    reader = subprocess.Popen(
        [PY, "-c", READER, str(store), q, fig, "0"],
        env=env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert reader.stdout.readline().startswith("READY")
    codes = [
        subprocess.run(
            [TALENTBOT, "ingest", str(docs), "--store", str(store), "--rebuild"],
            env=env(),
            capture_output=True,
            timeout=600,
        ).returncode
        for _ in range(rounds)
    ]
    time.sleep(1)
    reader.stdin.close()
    seen = [json.loads(ln) for ln in reader.stdout.read().splitlines() if ln.startswith("{")]
    reader.wait(30)
    errors = [
        (r.get("error") or ("no answer" if r.get("no_answer") else "wrong")).replace(str(OUT), "$OUT")
        for r in seen
        if not r["ok"]
    ]
    kinds = sorted(set(errors))
    return [
        f"process asking in a tight loop while a 3-article store is rebuilt {rounds} times (exit codes "
        f"{codes})",
        len(seen),
        len(seen) - len(errors),
        "; ".join(f"{k} (x{errors.count(k)})" for k in kinds) or "-",
        "-",
        held(not errors),
    ]
