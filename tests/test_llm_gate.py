"""The concurrency gate and retry timing, without any network."""

from __future__ import annotations

import asyncio

import pytest

from bot.llm import Priority, PriorityGate
from bot.llm.retry import RetryPolicy, parse_retry_after


async def _hold(gate: PriorityGate, priority: Priority, log: list[str], name: str) -> None:
    async with gate.slot(priority):
        log.append(name)
        await asyncio.sleep(0)


async def test_limit_is_respected_and_fifo_within_a_priority() -> None:
    gate = PriorityGate(2)
    log: list[str] = []
    await gate.acquire()
    await gate.acquire()
    tasks = [asyncio.create_task(_hold(gate, Priority.BACKGROUND, log, f"b{i}")) for i in range(4)]
    await asyncio.sleep(0.01)
    assert log == [] and gate.waiting == 4
    gate.release()
    gate.release()
    await asyncio.gather(*tasks)
    assert log == ["b0", "b1", "b2", "b3"]
    assert gate.in_use == 0


async def test_narrative_waiter_queued_last_gets_the_next_slot() -> None:
    gate = PriorityGate(1)
    log: list[str] = []
    await gate.acquire()
    tasks = [asyncio.create_task(_hold(gate, Priority.BACKGROUND, log, f"b{i}")) for i in range(3)]
    await asyncio.sleep(0.01)
    tasks.append(asyncio.create_task(_hold(gate, Priority.NARRATIVE, log, "narrative")))
    await asyncio.sleep(0.01)
    gate.release()
    await asyncio.gather(*tasks)
    assert log == ["narrative", "b0", "b1", "b2"]


async def test_cancelled_waiter_leaves_no_trace_and_errors_release() -> None:
    gate = PriorityGate(1)
    await gate.acquire()
    waiter = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    gate.release()
    assert gate.in_use == 0
    with pytest.raises(RuntimeError):
        async with gate.slot():
            raise RuntimeError("boom")
    assert gate.in_use == 0


async def test_slot_handed_over_to_a_waiter_cancelled_at_that_moment_is_passed_on() -> None:
    gate = PriorityGate(1)
    await gate.acquire()
    first = asyncio.create_task(gate.acquire())
    second = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    gate.release()  # hands the slot to `first`...
    first.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.wait_for(second, 1)
    assert gate.in_use == 1
    gate.release()
    assert gate.in_use == 0


def test_gate_rejects_a_zero_limit() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        PriorityGate(0)


def test_backoff_is_full_jitter_capped_and_honours_retry_after() -> None:
    policy = RetryPolicy(max_retries=5, base=1.0, cap=4.0, retry_after_cap=10.0)
    delays = [policy.delay(attempt) for attempt in range(8) for _ in range(50)]
    assert all(0 <= d <= 4.0 for d in delays)
    assert max(delays) > 2.0  # later attempts really do wait longer
    assert policy.delay(0, retry_after=3.0) >= 3.0
    assert policy.delay(0, retry_after=3600) == 10.0


@pytest.mark.parametrize(
    ("header", "expected"),
    [("2", 2.0), (" 0.5 ", 0.5), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0), ("", None), ("-1", None)],
)
def test_parse_retry_after(header: str, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


async def test_no_background_call_goes_while_a_reply_waits_for_its_first_token() -> None:
    """Even to a free slot: a one-slot server would run the JSON call first."""
    gate = PriorityGate(2)
    log: list[str] = []
    async with gate.reply_waiting() as reply:
        background = asyncio.create_task(_hold(gate, Priority.BACKGROUND, log, "json"))
        await asyncio.sleep(0.01)
        assert log == [] and gate.in_use == 0  # a slot is free, and still it waits
        reply.arrived()
        await asyncio.wait_for(background, 1)
        assert log == ["json"]
    assert gate.replies_waiting == 0


async def test_a_reply_that_ends_without_a_token_releases_the_background_calls() -> None:
    gate = PriorityGate(1)
    with pytest.raises(RuntimeError):
        async with gate.reply_waiting():
            raise RuntimeError("the stream failed before its first token")
    await asyncio.wait_for(gate.acquire(), 1)
    gate.release()
