"""Why a database cannot be used, worded for whoever runs the bot, with what to do about it.

A ``StoreError`` is never a passing glitch: the process stops using the database (nothing more
is written) and the command line ends with the message and a non-zero exit.
"""

from __future__ import annotations

RESTORE_HINT = (
    "restore your backup copy of the file, or start a new file and restore each story from "
    "its export: `python -m bot --db NEW.db import-log story-<chat>.jsonl`"
)


class StoreError(Exception):
    """The database cannot be (or can no longer be) used; the message says why and what to do."""


class DatabaseLockedError(StoreError):
    """Another process owns the database: only one process may write to a database file."""


class DatabaseDamagedError(StoreError):
    """The file is not an intact storybot database (corrupt pages, an empty file, a stranger)."""


class DatabaseGoneError(StoreError):
    """The file was removed or replaced while we had it open: writing on would lose the story."""


class WriteFailedError(StoreError):
    """The disk refused a write (full, at a size limit, failing); the transaction rolled back."""
