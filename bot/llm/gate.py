"""A process-wide concurrency gate for LLM requests, fair and priority-aware.

LLM plans cap concurrent requests (Featherless counts them per key), so every request holds a
slot for its whole life. A freed slot is handed straight to the next waiter - narrative before
background, first come first served within a priority - so nobody can barge past the queue.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.llm.base import Priority


class PriorityGate:
    """At most ``limit`` holders at once; waiters ordered by (priority, arrival)."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("the LLM concurrency limit must be at least 1")
        self.limit = limit
        self.in_use = 0
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

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

    async def acquire(self, priority: Priority = Priority.BACKGROUND) -> None:
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
