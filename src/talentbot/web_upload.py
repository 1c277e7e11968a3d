"""Articles uploaded through the browser: checked, saved into the corpus without replacing anything, taken
out again when the ingest rejects them, and the summary of what the ingest made of them.

Only real uploads are accepted: files inside Gradio's upload folder. A client-supplied path to anything
else on the server is refused here (and earlier by the request guard and Gradio's own check).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from .config import Settings
from .errors import InputError
from .loaders import SUPPORTED
from .web_render import md_safe

if TYPE_CHECKING:
    from .ingest import IngestReport

logger = logging.getLogger(__name__)

_UNSAFE_NAME = re.compile(r"[^\w.\-\u4e00-\u9fff]")
MAX_NAME_CHARS = 120


def upload_folder() -> Path:
    """Gradio's upload folder (where the files a browser uploads are written), resolved."""
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder()).resolve()


def check_uploads(files: list, settings: Settings) -> list[Path]:
    """The uploaded files' paths, after refusing any that is not a real upload, of another type, or too big."""
    folder = upload_folder()
    paths = []
    for f in files:
        path = Path(str(getattr(f, "name", f)))
        try:
            real = path.resolve()
            is_upload = real.is_relative_to(folder) and real.is_file()
        except (OSError, ValueError):
            is_upload = False
        if not is_upload:
            raise InputError(
                f"{path.name}: only files uploaded through this page can be added; upload the file "
                "itself, not a path on the server"
            )
        if path.suffix.lower() not in SUPPORTED:
            raise InputError(f"{path.name}: unsupported type; use {', '.join(sorted(SUPPORTED))}")
        if real.stat().st_size > settings.max_upload_mb * 2**20:
            raise InputError(f"{path.name} is over {settings.max_upload_mb:g} MB")
        paths.append(real)
    return paths


def safe_name(name: str) -> str:
    """A file name safe to create in the corpus: no separators, no leading dot, a bounded length."""
    name = _UNSAFE_NAME.sub("_", name).lstrip(".") or "upload"
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    stem = stem[: MAX_NAME_CHARS - len(suffix) - 1] or "upload"
    return f"{stem}.{suffix}" if suffix else stem


def save_upload(src: Path, corpus: Path) -> Path:
    """Copy ``src`` into ``corpus`` under a name that is free: ``a.md``, else ``a-2.md``, ``a-3.md`` …

    The file is created exclusively (``O_EXCL``), so an existing article is never replaced, even by a
    second upload racing this one.
    """
    corpus.mkdir(parents=True, exist_ok=True)
    name = safe_name(src.name)
    stem, suffix = os.path.splitext(name)
    for i in range(1, 10_000):
        target = corpus / (name if i == 1 else f"{stem}-{i}{suffix}")
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
        try:
            with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
                shutil.copyfileobj(inp, out)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        if i > 1:
            logger.info("upload %s saved as %s: an article of that name exists", src.name, target.name)
        return target
    raise InputError(
        f"{src.name}: too many articles of that name in {corpus}; rename the file and upload it again"
    )


def drop_rejected(failed: list[dict], saved: list[Path]) -> dict[Path, dict]:
    """Delete the saved uploads the ingest rejected (listed in ``failed``); return each removed path with
    its ``failed`` entry."""

    def same(entry: dict, path: Path) -> bool:
        try:
            return Path(entry["path"]).resolve() == path.resolve()
        except (OSError, ValueError, KeyError):
            return False

    removed = {}
    for path in saved:
        entry = next((f for f in failed if same(f, path)), None)
        if entry is None:
            continue
        try:
            path.unlink(missing_ok=True)
            removed[path] = entry
        except OSError as e:
            logger.warning("could not remove the rejected upload %s: %s", path, e)
    return removed


def ingest_summary(r: IngestReport, skip: set[int] | frozenset[int] = frozenset()) -> str:
    """An ingest report as one Markdown line, then a line per failed file (but those whose ``id`` is in
    ``skip``)."""
    failed = "".join(
        f"\n- {md_safe(Path(f['path']).name)}: {md_safe(f['error'])}" for f in r.failed if id(f) not in skip
    )
    return (
        f"**added** {r.added} · **updated** {r.updated} · **unchanged** {r.unchanged} · "
        f"**removed** {r.removed} · **failed** {len(r.failed)} · **chunks** {r.chunks} · "
        f"{r.seconds:.1f} s{failed}"
    )


def upload_summary(r: IngestReport, saved: dict[Path, str], removed: dict[Path, dict]) -> str:
    """The ingest after an upload: its summary, then what became of the uploads (``saved``: path in the
    corpus -> name uploaded) that were rejected (``removed``) or saved under another name."""
    notes = [
        f"{md_safe(saved[p])}: not added ({md_safe(f['error'])}); removed from the corpus"
        for p, f in removed.items()
    ]
    notes += [
        f"{md_safe(name)}: an article of that name exists, so it was saved as {md_safe(p.name)}"
        for p, name in saved.items()
        if p not in removed and p.name != safe_name(name)
    ]
    skip = {id(f) for f in removed.values()}
    return ingest_summary(r, skip) + "".join(f"\n- {n}" for n in notes)
