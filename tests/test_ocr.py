"""OCR (issue #14): a scanned PDF (Chinese drawn as images, no text layer) and an image of a notice are read
by rapidocr, answered and cited; a mixed PDF OCRs only its page without text; caps and missing OCR give
reasons. The engine's work takes seconds per page: these tests are marked slow (the OCR-free checks are not)."""

from __future__ import annotations

import difflib
import re
import struct
import zlib

import pytest

from fixtures.realdocs import bot_over, scanned_pdf, text_image
from talentbot import ocr
from talentbot.limits import Limits, LoadError
from talentbot.loaders import load
from talentbot.parse_worker import Parser

NOTICE = [
    "关于印发高层次人才安家补贴办法的通知",
    "C类人才的安家补贴为30万元，分三年发放。",
    "申请人须在本市连续工作满三年。",
]
needs_ocr = pytest.mark.skipif(
    not ocr.available(), reason="OCR is not installed: pip install 'talentbot[ocr]'"
)


def _accuracy(expected: str, got: str) -> float:
    return difflib.SequenceMatcher(
        None, "".join(expected.split()), "".join(got.split()), autojunk=False
    ).ratio()


@needs_ocr
@pytest.mark.slow
def test_a_scanned_pdf_is_read_in_order_with_page_numbers_in_the_worker(tmp_path):
    path = scanned_pdf(tmp_path / "scan.pdf", [NOTICE, None])  # page 2 has a text layer: not OCR'd
    pages = []
    with Parser(
        Limits(), [path], on_page=lambda p, done, total: pages.append((p.name, done, total))
    ) as parser:
        a = parser.load(path)
    assert pages == [("scan.pdf", 0, 1)]  # progress per OCR'd page, and only page 1 needed it
    assert a.metadata["ocr"] is True
    assert a.metadata["ocr_pages"] == "1"
    assert [n for n, _ in a.pages] == [1, 2]
    assert a.pages[1][1].startswith("第2页为文字页")  # the text layer, as it was
    assert _accuracy("\n".join(NOTICE), a.pages[0][1]) >= 0.9
    assert a.pages[0][1].split("\n") == NOTICE  # reading order: one line per line, top to bottom
    assert a.title == NOTICE[0]


@needs_ocr
@pytest.mark.slow
def test_a_scanned_notice_is_answered_and_cited(tmp_path, monkeypatch, fake_embedder, ephemeral_client):
    docs = tmp_path / "docs"
    docs.mkdir()
    scanned_pdf(docs / "notice.pdf", [NOTICE])
    text_image(["人才公寓申请须知", "申请人才公寓应当提交学历证明和劳动合同。"]).save(docs / "apartment.png")
    bot, report = bot_over(docs, tmp_path / "store", monkeypatch, ephemeral_client)
    assert report.added == 2, report.failed
    answer = bot.ask("C类人才的安家补贴是多少？")
    assert not answer.no_answer, answer.text
    assert "30万元" in answer.text
    cited = answer.citations[int(re.search(r"\[(\d+)\]", answer.text).group(1)) - 1]
    assert cited.file == "notice.pdf"
    assert cited.page == 1
    assert "30万元" in cited.text
    assert cited.ocr  # the citation says the text was read by OCR, and the source card shows it
    from talentbot.web_render import sources_html

    assert "OCR" in sources_html(answer, 0)
    answer = bot.ask("申请人才公寓应当提交哪些材料？")
    assert "学历证明和劳动合同" in answer.text
    assert answer.citations[0].file == "apartment.png"


@needs_ocr
@pytest.mark.slow
def test_ocr_page_cap_leaves_a_note_and_an_image_without_text_a_reason(tmp_path):
    path = scanned_pdf(tmp_path / "two.pdf", [NOTICE, ["第二页的内容不会被识别。"]])
    a = load(path, limits=Limits(ocr_max_pages=1))
    assert [n for n, _ in a.pages] == [1]
    assert any("TALENTBOT_OCR_MAX_PAGES" in note for note in a.notes)
    blank = tmp_path / "blank.png"
    text_image([]).save(blank)
    with pytest.raises(LoadError, match="no text found") as err:
        load(blank)
    assert "\n" not in str(err.value)


def test_without_ocr_a_scanned_pdf_says_how_to_enable_it_and_is_tried_again(tmp_path, monkeypatch):
    monkeypatch.setattr(ocr, "available", lambda: False)  # as on an install without the [ocr] extra
    path = scanned_pdf(tmp_path / "scan.pdf", [NOTICE])
    with pytest.raises(ocr.OcrMissing, match=r"pip install 'talentbot\[ocr\]'") as err:
        load(path)
    assert "\n" not in str(err.value)
    mixed = scanned_pdf(tmp_path / "mixed.pdf", [NOTICE, None])
    a = load(mixed)  # the page with text is indexed; the scanned one is named in a note
    assert [n for n, _ in a.pages] == [2]
    assert any("talentbot[ocr]" in note for note in a.notes)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` pixels and holds a few bytes of data (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def test_an_image_bomb_is_refused_before_it_is_decoded(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(40_000, 40_000))
    with pytest.raises(LoadError, match="megapixel limit") as err:
        load(path)
    assert "\n" not in str(err.value)


def test_ocr_lines_join_into_paragraphs_only_where_a_line_runs_on():
    box = lambda x0, x1, y, text: [[[x0, y], [x1, y], [x1, y + 30], [x0, y + 30]], text, 0.99]  # noqa: E731
    result = [
        box(100, 400, 40, "通知标题"),  # short: a line of its own
        box(160, 1000, 100, "第一段的第一行一直写到了右边的页边距没有结束"),
        box(100, 1000, 150, "第一段的第二行写到了页边距的右侧也没有结束"),
        box(100, 500, 200, "第一段到这里结束。"),
        box(160, 600, 250, "第二段另起一行。"),
    ]
    assert ocr.boxes_to_text(result).split("\n") == [
        "通知标题",
        "第一段的第一行一直写到了右边的页边距没有结束第一段的第二行写到了页边距的右侧也没有结束第一段到这里结束。",
        "第二段另起一行。",
    ]


@needs_ocr
@pytest.mark.slow
def test_ingest_progress_shows_each_ocr_page(tmp_path, monkeypatch, fake_embedder, ephemeral_client):
    """A long scanned file reports its pages through the ingest's progress callback (the CLI's bar, the
    chat's re-index), not only the log."""
    from talentbot import TalentBot
    from talentbot.store import Store

    docs = tmp_path / "docs"
    docs.mkdir()
    scanned_pdf(docs / "long.pdf", [NOTICE, NOTICE[1:]])
    monkeypatch.setattr("talentbot.bot.Store", lambda s: Store(s, client=ephemeral_client))
    seen: list[str] = []
    report = TalentBot(store=tmp_path / "store").ingest([docs], progress=lambda d, t, name: seen.append(name))
    assert report.added == 1, report.failed
    assert "long.pdf: OCR page 1 of 2" in seen
    assert "long.pdf: OCR page 2 of 2" in seen
