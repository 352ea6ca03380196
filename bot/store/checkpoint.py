"""A full rebuild's pages copied into the SQLite file beside the writer, not in its commit.

A rebuild writes every projection row again in one transaction: at a million events, 470 MB
of pages in the write-ahead log. SQLite's automatic checkpoint copies them into the database
file inside that transaction's COMMIT (2.3 s of a 23 s rebuild, measured), and had it been
skipped once, the next turn's commit would pay it instead. So a rebuild turns the writer's
automatic checkpoints off (``defer_checkpoints``); once it has committed, a PASSIVE checkpoint
on a connection of its own, on a worker thread, copies the pages while turns go on (a passive
checkpoint never blocks the writer or a reader), and automatic checkpoints come back when it
is done (``SqliteDatabase``). What is committed is committed either way: a crash before the
copy is done loses nothing (the log holds the rebuild and SQLite replays it on open), and the
copy is what makes it safe from a power cut, as for every commit under ``synchronous =
NORMAL``.
"""

from __future__ import annotations

import contextlib
import sqlite3

AUTOCHECKPOINT_PAGES = 1000
"""SQLite's default: a commit that leaves the log longer than this copies it into the file."""


def defer_checkpoints(raw: sqlite3.Connection) -> None:
    """No automatic checkpoint on this connection until ``resume_checkpoints``."""
    raw.execute("PRAGMA wal_autocheckpoint = 0")


def checkpoints_deferred(raw: sqlite3.Connection) -> bool:
    return int(raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0]) == 0


def resume_checkpoints(raw: sqlite3.Connection) -> None:
    raw.execute(f"PRAGMA wal_autocheckpoint = {AUTOCHECKPOINT_PAGES}")


def checkpoint_beside(path: str) -> None:
    """Copy what the log of ``path`` holds into the file, on a connection of its own (run it
    on a worker thread; it may take seconds after a large rebuild)."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as raw:
        raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
