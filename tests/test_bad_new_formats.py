"""Bad input stays safe in the new formats (issue #14): an encrypted PDF, a damaged or zip-bomb .xlsx, an
oversized spreadsheet, an .mhtml without a page and a damaged image each get a one-line reason, while the
rest of the folder is indexed (through ingest: the capped parser worker)."""

from __future__ import annotations

import io
import zipfile

from fixtures.docs import make_pdf
from fixtures.realdocs import bot_over, sheet_xlsx


def _encrypted_pdf(path):
    from pypdf import PdfReader, PdfWriter

    plain = make_pdf(path.with_name("plain.tmp"), [["Article 1. Talents get apartments."]])
    writer = PdfWriter()
    writer.append(PdfReader(plain))
    writer.encrypt(user_password="secret", owner_password="owner")
    with path.open("wb") as f:
        writer.write(f)
    plain.unlink()


def _zip_bomb_xlsx(path):
    good = sheet_xlsx(path.with_name("good.tmp"), {"Sheet1": [["类别", "补贴"], ["A类", "10万元"]]})
    buf = io.BytesIO(good.read_bytes())
    good.unlink()
    with zipfile.ZipFile(buf, "a", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/media/padding.bin", bytes(8 * 2**20))  # 8 MB of zeros: packed over 1000:1
    path.write_bytes(buf.getvalue())


def test_each_bad_file_gets_a_one_line_reason_and_the_rest_is_indexed(
    tmp_path, monkeypatch, fake_embedder, ephemeral_client
):
    docs = tmp_path / "docs"
    docs.mkdir()
    _encrypted_pdf(docs / "locked.pdf")
    _zip_bomb_xlsx(docs / "bomb.xlsx")
    (docs / "damaged.xlsx").write_bytes(b"PK\x03\x04" + bytes(200))
    (docs / "huge.csv").write_text("\n".join(f"第{i}行,{i}元" for i in range(300)), encoding="utf-8")
    (docs / "empty.mhtml").write_bytes(
        b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nno page here\r\n"
    )
    (docs / "damaged.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(300))
    (docs / "good.csv").write_text("人才类别,安家补贴\nC类,30万元\n", encoding="utf-8")
    expected = {
        "locked.pdf": "encrypted",
        "bomb.xlsx": "zip bomb",
        "damaged.xlsx": "Excel",
        "huge.csv": "TALENTBOT_MAX_SHEET_ROWS",
        "empty.mhtml": "no HTML page",
        "damaged.jpg": "image",
    }
    bot, report = bot_over(docs, tmp_path / "store", monkeypatch, ephemeral_client, max_sheet_rows=100)
    assert report.added == 1
    reasons = {f["path"].rsplit("/", 1)[-1]: f["error"] for f in report.failed}
    assert set(reasons) == set(expected)
    for name, word in expected.items():
        assert word in reasons[name], (name, reasons[name])
        assert "\n" not in reasons[name]
    answer = bot.ask("C类人才的安家补贴是多少？")
    assert answer.citations
    assert answer.citations[0].file == "good.csv"
