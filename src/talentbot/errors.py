"""User-facing errors. Each says what went wrong and what to do next.

The CLI maps them to messages and exit codes; the web UI maps them to ``gr.Error``.
"""

from __future__ import annotations


class TalentBotError(Exception):
    """Base class of every error a user may see. ``exit_code`` is used by the CLI."""

    exit_code = 1


class ConfigError(TalentBotError):
    """A setting is wrong or a required one is missing."""

    exit_code = 2


class ModelLoadError(ConfigError):
    """The embedding model cannot be loaded (offline, wrong name or path)."""


class ModelMismatchError(ConfigError):
    """The store's vectors were made by another embedding model than the one set; the fix is a rebuild."""


class InputError(TalentBotError):
    """A question, filter or file argument is not acceptable."""

    exit_code = 2


class StoreError(TalentBotError):
    """The vector store cannot be opened or written."""

    exit_code = 3


class StoreCorruptError(StoreError):
    """The store is damaged; the fix is ``talentbot ingest --rebuild``."""


class StoreLockedError(StoreError):
    """Another ingest holds the store's write lock."""

    exit_code = 4


class EmptyStoreError(StoreError):
    """Nothing has been ingested yet."""


class LLMError(TalentBotError):
    """The LLM endpoint failed (auth, server error, timeout)."""

    exit_code = 5
