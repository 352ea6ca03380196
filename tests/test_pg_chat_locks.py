"""A chat is played by one process at a time, across processes (issue 16, item 2).

Each ``PgChatLocks`` has its own PostgreSQL session, as each process has. Last, ``run`` with
the story on PostgreSQL serves with these locks and the shared LLM cap.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import asyncpg
import pytest

from bot import app
from bot.config import Settings
from bot.llm.shared_gate import SharedGate
from bot.store.pg_locks import ChatLockLostError, PgChatLocks
from bot.store.pg_session import connect
from tests.helpers.serving import capture_serving

pytestmark = pytest.mark.postgres

MakeLocks = Callable[[], Awaitable[PgChatLocks]]


@pytest.fixture
async def processes(postgres_url: str) -> AsyncIterator[MakeLocks]:
    async with AsyncExitStack() as stack:

        async def make() -> PgChatLocks:
            locks = await PgChatLocks.open(functools.partial(connect, postgres_url))
            stack.push_async_callback(locks.aclose)
            return locks

        yield make


def _chat() -> str:
    return f"chat-{secrets.token_hex(6)}"  # the cluster is shared: a chat of this test's own


async def test_a_chat_held_in_one_process_waits_in_the_other_until_released(
    processes: MakeLocks,
) -> None:
    first, second = await processes(), await processes()
    chat = _chat()
    order: list[str] = []

    async def play(locks: PgChatLocks, name: str, seconds: float) -> None:
        async with locks.hold(chat):
            order.append(f"{name} in")
            await asyncio.sleep(seconds)
            order.append(f"{name} out")

    one = asyncio.create_task(play(first, "first", 0.3))
    await asyncio.sleep(0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(asyncio.gather(one, play(second, "second", 0)), 5)
    assert order == ["first in", "first out", "second in", "second out"]
    assert loop.time() - started < 0.6  # woken by the release, not by a long poll


async def test_other_chats_never_wait(processes: MakeLocks) -> None:
    first, second = await processes(), await processes()
    async with first.hold(_chat()):
        await asyncio.wait_for(_enter(second, _chat()), 1)


async def _enter(locks: PgChatLocks, chat: str) -> None:
    async with locks.hold(chat):
        pass


async def test_a_crashed_process_leaves_its_chats_free_at_once(
    processes: MakeLocks, postgres_url: str
) -> None:
    crashing, survivor = await processes(), await processes()
    chat = _chat()
    holding = asyncio.Event()

    async def hold_forever() -> None:
        async with crashing.hold(chat):
            holding.set()
            await asyncio.sleep(3600)

    holder = asyncio.create_task(hold_forever())
    await holding.wait()
    waiting = asyncio.create_task(_enter(survivor, chat))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.fetchval("SELECT pg_terminate_backend($1)", crashing._conn.get_server_pid())
    finally:
        await admin.close()
    await asyncio.wait_for(waiting, 2)
    holder.cancel()
    with pytest.raises((asyncio.CancelledError, ChatLockLostError)):
        await holder
    with pytest.raises(ChatLockLostError, match="storybot stops"):
        await _enter(crashing, _chat())  # a process that lost its session plays no more


async def test_a_turn_cancelled_while_waiting_takes_nothing_with_it(processes: MakeLocks) -> None:
    first, second = await processes(), await processes()
    chat = _chat()
    async with first.hold(chat):
        waiting = asyncio.create_task(_enter(second, chat))
        await asyncio.sleep(0.1)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    await asyncio.wait_for(_enter(second, chat), 1)  # nothing of the cancelled wait is held
    await asyncio.wait_for(_enter(first, chat), 1)


async def test_run_shares_the_cap_and_the_chat_locks_when_the_story_is_on_postgresql(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python -m bot run`` with ``[storage] url``: the engine and LLM client it serves with."""
    seen = capture_serving(monkeypatch)
    settings = Settings.model_validate(
        {
            "discord": {"token": "t", "shards": [0], "shard_count": 2},
            "storage": {"url": postgres_url, "db_path": str(tmp_path / "story.db")},
        }
    )
    assert await app.run_discord(settings) == 0
    assert isinstance(seen["gate"], SharedGate) and isinstance(seen["lock"], PgChatLocks)
