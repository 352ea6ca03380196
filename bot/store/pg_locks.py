"""A chat is played by one process at a time, across processes: a PostgreSQL advisory lock.

A chat lives in one channel, so in one shard's process; but during a shard handover (or with
a console beside the bot) two processes could both take a turn in it. Each turn holds the
chat's session-level advisory lock in PostgreSQL, taken inside the engine's own per-chat FIFO
queue; a crashed process's locks die with its connection.

One connection per process holds every chat lock of that process (locks are per session), so
waiting never blocks it: a lock held elsewhere is tried again when its holder announces the
release (NOTIFY), or after a short wait (a crashed holder announces nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import asyncpg

from bot.store.errors import StoreError

log = logging.getLogger(__name__)
T = TypeVar("T")

_TAG = 0x53  # storybot's advisory keys: 0x53 | purpose (4 bits) | 52 bits (bot/llm/shared_gate)
_CHAT = 5
_CHANNEL = "storybot_chats"
_RETRY_FIRST, _RETRY_MOST = 0.02, 0.5


class ChatLockLostError(StoreError):
    """The PostgreSQL session holding the chat locks is gone: another process may play them."""


def chat_key(chat_id: str) -> int:
    """The chat's advisory key (a bigint): the same in every process."""
    digest = int.from_bytes(hashlib.sha256(chat_id.encode()).digest()[:7], "big")
    return (_TAG << 56) | (_CHAT << 52) | (digest & ((1 << 52) - 1))


class PgChatLocks:
    """``hold(chat_id)``: this process plays that chat, and no other does, until the block ends."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self._io = asyncio.Lock()  # one query at a time on the connection
        self._released = asyncio.Event()
        self._lost: str = ""
        conn.add_termination_listener(self._terminated)

    @classmethod
    async def open(cls, connect: Callable[[], Awaitable[asyncpg.Connection]]) -> PgChatLocks:
        conn = await connect()
        locks = cls(conn)
        await conn.add_listener(_CHANNEL, locks._heard)
        return locks

    async def aclose(self) -> None:
        self._lost = "the chat locks were closed"  # a clean stop: no alarm
        with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            await self._conn.close(timeout=2)

    @asynccontextmanager
    async def hold(self, chat_id: str) -> AsyncIterator[None]:
        key = chat_key(chat_id)
        await self._take(key)
        try:
            yield
        finally:
            await self._whole(self._release(key))

    async def _take(self, key: int) -> None:
        delay = _RETRY_FIRST
        while True:
            self._released.clear()
            if await self._whole(self._try(key)):
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._released.wait()
            delay = min(delay * 2, _RETRY_MOST)

    async def _try(self, key: int) -> bool:
        taken = await self._query("SELECT pg_try_advisory_lock($1::int8)", key)
        return bool(taken)

    async def _release(self, key: int) -> None:
        await self._query("SELECT pg_advisory_unlock($1::int8)", key)
        await self._query("SELECT pg_notify($1, '')", _CHANNEL)

    async def _query(self, sql: str, key: int | str) -> object:
        if self._lost:
            raise ChatLockLostError(self._lost)
        async with self._io:
            try:
                return await self._conn.fetchval(sql, key)
            except Exception as exc:  # whatever broke, this session's locks are in doubt
                self._terminated(self._conn, reason=str(exc) or type(exc).__name__)
                raise ChatLockLostError(self._lost) from None

    @staticmethod
    async def _whole(work: Awaitable[T]) -> T:
        """Run ``work`` to its end even if we are cancelled meanwhile: a lock half taken or
        half released would keep the chat from every other process."""
        task = asyncio.ensure_future(work)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            await asyncio.wait({task})
            raise

    def _heard(self, conn: object, pid: int, channel: str, payload: object) -> None:
        self._released.set()

    def _terminated(self, conn: object, reason: str = "the connection closed") -> None:
        if not self._lost:
            self._lost = (
                f"lost the PostgreSQL session that keeps chats to one process ({reason}); "
                "storybot stops so that no chat is played twice: start it again"
            )
            log.critical("%s", self._lost)
