"""What every store is to its callers: one writer's transactions, and reads.

Two stores implement it: SQLite (``bot.store.db``, the embedded default) and PostgreSQL
(``bot.store.pg.db``, for several processes); ``bot.store.stores.open_store`` picks one from
``[storage]``. A write is a plain sync function of a ``Connection`` run whole in one
transaction, one at a time, on the store's own thread: all of it commits or none of it, a
transaction never interleaves with another task's, and a cancelled caller never leaves half a
batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from bot.store.sql import Connection, Row

T = TypeVar("T")
U = TypeVar("U")


class Database:
    """An open store. Pass it to the functions of ``bot.store``; it is their ``conn``."""

    dialect = "sqlite"
    """``"sqlite"`` or ``"postgresql"``."""

    def __init__(self, path: str) -> None:
        self.path = path
        """Where the story lives, fit to show (a file, or a URL without its password)."""

    async def write(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one transaction: all of it commits, or none of it."""
        raise NotImplementedError

    async def write_then_read(
        self, work: Callable[[Connection], T], read: Callable[[Connection], U]
    ) -> tuple[T, U]:
        """``write(work)``, then ``read`` once it committed: what ``work`` returns and what
        ``read`` does. Two calls here; SQLite makes them one trip to its thread. PostgreSQL's
        worker runs a call again when its connection was lost before it answered, which must
        never run a committed write twice, so there they stay two."""
        return await self.write(work), await self.read(read)

    def rebuild(self, raw: Connection) -> int:
        """Clear every projection and fold the whole log into it again, inside the caller's
        transaction on ``raw`` (``projector.rebuild_all``, or what does its work faster on this
        store); returns the events read."""
        raise NotImplementedError

    async def read(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` against the connection on its thread (for reads of several queries)."""
        return await self._run(work)

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        return await self._run(lambda raw: raw.execute(sql, tuple(params)).fetchall())

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> Row:
        return await self._run(lambda raw: raw.execute(sql, tuple(params)).fetchone())

    async def close(self) -> None:
        raise NotImplementedError

    async def _run(self, work: Callable[[Connection], T]) -> T:
        raise NotImplementedError
