"""Files whose content failed to parse, remembered in the store so that ingest does not parse them again.

One bookkeeping record (``__failed_files__``) maps an article key to the size, mtime and parser limits the
file failed under, and the reason. A file is parsed again once any of them changes. Only content failures
(:class:`~talentbot.limits.ParseError`: damaged, a bomb, over a limit) are remembered; a file that could
not be read (permissions, a vanished file) is tried again on every run.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from .limits import Limits
from .store import Store

logger = logging.getLogger(__name__)

FAILURES_ID = "__failed_files__"


class FailureLog:
    """The remembered parse failures of one store, read at the start of an ingest and saved at the end."""

    def __init__(self, store: Store, limits: Limits, loader_version: str = "") -> None:
        """``loader_version``: a file that failed under other loaders is parsed again (they may read it now)."""
        self.store = store
        self.fingerprint = (
            f"{limits.fingerprint()}|{loader_version}" if loader_version else limits.fingerprint()
        )
        rec = store.get_record(FAILURES_ID)
        try:
            self.entries: dict[str, dict] = json.loads(rec["json"]) if rec else {}
        except (KeyError, TypeError, ValueError):
            logger.warning("the record of failed files is unreadable; every file will be parsed again")
            self.entries = {}
        self._dirty = False

    def known(self, key: str, st: os.stat_result | None) -> str | None:
        """The reason a file failed, if it failed before as it is now (same size, mtime, limits and loaders)."""
        e = self.entries.get(key)
        if e is None or st is None:
            return None
        same = (e.get("size"), e.get("mtime_ns"), e.get("limits")) == (
            st.st_size,
            st.st_mtime_ns,
            self.fingerprint,
        )
        return str(e.get("error", "")) if same else None

    def remember(self, key: str, path: Path, st: os.stat_result | None, error: str) -> None:
        """Record that ``path`` (as stat'ed before it was parsed) failed with ``error``."""
        if st is None:
            return
        self.entries[key] = {
            "path": str(path.resolve()),
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "limits": self.fingerprint,
            "error": error,
        }
        self._dirty = True

    def forget(self, key: str) -> None:
        """The file parsed (or is gone): stop remembering its failure."""
        if self.entries.pop(key, None) is not None:
            self._dirty = True

    def prune(self, seen: set[str], roots: Iterable[Path], blocked: Iterable[Path] = ()) -> None:
        """Forget failures of files that were not seen under an ingested folder, or no longer exist
        (files under a folder that could not be read are kept: they were not looked at)."""
        roots, blocked = [r.resolve() for r in roots], [b.resolve() for b in blocked]
        for key in [k for k in self.entries if k not in seen]:
            p = Path(self.entries[key].get("path", ""))
            if any(b in p.parents for b in blocked):
                continue
            try:
                gone = not p.exists()
            except OSError:
                gone = False
            if gone or any(p == r or r in p.parents for r in roots):
                self.forget(key)

    def save(self) -> None:
        """Write the record back if anything changed."""
        if self._dirty:
            self.store.put_record(FAILURES_ID, {"kind": "failures", "json": json.dumps(self.entries)})
            self._dirty = False


def stat_or_none(path: Path) -> os.stat_result | None:
    """``os.stat`` of the file, or None when it can't be stat'ed."""
    try:
        return os.stat(path)
    except (OSError, ValueError):
        return None
