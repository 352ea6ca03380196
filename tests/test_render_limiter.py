"""Edit pacing per channel: no 5-second window ever holds more than the budget.

A real server once saw 6 edits of one channel within 4.99 s: the old limiter spaced the start of
each request, so one slow edit that ended late, next to quick ones, squeezed them together.
"""

from __future__ import annotations

import asyncio

from cogs._render._limiter import WINDOW, EditLimiter, budget_for
from tests.helpers.render_fakes import VirtualClock


def most_in_a_window(times: list[float], window: float = WINDOW) -> int:
    """The most request ends that fit in any closed window of ``window`` seconds."""
    ordered = sorted(times)
    return max(
        (sum(1 for t in ordered if start <= t <= start + window) for start in ordered), default=0
    )


async def edit(limiter: EditLimiter, clock: VirtualClock, took: float, ends: list[float]) -> None:
    await limiter.acquire()
    async with limiter.request():
        await clock.sleep(took)
    ends.append(clock())


async def test_a_slow_edit_next_to_quick_ones_never_overfills_a_window() -> None:
    clock = VirtualClock()
    limiter = EditLimiter(1.0, clock=clock, sleep=clock.sleep)
    ends: list[float] = []

    async def slow_character() -> None:
        await edit(limiter, clock, 4.9, ends)  # one edit that takes almost the whole window
        for _ in range(6):
            await edit(limiter, clock, 0.01, ends)

    async def quick_character() -> None:
        for _ in range(12):
            await edit(limiter, clock, 0.01, ends)

    await asyncio.gather(slow_character(), quick_character())
    assert len(ends) == 19
    assert most_in_a_window(ends) <= 5, sorted(ends)


async def test_new_messages_count_towards_the_window_too() -> None:
    clock = VirtualClock()
    limiter = EditLimiter(1.0, clock=clock, sleep=clock.sleep)
    ends: list[float] = []
    for _ in range(8):  # a long reply's follow-up messages, sent as fast as allowed
        limiter.note()
        async with limiter.request():
            await clock.sleep(0.01)
        ends.append(clock())
    assert most_in_a_window(ends) <= 5
    assert clock() > WINDOW  # the sixth waited for the first to leave the window


async def test_requests_in_flight_hold_the_window() -> None:
    clock = VirtualClock()
    limiter = EditLimiter(1.0, clock=clock, sleep=clock.sleep, budget=2)
    release = asyncio.Event()
    started: list[float] = []

    async def hanging() -> None:
        async with limiter.request():
            started.append(clock())
            await release.wait()

    first = asyncio.create_task(hanging())
    second = asyncio.create_task(hanging())
    third = asyncio.create_task(hanging())
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(started) == 2  # the third waits while two are in flight
    release.set()
    await asyncio.gather(first, second, third)
    assert len(started) == 3


def test_the_budget_follows_the_edit_interval() -> None:
    assert budget_for(1.0) == 5  # Discord's own: 5 per 5 s per channel
    assert budget_for(2.5) == 2
    assert budget_for(10.0) == 1
