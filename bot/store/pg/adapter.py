"""The store's PostgreSQL connection, used synchronously from one worker thread.

asyncpg is asynchronous, but projection handlers are sync functions shared with SQLite. So the
store owns a thread with its own event loop and one asyncpg connection; a whole write (a turn,
a rebuild) runs there as one plain function, each statement ``run_until_complete``-d on that
loop. That keeps ``Database.write``'s meaning on both stores: one transaction, whole, one at a
time, and a cancelled caller never leaves half a batch (the thread finishes the function).

A connection the server dropped (a restart, a failover, an administrator's kill) is opened
again before the next function runs (``PgWorker.reconnect``), with the settings it was first
opened with. (A restart also ends the chat locks' session, which stops the process:
``bot.store.pg_locks``; the store alone outlives it.)
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import asyncpg

from bot.store.pg.connect import connect
from bot.store.sql import ConstraintViolation, Row

T = TypeVar("T")


class ConnectFailed(Exception):
    """Opening a connection failed: the server is down, starting, full, or refused the login
    (asyncpg says so with many classes; one name for all of them here). Not an ``OSError``:
    work that catches those for its own files (a rebuild's scratch file) must let it by."""


class ConnectionLost(Exception):
    """The driver refused a statement because the connection is gone. asyncpg says so with an
    ``InterfaceError``, which otherwise means a statement of ours is wrong: not a loss. Not an
    ``OSError``, for the same reason as ``ConnectFailed``."""


@functools.lru_cache(maxsize=4096)
def dollar_placeholders(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1, $2, …`` (none inside quotes)."""
    out: list[str] = []
    quote = ""
    number = 0
    for char in sql:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "?":
            number += 1
            out.append(f"${number}")
            continue
        out.append(char)
    return "".join(out)


class PgRows:
    """A statement's rows, already fetched (one round trip per statement)."""

    __slots__ = ("_rows",)

    def __init__(self, rows: list[Row]) -> None:
        self._rows = rows

    def fetchone(self) -> Row:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Row]:
        return self._rows

    def __iter__(self) -> Iterator[Row]:
        return iter(self._rows)


class PgConnection:
    """``execute`` / ``executemany`` over asyncpg, for code running on the worker thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, conn: Any) -> None:
        self._loop = loop
        self.conn = conn

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> PgRows:
        rows = self._wait(self.conn.fetch(dollar_placeholders(sql), *parameters))
        return PgRows(rows)

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> None:
        batch = [tuple(p) for p in parameters]
        if batch:
            self._wait(self.conn.executemany(dollar_placeholders(sql), batch))

    def copy_rows(
        self, table: str, columns: Sequence[str], records: Iterable[Sequence[Any]]
    ) -> None:
        """Load ``records`` into ``table`` by COPY (one stream, not a statement per row)."""
        self._wait(self.conn.copy_records_to_table(table, records=records, columns=columns))

    def script(self, sql: str) -> None:
        """Several statements at once, no parameters (migrations, transaction control)."""
        self._wait(self.conn.execute(sql))

    def _wait(self, work: Any) -> Any:
        try:
            return self._loop.run_until_complete(work)
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise ConstraintViolation(str(exc)) from exc
        except asyncpg.InterfaceError as exc:
            if self.conn.is_closed():
                raise ConnectionLost(str(exc)) from exc
            raise


class PgWorker:
    """The thread that owns the store's connection; ``run`` hands it a function to run."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="storybot-pg")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._raw: PgConnection | None = None
        self._url = ""
        self._schema: str | None = None
        self._session = ""
        """Run on every connection once opened (a read-only store's session setting)."""

    async def open(self, url: str, *, schema: str | None = None) -> None:
        self._url, self._schema = url, schema

        def on_thread() -> None:
            self._loop = asyncio.new_event_loop()
            self._connect()

        try:
            await self._submit(on_thread)
        except BaseException:
            await self.close()
            raise

    def keep_session(self, script: str) -> None:
        """Run ``script`` on every connection opened from now on (the caller runs it on the
        one open now, through the store, so a loss meanwhile is handled as any other)."""
        self._session = script

    async def run(self, work: Callable[[PgConnection], T]) -> T:
        """Run ``work`` on the thread, first opening the connection again if it was lost."""

        def on_thread() -> T:
            if self._raw is None or self._raw.conn.is_closed():
                self._connect()
            assert self._raw is not None
            return work(self._raw)

        return await self._submit(on_thread)

    async def reconnect(self) -> None:
        """Drop the connection (the server lost it, or it can no longer be trusted) and open
        a new one; if that fails too, the next ``run`` tries again."""

        def on_thread() -> None:
            if self._raw is not None:
                self._raw.conn.terminate()
                self._raw = None
            self._connect()

        await self._submit(on_thread)

    def _connect(self) -> None:
        assert self._loop is not None, "the PostgreSQL store is not open"
        try:
            conn = self._loop.run_until_complete(connect(self._url, schema=self._schema))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise ConnectFailed(str(exc) or type(exc).__name__) from exc
        raw = PgConnection(self._loop, conn)
        if self._session:
            try:
                raw.script(self._session)
            except BaseException:
                conn.terminate()
                raise
        self._raw = raw

    async def close(self) -> None:
        def on_thread() -> None:
            if self._loop is None:
                return
            if self._raw is not None:
                try:
                    self._loop.run_until_complete(self._raw.conn.close(timeout=5))
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                    self._raw.conn.terminate()  # the server is gone: just drop the socket
            self._loop.close()

        try:
            await self._submit(on_thread)
        finally:
            self._executor.shutdown(wait=False)

    async def _submit(self, work: Callable[[], T]) -> T:
        return await asyncio.wrap_future(self._executor.submit(work))
