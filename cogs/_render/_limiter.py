"""Pacing the bot's requests per channel, since Discord limits edits per channel, not per message.

Two rules, both per channel and shared by every character speaking there:

- edits are spaced ``interval`` apart (a steady pace, so a reply grows about once a second);
- no ``WINDOW`` seconds ever hold more than ``budget`` requests (sends and edits). Spacing the
  *start* of requests is not enough for that: one slow request followed by fast ones lands
  several together. So a request may start only while the requests completed in the last
  window plus those still in flight stay under the budget. Whenever the server counts a
  request (between its start and its end), the window around it then holds at most the budget.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

EDIT_SLACK = 0.02
"""Edits are spaced 2% over the interval, so a steady stream keeps clear of the budget."""
WINDOW = 5.0
"""Discord's per-channel window: about 5 message requests per 5 seconds."""
WINDOW_MARGIN = 0.05
"""A completed request counts a little longer than the window, for clocks that disagree."""
MIN_WAIT = 0.001
"""The shortest wait, so rounding never turns a wait into a busy loop."""


def budget_for(interval: float) -> int:
    """Requests one window may hold: as many as the edit interval fits (1.0 s: Discord's 5)."""
    return max(1, int(WINDOW / interval + 1e-9))


class EditLimiter:
    """One channel's request pacing, shared by every character streaming there.

    ``acquire`` waits for the next edit slot; ``note`` lets a new message go first (it should
    appear at once) and pushes the next edit back; every request itself runs inside
    ``request``, which holds it back only while the window is full. Waiters for edit slots
    are served first come, first served (asyncio.Lock is fair).
    """

    def __init__(
        self,
        interval: float,
        *,
        clock: Clock,
        sleep: Sleep = asyncio.sleep,
        budget: int | None = None,
    ) -> None:
        self._spacing = interval * (1 + EDIT_SLACK)
        self._budget = budget if budget is not None else budget_for(interval)
        self._clock = clock
        self._sleep = sleep
        self._next = float("-inf")
        self._lock = asyncio.Lock()
        self._completed: deque[float] = deque()
        self._in_flight = 0
        self._finished = asyncio.Event()

    async def acquire(self) -> None:
        """Wait until the next edit may start (spacing, then room in the window)."""
        async with self._lock:
            while (delay := self._next - self._clock()) > 0:
                await self._sleep(delay)
            await self._room()
            self._next = self._clock() + self._spacing

    def note(self) -> None:
        """A new message goes out now: the next edit waits a full interval after it."""
        self._next = max(self._next, self._clock()) + self._spacing

    @asynccontextmanager
    async def request(self) -> AsyncIterator[None]:
        """Run one request to Discord in this channel, counted from its start to its end."""
        await self._room()
        self._in_flight += 1  # no await since _room saw room: nobody else took it
        try:
            yield
        finally:
            self._in_flight -= 1
            self._completed.append(self._clock())
            self._finished.set()
            self._finished = asyncio.Event()

    async def _room(self) -> None:
        """Return once one more request keeps every window within the budget."""
        counted = WINDOW + WINDOW_MARGIN
        while True:
            now = self._clock()
            while self._completed and now - self._completed[0] >= counted:
                self._completed.popleft()
            if len(self._completed) + self._in_flight < self._budget:
                return
            if self._completed:  # wait until the oldest leaves the window
                await self._sleep(max(self._completed[0] + counted - now, MIN_WAIT))
            else:  # the budget is all in flight: wait for one to finish
                await self._finished.wait()


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
