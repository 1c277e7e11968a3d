"""OCR of a scanned PDF (issue #14): character accuracy and seconds per page, a benchmark figure only.

The PDF is rendered here: lines of a regulation in corpus/ drawn as page images (no text layer) with the
WenQuanYi Micro Hei font, then loaded through the parser worker as `talentbot ingest` does. Accuracy is
difflib's ratio between the drawn text and the text read back, whitespace ignored.

    .venv/bin/python benchmarks/ocr_bench.py            # 3 pages
    .venv/bin/python benchmarks/ocr_bench.py --pages 5
"""

from __future__ import annotations

import argparse
import difflib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINES_PER_PAGE = 16
CHARS_PER_LINE = 34


def _font() -> Path | None:
    for folder in (Path("/usr/share/fonts"), Path("/usr/local/share/fonts")):
        found = sorted(folder.rglob("wqy-microhei.ttc")) if folder.is_dir() else []
        if found:
            return found[0]
    return None


def page_lines(pages: int) -> list[list[str]]:
    """Lines of text for ``pages`` pages, cut from the articles of a corpus regulation."""
    text = (
        (ROOT / "corpus" / "henan-rencai-liudong-tiaoli.md").read_text(encoding="utf-8").split("---", 2)[-1]
    )
    flat = "".join(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))
    lines = [flat[i : i + CHARS_PER_LINE] for i in range(0, len(flat), CHARS_PER_LINE)]
    return [lines[p * LINES_PER_PAGE : (p + 1) * LINES_PER_PAGE] for p in range(pages)]


def scanned_pdf(path: Path, pages: list[list[str]], font: Path) -> None:
    from PIL import Image, ImageDraw, ImageFont
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    face = ImageFont.truetype(str(font), 30)
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4)
    for lines in pages:
        image = Image.new("RGB", (1240, 1754), "white")
        draw = ImageDraw.Draw(image)
        for i, line in enumerate(lines):
            draw.text((90, 90 + i * 57), line, font=face, fill="black")
        c.drawImage(ImageReader(image), 0, 0, *A4)
        c.showPage()
    c.save()
    path.write_bytes(buf.getvalue())


def run(pages: int = 3) -> dict:
    """{'pages', 'accuracy' (median over pages), 'seconds_per_page', 'per_page'} or {'skipped': why}."""
    from talentbot import ocr
    from talentbot.limits import Limits
    from talentbot.parse_worker import Parser

    font = _font()
    if font is None:
        return {"skipped": "the CJK font is missing: apt-get install fonts-wqy-microhei"}
    if not ocr.available():
        return {"skipped": "OCR is not installed: pip install 'talentbot[ocr]'"}
    drawn = page_lines(pages)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scan.pdf"
        scanned_pdf(path, drawn, font)
        with Parser(Limits(), [path]) as parser:
            started = time.perf_counter()
            article = parser.load(path)
            seconds = time.perf_counter() - started
    read = dict(article.pages)
    per_page = []
    for n, lines in enumerate(drawn, 1):
        want, got = "".join("".join(lines).split()), "".join(read.get(n, "").split())
        per_page.append(round(difflib.SequenceMatcher(None, want, got, autojunk=False).ratio(), 4))
    ordered = sorted(per_page)
    return {
        "pages": pages,
        "accuracy": ordered[len(ordered) // 2],
        "per_page": per_page,
        "seconds_per_page": round(seconds / pages, 2),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=3)
    args = ap.parse_args(argv)
    sys.stdout.write(json.dumps(run(args.pages), ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
