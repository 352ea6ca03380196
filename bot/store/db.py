"""The SQLite database: one aiosqlite connection, WAL, numbered migrations, one writer.

Every write is a plain function run *whole* on aiosqlite's worker thread between ``BEGIN
IMMEDIATE`` and ``COMMIT``. Because the thread runs one call at a time, a transaction can never
interleave with another task's writes, a cancelled task can never leave one half-done, and a
batch or a full rebuild costs one thread hop instead of one per statement.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from bot.store.projector import rebuild_all
from bot.store.schema import MIGRATIONS, REBUILD_AFTER

log = logging.getLogger(__name__)

T = TypeVar("T")


class Database:
    """An open store. Pass it to the functions of ``bot.store``; it is their ``conn``."""

    def __init__(self, conn: aiosqlite.Connection, path: str) -> None:
        self._conn = conn
        self.path = path

    async def write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in one IMMEDIATE transaction: all of it commits, or none of it."""

        def transaction(raw: sqlite3.Connection) -> T:
            raw.execute("BEGIN IMMEDIATE")
            try:
                result = work(raw)
            except BaseException:
                raw.execute("ROLLBACK")
                raise
            raw.execute("COMMIT")
            return result

        return await self._run(transaction)

    async def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` against the connection on its thread (for reads of several queries)."""
        return await self._run(work)

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        return await self._run(lambda raw: raw.execute(sql, tuple(params)).fetchall())

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        row: sqlite3.Row | None = await self._run(
            lambda raw: raw.execute(sql, tuple(params)).fetchone()
        )
        return row

    async def close(self) -> None:
        await self._conn.close()

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        # aiosqlite has no public "run this function on the connection's thread"; _execute is
        # exactly that, and the one place we lean on it.
        def on_thread() -> T:
            return work(self._conn._conn)

        result: T = await self._conn._execute(on_thread)  # type: ignore[no-untyped-call]
        return result


def _migrate(raw: sqlite3.Connection) -> int:
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
                log.info("applying schema migration %d", number)
                for statement in _split_statements(script):
                    raw.execute(statement)
                raw.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))
                rebuild = rebuild or (number in REBUILD_AFTER and had_log)
                if rebuild and number == len(MIGRATIONS):
                    log.info("rebuilt projections from %d events", rebuild_all(raw))
        except BaseException:
            raw.execute("ROLLBACK")
            raise
        raw.execute("COMMIT")
    return len(MIGRATIONS)


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
async def open_db(path: Path | str) -> AsyncIterator[Database]:
    """Open (creating and migrating as needed) the store at ``path``; ``":memory:"`` works."""
    target = str(path)
    if target != ":memory:":
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    conn = await aiosqlite.connect(target, isolation_level=None)
    conn.row_factory = sqlite3.Row
    db = Database(conn, target)
    try:
        await db.read(_configure)
        version = await db.read(_migrate)
        log.debug("store %s at schema version %d", target, version)
        yield db
    finally:
        await conn.close()


def _configure(raw: sqlite3.Connection) -> None:
    raw.execute("PRAGMA journal_mode = WAL")
    raw.execute("PRAGMA synchronous = NORMAL")
    raw.execute("PRAGMA busy_timeout = 5000")
    # 64 MiB of page cache: rebuilds of large logs stay at ~50k events/s instead of ~30k.
    raw.execute("PRAGMA cache_size = -65536")
    raw.execute("PRAGMA foreign_keys = OFF")
