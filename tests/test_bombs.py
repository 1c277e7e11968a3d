"""Small files that would eat the machine: zip bombs, YAML alias bombs, slow and memory-hungry files.

Each is refused quickly with a one-line reason, the rest of the folder is indexed, and a refused file is
not parsed again until it changes. Sizes stay bounded: the bombs are tens of KB on disk.
"""

from __future__ import annotations

import io
import os
import re
import time
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from fixtures.docs import make_docx, write_article
from fixtures.storecheck import assert_consistent
from talentbot import TalentBot
from talentbot.limits import MB, Limits, ParseError
from talentbot.loaders import LoadError, load
from talentbot.parse_worker import Parser

PARAGRAPH = b"<w:p><w:r><w:t>a</w:t></w:r></w:p>"


def _docx_with(path: Path, body: bytes | None = None, zeros_mb: int = 0, extra_entries: int = 0) -> Path:
    """A real .docx whose word/document.xml is replaced: by ``body`` paragraphs (valid XML) or by
    ``zeros_mb`` MB of zero bytes (streamed: never held in memory here), plus ``extra_entries`` tiny entries."""
    base = make_docx(path.with_suffix(".base.docx"), ["人才公寓。"])
    src = zipfile.ZipFile(base)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for info in src.infolist():
            if info.filename != "word/document.xml":
                z.writestr(info, src.read(info.filename))
            elif zeros_mb:
                with z.open(info.filename, "w", force_zip64=True) as f:
                    for _ in range(zeros_mb):
                        f.write(bytes(MB))
            else:
                head = src.read(info.filename).split(b"<w:body>")[0] + b"<w:body>"
                z.writestr(info.filename, head + body + b"</w:body></w:document>")
        for i in range(extra_entries):
            z.writestr(f"extra/item{i}.xml", b"<a/>")
    base.unlink()
    path.write_bytes(out.getvalue())
    return path


def _slow_docx(path: Path) -> Path:
    """A legitimate-looking .docx (about 650 KB, packed 9:1, under every cap) that takes lxml seconds to parse."""
    body = b"".join(b"<w:p><w:r><w:t>%d</w:t></w:r></w:p>" % (i * 7919 % 1000003) for i in range(150_000))
    return _docx_with(path, body=body)


BILLION_LAUGHS = """---
title: 人才政策
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
---
本市发放人才安家补贴。
"""


def _cheap(fn) -> tuple[BaseException, float, int]:
    """Run ``fn``, which must raise; return the error, the seconds and the peak bytes Python allocated."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(LoadError) as err:
            fn()
        return err.value, time.perf_counter() - started, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# ------------------------------------------------------------------------------ refused up front
def test_a_31_kb_docx_zip_bomb_is_refused_from_the_zip_directory(tmp_path):
    bomb = _docx_with(tmp_path / "bomb.docx", zeros_mb=32)
    assert os.path.getsize(bomb) < 100 * 1024  # 32 MB of zeros packed into about 32 KB (plus the template)
    err, seconds, peak = _cheap(lambda: load(bomb))
    assert isinstance(err, ParseError)
    assert "zip bomb" in str(err)
    assert "TALENTBOT_MAX_ZIP_RATIO" in str(err)
    assert seconds < 2
    assert peak < 4 * MB
    big = _docx_with(tmp_path / "big.docx", zeros_mb=40)
    err, _, peak = _cheap(lambda: load(big, limits=Limits(max_zip_ratio=10**6, max_unpacked_bytes=16 * MB)))
    assert re.search(r"unpacks to 4\d MB, over the 16 MB limit", str(err))
    assert peak < 4 * MB


def test_a_docx_with_too_many_entries_is_refused(tmp_path):
    many = _docx_with(tmp_path / "many.docx", body=PARAGRAPH, extra_entries=300)
    err, seconds, _ = _cheap(lambda: load(many, limits=Limits(max_zip_entries=100)))
    assert "zip entries, over the limit of 100" in str(err)
    assert seconds < 2
    assert load(many).text == "a"  # under the default limit it is an ordinary document


def test_a_yaml_alias_bomb_in_front_matter_is_refused_cheaply(tmp_path):
    path = tmp_path / "laughs.md"
    path.write_text(BILLION_LAUGHS, encoding="utf-8")
    assert os.path.getsize(path) < 600
    err, seconds, peak = _cheap(lambda: load(path))
    assert "aliases (*name) are not allowed" in str(err)
    assert "\n" not in str(err)
    assert seconds < 1
    assert peak < 4 * MB
    deep = tmp_path / "deep.md"
    deep.write_text("---\ntitle: " + "[" * 5000 + "]" * 5000 + "\n---\n正文。\n", encoding="utf-8")
    with pytest.raises(ParseError, match="bad YAML front matter"):
        load(deep)
    huge = tmp_path / "huge.md"
    huge.write_text("---\ntitle: 标题\nnote: " + "长" * 70_000 + "\n---\n正文。\n", encoding="utf-8")
    with pytest.raises(ParseError, match="front matter is over 64 KB"):
        load(huge)


def test_text_over_the_character_cap_is_refused(tmp_path):
    path = tmp_path / "long.txt"
    path.write_text("人才政策。" * 1000, encoding="utf-8")
    with pytest.raises(ParseError, match="over 1,000 characters .*TALENTBOT_MAX_FILE_CHARS"):
        load(path, limits=Limits(max_chars=1000))
    assert len(load(path).text) == 5000


# --------------------------------------------------------------------------- the parser worker
def test_a_slow_file_is_stopped_at_the_time_limit(tmp_path):
    slow = _slow_docx(tmp_path / "slow.docx")
    good = make_docx(tmp_path / "good.docx", ["青年人才可获创业担保贷款。"])
    with Parser(Limits(timeout_s=1.0), [slow, good]) as parser:
        started = time.perf_counter()
        with pytest.raises(ParseError, match=r"took longer than 1 s .*TALENTBOT_PARSE_TIMEOUT"):
            parser.load(slow)
        assert time.perf_counter() - started < 6  # worker start-up + 1 s, not the whole parse (8 s here)
        assert parser.load(good).text == "青年人才可获创业担保贷款。"  # a fresh worker took over
        assert parser.started == 2


def test_a_memory_hungry_file_is_stopped_at_the_memory_limit(tmp_path):
    hungry = _docx_with(tmp_path / "hungry.docx", zeros_mb=300)  # about 300 KB on disk
    limits = Limits(max_unpacked_bytes=10**10, max_zip_ratio=10**6, memory_mb=200)
    good = make_docx(tmp_path / "good.docx", ["高层次人才子女可在本市入学。"])
    with Parser(limits, [hungry, good]) as parser:
        with pytest.raises(ParseError, match="200 MB") as err:
            parser.load(hungry)
        assert "\n" not in str(err.value)
        assert parser.load(good).text == "高层次人才子女可在本市入学。"


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc/<pid>/environ")
def test_the_worker_never_sees_the_settings_or_the_api_key(tmp_path, monkeypatch):
    monkeypatch.setenv("TALENTBOT_LLM_API_KEY", "sk-parser-must-not-see-this")
    good = make_docx(tmp_path / "good.docx", ["人才公寓。"])
    with Parser(Limits(), [good]) as parser:
        assert parser.load(good).text == "人才公寓。"
        environ = Path(f"/proc/{parser._worker.proc.pid}/environ").read_bytes()
    assert b"sk-parser-must-not-see-this" not in environ
    assert b"TALENTBOT_" not in environ


# ---------------------------------------------------------------------- through ingest, twice
@pytest.mark.slow  # parses the slow file to its time limit three times
def test_bombs_fail_with_reasons_the_rest_is_indexed_and_they_are_not_parsed_again(
    tmp_path, monkeypatch, fake_embedder
):
    folder = tmp_path / "docs"
    write_article(folder / "good.md", 1)
    _docx_with(folder / "bomb.docx", zeros_mb=32)
    (folder / "laughs.md").write_text(BILLION_LAUGHS, encoding="utf-8")
    _slow_docx(folder / "slow.docx")
    parsed: list[str] = []
    real_load = Parser.load

    def counting_load(self, path):
        parsed.append(path.name)
        return real_load(self, path)

    monkeypatch.setattr(Parser, "load", counting_load)
    bot = TalentBot(parse_timeout=1.0)
    first = bot.ingest([folder])
    assert first.added == 1
    assert sorted(parsed) == ["bomb.docx", "good.md", "laughs.md", "slow.docx"]
    reasons = {Path(f["path"]).name: f["error"] for f in first.failed}
    assert set(reasons) == {"bomb.docx", "laughs.md", "slow.docx"}
    assert "zip bomb" in reasons["bomb.docx"]
    assert "aliases" in reasons["laughs.md"]
    assert "took longer than 1 s" in reasons["slow.docx"]
    assert all("\n" not in r for r in reasons.values())
    assert_consistent(bot)

    parsed.clear()
    started = time.perf_counter()
    second = TalentBot(parse_timeout=1.0).ingest([folder])  # a new process would start like this
    assert parsed == ["good.md"]
    assert second.unchanged == 1
    assert time.perf_counter() - started < 30
    again = {Path(f["path"]).name: f["error"] for f in second.failed}
    assert set(again) == set(reasons)
    for name, reason in reasons.items():
        assert again[name] == reason + " (not parsed again until the file changes)"

    parsed.clear()
    write_article(folder / "laughs.md", 2)  # fixed: parsed again, and indexed
    st = os.stat(folder / "bomb.docx")
    os.utime(folder / "bomb.docx", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched: tried again
    third = TalentBot(parse_timeout=1.0).ingest([folder])
    assert sorted(parsed) == ["bomb.docx", "good.md", "laughs.md"]
    assert third.added == 1
    assert third.unchanged == 1
    assert {Path(f["path"]).name for f in third.failed} == {"bomb.docx", "slow.docx"}

    parsed.clear()
    other = TalentBot(parse_timeout=1.5).ingest(
        [folder]
    )  # other limits: what failed under the old ones is tried
    assert sorted(parsed) == ["bomb.docx", "good.md", "laughs.md", "slow.docx"]
    assert "took longer than 1.5 s" in {Path(f["path"]).name: f["error"] for f in other.failed}["slow.docx"]

    parsed.clear()
    import talentbot.ingest as ingest_mod

    monkeypatch.setattr(ingest_mod, "CHUNKER_VERSION", ingest_mod.CHUNKER_VERSION + "-next")
    TalentBot(parse_timeout=1.5).ingest(
        [folder]
    )  # new loaders: what failed under the old ones is tried again
    assert {"bomb.docx", "slow.docx"} <= set(parsed)
