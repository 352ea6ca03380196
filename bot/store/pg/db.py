"""The PostgreSQL store: the same log, handlers and projections as SQLite, over one connection.

The connection lives on the store's worker thread (``adapter.PgWorker``); a write runs there
whole between ``BEGIN`` and ``COMMIT``, first taking ``LOCK TABLE event_log IN EXCLUSIVE
MODE``. That lock is the store's one-writer rule across processes: event ids are given as the
log's last plus one inside it, so they follow commit order with no gaps (a reader paging by id
never misses one), and incremental application sees the events in the order a rebuild does.
Reads (plain ``SELECT``s) are never blocked by it. Migrations run under an advisory lock, so
processes starting together apply each once.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import asyncpg

from bot.store.database import Database
from bot.store.errors import StoreError, WriteFailedError
from bot.store.journal import install_triggers
from bot.store.pg.adapter import ConnectFailed, ConnectionLost, PgConnection, PgWorker
from bot.store.pg.connect import display_url
from bot.store.pg.rebuild import rebuild_by_copy
from bot.store.pg.schema import MIGRATIONS, REBUILD_AFTER
from bot.store.schema import CHAT_SCOPED_TABLES
from bot.store.sql import Connection

log = logging.getLogger(__name__)

T = TypeVar("T")

READ_ONLY_SESSION = "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"
"""A read-only store's session (``events`` beside a running bot), on every connection."""

MIGRATION_LOCK = (0x73747279, 1)
"""The advisory lock (two-key form) migrations run under: "stry", 1."""

_LOST = (
    OSError,  # a socket reset, a timeout
    ConnectFailed,
    ConnectionLost,
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.CrashShutdownError,
)
"""What a connection the server dropped (or never gave) raises: a restart, a failover, a kill.
Not asyncpg's ``InterfaceError`` as such: on a live connection that is a statement of ours the
driver refused (a parameter missing), and running it again would only fail again."""


class _CommitUnanswered(Exception):
    """The connection was lost while COMMIT was on its way: the change may or may not be in."""


class PgDatabase(Database):
    """The store in a PostgreSQL database (or one schema of it)."""

    dialect = "postgresql"

    def __init__(self, worker: PgWorker, path: str, *, read_only: bool = False) -> None:
        super().__init__(path)
        self._worker = worker
        self.read_only = read_only

    async def write(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one transaction holding the log's write lock: all of it commits,
        or none of it."""
        if self.read_only:
            raise StoreError(f"{self.path} was opened read-only")

        def transaction(raw: PgConnection) -> T:
            raw.script("BEGIN; LOCK TABLE event_log IN EXCLUSIVE MODE")
            try:
                result = work(raw)
            except BaseException:
                with contextlib.suppress(*_LOST, asyncpg.PostgresError, asyncpg.InterfaceError):
                    raw.script("ROLLBACK")
                raise
            try:
                raw.script("COMMIT")
            except _LOST as exc:
                raise _CommitUnanswered(str(exc)) from exc
            return result

        return await self.run(transaction)

    def rebuild(self, raw: Connection) -> int:
        assert isinstance(raw, PgConnection), "a PostgreSQL store rebuilds on its own connection"
        return rebuild_by_copy(raw)

    async def close(self) -> None:
        await self._worker.close()

    async def _run(self, work: Callable[[Connection], T]) -> T:
        return await self.run(work)

    async def run(self, work: Callable[[PgConnection], T]) -> T:
        """Run ``work`` on the store's thread, as is (no transaction of its own).

        A connection lost before anything was committed is opened again and ``work`` run once
        more: the server rolled the first try back whole, so the second is not a repeat. A
        connection lost while COMMIT was on its way is opened again for the next call, but
        this one fails: whether it was saved only the log can say. (That is ``write``'s COMMIT;
        work that commits by itself, as ``_migrate`` does, must be safe to run twice: it applies
        only what the database lacks.)
        """
        try:
            return await self._worker.run(work)
        except _LOST as exc:
            log.warning("lost the connection to %s (%s); opening it again", self.path, exc)
            return await self._once_more(work, exc)
        except _CommitUnanswered as exc:
            raise await self._commit_unanswered(exc) from exc
        except asyncpg.DiskFullError as exc:
            raise _disk_full(self.path, exc) from exc

    async def _once_more(self, work: Callable[[PgConnection], T], first: BaseException) -> T:
        try:
            await self._worker.reconnect()
            return await self._worker.run(work)
        except asyncpg.DiskFullError as exc:
            raise _disk_full(self.path, exc) from exc
        except _CommitUnanswered as exc:
            raise await self._commit_unanswered(exc) from exc
        except ConnectFailed as exc:
            raise self._not_saved(f"({first}) and could not open it again ({exc})") from exc
        except _LOST as exc:
            raise self._not_saved(f"({first}), opened it again and lost it again ({exc})") from exc

    def _not_saved(self, what: str) -> StoreError:
        return StoreError(
            f"lost the connection to {self.path} {what}: the last change was not saved and "
            "nothing is half-written. Check that the PostgreSQL server is up, then start again"
        )

    async def _commit_unanswered(self, exc: _CommitUnanswered) -> StoreError:
        """The one answer to a call whose COMMIT went unanswered, whatever opening the
        connection again meets: anything else would tell the caller it was not saved."""
        log.warning("lost the connection to %s while committing (%s)", self.path, exc)
        try:
            await self._worker.reconnect()
        except Exception as again:  # whatever it is, the next run tries again
            log.warning("could not open the connection to %s again: %s", self.path, again)
        return StoreError(
            f"lost the connection to {self.path} while saving the last change ({exc}): it is "
            "in the story whole or not at all; look before doing it again"
        )


def _disk_full(where: str, exc: BaseException) -> WriteFailedError:
    return WriteFailedError(
        f"could not write to {where} (the server's disk is full: {exc}): the last change was "
        "not saved and nothing is half-written. Free space on the PostgreSQL server, then "
        "start again"
    )


def _migrate(raw: PgConnection) -> int:
    """Apply the migrations this database lacks, all in one transaction under the migration
    lock (PostgreSQL's DDL is transactional); rebuild once after any in ``REBUILD_AFTER``."""
    raw.script("BEGIN")
    try:
        raw.execute("SELECT pg_advisory_xact_lock(?, ?)", MIGRATION_LOCK)
        raw.script("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
        current = raw.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
        had_log = current is not None
        rebuild = False
        for number, script in enumerate(MIGRATIONS, start=1):
            if number > (current or 0):
                log.info("applying PostgreSQL schema migration %d", number)
                raw.script(script)
                raw.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))
                rebuild = rebuild or (number in REBUILD_AFTER and had_log)
        if rebuild:
            log.info("rebuilding every projection from the event log (a long story takes time)")
            log.info("rebuilt projections from %d events", rebuild_by_copy(raw))
        elif (current or 0) < len(MIGRATIONS) or not _journalled(raw):
            install_triggers(raw)  # from the tables as the migrations left them
        raw.script("COMMIT")
    except BaseException:
        with contextlib.suppress(*_LOST, asyncpg.PostgresError, asyncpg.InterfaceError):
            raw.script("ROLLBACK")
        raise
    return len(MIGRATIONS)


def _journalled(raw: PgConnection) -> bool:
    """Every chat-scoped table has its undo trigger (DDL is taken only when one is missing:
    it would wait for, and then hold up, every other process's writes)."""
    row = raw.execute(
        "SELECT COUNT(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "WHERE c.relnamespace = current_schema()::regnamespace AND t.tgname LIKE 'undo\\_%'"
    ).fetchone()
    return int(row[0]) >= len(CHAT_SCOPED_TABLES)


def _refuse_stranger(raw: PgConnection, where: str) -> None:
    """A database (schema) holding tables but no storybot schema is another program's."""
    tables = {
        row[0]
        for row in raw.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        )
    }
    if tables and "schema_version" not in tables:
        raise StoreError(
            f"{where} holds tables of another program ({', '.join(sorted(tables)[:5])}); "
            "give storybot a database of its own: CREATE DATABASE storybot"
        )


def _require_store(raw: PgConnection, where: str) -> None:
    row = raw.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
    if not row[0]:
        raise StoreError(f"no storybot store at {where}")


@asynccontextmanager
async def open_pg(
    url: str, *, read_only: bool = False, schema: str | None = None
) -> AsyncIterator[PgDatabase]:
    """Open (creating and migrating as needed) the store in the database at ``url``.

    ``schema`` puts it in that schema instead of the user's default (tests use one each).
    ``read_only`` migrates nothing and refuses writes (``events`` beside a running bot).
    """
    where = display_url(url) + (f" (schema {schema})" if schema else "")
    worker = PgWorker()
    try:
        await worker.open(url, schema=schema)
    except (*_LOST, asyncpg.PostgresError, TimeoutError) as exc:
        raise StoreError(
            f"cannot reach PostgreSQL at {where}: {exc}. Check [storage] url (user, host, "
            "port, database) and that the server is up"
        ) from None
    db = PgDatabase(worker, where, read_only=read_only)
    try:
        if read_only:
            await db.run(lambda raw: _require_store(raw, where))
            worker.keep_session(READ_ONLY_SESSION)
            await db.run(lambda raw: raw.script(READ_ONLY_SESSION))
        else:
            await db.run(lambda raw: _refuse_stranger(raw, where))
            version = await db.run(_migrate)
            log.debug("store %s at schema version %d", where, version)
        yield db
    finally:
        await db.close()
