"""The SQLite store: one aiosqlite connection, WAL, numbered migrations, one writer.

One writer per file, across processes too: opening for writing takes an OS lock beside the
database (``bot.store.lock``), checks the file (``bot.store.health``), and every write first
makes sure the path still names the file opened. Read-only opens take no lock.

Every write is a plain function run *whole* on aiosqlite's worker thread between ``BEGIN
IMMEDIATE`` and ``COMMIT``. Because the thread runs one call at a time, a transaction can never
interleave with another task's writes, a cancelled task can never leave one half-done, and a
batch or a full rebuild costs one thread hop instead of one per statement.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import aiosqlite

from bot.store.checkpoint import (
    checkpoint_beside,
    checkpoints_deferred,
    defer_checkpoints,
    resume_checkpoints,
)
from bot.store.database import Database
from bot.store.errors import DatabaseGoneError, StoreError, WriteFailedError
from bot.store.health import (
    QUICK_CHECK_SECONDS,
    FileIdentity,
    damaged,
    quick_check,
    refuse_empty_file,
    refuse_stranger,
)
from bot.store.journal import install_triggers
from bot.store.lock import WriterLock
from bot.store.page_cache import REBUILD_KIB, set_turn_cache
from bot.store.projector import rebuild_all
from bot.store.schema import MIGRATIONS, REBUILD_AFTER
from bot.store.sql import Connection

log = logging.getLogger(__name__)

T = TypeVar("T")
U = TypeVar("U")


class SqliteDatabase(Database):
    """The store in one SQLite file (or ``:memory:``), on aiosqlite's worker thread."""

    def __init__(self, conn: aiosqlite.Connection, path: str) -> None:
        super().__init__(path)
        self._conn = conn
        self.identity: FileIdentity | None = None
        """Set once open: each write first checks the path still names this file."""
        self._gone: DatabaseGoneError | None = None
        self._rebuilt = False
        """Set by a rebuild on the writer's thread: its checkpoint is to be made aside."""
        self._checkpointing: asyncio.Task[None] | None = None
        self._copy_again = False
        """A rebuild committed since the running copy began: copy once more after it."""

    async def write(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one IMMEDIATE transaction: all of it commits, or none of it.

        Refused (``DatabaseGoneError``) once the file was removed or replaced under us: SQLite
        would go on writing into the unlinked file and every later turn would be lost unseen.
        """
        rebuilt = False

        def transaction(raw: sqlite3.Connection) -> T:
            nonlocal rebuilt
            try:
                return self._transaction(work)(raw)
            finally:  # this call's rebuild, not one another task's write may be waiting behind
                rebuilt, self._rebuilt = self._rebuilt, False

        try:
            return await self.run(transaction)
        finally:
            if rebuilt:
                self.checkpoint_aside()

    async def write_then_read(
        self, work: Callable[[Connection], T], read: Callable[[Connection], U]
    ) -> tuple[T, U]:
        """``write(work)`` then ``read``, in one trip to the connection's thread: a trip costs
        0.03 ms of CPU on an idle machine, 0.1 ms on a busy one (the thread woken, then the
        event loop), as much as a small read."""
        transaction = self._transaction(work)
        return await self.run(lambda raw: (transaction(raw), read(raw)))

    def _transaction(self, work: Callable[[Connection], T]) -> Callable[[sqlite3.Connection], T]:
        """``work`` run whole in one IMMEDIATE transaction, on the connection's thread."""

        def transaction(raw: sqlite3.Connection) -> T:
            self._confirm_file()
            raw.execute("BEGIN IMMEDIATE")
            try:
                result = work(raw)
                raw.execute("COMMIT")  # may fail too (a full disk): then roll back as well
            except BaseException:
                if raw.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        raw.execute("ROLLBACK")
                raise
            return result

        return transaction

    def rebuild(self, raw: Connection) -> int:
        """``rebuild_all``, its pages copied into the file after it commits (``checkpoint``)."""
        assert isinstance(raw, sqlite3.Connection)
        defer_checkpoints(raw)
        self._rebuilt = True
        return rebuild_all(raw)

    def checkpoint_aside(self) -> None:
        """Copy the log into the file on a thread and connection of their own, then let the
        writer's commits do it again (``bot.store.checkpoint``)."""
        self._copy_again = True  # a copy already running may have begun before this commit
        if self._checkpointing is None or self._checkpointing.done():
            self._checkpointing = asyncio.create_task(self._checkpoint())

    async def _checkpoint(self) -> None:
        try:
            while self._copy_again:
                self._copy_again = False
                if self.path != ":memory:":
                    await asyncio.to_thread(checkpoint_beside, self.path)
        except sqlite3.Error as exc:  # the writer's next commit copies it instead
            log.warning("could not copy the rebuild into %s yet: %s", self.path, exc)
        finally:
            with contextlib.suppress(sqlite3.Error, StoreError, ValueError):  # ValueError: closed
                await self.run(resume_checkpoints)

    async def checkpointed(self) -> None:
        """Once a rebuild's copy aside (if one runs) is done."""
        if self._checkpointing is not None:  # a cancelled wait leaves the copy going on
            await asyncio.shield(self._checkpointing)

    async def close(self) -> None:
        try:
            await self.checkpointed()  # what the rebuild's commit would have waited for
        finally:  # closed even when the wait is cancelled (the copy goes on, on its own)
            await self._conn.close()

    def _confirm_file(self) -> None:
        if self._gone is None and self.identity is not None:
            try:
                self.identity.confirm()
            except DatabaseGoneError as exc:
                log.critical("%s", exc)
                self._gone = exc
        if self._gone is not None:
            raise self._gone

    async def _run(self, work: Callable[[Connection], T]) -> T:
        return await self.run(work)

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` on the connection's thread, as is (no transaction of its own)."""

        # aiosqlite has no public "run this function on the connection's thread"; _execute is
        # exactly that, and the one place we lean on it.
        def on_thread() -> T:
            return work(self._conn._conn)

        try:
            result: T = await self._conn._execute(on_thread)  # type: ignore[no-untyped-call]
        except sqlite3.DatabaseError as exc:
            failure = _store_failure(exc, self.path)
            if failure is None:
                raise
            raise failure from exc
        return result


def _store_failure(exc: sqlite3.DatabaseError, path: str) -> StoreError | None:
    """The end of this database's use, worded, or None for an error of one statement.

    A full disk or an I/O error fails a write (rolled back whole); corrupt pages found after
    the start-up check (which only samples a big file) are damage, as at the start.
    """
    code = _error_code(exc)
    if code in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR):
        why = "the disk is full" if code == sqlite3.SQLITE_FULL else str(exc)
        return WriteFailedError(
            f"could not write to database {path} ({why}; a full disk, a file size limit or a "
            "failing disk): the last change was not saved and nothing is half-written. Free "
            "some space or check the disk, then start again"
        )
    if _is_damage(exc):
        return damaged(path, str(exc))
    return None


def _migrate(raw: sqlite3.Connection, *, announce: bool = True) -> int:
    """Apply the migrations this file lacks, each in its own IMMEDIATE transaction.

    The version is read inside the transaction, so two processes opening a new file at once
    cannot both apply the same migration. When a migration that adds derived data was applied,
    the projections are rebuilt from the log once, with the last migration, in its transaction
    (the handlers are today's, so they need today's schema).
    """
    raw.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    had_log = raw.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] is not None
    rebuild = False
    for number, script in enumerate(MIGRATIONS, start=1):
        raw.execute("BEGIN IMMEDIATE")
        try:
            current = raw.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0
            if number > current:
                if announce:
                    log.info("applying schema migration %d", number)
                for statement in _split_statements(script):
                    raw.execute(statement)
                raw.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))
                rebuild = rebuild or (number in REBUILD_AFTER and had_log)
                if rebuild and number == len(MIGRATIONS):
                    log.info(
                        "rebuilding every projection from the event log (a long story takes time)"
                    )
                    defer_checkpoints(raw)  # its pages are copied aside (``checkpoint``)
                    log.info("rebuilt projections from %d events", rebuild_all(raw))
        except BaseException:
            raw.execute("ROLLBACK")
            raise
        raw.execute("COMMIT")
    raw.execute("BEGIN IMMEDIATE")
    try:
        install_triggers(raw)  # from the tables as the migrations left them
    except BaseException:
        raw.execute("ROLLBACK")
        raise
    raw.execute("COMMIT")
    return len(MIGRATIONS)


def scratch_store(path: Path) -> sqlite3.Connection:
    """A new SQLite store at ``path`` for work thrown away after (a PostgreSQL rebuild folds
    its log in one): migrated, rows by name as the handlers read them, and no durability
    (no journal, no syncs), since a crash loses nothing that is not still in the real store."""
    raw = sqlite3.connect(path, isolation_level=None)
    raw.row_factory = sqlite3.Row
    raw.execute("PRAGMA journal_mode = OFF")
    raw.execute("PRAGMA synchronous = OFF")
    raw.execute(f"PRAGMA cache_size = -{REBUILD_KIB}")  # a rebuild's, bounded on a small host
    _migrate(raw, announce=False)
    return raw


def _split_statements(script: str) -> list[str]:
    """Split a migration into statements, keeping trigger bodies whole."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements


@asynccontextmanager
async def open_db(
    path: Path | str, *, read_only: bool = False, check_seconds: float = QUICK_CHECK_SECONDS
) -> AsyncIterator[SqliteDatabase]:
    """Open (creating and migrating as needed) the store at ``path``; ``":memory:"`` works.

    For writing (the default) the process must own the file (``DatabaseLockedError`` names
    the owner) and the file must pass ``PRAGMA quick_check`` within ``check_seconds``.
    ``read_only`` opens an existing file beside its owner: no lock, no migration, no writes.
    """
    target = str(path)
    lock: WriterLock | None = None
    uri = target
    if target != ":memory:":
        lock, uri = await asyncio.to_thread(_prepare, Path(target), read_only)
    try:
        conn = await aiosqlite.connect(uri, isolation_level=None, uri=read_only)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    conn.row_factory = sqlite3.Row
    db = SqliteDatabase(conn, target)
    try:
        await db.run(_configure_reader if read_only else _configure)  # damage: a StoreError
        if not read_only:
            await db.run(lambda raw: _check(raw, target, check_seconds))
            version = await db.run(_migrate)
            if await db.run(checkpoints_deferred):  # a migration rebuilt the projections
                db.checkpoint_aside()
            log.debug("store %s at schema version %d", target, version)
        if lock is not None:
            db.identity = FileIdentity.of(Path(target))
        yield db
    finally:
        try:
            await db.close()
        finally:
            if lock is not None:
                lock.release()


def _prepare(file: Path, read_only: bool) -> tuple[WriterLock | None, str]:
    """Refuse what must not be opened; take the writer's lock. Returns it and what to connect to.

    A reader connects with ``mode=rw`` so a mistyped path is an error, not a new empty file.
    """
    if read_only and not file.exists():
        raise StoreError(f"no database at {file}")
    file.parent.mkdir(parents=True, exist_ok=True)
    refuse_empty_file(file)
    if read_only:
        return None, f"{file.resolve().as_uri()}?mode=rw"
    return WriterLock(file), str(file)


def _check(raw: sqlite3.Connection, path: str, seconds: float) -> None:
    refuse_stranger(raw, path)
    quick_check(raw, path, seconds)


def _error_code(exc: sqlite3.Error) -> int | None:
    """SQLite's primary result code (``SQLITE_FULL``, ``SQLITE_CORRUPT``, ...), if known."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def _is_damage(exc: sqlite3.DatabaseError) -> bool:
    """Corrupt pages or a file that is no database (not a full disk or a busy lock)."""
    code = _error_code(exc)
    if code is None:
        return type(exc) is sqlite3.DatabaseError
    return code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def _configure(raw: sqlite3.Connection) -> None:
    raw.execute("PRAGMA journal_mode = WAL")
    raw.execute("PRAGMA synchronous = NORMAL")
    raw.execute("PRAGMA busy_timeout = 5000")
    set_turn_cache(raw)  # small; a full rebuild takes a large one while it runs
    raw.execute("PRAGMA foreign_keys = OFF")


def _configure_reader(raw: sqlite3.Connection) -> None:
    raw.execute("PRAGMA query_only = ON")
    raw.execute("PRAGMA busy_timeout = 5000")
