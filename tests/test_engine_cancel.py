"""Order and cancel: one turn at a time per chat, ⛔ within 50 ms, crashes closed at restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.engine import StoryError
from bot.llm import LLMRateLimitedError, ScriptedLLM
from bot.store import Database
from bot.store.events import AssistantTurn, EdgeUpdate, MemoryWritten, UserTurn
from tests.helpers.engine_helpers import (
    RecordingSink,
    make_engine,
    parse_answer,
    seed_story,
    zero_state,
)
from tests.helpers.events import then_events

LONG_REPLY = " ".join(f"word{i}" for i in range(200))


async def _until(condition: object, within: float = 2.0) -> None:
    deadline = time.monotonic() + within
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.002)


async def test_cancel_stops_a_slow_stream_keeps_text_and_frees_the_registry(db: Database) -> None:
    engine, mock = make_engine(db)
    mock.chunk_delay = 0.02
    chat_id = await seed_story(engine, guest=False)
    # a stopped beat asks for no classification or state update: nothing past its stream
    mock.script(narrate=[LONG_REPLY, "short"], classify=parse_answer("second"), state=zero_state())
    sink = RecordingSink()
    first = asyncio.create_task(engine.turns.take(chat_id, "first", sink))
    await _until(lambda: len(sink.chunks) >= 3)
    second = asyncio.create_task(engine.turns.take(chat_id, "second", RecordingSink()))
    await asyncio.sleep(0)

    started = time.monotonic()
    assert engine.turns.cancel(chat_id) is True
    await _until(lambda: bool(sink.ends))
    elapsed = time.monotonic() - started

    assert elapsed < 0.05
    result = await first
    assert result.status == "stopped"
    assert result.text == "".join(sink.chunks) and 0 < len(result.text) < len(LONG_REPLY)
    beat = (await then_events(db, AssistantTurn))[-1]
    assert beat.cancelled is True and beat.text == result.text
    assert await then_events(db, MemoryWritten) == []
    assert await then_events(db, EdgeUpdate) == []
    follow_up = await second
    assert follow_up.status == "done" and follow_up.text == "short"
    assert chat_id not in engine.turns.in_flight
    assert mock.unused == {}


async def test_turns_of_one_chat_run_in_arrival_order(db: Database) -> None:
    engine, mock = make_engine(db)
    mock.chunk_delay = 0.001
    chat_id = await seed_story(engine, guest=False)
    for i in range(4):
        mock.script(narrate=f"reply {i}", classify=parse_answer(f"m{i}"), state=zero_state())

    results = await asyncio.gather(
        *(engine.turns.take(chat_id, f"m{i}", RecordingSink()) for i in range(4))
    )

    assert [r.text for r in results] == [f"reply {i}" for i in range(4)]
    assert [u.prose for u in await then_events(db, UserTurn)] == [f"m{i}" for i in range(4)]
    assert mock.unused == {}


async def test_cancel_with_nothing_streaming_is_a_no_op(db: Database) -> None:
    engine, _ = make_engine(db)
    chat_id = await seed_story(engine)
    assert engine.turns.cancel(chat_id) is False


class _Crash(BaseException):
    """The process dying: nothing after the line that raises it runs."""


class _DyingSink(RecordingSink):
    async def append(self, text: str) -> None:
        await super().append(text)
        if len(self.chunks) == 3:
            raise _Crash


async def test_a_turn_cut_off_by_a_crash_is_closed_as_interrupted_at_start(db: Database) -> None:
    engine, mock = make_engine(db)
    mock.chunk_delay = 0.02
    chat_id = await seed_story(engine, guest=False)
    mock.script(narrate=LONG_REPLY, classify=parse_answer("doomed"))
    # the process dying mid-stream: nothing after turn_started is written
    with pytest.raises(_Crash):
        await engine.turns.take(chat_id, "doomed", _DyingSink())
    assert await then_events(db, UserTurn) == []

    restarted, _ = make_engine(db)
    closed = await restarted.turns.recover_interrupted()

    assert closed == 1
    assert [u.prose for u in await then_events(db, UserTurn)] == ["doomed"]
    beat = (await then_events(db, AssistantTurn))[-1]
    assert beat.interrupted is True
    assert await restarted.queries.open_turns() == []
    assert await restarted.turns.recover_interrupted() == 0


async def test_close_stops_the_stream_and_refuses_the_turns_waiting(db: Database) -> None:
    engine, mock = make_engine(db)
    mock.chunk_delay = 0.02
    chat_id = await seed_story(engine, guest=False)
    mock.script(narrate=LONG_REPLY)
    sink = RecordingSink()
    streaming = asyncio.create_task(engine.turns.take(chat_id, "first", sink))
    await sink.first_text.wait()
    waiting = asyncio.create_task(engine.turns.take(chat_id, "second", RecordingSink()))
    await asyncio.sleep(0)

    await engine.close(grace=2.0)

    assert (await streaming).status == "stopped"
    with pytest.raises(StoryError, match="shutting down"):
        await waiting
    assert [c.kind for c in mock.calls] == ["stream"]  # a stopped beat classifies nothing
    assert await engine.queries.open_turns() == []


async def test_a_failed_reply_keeps_its_text_and_says_why_in_public_words(db: Database) -> None:
    engine, _ = make_engine(db)
    chat_id = await seed_story(engine, guest=False)

    class Overloaded(ScriptedLLM):
        async def stream(self, messages: Any, *, model: str, **params: Any) -> AsyncIterator[str]:
            yield "She begins to"
            raise LLMRateLimitedError("see https://internal.example/quota")

    engine.ctx.models.llm = Overloaded(classify=parse_answer("x"))
    sink = RecordingSink()

    result = await engine.turns.take(chat_id, "go on", sink)

    assert result.status == "failed" and result.text == "She begins to"
    assert sink.ends[0].reason == "the model server is busy; try again in a moment"
    assert "internal.example" in sink.ends[0].error
    beat = (await then_events(db, AssistantTurn))[-1]
    assert beat.interrupted is True and beat.text == "She begins to"
    assert await then_events(db, MemoryWritten) == []
