"""Store-wide ingest lease, for Chroma server mode.

The ingest lock is a file in the local store folder, so it only keeps out ingests on the same host. When
several app hosts share one `chroma run` server, an ingest also takes a lease: a record beside the
articles, naming its holder (``host:pid``) and when it runs out. Chroma has no locks, so a race is
settled by reading back: both write, wait a moment, and only the one whose name is there goes on. The
holder renews the lease every few seconds; a lease that ran out, or whose holder was a process on this
host that no longer exists, is taken over.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any

from .errors import TalentBotError
from .store import Store

logger = logging.getLogger(__name__)

LEASE_ID = "__ingest_lease__"


def this_process() -> str:
    """The holder name of this process: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _gone(owner: str) -> bool:
    """Whether ``owner`` was a process on this host that has exited."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, owned by someone else
        return False
    return False


class IngestLease:
    """Take with :meth:`acquire` (None, or the other holder's record), give back with :meth:`release`."""

    def __init__(
        self,
        store: Store,
        ttl: float = 60.0,
        renew_every: float = 5.0,
        settle: float = 0.3,
        owner: str | None = None,
    ) -> None:
        self.store, self.ttl, self.renew_every, self.settle = store, ttl, renew_every, settle
        self.owner = owner or this_process()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def holder(self) -> dict[str, Any] | None:
        """The lease record, if any: ``{"owner": "host:pid", "expires": unix time}``."""
        return self.store.get_record(LEASE_ID)

    def _write(self) -> None:
        self.store.put_record(
            LEASE_ID, {"kind": "lease", "owner": self.owner, "expires": time.time() + self.ttl}
        )

    def acquire(self) -> dict[str, Any] | None:
        """Take the lease; None when taken, else the record of the ingest that holds it."""
        held = self.holder()
        if (
            held
            and held.get("owner") != self.owner
            and float(held.get("expires", 0)) > time.time()
            and not _gone(str(held.get("owner", "")))
        ):
            return held
        self._write()
        time.sleep(self.settle)  # a rival who wrote at the same time has written by now: the last one wins
        held = self.holder()
        if held is None or held.get("owner") != self.owner:
            return held or {"owner": "another process", "expires": time.time() + self.ttl}
        self._thread = threading.Thread(target=self._renew, name="talentbot-ingest-lease", daemon=True)
        self._thread.start()
        return None

    def _renew(self) -> None:
        """Keep the lease alive (and put it back after a rebuild dropped the collection)."""
        while not self._stop.wait(self.renew_every):
            try:
                held = self.holder()
                if held is not None and held.get("owner") != self.owner:  # ran out and was taken over
                    logger.warning("the ingest lease was taken over by %s", held.get("owner"))
                    return
                self._write()
            except TalentBotError as e:  # the ingest itself will meet the same failure and report it
                logger.warning("could not renew the ingest lease: %s", e)

    def release(self) -> None:
        """Stop renewing and remove the lease if it is still this process's."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        held = self.holder()
        if held is not None and held.get("owner") == self.owner:
            self.store.delete_record(LEASE_ID)
