"""Text decoding: exact bytes -> str for UTF-8 (± BOM), UTF-16 with BOM, GB18030/GBK and Big5; cleaning."""

from __future__ import annotations

import codecs
import re

from .limits import ParseError


def decode(data: bytes) -> str:
    """Decode text bytes exactly: BOMs first, then strict UTF-8, then GB18030, then Big5; else raise LoadError."""
    for bom, enc in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(enc)
            except UnicodeDecodeError as e:
                raise ParseError(f"invalid {enc} text after its byte-order mark ({e.reason})") from e
    if _looks_binary(data):
        raise ParseError("binary file, not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    # GB18030 decodes almost any byte string, Big5 included; Big5 read that way turns into characters of
    # the Private Use Area, which real text does not hold. Big5 (cp950: as Windows writes it) then gets a try.
    for enc in ("gb18030", "cp950"):
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        if not _private_use(text):
            return text
    raise ParseError("unknown text encoding (not UTF-8, GB18030/GBK or Big5): save it as UTF-8")


_PRIVATE_USE = re.compile(r"[\ue000-\uf8ff]")


def _private_use(text: str) -> bool:
    """Whether more than 1% of the non-ASCII characters are Private Use Area code points (a wrong codec)."""
    private = len(_PRIVATE_USE.findall(text))
    return private > 0 and private > 0.01 * sum(1 for c in text if ord(c) > 127)


def _looks_binary(data: bytes) -> bool:
    sample = data[:8192]
    if not sample:
        return False
    controls = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13))
    return controls / len(sample) > 0.01


# Zero-width characters pasted from web pages (U+200D stays: it joins emoji sequences).
_INVISIBLE = re.compile(r"[\u200b\u200c\u200e\u200f\u2060]")


def clean_text(text: str) -> str:
    """Normalise newlines, drop NULs and other control characters, trim trailing spaces."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r"[\x00-\x08\x0b\x0e-\x1f\x7f\ufeff]", "", text)
    text = _INVISIBLE.sub("", text)
    return "\n".join(line.rstrip() for line in text.split("\n")).strip()
