"""Bad input files: one folder of broken, odd and good files through `talentbot ingest --json`.

Corrupt PDFs, binary junk, empty and blank files, GBK, GB18030, UTF-16 (with and without BOM), a
200 MB text file (over the default 50 MB `max_file_mb`: skipped with a reason, memory stays flat), a
file with a NUL byte, symlink loops (file and folder) and a broken link, next to good Markdown, PDF
and Word files. Reports each file's result, that every good file is indexed and answerable, and the
peak RSS of the ingest process with and without the 200 MB file.

    .venv/bin/python benchmarks/reliability/badfiles.py        # about 1 minute
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from common import OUT, PY, ROOT, TALENTBOT, env, machine, md_table, setup_env, write_section

sys.path.insert(0, str(ROOT / "tests"))
from fixtures.docs import make_docx, make_pdf, truncated_pdf

# good files: name -> (question, figure that the cited passage must hold)
GOOD = {
    "good-utf8.md": ("青云人才基金每年投入多少资金？", "3000万元"),
    "good-gbk.txt": ("引进的硕士每套人才公寓补贴多少？", "5万元"),
    "good-gb18030.txt": ("𠮷祥人才驿站可以免费住几天？", "15天"),
    "good-utf16.txt": ("博士后每年资助多少？", "十万元"),
    "good-english.pdf": ("How much is the rent subsidy for talents?", "800"),
    "good-word.docx": ("青年人才创业担保贷款最高多少？", "50万元"),
    "nul.txt": ("紫荆人才补贴每月多少？", "2000元"),
}


def make_folder(folder: Path, huge_mb: int) -> dict[str, str]:
    """Write every file; return name -> what it is."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    what = {}
    (folder / "good-utf8.md").write_text(
        "---\ntitle: 青云人才基金办法\nsource: 测试\ndate: 2024-05-01\n---\n"
        "第一条 青云人才基金每年投入3000万元，用于支持青年科技人才。\n",
        encoding="utf-8",
    )
    what["good-utf8.md"] = "UTF-8 Markdown with front matter"
    (folder / "good-gbk.txt").write_bytes(
        "人才公寓通知\r\n引进的硕士每套人才公寓补贴5万元。\r\n".encode("gbk")
    )
    what["good-gbk.txt"] = "GBK text (CRLF)"
    (folder / "good-gb18030.txt").write_bytes(
        "𠮷祥人才驿站\n𠮷祥人才驿站可以免费住15天，欧元符号€。\n".encode("gb18030")
    )
    what["good-gb18030.txt"] = "GB18030 text with a character outside the BMP"
    (folder / "good-utf16.txt").write_bytes("博士后资助通知\n博士后每年资助十万元。".encode("utf-16"))
    what["good-utf16.txt"] = "UTF-16 with BOM"
    make_pdf(
        folder / "good-english.pdf",
        [["Rent Subsidy Notice", "Talents get a rent subsidy of 800 yuan a month."]],
        title="Rent Subsidy Notice",
    )
    what["good-english.pdf"] = "real PDF (reportlab)"
    make_docx(
        folder / "good-word.docx", ["青年创业通知", "青年人才创业担保贷款最高50万元。"], title="青年创业通知"
    )
    what["good-word.docx"] = "real Word file"

    (folder / "utf16-nobom.txt").write_bytes("没有字节序标记的UTF-16文本。".encode("utf-16-le"))
    what["utf16-nobom.txt"] = "UTF-16-LE without BOM"
    truncated_pdf(folder / "truncated.pdf")
    what["truncated.pdf"] = "PDF cut in half"
    (folder / "garbage.pdf").write_bytes(b"%PDF-1.4\n" + os.urandom(4096))
    what["garbage.pdf"] = "PDF header + random bytes"
    (folder / "junk.txt").write_bytes(os.urandom(65536))
    what["junk.txt"] = "64 KB of random bytes"
    (folder / "empty.txt").write_bytes(b"")
    what["empty.txt"] = "empty"
    (folder / "blank.md").write_text(" \n\t\n", encoding="utf-8")
    what["blank.md"] = "whitespace only"
    filler = "".join(f"第{i}条 本条规定人才服务的一般事项，由有关部门负责解释。\n" for i in range(3, 40))
    (folder / "nul.txt").write_bytes(
        (
            "人才补贴通知\n第一条 紫荆人才补贴按月发放，每月2000元。\x00第二条 其余另行规定。\n" + filler
        ).encode()
    )
    what["nul.txt"] = "3 KB of UTF-8 text with one stray NUL byte"
    (folder / "nul-short.txt").write_bytes("短通知\x00全文。\n".encode())
    what["nul-short.txt"] = "a 20-byte text with a NUL (over 1% control bytes)"
    line = (
        "第一条 为了吸引高层次人才，本市提供人才公寓和安家补贴，具体办法由人力资源社会保障部门制定。" * 4
        + "\n"
    ).encode()
    with open(folder / "huge.txt", "wb") as fh:
        block = line * (2**20 // len(line) + 1)
        for _ in range(huge_mb):
            fh.write(block[: 2**20])
    what["huge.txt"] = f"{huge_mb} MB of text"
    os.symlink("loop-b.md", folder / "loop-a.md")
    os.symlink("loop-a.md", folder / "loop-b.md")
    what["loop-a.md"] = what["loop-b.md"] = "symlink loop (file)"
    (folder / "sub").mkdir()
    os.symlink("..", folder / "sub" / "up")
    what["sub/up"] = "symlink to its parent folder (folder loop)"
    os.symlink("nowhere.txt", folder / "broken.txt")
    what["broken.txt"] = "broken symlink"
    (folder / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    what["image.png"] = "unsupported type"
    return what


def ingest(folder: Path, store: Path) -> tuple[int, dict, float, float, str]:
    """(exit code, --json report, seconds, peak RSS MB, stderr) of one `talentbot ingest` process."""
    shutil.rmtree(store, ignore_errors=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [TALENTBOT, "ingest", str(folder), "--store", str(store), "--json"],
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    streams: dict[str, str] = {}
    readers = [
        threading.Thread(target=lambda k=k, f=f: streams.__setitem__(k, f.read()))
        for k, f in (("out", proc.stdout), ("err", proc.stderr))
    ]
    for t in readers:
        t.start()
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage: its peak RSS
    proc.returncode = os.waitstatus_to_exitcode(status)
    for t in readers:
        t.join()
    seconds = time.perf_counter() - t0
    rss = usage.ru_maxrss / 1024
    out, err = streams["out"], streams["err"]
    report = json.loads(out) if out.strip().startswith("{") else {}
    return proc.returncode, report, seconds, rss, err


ASK = r"""
import json, sys
from talentbot import TalentBot
bot = TalentBot(store=sys.argv[1])
out = {"articles": {r.file: r.chunks for r in bot.articles()}, "answers": {}}
for name, (q, fig) in json.loads(sys.argv[2]).items():
    a = bot.ask(q)
    out["answers"][name] = {"text": a.text, "ok": (not a.no_answer) and fig in a.text
                            and any(c.file == name and fig in c.text for c in a.citations)}
print(json.dumps(out, ensure_ascii=False))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--huge-mb", type=int, default=200)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    setup_env()
    base = OUT / "badfiles"
    folder = base / "files"
    what = make_folder(folder, args.huge_mb)
    # baseline: the same folder without the huge file
    huge = folder / "huge.txt"
    aside = base / "huge.txt"
    shutil.move(huge, aside)
    rc0, rep0, s0, rss0, _ = ingest(folder, base / "store-small")
    shutil.move(aside, huge)
    rc, rep, seconds, rss, err = ingest(folder, base / "store")
    asked = subprocess.run(
        [PY, "-c", ASK, str(base / "store"), json.dumps(GOOD, ensure_ascii=False)],
        env=env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    got = json.loads(asked.stdout) if asked.returncode == 0 else {"articles": {}, "answers": {}}
    failed = {
        Path(f["path"]).relative_to(folder).as_posix()
        if Path(f["path"]).is_relative_to(folder)
        else f["path"]: f["error"]
        for f in rep.get("failed", [])
    }
    rows = []
    for name, desc in what.items():
        size = (folder / name).lstat().st_size
        base_name = Path(name).name
        if name in failed:
            result = f"skipped: {failed[name]}"
        elif base_name in got["articles"] and not name.startswith("sub/"):
            result = f"indexed ({got['articles'][base_name]} chunks)"
        else:
            result = "not read (discover() does not follow it)"
        answer = got["answers"].get(name, {})
        rows.append(
            [
                name,
                desc,
                f"{size / 2**20:.1f} MB" if size > 2**20 else f"{size} B",
                result,
                ("answered from it" if answer.get("ok") else "NOT answered") if name in GOOD else "",
            ]
        )
    extra = sorted(set(failed) - set(what))
    rows += [[n, "(found inside the folder loop)", "", f"skipped: {failed[n]}", ""] for n in extra]
    good_ok = all(got["answers"].get(n, {}).get("ok") for n in GOOD)
    print(
        f"exit {rc}; {rep.get('added')} added, {len(rep.get('failed', []))} failed; {seconds:.1f} s; peak RSS "
        f"{rss:.0f} MB (without the huge file: {rss0:.0f} MB, {s0:.1f} s); good files answered: {good_ok}"
    )
    traceback = "Traceback" in err
    body = "\n".join(
        [
            "## Bad input files (`benchmarks/reliability/badfiles.py`)",
            "",
            "```bash\n.venv/bin/python benchmarks/reliability/badfiles.py   # about 1 minute\n```",
            "",
            f"Last run: {machine()}.",
            "",
            f"One folder, ingested with `talentbot ingest FOLDER --json` (default settings: `max_file_mb` 50): exit "
            f"code **{rc}** (1 = some files failed, the rest indexed), {rep.get('added')} articles added, "
            f"{len(rep.get('failed', []))} files reported failed, {seconds:.1f} s, traceback on stderr: {traceback}. "
            f"Peak RSS of the ingest process: **{rss:.0f} MB** with the {args.huge_mb} MB file, {rss0:.0f} MB without "
            f"it (exit {rc0}, {s0:.1f} s): the big file is refused from its size (`stat`) before it is read. Each good "
            "file is then asked a question only it answers (the answer must hold the figure and cite that file).",
            "",
            md_table(["file", "what", "size", "result", "question"], rows),
            "",
            f"Every good file indexed and answerable: **{'yes' if good_ok else 'NO'}**. Chroma writes are batched "
            "at min(Chroma's max batch size, 1000) per upsert (`Store.write_chunks`), so a big file never exceeds "
            "Chroma's batch limit (5461).",
        ]
    )
    print(body)
    if not args.no_write:
        write_section("badfiles", body)


if __name__ == "__main__":
    main()
