"""talentbot: grounded, cited answers about talent policies from your own documents.

Names are re-exported lazily, so that ``import talentbot`` (and ``talentbot --help``) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Answer": "answer",
    "AnswerEvent": "answer",
    "Citation": "answer",
    "TextEvent": "answer",
    "TalentBot": "bot",
    "Settings": "config",
    "IngestReport": "ingest",
    "Filters": "retrieval",
    "Search": "retrieval",
    "TalentBotError": "errors",
    "ConfigError": "errors",
    "ModelLoadError": "errors",
    "InputError": "errors",
    "StoreError": "errors",
    "StoreCorruptError": "errors",
    "StoreLockedError": "errors",
    "EmptyStoreError": "errors",
    "LLMError": "errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'talentbot' has no attribute '{name}'")
    return getattr(importlib.import_module(f".{module}", __name__), name)


if TYPE_CHECKING:  # for type checkers and IDEs
    from .answer import Answer, AnswerEvent, Citation, TextEvent
    from .bot import TalentBot
    from .config import Settings
    from .errors import (
        ConfigError,
        EmptyStoreError,
        InputError,
        LLMError,
        ModelLoadError,
        StoreCorruptError,
        StoreError,
        StoreLockedError,
        TalentBotError,
    )
    from .ingest import IngestReport
    from .retrieval import Filters, Search
