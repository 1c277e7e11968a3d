"""Caps on what one file may cost to parse: bytes, characters, zip size/entries/ratio, YAML aliases,
spreadsheet rows, time and memory, and OCR pages, time and memory. Checked before (or while) a parser runs, so a small bomb is refused cheaply.

A breach raises :class:`ParseError`: the file's own content is at fault, so the same bytes under the
same limits fail the same way, and ingest does not parse them again until the file changes.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from .config import Settings

MB = 2**20
FRONT_MATTER_MAX = 64 * 1024  # characters of YAML front matter: titles and dates need far less
ZIP_RATIO_MIN_BYTES = MB  # entries smaller than this are never judged by their compression ratio


class LoadError(Exception):
    """A file could not be turned into an article; the message is the one-line reason."""


class ParseError(LoadError):
    """The file's content could not be parsed (damaged, or over a limit): it fails again until it changes."""


@dataclass(frozen=True)
class Limits:
    """What parsing one file may cost. ``None`` for ``max_bytes`` means no size cap."""

    max_bytes: int | None = None
    max_chars: int = 2_000_000
    max_unpacked_bytes: int = 64 * MB
    max_zip_entries: int = 2000
    max_zip_ratio: float = 100.0
    timeout_s: float = 60.0
    memory_mb: int = 1024
    max_sheet_rows: int = 20_000
    ocr_max_pages: int = 50
    ocr_timeout_s: float = 600.0
    ocr_memory_mb: int = 3072

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        """The limits the settings ask for."""
        return cls(
            max_bytes=int(settings.max_file_mb * MB),
            max_chars=settings.max_file_chars,
            max_unpacked_bytes=int(settings.max_unpacked_mb * MB),
            max_zip_entries=settings.max_zip_entries,
            max_zip_ratio=settings.max_zip_ratio,
            timeout_s=settings.parse_timeout,
            memory_mb=settings.parse_memory_mb,
            max_sheet_rows=settings.max_sheet_rows,
            ocr_max_pages=settings.ocr_max_pages,
            ocr_timeout_s=settings.ocr_timeout,
            ocr_memory_mb=settings.ocr_memory_mb,
        )

    def fingerprint(self) -> str:
        """A stable text of every limit: a failure remembered under other limits is tried again."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Limits:
        """The inverse of ``dataclasses.asdict`` (used by the parser worker)."""
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def check_chars(count: int, limits: Limits) -> None:
    """Refuse text longer than ``limits.max_chars`` characters."""
    if count > limits.max_chars:
        raise ParseError(
            f"text is over {limits.max_chars:,} characters (raise TALENTBOT_MAX_FILE_CHARS to index it)"
        )


def check_zip(data: bytes, limits: Limits, what: str) -> None:
    """Refuse a zip archive (e.g. a .docx) whose directory promises too many entries, too many unpacked
    bytes, or an entry packed tighter than real documents are: read from the central directory only,
    before anything is decompressed. (zipfile never inflates an entry past the size its directory states.)"""
    try:
        infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        raise ParseError(f"corrupt or unreadable {what} ({e})") from e
    if len(infos) > limits.max_zip_entries:
        raise ParseError(
            f"{what} holds {len(infos):,} zip entries, over the limit of {limits.max_zip_entries:,} "
            "(a zip bomb?); raise TALENTBOT_MAX_ZIP_ENTRIES to index it"
        )
    total = sum(i.file_size for i in infos)
    if total > limits.max_unpacked_bytes:
        raise ParseError(
            f"{what} unpacks to {total / MB:,.0f} MB, over the {limits.max_unpacked_bytes / MB:,.0f} MB "
            "limit (a zip bomb?); raise TALENTBOT_MAX_UNPACKED_MB to index it"
        )
    for i in infos:
        if i.file_size >= ZIP_RATIO_MIN_BYTES and i.file_size > limits.max_zip_ratio * max(
            i.compress_size, 1
        ):
            raise ParseError(
                f"{what} entry {i.filename!r} is packed {i.file_size / max(i.compress_size, 1):,.0f}:1, "
                f"over the {limits.max_zip_ratio:g}:1 limit (a zip bomb?); "
                "raise TALENTBOT_MAX_ZIP_RATIO to index it"
            )


class _NoAliasLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses aliases (``*name``): without them, the data is never larger than the
    text, so a few hundred bytes can't expand into gigabytes (the 'billion laughs')."""

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:  # PyYAML's signature
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in front matter", event.start_mark
            )
        return super().compose_node(parent, index)


def load_yaml(text: str) -> object:
    """Parse YAML front matter under the caps: at most FRONT_MATTER_MAX characters, no aliases, bounded depth."""
    if len(text) > FRONT_MATTER_MAX:
        raise ParseError(
            f"YAML front matter is over {FRONT_MATTER_MAX // 1024} KB; keep it to title, source, date, url"
        )
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # a SafeLoader subclass
    except yaml.YAMLError as e:
        raise ParseError(f"bad YAML front matter: {str(e).splitlines()[0]}") from e
    except RecursionError as e:
        raise ParseError("bad YAML front matter: nested too deeply") from e
