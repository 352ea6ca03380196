"""Is this file an intact storybot database, and is it still the file we opened?

Damage found late costs a turn (the reply streams, then the write fails); so the start checks
the file (``PRAGMA quick_check``, bounded in time for big files) and refuses with how to
restore. A database removed or replaced under a running process would swallow every later
write silently, so each write first compares the path's identity with the one opened.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from bot.store.errors import RESTORE_HINT, DatabaseDamagedError, DatabaseGoneError

log = logging.getLogger(__name__)

QUICK_CHECK_SECONDS = 2.0
"""The start-up check's budget: a file too big to check in this time is checked in part."""
_PROGRESS_STEPS = 10_000


def refuse_empty_file(path: Path) -> None:
    """A zero-byte file where a database was expected is a lost story, not a new one."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    if size == 0:
        raise DatabaseDamagedError(
            f"database {path} is an empty file (0 bytes), not a story: if your stories were in "
            f"it, {RESTORE_HINT}; to start afresh, delete the file or choose another --db"
        )


def damaged(path: str, detail: str) -> DatabaseDamagedError:
    return DatabaseDamagedError(
        f"database {path} is damaged ({detail}); storybot will not write to it. "
        f"Move it aside and {RESTORE_HINT}"
    )


def quick_check(raw: sqlite3.Connection, path: str, seconds: float = QUICK_CHECK_SECONDS) -> bool:
    """Refuse a damaged file; True if the whole file was checked within ``seconds``."""
    give_up_at = time.monotonic() + seconds
    raw.set_progress_handler(lambda: time.monotonic() > give_up_at, _PROGRESS_STEPS)
    try:
        rows = raw.execute("PRAGMA quick_check(5)").fetchall()
    except sqlite3.OperationalError as exc:
        if "interrupt" not in str(exc):
            raise damaged(path, str(exc)) from None
        log.info("database %s is too big to check fully in %g s; checked in part", path, seconds)
        return False
    except sqlite3.DatabaseError as exc:
        raise damaged(path, str(exc)) from None
    finally:
        raw.set_progress_handler(None, 0)
    findings = [str(row[0]) for row in rows]
    if findings != ["ok"]:
        raise damaged(path, "; ".join(findings)[:300])
    return True


def refuse_stranger(raw: sqlite3.Connection, path: str) -> None:
    """A SQLite file with tables but no storybot schema belongs to something else."""
    tables = {row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if tables and "schema_version" not in tables:
        raise DatabaseDamagedError(
            f"{path} is a SQLite database of some other program (no storybot schema); "
            "choose another --db"
        )


@dataclass(frozen=True, slots=True)
class FileIdentity:
    """The path's device and inode when opened: a replaced or deleted file no longer matches."""

    path: Path
    device: int
    inode: int

    @classmethod
    def of(cls, path: Path) -> FileIdentity:
        st = path.stat()
        return cls(path, st.st_dev, st.st_ino)

    def confirm(self) -> None:
        """Raise ``DatabaseGoneError`` unless the path still names the file we opened."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            what = "was deleted"
        else:
            if (st.st_dev, st.st_ino) == (self.device, self.inode):
                return
            what = "was replaced by another file"
        raise DatabaseGoneError(
            f"database {self.path} {what} while storybot was running; storybot stopped writing "
            "(what happened since was not saved). Put the file back or restore a backup, then "
            "start again"
        )
