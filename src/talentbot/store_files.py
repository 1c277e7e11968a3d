"""The embedded store's files on disk: integrity check, free-space check, and wiping a damaged store.

Only the files an embedded Chroma (1.x) owns are ever touched: the SQLite file with its journal/WAL
companions and the UUID-named vector-segment folders. Anything else in the store folder (the lexical
index, the ingest lock, the user's files) is left alone.
"""

from __future__ import annotations

import logging
import re
import shutil
import sqlite3
import threading
from pathlib import Path

from .errors import StoreError
from .store_errors import BUSY_CODES

logger = logging.getLogger(__name__)

SQLITE_FILE = "chroma.sqlite3"
_SQLITE_FILES = (SQLITE_FILE, f"{SQLITE_FILE}-journal", f"{SQLITE_FILE}-wal", f"{SQLITE_FILE}-shm")
_SEGMENT_DIR = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_SEGMENT_FILES = {"header.bin", "data_level0.bin", "length.bin", "link_lists.bin", "index_metadata.pickle"}
_SQLITE_MAGIC = b"SQLite format 3\x00"
LOW_DISK_BYTES = 64 * 2**20  # a failed write with less free space than this (or 10% of the disk): a full disk
_OPEN_LOCK = threading.RLock()  # creating and stopping embedded Chroma Systems


def integrity_problem(folder: Path, thorough: bool = False) -> str | None:
    """Why the embedded store in ``folder`` is damaged, or None when it looks sound (or is absent).

    The quick test reads only the SQLite header (no lock is needed: its magic never changes); when
    it looks wrong, or when ``thorough``, SQLite's own ``PRAGMA quick_check`` decides, under SQLite's
    shared lock, so that a write in progress in another process is never taken for damage.
    """
    db = folder / SQLITE_FILE
    try:
        size = db.stat().st_size
        with open(db, "rb") as fh:
            head = fh.read(100)
    except FileNotFoundError:
        return None
    except OSError as e:
        return f"{db} cannot be read ({e.strerror or e})"
    if size == 0:
        if _segment_dirs(folder):
            return f"{db} is empty while the store holds vector segments (truncated file)"
        return None  # a store being created: Chroma fills it
    suspicious = not head.startswith(_SQLITE_MAGIC) or size % 512 != 0
    if not (suspicious or thorough):
        return None
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            rows = con.execute("PRAGMA quick_check(3)").fetchall()
        finally:
            con.close()
    except sqlite3.DatabaseError as e:
        if (getattr(e, "sqlite_errorcode", 0) & 0xFF) in BUSY_CODES:  # another process is writing
            logger.info("cannot check %s now (%s)", db, e)
            return None
        return f"{db}: {e}"
    if rows and rows[0][0] != "ok":
        return f"{db} fails SQLite's integrity check: {str(rows[0][0]).splitlines()[-1].strip()}"
    return None


def low_disk(folder: Path) -> str | None:
    """'only N MB free' when the disk holding ``folder`` is (nearly) full, else None."""
    try:
        usage = shutil.disk_usage(folder)
    except OSError:
        return None
    if usage.free < min(LOW_DISK_BYTES, usage.total // 10):
        return f"only {usage.free / 2**20:.1f} MB free"
    return None


def _disk_full_error(folder: Path, action: str, detail: str, left: str) -> StoreError:
    return StoreError(
        f"the disk holding the vector store {folder} is full ({left}) so {action} failed ({detail}). "
        "Free some disk space (or point TALENTBOT_STORE elsewhere), then run `talentbot ingest` again: "
        "it repairs the interrupted ingest; until then the store answers from what was indexed before"
    )


def _segment_dirs(folder: Path) -> list[Path]:
    """Chroma's vector-segment folders in ``folder``: UUID-named, holding only HNSW files."""
    out: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return out
    for d in entries:
        if d.is_symlink() or not d.is_dir() or not _SEGMENT_DIR.fullmatch(d.name):
            continue
        try:
            if all(f.is_file() and not f.is_symlink() and f.name in _SEGMENT_FILES for f in d.iterdir()):
                out.append(d)
        except OSError:
            continue
    return out


def _release_embedded(path: str) -> None:
    """Stop and forget chromadb's cached System for the embedded store at ``path``.

    chromadb keeps one System per path for the life of the process; one whose start failed (a
    damaged file) stays cached and broken, and one left open after the files are removed would
    keep serving the deleted file. Either way the next client must start a fresh one.
    """
    from chromadb.api.shared_system_client import SharedSystemClient

    with _OPEN_LOCK, SharedSystemClient._refcount_lock:
        system = SharedSystemClient._identifier_to_system.pop(path, None)
        SharedSystemClient._identifier_to_refcount.pop(path, None)
    if system is not None:
        try:
            system.stop()
        except AttributeError as e:  # chromadb 1.5.9: a System whose start failed has no bindings to `del`
            logger.debug("stopping the Chroma system of %s: %s", path, e)


def wipe_embedded(folder: Path) -> list[str]:
    """Remove the files an embedded Chroma owns in ``folder`` (and nothing else); return their names."""
    _release_embedded(str(folder))
    removed = []
    for name in _SQLITE_FILES:
        p = folder / name
        if p.is_file() and not p.is_symlink():
            p.unlink()
            removed.append(name)
    for d in _segment_dirs(folder):
        shutil.rmtree(d)
        removed.append(d.name + "/")
    logger.warning("removed the damaged vector store files in %s: %s", folder, ", ".join(removed) or "none")
    return removed
