"""A process-wide concurrency gate for LLM requests, fair and priority-aware.

LLM plans cap concurrent requests (Featherless counts them per key), so every request holds a
slot for its whole life. A freed slot is handed straight to the next waiter - narrative before
background, first come first served within a priority - so nobody can barge past the queue.

The reply owns the critical path: while any reply is waiting for its first token, no background
(JSON) request is sent, even to a free slot. A local server that serves one request at a time
would otherwise often run the JSON call first and keep the player waiting for it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

from bot.llm.base import Priority


class LLMGate(Protocol):
    """What the client needs of a gate: this process's (``PriorityGate``) or one shared by
    every process on a PostgreSQL (``bot.llm.shared_gate.SharedGate``)."""

    @property
    def limit(self) -> int: ...

    def slot(self, priority: Priority = Priority.BACKGROUND) -> AbstractAsyncContextManager[None]:
        """Hold one of ``limit`` slots for the body of the ``async with``."""
        ...

    def reply_waiting(self) -> AbstractAsyncContextManager[ReplyWait]:
        """Hold background calls back until the reply's first token (``arrived()``)."""
        ...


class PriorityGate:
    """At most ``limit`` holders at once; waiters ordered by (priority, arrival)."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("the LLM concurrency limit must be at least 1")
        self.limit = limit
        self.in_use = 0
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self.replies_waiting = 0
        """Replies sent (or about to be) whose first token has not arrived yet."""
        self._no_reply_waiting = asyncio.Event()
        self._no_reply_waiting.set()

    @property
    def waiting(self) -> int:
        return sum(1 for _, _, fut in self._waiters if not fut.done())

    @asynccontextmanager
    async def slot(self, priority: Priority = Priority.BACKGROUND) -> AsyncIterator[None]:
        """Hold one slot for the body of the ``async with``; freed on error or cancel too."""
        await self.acquire(priority)
        try:
            yield
        finally:
            self.release()

    def reply_waiting(self) -> AbstractAsyncContextManager[ReplyWait]:
        """Mark a reply as waiting for its first token until ``arrived()`` or the block ends."""
        return waiting_for_first_token(self._reply_started, self._reply_arrived)

    def _reply_started(self) -> None:
        self.replies_waiting += 1
        self._no_reply_waiting.clear()

    def _reply_arrived(self) -> None:
        self.replies_waiting -= 1
        if not self.replies_waiting:
            self._no_reply_waiting.set()

    async def acquire(self, priority: Priority = Priority.BACKGROUND) -> None:
        if priority is not Priority.NARRATIVE:
            while self.replies_waiting:
                await self._no_reply_waiting.wait()
        if self.in_use < self.limit and not self.waiting:
            self.in_use += 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (int(priority), next(self._seq), fut))
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # the slot was handed over just as we were cancelled
            raise

    def release(self) -> None:
        """Hand the slot to the best live waiter, or give it back."""
        while self._waiters:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)
                return
        self.in_use -= 1


class ReplyWait:
    """One reply's wait for its first token (see ``PriorityGate.reply_waiting``)."""

    def __init__(self, on_arrived: Callable[[], None] | None) -> None:
        self._on_arrived = on_arrived

    def arrived(self) -> None:
        """The first token is here (or the reply ended): background calls may go. Idempotent."""
        if self._on_arrived is not None:
            self._on_arrived()
            self._on_arrived = None


@asynccontextmanager
async def waiting_for_first_token(
    started: Callable[[], None], arrived: Callable[[], None]
) -> AsyncIterator[ReplyWait]:
    """``started()`` now, ``arrived()`` once: at the first token or when the block ends."""
    wait = ReplyWait(arrived)
    started()
    try:
        yield wait
    finally:
        wait.arrived()
