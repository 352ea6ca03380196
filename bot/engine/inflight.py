"""Order and cancel: one turn at a time per chat, and the streaming task of each chat on record.

A chat's turns wait on a FIFO lock, so a message that arrives while a reply streams waits its
turn and nothing is dropped; different chats never wait on each other. Inside it, a turn also
holds the chat's ``ChatLock`` across processes (PostgreSQL's advisory lock when several
processes share the story; nothing with SQLite, whose file has one writer process). The task
streaming a chat's reply is registered while in flight so ``cancel(chat)`` can stop it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Protocol

log = logging.getLogger(__name__)


class ChatLock(Protocol):
    """Keeps a chat to one process at a time, whatever other processes share the story."""

    def hold(self, chat_id: str) -> AbstractAsyncContextManager[None]: ...


class OneProcess:
    """The ``ChatLock`` of a story no other process writes (SQLite): nothing to take."""

    def hold(self, chat_id: str) -> AbstractAsyncContextManager[None]:
        return nullcontext()


class ChatQueues:
    """A FIFO lock per chat (asyncio.Lock wakes waiters in arrival order)."""

    def __init__(self, across: ChatLock | None = None) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiting: dict[str, int] = {}
        self._across: ChatLock = across or OneProcess()

    @asynccontextmanager
    async def turn(self, chat_id: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(chat_id, asyncio.Lock())
        self._waiting[chat_id] = self._waiting.get(chat_id, 0) + 1
        try:
            async with lock, self._across.hold(chat_id):
                yield
        finally:
            self._waiting[chat_id] -= 1
            if not self._waiting[chat_id]:
                del self._waiting[chat_id]
                self._locks.pop(chat_id, None)

    def pending(self, chat_id: str) -> int:
        """Turns running or waiting in this chat."""
        return self._waiting.get(chat_id, 0)

    async def drained(self, within: float) -> bool:
        """Wait until no chat has a turn running or waiting; False if ``within`` s ran out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while self._waiting:
            if loop.time() >= deadline:
                log.warning("%d chats still had turns running at shutdown", len(self._waiting))
                return False
            await asyncio.sleep(0.02)
        return True


class InFlight:
    """The chat-keyed registry of streaming tasks that ``cancel`` reads from."""

    def __init__(self) -> None:
        self.tasks: dict[str, asyncio.Task[object]] = {}

    @asynccontextmanager
    async def registered(self, chat_id: str, task: asyncio.Task[object]) -> AsyncIterator[None]:
        self.tasks[chat_id] = task
        try:
            yield
        finally:
            if self.tasks.get(chat_id) is task:
                del self.tasks[chat_id]

    def cancel(self, chat_id: str) -> bool:
        task = self.tasks.get(chat_id)
        if task is None or task.done():
            return False
        task.cancel()
        log.info("cancelled the reply streaming in chat %s", chat_id)
        return True

    def cancel_all(self) -> int:
        return sum(self.cancel(chat_id) for chat_id in list(self.tasks))
