"""Ingest attacked as issue #16 attacked it (items 2 and 3), each reported as held / NOT held with its figures.

  dataloss   through the chat server (uploads on): an upload named like an existing article, an upload the
             ingest rejects; through `talentbot ingest`: a folder and a file made unreadable, a file name that
             is not UTF-8, a FIFO and a link to /dev/zero
  bombs      `talentbot ingest` of .docx zip bombs (31 KB and 77 KB), YAML alias bombs (458 and 550 bytes),
             a text over the character cap and a slow .docx: exit code, reason, time, peak RSS and CPU of the
             ingest process (its parser worker included), then a second ingest (not parsed again); the 31 KB
             bomb also uploaded to the chat server (server RSS and CPU)

Used by faults.py (``--parts``).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import sys
import zipfile
from pathlib import Path

from common import OUT, ROOT, TALENTBOT, Server, md_table, run_measured

sys.path.insert(0, str(ROOT / "tests"))
from fixtures.docs import make_docx, write_article

DROP_DAC = "--bounding-set=-dac_override,-dac_read_search"  # root obeys file modes without these


def held(ok: bool) -> str:
    return "held" if ok else "**NOT held**"


def ingest(
    folder: Path,
    store: Path,
    obey_modes: bool = False,
    timeout: float = 600,
    extra_env: dict[str, str] | None = None,
) -> tuple[int, dict, str, float, str, float]:
    """`talentbot ingest FOLDER --json`: (exit code, report, stderr, seconds, peak RSS "ingest / worker MB", CPU s)."""
    cmd = [TALENTBOT, "ingest", str(folder), "--store", str(store), "--json"]
    if obey_modes and os.geteuid() == 0 and shutil.which("setpriv"):
        cmd = [shutil.which("setpriv"), DROP_DAC, *cmd]
    rc, out, err, secs, (rss, worker), cpu = run_measured(cmd, timeout, extra_env)
    report = json.loads(out) if out.strip().startswith("{") else {}
    return rc, report, err, secs, f"{rss:.0f} / {worker:.0f} MB" if worker else f"{rss:.0f} MB", cpu


def failed_of(report: dict) -> dict[str, str]:
    return {Path(f["path"]).name: f["error"] for f in report.get("failed", [])}


# ------------------------------------------------------------------------------------------- bombs
PARAGRAPH = b"<w:p><w:r><w:t>a</w:t></w:r></w:p>"


W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
MINIMAL_DOCX = {  # the three parts Word and python-docx need, nothing else: the bomb's size is its payload
    "[Content_Types].xml": '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.'
    'openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxml'
    'formats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName'
    '="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main'
    '+xml"/></Types>',
    "_rels/.rels": '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.'
    'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org'
    '/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>',
}


def docx_bomb(path: Path, unpacked_mb: float) -> Path:
    """A minimal valid .docx whose word/document.xml is ``unpacked_mb`` MB of paragraphs (streamed, never held)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    block = PARAGRAPH * (2**20 // len(PARAGRAPH))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for name, text in MINIMAL_DOCX.items():
            z.writestr(name, text)
        with z.open("word/document.xml", "w", force_zip64=True) as f:
            f.write(
                f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="{W}"><w:body>'
                "<w:p><w:r><w:t>人才公寓。</w:t></w:r></w:p>".encode()
            )
            for _ in range(int(unpacked_mb)):
                f.write(block)
            f.write(block[: int(len(block) * (unpacked_mb % 1)) // len(PARAGRAPH) * len(PARAGRAPH)])
            f.write(b"</w:body></w:document>")
    return path


def yaml_bomb(path: Path, depth: int) -> Path:
    """Billion laughs in front matter: ``depth`` levels of 9 aliases each (9**depth strings)."""
    names = "abcdefghijk"
    lines = ["---", "title: 人才政策", 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"{names[i]}: &{names[i]} [{','.join(['*' + names[i - 1]] * 9)}]" for i in range(1, depth)]
    path.write_text("\n".join([*lines, "---", "本市发放人才安家补贴。", ""]), encoding="utf-8")
    return path


def long_text(path: Path) -> Path:
    path.write_text("人才政策。" * 420_000, encoding="utf-8")
    return path


def slow_docx(path: Path) -> Path:
    """A legitimate-looking .docx (about 650 KB, packed 9:1, under every cap) that takes lxml seconds to parse."""
    base = make_docx(path.with_suffix(".base.docx"), ["人才公寓。"])
    src = zipfile.ZipFile(base)
    out = io.BytesIO()
    body = b"".join(b"<w:p><w:r><w:t>%d</w:t></w:r></w:p>" % (i * 7919 % 1000003) for i in range(150_000))
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "word/document.xml":
                data = data.split(b"<w:body>")[0] + b"<w:body>" + body + b"</w:body></w:document>"
            z.writestr(info, data)
    src.close()
    base.unlink()
    path.write_bytes(out.getvalue())
    return path


def part_bombs() -> str:
    base = OUT / "faults-ingest" / "bombs"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    cases = [
        ("(none: the good article alone, for comparison)", lambda p: p / "good.md", {}),
        ("docx zip bomb", lambda p: docx_bomb(p / "bomb31.docx", 10.3), {}),
        ("docx zip bomb (the CLI one)", lambda p: docx_bomb(p / "bomb77.docx", 25.6), {}),
        ("YAML alias bomb, depth 9", lambda p: yaml_bomb(p / "laughs9.md", 9), {}),
        ("YAML alias bomb, depth 10", lambda p: yaml_bomb(p / "laughs10.md", 10), {}),
        ("text of 2.1 M characters", lambda p: long_text(p / "long.txt"), {}),
        (
            "slow .docx, TALENTBOT_PARSE_TIMEOUT=2",
            lambda p: slow_docx(p / "slow.docx"),
            {"TALENTBOT_PARSE_TIMEOUT": "2"},
        ),
        (
            "docx zip bomb of 32 MB unpacked, ratio and size caps lifted",
            lambda p: docx_bomb(p / "bomb-uncapped.docx", 32),
            {
                "TALENTBOT_MAX_ZIP_RATIO": "1000000",
                "TALENTBOT_MAX_UNPACKED_MB": "100000",
                "TALENTBOT_PARSE_TIMEOUT": "20",
            },
        ),
    ]
    rows = []
    for i, (label, make, extra) in enumerate(cases):
        folder = base / f"case{i}"
        folder.mkdir()
        write_article(folder / "good.md", 1)
        path = make(folder)
        st = base / (folder.name + "-store")
        rc, rep, err, secs, rss, cpu = ingest(folder, st, extra_env=extra, timeout=300)
        reason = failed_of(rep).get(path.name, "(not reported)")
        rc2, rep2, _, secs2, rss2, cpu2 = ingest(folder, st, extra_env=extra, timeout=300)
        again = failed_of(rep2).get(path.name, "(not reported)")
        if path.name == "good.md":  # the baseline
            rows.append(
                [label, "-", rc, "-", f"{secs:.1f} s", rss, f"{cpu:.1f} s", f"{secs2:.1f} s", rss2, "-", "-"]
            )
            continue
        ok = (
            rc == 1
            and rep.get("added") == 1
            and path.name in failed_of(rep)
            and secs < 120
            and max(float(x) for x in re.findall(r"[\d.]+", rss)) < 1500
            and "not parsed again" in again
            and secs2 < 60
        )
        size = path.stat().st_size
        rows.append(
            [
                label,
                f"{size / 1024:.1f} KB" if size > 4096 else f"{size} B",
                rc,
                reason,
                f"{secs:.1f} s",
                rss,
                f"{cpu:.1f} s",
                f"{secs2:.1f} s",
                rss2,
                "yes" if "not parsed again" in again else "no",
                held(ok),
            ]
        )
        print("bomb", rows[-1], flush=True)
    rows.append(server_bomb(base))
    return "\n".join(
        [
            "### Small files that eat the machine (issue #16, item 3)\n",
            "Each file sits in a folder with one good article; `talentbot ingest FOLDER --json` runs twice. Peak RSS is "
            "VmHWM of the ingest process / of its parser worker (read from /proc every 50 ms; the ingest process holds the "
            "embedding model); CPU is the ingest process's plus the workers it reaped (`wait4`). Before the fixes the "
            "31 KB bomb took the server to 2.4 GB and 72 s of CPU, the 77 KB one the CLI to 2.85 GB and 232 s, the "
            "458-byte YAML bomb 1.17 GB and the 550-byte one about 28 GB (the YAML bombs here expand the same, "
            "9^9 and 9^10 strings, with a shorter title).\n",
            md_table(
                [
                    "file",
                    "size",
                    "exit code",
                    "reason",
                    "time",
                    "peak RSS",
                    "CPU",
                    "second ingest: time",
                    "its peak RSS",
                    "not parsed again",
                    "verdict",
                ],
                rows,
            ),
        ]
    )


def server_bomb(base: Path) -> list:
    """The 31 KB bomb uploaded to the chat server: the server's RSS and CPU (its parser worker's included)."""
    import time

    from gradio_client import Client, handle_file

    corpus, store = base / "server-corpus", base / "server-store"
    write_article(corpus / "good.md", 1)
    ingest(corpus, store)
    bomb = docx_bomb(base / "upload" / "bomb.docx", 10.3)
    with Server(
        store,
        corpus,
        allow_upload=True,
        max_upload_mb=1,
        extra_env={"GRADIO_TEMP_DIR": str(OUT / "faults-ingest" / "gradio-tmp")},
    ) as srv:
        rss0, cpu0 = srv.rss_mb(), srv.cpu_seconds(children=True)
        t0 = time.perf_counter()
        c = Client(srv.url, verbose=False)
        try:
            summary, _ = c.predict([handle_file(str(bomb))], api_name="/upload")
        finally:
            c.close()
        secs = time.perf_counter() - t0
        hwm, cpu = srv.hwm_mb(), srv.cpu_seconds(children=True) - cpu0
    left = (corpus / "bomb.docx").exists()
    line = next((ln for ln in summary.splitlines() if "bomb" in ln), summary[:120])
    ok = "zip bomb" in summary and not left and hwm < rss0 + 300
    return [
        "the same 31 KB bomb uploaded to the chat server",
        f"{bomb.stat().st_size / 1024:.1f} KB",
        "-",
        line.lstrip("- "),
        f"{secs:.1f} s (upload + re-index)",
        f"server {rss0:.0f} -> peak {hwm:.0f} MB",
        f"{cpu:.1f} s",
        "-",
        "-",
        "removed from the corpus" if not left else "LEFT in the corpus",
        held(ok),
    ]


# ---------------------------------------------------------------------------------------- data loss
def part_dataloss() -> str:
    base = OUT / "faults-ingest" / "dataloss"
    shutil.rmtree(base, ignore_errors=True)
    rows = upload_rows(base)
    rows += unreadable_rows(base)
    rows += odd_file_rows(base)
    bad = sum("NOT" in r[-1] for r in rows)
    return "\n".join(
        [
            "### Uploads and ingest that lost or corrupted data (issue #16, item 2)\n",
            md_table(["attack", "what happened", "figures", "verdict"], rows),
            f"\nResult: **{'held' if not bad else f'NOT held ({bad})'}**.",
        ]
    )


def upload_rows(base: Path) -> list[list]:
    from gradio_client import Client, handle_file

    from talentbot import TalentBot

    corpus, store = base / "corpus", base / "store"
    corpus.mkdir(parents=True)
    (corpus / "a.md").write_text("# 测试人才补贴办法\n\n第一条 博士人才安家补贴31万元。\n", encoding="utf-8")
    assert TalentBot(store=store).ingest([corpus]).added == 1
    original = (corpus / "a.md").read_bytes()
    up = base / "up"
    up.mkdir()
    (up / "a.md").write_text(
        "# 测试人才补贴办法（修订）\n\n第一条 博士人才安家补贴999万元。\n", encoding="utf-8"
    )
    (up / "broken.docx").write_bytes(b"PK\x03\x04 this is not a real Word file " * 4)
    rows = []
    with Server(
        store,
        corpus,
        allow_upload=True,
        max_upload_mb=1,
        extra_env={"GRADIO_TEMP_DIR": str(base / "gradio-tmp")},
    ) as srv:
        c = Client(srv.url, verbose=False)
        try:
            s1, _ = c.predict([handle_file(str(up / "a.md"))], api_name="/upload")
            history, panel, _ = c.predict(
                "博士人才安家补贴是多少？", [], "（全部）", "（全部）", "", "", api_name="/chat"
            )
            s2, _ = c.predict([handle_file(str(up / "broken.docx"))], api_name="/upload")
        finally:
            c.close()
    files = sorted(p.name for p in corpus.iterdir())
    kept = (corpus / "a.md").read_bytes() == original
    note = next((ln.lstrip("- ") for ln in s1.splitlines() if "saved as" in ln), "(no note)")
    rows.append(
        [
            "upload named like an existing article (`a.md`, 999万元)",
            f"{note}; corpus: {', '.join(files)}",
            f"a.md unchanged: {kept}; sources panel shows 31万元: {'31万元' in panel}",
            held(kept and "a-2.md" in files and "31万元" in panel),
        ]
    )
    note = next((ln.lstrip("- ") for ln in s2.splitlines() if "broken.docx" in ln), s2[:100])
    rc, rep, _, _, _, _ = ingest(corpus, store)
    rows.append(
        [
            "upload the ingest rejects (`broken.docx`)",
            note,
            f"left in the corpus: {(corpus / 'broken.docx').exists()}; next `ingest`: exit {rc}, "
            f"{len(rep.get('failed', []))} failed",
            held(not (corpus / "broken.docx").exists() and rc == 0 and not rep.get("failed")),
        ]
    )
    return rows


def unreadable_rows(base: Path) -> list[list]:
    folder, store = base / "unreadable", base / "unreadable-store"
    write_article(folder / "top.md", 1)
    write_article(folder / "locked.md", 2)
    write_article(folder / "sub" / "inner.md", 3)
    write_article(folder / "sub" / "deeper" / "x.md", 4)
    rc0, first, *_ = ingest(folder, store)
    (folder / "sub").chmod(0)
    (folder / "locked.md").chmod(0)
    try:
        rc, second, *_ = ingest(folder, store, obey_modes=True)
    finally:
        (folder / "sub").chmod(0o755)
        (folder / "locked.md").chmod(0o644)
    failed = failed_of(second)
    ok = (
        rc == 1
        and second.get("chunks") == first.get("chunks")
        and second.get("removed") == 0
        and set(failed) == {"sub", "locked.md"}
    )
    return [
        [
            "a subfolder and a file made unreadable (mode 0; root without CAP_DAC_*)",
            "; ".join(f"{k}: {v}" for k, v in failed.items()) or "nothing reported",
            f"exit {rc0} then {rc}; chunks {first.get('chunks')} -> {second.get('chunks')}; removed "
            f"{second.get('removed')}",
            held(ok),
        ]
    ]


def odd_file_rows(base: Path) -> list[list]:
    folder, store = base / "odd", base / "odd-store"
    write_article(folder / "a.md", 1)
    with open(os.path.join(os.fsencode(folder), b"latin1-\xe9.md"), "wb") as f:
        f.write("# 人才\n\n第一条 非UTF-8文件名的文章。\n".encode())
    os.mkfifo(folder / "pipe.md")
    (folder / "zero.txt").symlink_to("/dev/zero")
    write_article(folder / "z.md", 2)  # sorted after the bad name: the ingest must go on past it
    rc, rep, err, secs, rss, _ = ingest(folder, store, timeout=240)
    failed = {f["path"].rsplit("/", 1)[-1]: f["error"] for f in rep.get("failed", [])}
    name = next((k for k in failed if k.startswith("latin1")), None)
    rows = [
        [
            "a file name that is not UTF-8 (`latin1-\\xe9.md`), before `z.md`",
            f"{name}: {failed.get(name, 'not reported')}",
            f"exit {rc}; added {rep.get('added')} (a.md, z.md); traceback: {'Traceback' in err}",
            held(rc == 1 and rep.get("added") == 2 and name is not None),
        ]
    ]
    for fname, what in (("pipe.md", "a FIFO (no writer)"), ("zero.txt", "a link to /dev/zero")):
        rows.append(
            [
                what,
                f"{fname}: {failed.get(fname, 'not reported')}",
                f"ingest took {secs:.1f} s, peak RSS {rss}",
                held(fname in failed and secs < 200),
            ]
        )
    return rows
