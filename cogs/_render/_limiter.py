"""Spacing message edits per channel, since Discord limits edits per channel, not per message."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

EDIT_SLACK = 0.02
"""Edits are spaced 2% over the interval, so jitter never squeezes 6 into a 5-second window."""


class EditLimiter:
    """One channel's request pacing, shared by every character streaming there.

    ``acquire`` waits for the next free slot (for edits, which can wait); ``note`` takes a slot
    without waiting (for a new message, which should appear at once) and pushes the next edit
    back. Waiters are served first come, first served (asyncio.Lock is fair).
    """

    def __init__(self, interval: float, *, clock: Clock, sleep: Sleep = asyncio.sleep) -> None:
        self._spacing = interval * (1 + EDIT_SLACK)
        self._clock = clock
        self._sleep = sleep
        self._next = float("-inf")
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while (delay := self._next - self._clock()) > 0:
                await self._sleep(delay)
            self._next = self._clock() + self._spacing

    def note(self) -> None:
        self._next = max(self._next, self._clock()) + self._spacing


class EditLimiters:
    """The limiter of each channel, made on first use."""

    def __init__(self, interval: float, *, clock: Clock, sleep: Sleep = asyncio.sleep) -> None:
        self._interval = interval
        self._clock = clock
        self._sleep = sleep
        self._by_channel: dict[int, EditLimiter] = {}

    def of(self, channel_id: int) -> EditLimiter:
        limiter = self._by_channel.get(channel_id)
        if limiter is None:
            limiter = EditLimiter(self._interval, clock=self._clock, sleep=self._sleep)
            self._by_channel[channel_id] = limiter
        return limiter
