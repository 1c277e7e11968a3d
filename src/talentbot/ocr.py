"""OCR of scanned pages and images (rapidocr-onnxruntime: PP-OCR Chinese models bundled in its wheel).

Optional: installed by the ``[ocr]`` extra (scripts/chat.sh and scripts/test.sh install it). Without it a file
that needs OCR is skipped with a reason saying how to enable it (a :class:`LoadError`: tried again on the next
ingest, unlike a damaged file). PDF pages are rendered with pypdfium2 (installed with pdfplumber); at most
``Limits.ocr_max_pages`` pages of a file are read, for at most ``Limits.ocr_timeout_s`` seconds, and the
pages left out are named in a note. Text comes back in reading order: boxes grouped into lines top to
bottom, lines joined into paragraphs where a line runs on to the margin.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import logging
import os
import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from .article import Article, first_line, make_article
from .limits import MB, Limits, LoadError, ParseError

logger = logging.getLogger(__name__)

OCR_PACKAGE = "rapidocr_onnxruntime"
ENABLE = "install OCR to read it: pip install 'talentbot[ocr]' (scripts/chat.sh installs it)"
RENDER_SCALE = 2.0  # PDF points -> pixels (144 dpi): small print stays legible
MAX_SIDE = 2600  # pixels of the longer side of a page or image given to the OCR engine
MAX_PIXELS = 60_000_000  # larger images are refused before they are decoded (a decompression bomb?)
_END = "。！？!?：:；;"

Progress = Callable[[int, int], None]
#: Called with (pages done, pages to do) before each OCR'd page; the parser worker sets it to report progress.
PROGRESS: ContextVar[Progress | None] = ContextVar("talentbot_ocr_progress", default=None)


class OcrMissing(LoadError):
    """OCR is needed but not installed: not the file's fault, so it is tried again on the next ingest."""


def available() -> bool:
    """Whether the OCR engine is installed."""
    return importlib.util.find_spec(OCR_PACKAGE) is not None


def _allow_memory(limits: Limits) -> None:
    """Raise this process's address-space cap (set by the parser worker) to ``limits.ocr_memory_mb``: the
    engine and its models need more than parsing does. A process without a cap is left as it is."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        want = limits.ocr_memory_mb * MB
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(
                resource.RLIMIT_AS, (want if hard == resource.RLIM_INFINITY else min(want, hard), hard)
            )
    except (ImportError, ValueError, OSError):
        pass


@functools.lru_cache(maxsize=1)
def _engine() -> Any:
    from rapidocr_onnxruntime import RapidOCR

    threads = max(1, min(4, (os.cpu_count() or 2) // 2))  # leave cores to the rest of ingest
    return RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1)


def engine(limits: Limits, what: str) -> Any:
    """The OCR engine (loaded once per process), or :class:`OcrMissing` naming ``what`` needed it."""
    if not available():
        raise OcrMissing(f"{what}; {ENABLE}")
    _allow_memory(limits)
    try:
        return _engine()
    except (ImportError, OSError) as e:  # e.g. OpenCV without the system's libGL
        raise OcrMissing(
            f"{what}, but the OCR engine cannot load ({str(e).splitlines()[0]}); on Debian/Ubuntu: "
            "apt-get install libgl1 libglib2.0-0"
        ) from e


def read_image(image: Any, limits: Limits, what: str = "the image needs OCR") -> str:
    """The text of a PIL image, in reading order ('' when OCR finds none)."""
    import numpy as np

    ocr = engine(limits, what)
    if max(image.size) > MAX_SIDE:
        image = image.copy()
        image.thumbnail((MAX_SIDE, MAX_SIDE))
    try:
        result, _ = ocr(np.asarray(image.convert("RGB")))
    except MemoryError:
        raise
    except Exception as e:  # onnxruntime reports running out of memory as its own RuntimeException
        if "bad_alloc" in str(e) or "allocat" in str(e).lower():
            raise ParseError(
                f"OCR needs more than {limits.ocr_memory_mb} MB of memory; raise "
                "TALENTBOT_OCR_MEMORY_MB to allow more"
            ) from e
        raise
    return boxes_to_text(result or [])


# ------------------------------------------------------------------------------------- reading order
def _join(a: str, b: str) -> str:
    return a + (" " if a and b and a[-1].isascii() and b[0].isascii() and a[-1].isalnum() else "") + b


def boxes_to_text(result: Sequence[Sequence[Any]]) -> str:
    """Text of OCR boxes ``[[corner points], text, score]``: boxes on one line (vertical centres within a
    line's height) left to right, lines top to bottom; a line joins the one before it when that one reaches
    the right margin without ending a sentence, and is not indented (a wrapped line of a paragraph)."""
    boxes = []
    for points, text, *_ in result:
        ys = [p[1] for p in points]
        xs = [p[0] for p in points]
        if str(text).strip():
            boxes.append((min(ys), max(ys), min(xs), max(xs), str(text).strip()))
    if not boxes:
        return ""
    boxes.sort(key=lambda b: (b[0] + b[1]) / 2)
    lines: list[list[tuple[float, float, float, float, str]]] = []
    for box in boxes:
        centre = (box[0] + box[1]) / 2
        if lines and lines[-1][0][0] <= centre <= lines[-1][0][1]:
            lines[-1].append(box)
        else:
            lines.append([box])
    rows = []  # (left, right, height, text)
    for line in lines:
        line.sort(key=lambda b: b[2])
        text = ""
        for i, b in enumerate(line):
            gap = b[2] - line[i - 1][3] if i else 0
            text = text + "  " + b[4] if gap > 2 * (b[1] - b[0]) else _join(text, b[4])
        rows.append((line[0][2], line[-1][3], max(b[1] - b[0] for b in line), text))
    widths = sorted((b[3] - b[2]) / len(b[4]) for b in boxes if len(b[4]) >= 4) or sorted(r[2] for r in rows)
    h = widths[len(widths) // 2]  # a character's width: how far short of the margin a full line may end
    left, right = min(r[0] for r in rows), max(r[1] for r in rows)
    paragraphs: list[str] = []
    prev: tuple[float, float, float, str] | None = None
    for row in rows:
        runs_on = (
            prev is not None and prev[3][-1] not in _END and prev[1] >= right - 0.8 * h and row[0] <= left + h
        )
        paragraphs[-1:] = [_join(paragraphs[-1], row[3])] if runs_on else [*paragraphs[-1:], row[3]]
        prev = row
    return "\n".join(paragraphs)


# ------------------------------------------------------------------------------------------- PDF pages
def read_pdf_pages(data: bytes, pages: Sequence[int], limits: Limits) -> tuple[dict[int, str], list[str]]:
    """OCR the given pages (numbered from 1) of a PDF: ({page: text}, notes on pages left out by a cap)."""
    import pypdfium2 as pdfium

    what = f"{len(pages)} page(s) have no text layer (scanned)"
    engine(limits, what)  # OcrMissing before any rendering
    todo = list(pages)[: limits.ocr_max_pages]
    notes = []
    if len(pages) > len(todo):
        notes.append(
            f"OCR read the first {len(todo)} of {len(pages)} scanned pages; pages from {pages[len(todo)]} on "
            "are not indexed (raise TALENTBOT_OCR_MAX_PAGES to read them)"
        )
    try:
        doc = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as e:
        raise ParseError(f"cannot render the PDF's scanned pages ({e})") from e
    texts: dict[int, str] = {}
    start = time.monotonic()
    progress = PROGRESS.get()
    try:
        for done, number in enumerate(todo):
            if time.monotonic() - start > limits.ocr_timeout_s:
                notes.append(
                    f"OCR stopped after {limits.ocr_timeout_s:g} s at page {number}; the {len(todo) - done} "
                    "scanned page(s) from there on are not indexed (raise TALENTBOT_OCR_TIMEOUT)"
                )
                break
            if progress:
                progress(done, len(todo))
            page = doc[number - 1]
            width, height = page.get_size()
            scale = min(RENDER_SCALE, MAX_SIDE / max(width, height, 1))
            texts[number] = read_image(page.render(scale=scale).to_pil(), limits, what)
            page.close()
    finally:
        doc.close()
    return texts, notes


# ---------------------------------------------------------------------------------------------- images
def load_image(path: Path, data: bytes, limits: Limits) -> Article:
    """A .png/.jpg image of a notice: its text by OCR (metadata ``ocr``: True)."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        pixels = image.size[0] * image.size[1]
        if pixels > MAX_PIXELS:
            raise ParseError(
                f"the image is {image.size[0]}x{image.size[1]} pixels, over the {MAX_PIXELS // 10**6} "
                "megapixel limit (a decompression bomb?)"
            )
        image.load()
    except Image.DecompressionBombError as e:  # Pillow's own, larger cap, checked when the file is opened
        raise ParseError(
            f"the image is over the {MAX_PIXELS // 10**6} megapixel limit (a decompression bomb?)"
        ) from e
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise ParseError(
            f"corrupt or unreadable image ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
        ) from e
    progress = PROGRESS.get()
    if progress:
        progress(0, 1)
    text = read_image(image, limits, "the image needs OCR")
    return make_article(
        path,
        first_line(text) or path.stem,
        [(None, text)],
        {"ocr": True},
        "no text found (OCR read no text in the image)",
    )
