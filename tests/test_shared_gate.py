"""One LLM cap over several processes sharing a PostgreSQL (issue 16, item 3).

Each ``SharedGate`` has its own PostgreSQL session, exactly as each process has: two gates in
one test are two processes as far as PostgreSQL can tell. The cross-process test with real
processes is tests/test_shards_processes.py.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack

import asyncpg
import pytest

from bot.llm import Priority
from bot.llm.errors import LLMConnectionError
from bot.llm.shared_gate import SharedGate
from bot.store.pg_session import connect

pytestmark = pytest.mark.postgres

MakeGate = Callable[[int], Awaitable[SharedGate]]


@pytest.fixture
async def gates(postgres_url: str) -> AsyncIterator[MakeGate]:
    """``await make(limit)``: a gate of a new "process", all sharing one cap of their own."""
    scope = secrets.randbelow(4096)
    async with AsyncExitStack() as stack:

        async def make(limit: int) -> SharedGate:
            session = functools.partial(connect, postgres_url, application_name="test gate")
            return await stack.enter_async_context(
                SharedGate.open(session, limit, scope, poll=0.05)
            )

        yield make


async def _hold(gate: SharedGate, priority: Priority, log: list[str], name: str) -> None:
    async with gate.slot(priority):
        log.append(name)
        await asyncio.sleep(0.02)


async def test_the_cap_holds_over_two_processes(gates: MakeGate) -> None:
    a = await gates(2)
    b = await gates(2)
    now = most = 0

    async def call(gate: SharedGate, priority: Priority) -> None:
        nonlocal now, most
        async with gate.slot(priority):
            now += 1
            most = max(most, now)
            await asyncio.sleep(0.01)
            now -= 1

    calls = [call(g, p) for g in (a, b) for p in (Priority.NARRATIVE, Priority.BACKGROUND) * 5]
    await asyncio.wait_for(asyncio.gather(*calls), 20)
    assert most == 2  # both slots were used, and never a third
    assert a.in_use == b.in_use == 0


async def test_a_reply_waiting_in_another_process_goes_before_a_json_call(
    gates: MakeGate,
) -> None:
    holder = await gates(1)
    jsons = await gates(1)
    replies = await gates(1)
    log: list[str] = []
    async with holder.slot(Priority.BACKGROUND):
        background = asyncio.create_task(_hold(jsons, Priority.BACKGROUND, log, "json"))
        await asyncio.sleep(0.1)  # the JSON call queued first...
        narrative = asyncio.create_task(_hold(replies, Priority.NARRATIVE, log, "reply"))
        await asyncio.sleep(0.1)
    await asyncio.wait_for(asyncio.gather(background, narrative), 5)
    assert log == ["reply", "json"]  # ...and the reply, queued later elsewhere, went first


async def test_no_json_call_goes_while_another_processs_reply_waits_for_its_first_token(
    gates: MakeGate,
) -> None:
    streaming = await gates(2)
    jsons = await gates(2)
    log: list[str] = []
    async with streaming.reply_waiting() as reply, streaming.slot(Priority.NARRATIVE):
        await asyncio.sleep(0.1)  # the pump has shown the reply waiting
        background = asyncio.create_task(_hold(jsons, Priority.BACKGROUND, log, "json"))
        await asyncio.sleep(0.3)
        assert log == []  # a slot is free, and still it waits
        reply.arrived()
        await asyncio.wait_for(background, 2)
    assert log == ["json"]


async def test_arrival_order_holds_between_processes(gates: MakeGate) -> None:
    a = await gates(1)
    b = await gates(1)
    c = await gates(1)
    log: list[str] = []
    tasks = []
    async with a.slot():
        for gate, name in ((b, "b1"), (c, "c1"), (a, "a1"), (b, "b2")):
            tasks.append(asyncio.create_task(_hold(gate, Priority.BACKGROUND, log, name)))
            await asyncio.sleep(0.05)  # 50 ms apart: a clear order of arrival
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert log == ["b1", "c1", "a1", "b2"]


async def test_a_crashed_processs_slots_are_free_at_once(
    gates: MakeGate, postgres_url: str
) -> None:
    crashing = await gates(2)
    survivor = await gates(2)
    held = [asyncio.Event(), asyncio.Event()]

    async def hold_forever(mine: asyncio.Event) -> None:
        async with crashing.slot():
            mine.set()
            await asyncio.sleep(3600)

    holders = [asyncio.create_task(hold_forever(mine)) for mine in held]
    await asyncio.wait_for(asyncio.gather(*(mine.wait() for mine in held)), 2)
    waiting = asyncio.create_task(_hold(survivor, Priority.BACKGROUND, [], "after"))
    await asyncio.sleep(0.2)
    assert not waiting.done()  # both slots are held elsewhere
    # the crash: the server ends that process's session (as a killed process's would end)
    admin = await asyncpg.connect(postgres_url)
    try:
        pid = crashing._conn.get_server_pid()  # type: ignore[union-attr]
        await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    await asyncio.wait_for(waiting, 2)  # freed with the session, not after a timeout
    for task in holders:
        task.cancel()
    await asyncio.gather(*holders, return_exceptions=True)


async def test_a_lost_session_fails_waiters_clearly_and_the_gate_comes_back(
    gates: MakeGate, postgres_url: str
) -> None:
    gate = await gates(1)
    other = await gates(1)
    async with other.slot():
        waiter = asyncio.create_task(_hold(gate, Priority.BACKGROUND, [], "w"))
        await asyncio.sleep(0.1)
        admin = await asyncpg.connect(postgres_url)
        try:
            await admin.fetchval(
                "SELECT pg_terminate_backend($1)",
                gate._conn.get_server_pid(),  # type: ignore[union-attr]
            )
        finally:
            await admin.close()
        with pytest.raises(LLMConnectionError, match="PostgreSQL"):
            await asyncio.wait_for(waiter, 2)
    log: list[str] = []
    await asyncio.wait_for(_hold(gate, Priority.NARRATIVE, log, "again"), 5)
    assert log == ["again"]


async def test_a_reply_arriving_while_a_json_call_is_granted_is_served_first(
    gates: MakeGate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pump asks PostgreSQL before granting; a reply that comes meanwhile is not lost."""
    gate = await gates(1)
    log: list[str] = []
    asked = gate._take_if_first
    reply: list[asyncio.Task[None]] = []

    async def take_if_first(conn: asyncpg.Connection, best: object) -> int | None:
        if not reply:  # the JSON call is being considered: now the reply arrives
            reply.append(asyncio.create_task(_hold(gate, Priority.NARRATIVE, log, "reply")))
            await asyncio.sleep(0.01)
        return await asked(conn, best)  # type: ignore[arg-type]

    monkeypatch.setattr(gate, "_take_if_first", take_if_first)
    background = asyncio.create_task(_hold(gate, Priority.BACKGROUND, log, "json"))
    await asyncio.wait_for(asyncio.gather(background, *reply), 5)
    await asyncio.wait_for(reply[0], 5)
    assert log == ["reply", "json"]
