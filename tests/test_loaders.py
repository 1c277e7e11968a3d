"""Loaders: every format and encoding gives the exact text; bad files fail with a one-line reason."""

from __future__ import annotations

import codecs
import os
import time
from pathlib import Path

import pytest

from fixtures.docs import (
    ZH_TEXT,
    ZH_TEXT_ASTRAL,
    corrupt_docx_deflate,
    corrupt_pdf_bad_filter,
    make_bad_files,
    make_docx,
    make_pdf,
    truncated_pdf,
)
from fixtures.helpers import CORPUS, SHANXI_JUNK
from talentbot.chunking import chunk_article
from talentbot.loaders import LoadError, discover, display_path, load

SHANXI = CORPUS / "shanxi-kaifaqu-rencai-2024-03-28.txt"


# ---------------------------------------------------------------------------------------- encodings
@pytest.mark.parametrize(
    ("encoding", "raw"),
    [
        ("utf-8", ZH_TEXT_ASTRAL.encode("utf-8")),
        ("utf-8 with BOM", codecs.BOM_UTF8 + ZH_TEXT_ASTRAL.encode("utf-8")),
        ("gb18030", ZH_TEXT_ASTRAL.encode("gb18030")),
        ("gbk", ZH_TEXT.encode("gbk")),
        ("utf-16-le with BOM", codecs.BOM_UTF16_LE + ZH_TEXT_ASTRAL.encode("utf-16-le")),
        ("utf-16-be with BOM", codecs.BOM_UTF16_BE + ZH_TEXT_ASTRAL.encode("utf-16-be")),
    ],
)
def test_text_encodings_decode_exactly(tmp_path, encoding, raw):
    expected = ZH_TEXT if encoding == "gbk" else ZH_TEXT_ASTRAL
    path = tmp_path / "doc.txt"
    path.write_bytes(raw)
    article = load(path)
    assert article.text == expected
    assert "\ufffd" not in article.text
    assert "\ufeff" not in article.text
    assert article.title == "人才政策问答"


TRADITIONAL = (
    "臺北市人才引進辦法\n\n第一條 為吸引國內外高層次人才來本市創業就業，特制定本辦法。\n"
    "第二條 對於經認定之高層次人才，給予住房補貼，每月新臺幣三萬元，最長補貼五年。\n"
)


@pytest.mark.parametrize("codec", ["cp950", "big5", "gb18030", "utf-8"])
def test_traditional_chinese_in_big5_or_gb18030_decodes_exactly(tmp_path, codec):
    path = tmp_path / "taipei.txt"
    path.write_bytes(TRADITIONAL.encode(codec))
    article = load(path)
    assert article.text == TRADITIONAL.strip()
    assert article.title == "臺北市人才引進辦法"


def test_text_in_no_known_encoding_is_refused_with_what_to_do(tmp_path):
    path = tmp_path / "odd.txt"
    # decodes as GB18030 only into Private Use Area characters, and is not valid Big5 either
    path.write_bytes(bytes([0xA1, 0x40, 0xFE, 0xFE]) * 200 + "第一条 内容。".encode("utf-8", "replace"))
    with pytest.raises(LoadError, match="unknown text encoding .*save it as UTF-8"):
        load(path)


@pytest.mark.parametrize("codec", ["gbk", "utf-16", "utf-8-sig"])
def test_windows_line_endings_and_front_matter_survive_every_encoding(tmp_path, codec):
    text = "---\r\ntitle: 人才公寓管理办法\r\nsource: 某市人社局\r\n---\r\n第一段。\r\n\r\n第二段！\r\n"
    path = tmp_path / "doc.md"
    path.write_bytes(text.encode(codec))
    article = load(path)
    assert (article.title, article.source) == ("人才公寓管理办法", "某市人社局")
    assert article.text == "第一段。\n\n第二段！"


def test_front_matter_keeps_title_source_date_url_and_other_keys(tmp_path):
    path = tmp_path / "policy.md"
    path.write_text(
        "---\ntitle: 青年人才安居办法\nsource: 杭州市人民政府\ndate: 2023-05-04\n"
        "url: https://www.hangzhou.gov.cn/art/2023/5/4/art_1.html\nregion: 浙江,杭州\ndoc_no: 杭政办〔2023〕5号\n---\n"
        "青年人才安居办法\n\n第一条 为了支持青年人才安居，制定本办法。\n",
        encoding="utf-8",
    )
    a = load(path)
    assert a.title == "青年人才安居办法"
    assert a.source == "杭州市人民政府"
    assert a.date == "2023-05-04"  # a YAML date, written back as ISO text
    assert a.metadata == {
        "url": "https://www.hangzhou.gov.cn/art/2023/5/4/art_1.html",
        "region": "浙江,杭州",
        "doc_no": "杭政办〔2023〕5号",
    }
    assert "title:" not in a.text
    assert "---" not in a.text
    assert a.text == "青年人才安居办法\n\n第一条 为了支持青年人才安居，制定本办法。"


def test_text_without_front_matter_takes_its_first_line_as_title(tmp_path):
    path = tmp_path / "note.txt"
    path.write_text("\n\n  关于人才落户的通知  \n本市放宽落户条件。\n", encoding="utf-8")
    a = load(path)
    assert a.title == "关于人才落户的通知"
    assert (a.source, a.date, a.metadata) == ("", "", {})


def test_a_leading_date_line_is_the_date_and_a_paragraph_line_gives_a_short_title(tmp_path):
    body = (
        "近日，某市人社局发布通知，对新引进的全日制博士给予每人每月3000元生活补贴，连续发放三年，"
        "并提供人才公寓。通知自发布之日起施行。\n\n第二段内容。"
    )
    f = tmp_path / "n.txt"
    f.write_text(f"2023-08-08\n\n{body}\n", encoding="utf-8")
    a = load(f)
    assert a.date == "2023-08-08"
    assert a.title == body.split("。")[0][:49] + "…"  # its first sentence, cut to 50 characters
    assert a.text.startswith("近日，某市人社局发布通知")
    assert "2023-08-08" not in a.text
    assert "第二段内容。" in a.text


def test_an_impossible_date_line_is_text_not_a_date(tmp_path):
    f = tmp_path / "n.txt"
    f.write_text("2020-13-45\n\n正文第一句。\n", encoding="utf-8")
    a = load(f)
    assert a.date == ""
    assert a.text.startswith("2020-13-45")


def test_zero_width_spaces_are_dropped(tmp_path):
    path = tmp_path / "zw.md"
    path.write_text("标题\n\u200b\n第一条\u200b 内容。\n\u200b\n", encoding="utf-8")
    a = load(path)
    assert a.text == "标题\n\n第一条 内容。"


# ------------------------------------------------------------------------------------------- HTML
PAGE = """<!DOCTYPE html>
<html><head><meta charset="{charset}"><title>郑州市发布青年人才新政 - 郑州市人民政府</title>
<meta property="og:title" content="郑州市发布青年人才新政">
<meta property="article:published_time" content="2024-05-06">
<script>var tracker = "SCRIPT_SHOULD_NOT_APPEAR";</script></head>
<body><nav><a href="/">首页</a> &gt; <a href="/news">新闻中心</a> 导航菜单栏目</nav>
<article><h1>郑州市发布青年人才新政</h1>
<p>郑州市近日发布青年人才新政，对新引进的博士研究生给予每月三千元生活补贴，补贴期限为三年。</p>
<p>来郑就业创业的本科毕业生可申请人才公寓，租住满三年且符合条件的，可按优惠价格购买。</p>
<p>新政自发布之日起施行，具体申报流程可在郑州人才网查询，咨询电话为12345市民热线。</p>
</article><footer>分享到：微信 微博 QQ空间　版权所有 郑州市人民政府</footer></body></html>"""


@pytest.mark.parametrize("charset", ["utf-8", "gbk"])
def test_html_main_text_title_and_date(tmp_path, charset):
    path = tmp_path / "news.html"
    path.write_bytes(PAGE.format(charset=charset).encode(charset))
    a = load(path)
    assert a.title == "郑州市发布青年人才新政"
    assert a.date == "2024-05-06"
    assert "对新引进的博士研究生给予每月三千元生活补贴，补贴期限为三年。" in a.text
    assert "咨询电话为12345市民热线。" in a.text
    for junk in ("SCRIPT_SHOULD_NOT_APPEAR", "导航菜单栏目", "分享到", "版权所有"):
        assert junk not in a.text
    assert "\ufffd" not in a.text


def test_htm_extension_uses_the_html_loader(tmp_path):
    path = tmp_path / "news.htm"
    path.write_text(PAGE.format(charset="utf-8"), encoding="utf-8")
    assert "<p>" not in load(path).text
    assert "生活补贴" in load(path).text


# -------------------------------------------------------------------------------------------- PDF
def test_pdf_keeps_page_numbers_on_pages_and_chunks(tmp_path):
    path = make_pdf(
        tmp_path / "rules.pdf",
        [
            [
                "Talent Housing Rules",
                "Article 1. Talents may rent an apartment at half price.",
                "Article 2. The lease runs for three years.",
            ],
            ["Article 3. Subsidies are paid every month.", "Article 4. These rules take effect in 2024."],
        ],
        title="Talent Housing Rules",
    )
    a = load(path)
    assert a.title == "Talent Housing Rules"
    assert [n for n, _ in a.pages] == [1, 2]
    assert "Article 2. The lease runs for three years." in a.pages[0][1]
    assert "Article 3. Subsidies are paid every month." in a.pages[1][1]
    assert "Article 3" not in a.pages[0][1]
    chunks = chunk_article(a, size=60)
    by_page = {c.page for c in chunks}
    assert by_page == {1, 2}
    for c in chunks:
        if "Article 3" in c.text or "Article 4" in c.text:
            assert c.page == 2
        if "Article 1" in c.text or "Article 2" in c.text:
            assert c.page == 1
        assert c.title == "Talent Housing Rules"


def test_pdf_without_title_metadata_uses_its_first_line(tmp_path):
    path = make_pdf(tmp_path / "x.pdf", [["Rules for Returning Scholars", "Scholars get a grant."]])
    assert load(path).title == "Rules for Returning Scholars"


# ------------------------------------------------------------------------------------------- DOCX
def test_docx_text_title_author_and_date(tmp_path):
    path = make_docx(
        tmp_path / "notice.docx",
        ["关于申报高层次人才认定的通知", "各有关单位：", "申报材料请于六月底前报送。"],
        title="高层次人才认定通知",
        author="市人才办",
    )
    a = load(path)
    assert a.title == "高层次人才认定通知"
    assert a.source == "市人才办"
    assert a.date == "2023-06-15"
    assert a.text == "关于申报高层次人才认定的通知\n\n各有关单位：\n\n申报材料请于六月底前报送。"


def test_docx_without_title_uses_first_paragraph(tmp_path):
    path = make_docx(tmp_path / "n.docx", ["", "人才驿站管理办法", "第一条 内容。"])
    assert load(path).title == "人才驿站管理办法"


# ------------------------------------------------------------------------------------ bad files
@pytest.mark.parametrize(
    ("name", "make", "word"),
    [
        ("empty.txt", lambda p: p.write_bytes(b""), "empty"),
        ("blank.md", lambda p: p.write_text(" \n\t\n", encoding="utf-8"), "no text"),
        ("binary.txt", lambda p: p.write_bytes(bytes(range(256)) * 4), "binary"),
        ("photo.jpg", lambda p: p.write_bytes(b"\xff\xd8\xff\xe0" + bytes(100)), "image"),  # damaged
        ("README", lambda p: p.write_text("hello", encoding="utf-8"), "unsupported"),
        ("garbage.pdf", lambda p: p.write_bytes(b"%PDF-1.4\n" + bytes(range(256))), "PDF"),
        ("notpdf.pdf", lambda p: p.write_bytes(b"hello, I am not a PDF"), "PDF"),
        ("truncated.pdf", truncated_pdf, "PDF"),
        ("badfilter.pdf", corrupt_pdf_bad_filter, "PDF"),
        ("notzip.docx", lambda p: p.write_bytes(b"plain text"), "Word"),
        ("deflate.docx", corrupt_docx_deflate, "Word"),
        ("bom-only.txt", lambda p: p.write_bytes(codecs.BOM_UTF8), "no text"),
        ("bad-utf16.txt", lambda p: p.write_bytes(codecs.BOM_UTF16_LE + b"\x00\xd8"), "utf-16"),
    ],
)
def test_bad_file_raises_load_error_with_one_line_reason(tmp_path, name, make, word):
    path = tmp_path / name
    make(path)
    with pytest.raises(LoadError) as err:
        load(path)
    reason = str(err.value)
    assert word.lower() in reason.lower()
    assert reason
    assert "\n" not in reason
    assert len(reason) < 300


def test_broken_symlink_and_symlink_loop_are_load_errors(tmp_path):
    (tmp_path / "dangling.txt").symlink_to(tmp_path / "gone.txt")
    (tmp_path / "a.md").symlink_to(tmp_path / "b.md")
    (tmp_path / "b.md").symlink_to(tmp_path / "a.md")
    for name in ("dangling.txt", "a.md"):
        with pytest.raises(LoadError, match="cannot read file"):
            load(tmp_path / name)


def test_oversized_file_is_refused(tmp_path):
    path = tmp_path / "big.txt"
    path.write_text("人才。" * 400_000, encoding="utf-8")  # 3.6 MB
    with pytest.raises(LoadError, match="over the 1 MB limit"):
        load(path, max_bytes=2**20)


def test_discover_lists_every_bad_file_and_never_loops(tmp_path):
    expected = make_bad_files(tmp_path / "docs")
    (tmp_path / "docs" / "sub").mkdir()
    (tmp_path / "docs" / "sub" / "up").symlink_to(tmp_path / "docs", target_is_directory=True)  # dir loop
    (tmp_path / "docs" / "x.txt").mkdir()  # a folder with a text-file name
    (tmp_path / "docs" / "x.txt" / "inner.md").write_text("内文。", encoding="utf-8")
    (tmp_path / "docs" / ".hidden.md").write_text("隐藏。", encoding="utf-8")
    found = [p.relative_to(tmp_path / "docs").as_posix() for p in discover([tmp_path / "docs"])]
    assert sorted(found) == sorted([*expected, "x.txt/inner.md"])


def test_discover_reads_a_file_named_twice_once(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("甲。", encoding="utf-8")
    (folder / "b.md").write_text("乙。", encoding="utf-8")
    found = list(discover([folder / "a.md", folder, folder / "a.md", folder / "b.md"]))
    assert [p.name for p in found] == ["a.md", "b.md"]


# ------------------------------------------------------------------------------ the Shanxi article
def test_shanxi_article_metadata():
    a = load(SHANXI)
    assert a.title == "“向‘新’而行”山西省开发区多措并举 打造吸引人才“磁场高地”"
    assert a.source == "人民日报客户端山西频道"
    assert a.date == "2024-03-28"
    assert a.metadata["original_source"] == "山西经济日报"
    assert a.metadata["editor"] == "刘强"


def test_shanxi_article_text_has_no_page_junk_and_keeps_the_body():
    a = load(SHANXI)
    for junk in SHANXI_JUNK:
        assert junk not in a.text, junk
    assert a.text.startswith("忻州杂粮产业园区的无人机作业。付秋杰摄")
    assert "人才是构筑创新高地的基石,也是产业发展腾飞的强大引擎。" in a.text
    assert a.text.endswith("(来源:山西经济日报)")
    # Every body paragraph of the page survives: only junk lines were dropped.
    raw = Path(SHANXI).read_text(encoding="utf-8")
    body = raw[raw.index("人才是构筑创新高地") : raw.index("(来源:山西经济日报)")]
    for line in filter(None, (ln.strip() for ln in body.split("\n"))):
        assert line in a.text


# ------------------------------------------------------------------ one-paragraph pages (issue #10)
ONE_PARAGRAPH = (
    "来源：某市人才工作局 时间：2024年5月6日，某市发布青年人才新政，对新引进的博士研究生给予每月三千元"
    "生活补贴，补贴期限为三年。"
)


@pytest.mark.parametrize(
    "text",
    [
        ONE_PARAGRAPH,  # short: a byline pattern inside the article's only sentence
        ONE_PARAGRAPH
        + "本科毕业生可申请人才公寓，租住满三年且符合条件的，可按优惠价格购买；新政自发布之日起施行，"
        "具体申报流程可在人才网查询。",  # long: over the length of any title
        "发布时间：2024-05-06 来源：某市人才工作局\n"
        + ONE_PARAGRAPH[20:],  # a byline line, then one paragraph
        "2024-05-06\n\n原标题：某市青年人才新政发布"
        + ONE_PARAGRAPH[20:] * 3,  # the body goes on after 原标题： on its line
    ],
)
def test_a_one_paragraph_page_keeps_its_paragraph_as_the_body(tmp_path, text):
    path = tmp_path / "news.txt"
    path.write_text(text + "\n", encoding="utf-8")
    a = load(path)
    assert "对新引进的博士研究生给予每月三千元生活补贴" in a.text
    assert a.title
    assert len(a.title) <= 100
    chunks = chunk_article(a, size=220)
    assert "三千元生活补贴" in "".join(c.text for c in chunks)


def test_a_page_of_only_furniture_is_skipped_with_the_real_cause(tmp_path):
    path = tmp_path / "junk.txt"
    path.write_text(
        "当前位置: 首页 >> 新闻\n编辑:王五 来源:某市日报 发布时间:2024-03-28 09:34:36\nbanner.png\n",
        encoding="utf-8",
    )
    with pytest.raises(LoadError, match="only web-page furniture") as err:
        load(path)
    assert "scanned PDF" not in str(err.value)


def test_a_front_matter_only_file_says_so(tmp_path):
    path = tmp_path / "meta.md"
    path.write_text("---\ntitle: 只有标题\n---\n\n", encoding="utf-8")
    with pytest.raises(LoadError, match="no text found after the YAML front matter"):
        load(path)


# ------------------------------------------------------------------- special files, odd names
def test_a_fifo_and_a_link_to_a_device_are_refused_without_reading(tmp_path):
    fifo = tmp_path / "pipe.md"
    os.mkfifo(fifo)  # nobody ever writes to it: an open() that waited for a writer would hang forever
    (tmp_path / "zero.txt").symlink_to("/dev/zero")  # reading it would never end
    started = time.monotonic()
    with pytest.raises(LoadError, match=r"named pipe \(FIFO\), not a regular file"):
        load(fifo)
    with pytest.raises(LoadError, match="character device, not a regular file"):
        load(tmp_path / "zero.txt")
    assert time.monotonic() - started < 5
    found = sorted(p.name for p in discover([tmp_path]))
    assert found == ["pipe.md", "zero.txt"]  # listed, so that ingest reports them


def test_a_file_name_that_is_not_utf8_is_refused_with_what_to_do(tmp_path):
    raw = os.path.join(os.fsencode(tmp_path), b"latin1-\xe9.md")
    with open(raw, "wb") as f:
        f.write("人才公寓。".encode())
    (path,) = list(discover([tmp_path]))
    with pytest.raises(LoadError, match="file name is not valid UTF-8: rename it"):
        load(path)
    assert display_path(path).endswith("latin1-\\xe9.md")
    display_path(path).encode("utf-8")  # printable and storable
