"""One writer per database: an OS lock (``flock``) on ``<db>.lock`` beside the database.

Two processes writing one story corrupt it (the second's start-up recovery closes the first's
live turn). The lock is held for as long as the database is open for writing; the operating
system releases it when the process ends however it ends, so a stale lock never needs clearing.
The file names its holder (host and PID) so the refusal can say who it is; the file itself is
left in place (deleting it would let a third process lock a different file).
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

from bot.store.errors import DatabaseLockedError


def lock_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".lock")


class WriterLock:
    """The held lock; ``release()`` it (closing the file) when the database closes."""

    def __init__(self, db_path: Path) -> None:
        # resolved: two spellings of one file (a symlink, ./x.db) must meet at one lock
        self.path = lock_path(db_path.resolve())
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise DatabaseLockedError(
                f"database {db_path} is already open for writing by storybot ({holder}); only "
                "one process may write to a database: stop that one first (read-only commands "
                "such as `events` work beside it)"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"host {socket.gethostname()} pid {os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing drops the flock
            self._fd = -1


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", errors="replace").strip()
    except OSError:
        text = ""
    return text.replace("host ", "on host ", 1).replace(" pid ", ", PID ", 1) or "holder unknown"
