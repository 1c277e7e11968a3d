"""Rebuilding aside: ``ingest --rebuild`` fills fresh collections while questions are answered from the
current ones, then switches to them in one write.

Which collections are current is said by a pointer record in a small collection of its own
(``<collection>_active``): ``{"active": name, "pending": [names to drop]}``. A store without a pointer uses
the configured collection name. The sequence, each step one write that a crash may interrupt:

1. the new name is added to ``pending`` (so a crash from here on leaves it for the next ingest to drop);
2. the new collections are created and filled (the current ones keep answering);
3. the pointer is switched: ``active`` = the new name, ``pending`` = the old one;
4. the old collections are dropped, and ``pending`` is emptied.

Other processes keep reading the old collections until they are dropped, then reopen (see
``Store._guarded``) and read the pointer. Every ingest first drops what an interrupted one left in
``pending`` (:func:`clear_abandoned`).
"""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from typing import TYPE_CHECKING, Any

from .config import Settings
from .errors import TalentBotError
from .store_errors import Failure, chroma_errors, classify, first_line
from .store_records import _guarded

if TYPE_CHECKING:
    from .store import Store

logger = logging.getLogger(__name__)

POINTER_ID = "__active__"
_CARRIED_KINDS = ("lease",)  # bookkeeping records that move to the new collections at the switch


def pointer_name(settings: Settings) -> str:
    """The collection holding the pointer record."""
    return f"{settings.collection}_active"


def read_pointer(client: Any, settings: Settings) -> dict[str, Any]:
    """``{"active": name, "pending": [...]}``; ``{}`` when the store has none (never rebuilt aside)."""
    try:
        col = client.get_collection(pointer_name(settings), embedding_function=None)
    except chroma_errors() as e:
        if classify(e) is Failure.GONE:
            return {}
        raise
    got = col.get(ids=[POINTER_ID], include=["metadatas"])
    if not got["ids"]:
        return {}
    meta = got["metadatas"][0] or {}
    active, pending = meta.get("active"), meta.get("pending") or "[]"
    try:
        pending = json.loads(pending)
    except ValueError:
        pending = None
    prefix = f"{settings.collection}-"
    if not (
        isinstance(active, str)
        and (active == settings.collection or active.startswith(prefix))
        and isinstance(pending, list)
        and all(isinstance(n, str) and n.startswith(prefix) for n in pending)
    ):
        logger.warning(
            "the collection pointer of %s is unreadable (%s); using collection %s",
            settings.collection,
            meta,
            settings.collection,
        )
        return {}
    return {"active": active, "pending": pending}


@_guarded("switching collections", write=True)
def _write_pointer(store: Store, active: str, pending: list[str]) -> None:
    col = store.client.get_or_create_collection(
        pointer_name(store.settings), metadata={"hnsw:space": "cosine"}, embedding_function=None
    )
    col.upsert(
        ids=[POINTER_ID],
        embeddings=[[1.0]],
        documents=[""],
        metadatas=[{"kind": "active", "active": active, "pending": json.dumps(pending)}],
    )


def _drop(store: Store, name: str) -> bool:
    """Drop the collection pair ``name`` and its local lexical index; False if that failed."""
    for col in (name, f"{name}_articles"):
        try:
            store.client.delete_collection(col)
        except chroma_errors() as e:
            kind = classify(e)
            if kind is None:
                raise
            if kind is not Failure.GONE:
                logger.warning("could not drop the old collection %s: %s", col, first_line(e))
                return False
    shutil.rmtree(store.settings.store / "lexical" / name, ignore_errors=True)
    return True


def clear_abandoned(store: Store) -> list[str]:
    """Drop the collections an interrupted rebuild (or switch) left behind; return their names.
    Call only while holding the ingest lock (and, in server mode, the lease)."""
    pointer = read_pointer(store.client, store.settings)
    pending = [n for n in pointer.get("pending", []) if n != store.name]
    if not pending:
        return []
    left = [n for n in pending if not _drop(store, n)]
    _write_pointer(store, store.name, left)
    dropped = [n for n in pending if n not in left]
    if dropped:
        logger.warning("dropped the collections left by an interrupted rebuild: %s", ", ".join(dropped))
    return dropped


def start_staging(store: Store) -> Store:
    """Fresh, empty collections to rebuild into, recorded as pending; a :class:`Store` over them."""
    from .store import Store

    name = f"{store.settings.collection}-{uuid.uuid4().hex[:8]}"
    pointer = read_pointer(store.client, store.settings)
    _write_pointer(store, store.name, [*pointer.get("pending", []), name])
    return Store(store.settings, client=store.client, name=name)


def switch_to(store: Store, staging: Store) -> None:
    """Make ``staging``'s collections the current ones (one pointer write), adopt them, drop the old ones."""
    old = store.name
    for kind in _CARRIED_KINDS:
        for rid, meta in store.records_of_kind(kind).items():
            staging.put_record(rid, meta)
    pointer = read_pointer(store.client, store.settings)
    pending = [n for n in pointer.get("pending", []) if n != staging.name]
    if old != staging.name:
        pending.append(old)
    _write_pointer(store, staging.name, pending)
    store.adopt(staging)
    left = [n for n in pending if not _drop(store, n)]
    if left != pending:
        _write_pointer(store, staging.name, left)


def discard(store: Store, staging: Store) -> None:
    """Drop a staging store after a failed rebuild (best effort: what remains is dropped by the next ingest)."""
    try:
        if _drop(store, staging.name):
            pointer = read_pointer(store.client, store.settings)
            _write_pointer(store, store.name, [n for n in pointer.get("pending", []) if n != staging.name])
    except TalentBotError as e:
        logger.warning(
            "could not drop the collections of the failed rebuild (%s); the next ingest drops them", e
        )
