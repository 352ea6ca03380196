"""The engine's seam for a cross-process chat lock (issue 16): taken inside the FIFO queue.

With SQLite (one writer process) there is nothing to take; with PostgreSQL a ``ChatLock``
keeps each chat to one process (tests/test_pg_chat_locks.py, tests/test_shards_processes.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from bot.config import Settings
from bot.engine import Engine
from bot.engine.beat_events import turn_events
from bot.llm import MockLLMClient
from bot.store import Database, append_events
from bot.store.events import TurnStarted
from tests.helpers.engine_helpers import RecordingSink, parse_answer, seed_story
from tests.helpers.llm_server import LoopbackLLMServer, RecordedRequest, Reply, loopback_client


class RecordingLock:
    """Notes when each chat's cross-process lock is taken and given back."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.holding: set[str] = set()

    @asynccontextmanager
    async def hold(self, chat_id: str) -> AsyncIterator[None]:
        assert chat_id not in self.holding  # the FIFO queue lets one turn in at a time
        self.holding.add(chat_id)
        self.log.append(f"take {chat_id}")
        try:
            yield
        finally:
            self.holding.discard(chat_id)
            self.log.append(f"give {chat_id}")


def _answers(request: RecordedRequest) -> Reply:
    if request.stream:
        return Reply.text(f"BotA answers {request.messages[-1]['content'][-5:]}.")
    if request.messages[0]["content"].startswith("You split"):
        return Reply.text('{"segments": [{"kind": "narration", "text": "x"}]}')
    return Reply.text('{"relationships": []}')


async def test_every_turn_holds_its_chats_lock_one_at_a_time(db: Database) -> None:
    lock = RecordingLock()
    async with LoopbackLLMServer(_answers) as server, loopback_client(server) as llm:
        engine = Engine(db, llm, Settings(), chat_lock=lock)
        chat = await seed_story(engine, guest=False)
        lock.log.clear()
        sinks = [RecordingSink() for _ in range(3)]
        lines = ("line1", "line2", "line3")
        await asyncio.gather(
            *(engine.turns.take(chat, t, s) for t, s in zip(lines, sinks, strict=True))
        )
    assert lock.log == [f"{verb} {chat}" for _ in range(3) for verb in ("take", "give")]
    assert ["".join(s.chunks) for s in sinks] == [f"BotA answers {t}." for t in lines]
    assert not lock.holding


async def test_a_single_process_takes_no_lock(db: Database) -> None:
    engine = Engine(db, MockLLMClient(), Settings())
    async with engine.ctx.queues.turn("any chat"):
        assert engine.turns.queued("any chat") == 1
    assert engine.turns.queued("any chat") == 0


class _Crash(BaseException):
    """The process dying: nothing after the line that raises it runs."""


class _DyingSink(RecordingSink):
    async def append(self, text: str) -> None:
        await super().append(text)
        if len(self.chunks) == 3:
            raise _Crash  # the process dies mid-stream: nothing after turn_started is written


async def _cut_off_turn(db: Database) -> str:
    long_reply = " ".join(f"word{i}" for i in range(200))
    llm = MockLLMClient(chunk_delay=0.02)
    engine = Engine(db, llm, Settings())
    chat = await seed_story(engine, guest=False)
    llm.add(long_reply, parse_answer("doomed"))
    with pytest.raises(_Crash):
        await engine.turns.take(chat, "doomed", _DyingSink())
    assert len(await engine.ctx.views.open_turns()) == 1
    return chat


async def test_recovery_closes_a_cut_off_turn_holding_its_chat(db: Database) -> None:
    chat = await _cut_off_turn(db)
    lock = RecordingLock()
    restarted = Engine(db, MockLLMClient(), Settings(), chat_lock=lock)
    assert await restarted.turns.recover_interrupted() == 1
    assert lock.log == [f"take {chat}", f"give {chat}"]


class _OtherProcessFinishes:
    """The chat is another live process's: by the time we hold it, that one closed its turn."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @asynccontextmanager
    async def hold(self, chat_id: str) -> AsyncIterator[None]:
        from bot.store.views import Views

        for started_id, raw in await Views(self.db).open_turns():
            started = TurnStarted.model_validate_json(raw)
            done = turn_events(started, started_id, text="their reply", status="done")
            await append_events(self.db, done.batch)
        yield


async def test_recovery_leaves_a_turn_another_process_is_playing_to_it(db: Database) -> None:
    await _cut_off_turn(db)
    restarted = Engine(db, MockLLMClient(), Settings(), chat_lock=_OtherProcessFinishes(db))
    assert await restarted.turns.recover_interrupted() == 0  # not closed twice
    assert await restarted.ctx.views.open_turns() == []
