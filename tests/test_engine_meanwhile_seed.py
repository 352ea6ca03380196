"""Five meanwhile behaviours the story keeps, checked through the engine API.

Each test pins the LLM calls a flow makes: the fake answers each call by its purpose, raises
when a purpose has no answer left, and every test checks no scripted answer is left unused.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from bot.engine import Engine, StoryError
from bot.llm import Message, ScriptedLLM
from bot.store import Database
from bot.store.events import AssistantTurn, DigestWritten, EdgeUpdate, ManualEdit, MemoryWritten
from tests.helpers.engine_helpers import (
    GUEST,
    HOST,
    RecordingSink,
    make_engine,
    parse_answer,
    seed_story,
    summary_answer,
    threads_answer,
    zero_state,
)
from tests.helpers.events import then_events


async def _meanwhile(engine: Engine) -> tuple[str, int]:
    chat_id = await seed_story(engine)
    scene_id = await engine.scenes.start_meanwhile(
        chat_id, thread_id=555, premise="the office after hours"
    )
    return chat_id, scene_id


async def test_meanwhile_turn_writes_memories_with_witness_0_1_1(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id, scene_id = await _meanwhile(engine)
    mock.script(
        narrate="BotA leans in. *quietly* Tell me what you saw.",
        classify=parse_answer("they exchange a glance"),
        state=[zero_state(), zero_state()],
    )

    await engine.turns.take(chat_id, "they exchange a glance", RecordingSink())

    assert mock.unused == {}
    memories = await then_events(db, MemoryWritten)
    assert sorted(m.owner_id for m in memories) == [HOST, GUEST]
    for memory in memories:
        assert (memory.witness_you, memory.witness_host, memory.witness_guest) == (0, 1, 1)
        assert memory.scene_id == scene_id


async def test_meanwhile_turn_emits_2_edge_updates_only(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id, _ = await _meanwhile(engine)
    mock.script(
        narrate="BotA whispers. I noticed something.",
        classify=parse_answer("they whisper"),
        state=[zero_state(), zero_state()],
    )

    result = await engine.turns.take(chat_id, "they whisper", RecordingSink())

    updates = await then_events(db, EdgeUpdate, after=result.assistant_turn_id)
    assert sorted((u.source_id, u.target_id) for u in updates) == [
        (HOST, GUEST),
        (GUEST, HOST),
    ]
    assert all("you" not in (u.source_id, u.target_id) for u in updates)
    assert mock.unused == {}


async def test_meanwhile_turn_alternates_speaker(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id, scene_id = await _meanwhile(engine)
    mock.script(
        narrate="BotA speaks first.",
        classify=parse_answer("they pause"),
        state=[zero_state(), zero_state()],
    )
    mock.script(
        narrate="BotB replies.",
        classify=parse_answer("and again"),
        state=[zero_state(), zero_state()],
    )

    first = await engine.turns.take(chat_id, "they pause", RecordingSink())
    second = await engine.turns.take(chat_id, "and again", RecordingSink())

    assert (first.speaker.id, second.speaker.id) == (HOST, GUEST)
    turns = [t for t in await then_events(db, AssistantTurn) if t.meanwhile_scene_id]
    assert [t.speaker_id for t in turns] == [HOST, GUEST]
    assert [t.meanwhile_scene_id for t in turns] == [scene_id, scene_id]
    assert [t.present_set_kind for t in turns] == ["host_guest", "host_guest"]
    assert mock.unused == {}


async def test_meanwhile_scene_close_writes_per_pov_for_both_bots_only(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id, scene_id = await _meanwhile(engine)
    mock.script(
        narrate="BotA speaks. *quietly*",
        classify=parse_answer("they speak quietly"),
        state=[zero_state(), zero_state()],
    )
    mock.script(
        summary={
            HOST: summary_answer("BotA reflects on the quiet moment with BotB."),
            GUEST: summary_answer("BotB notices BotA's reserved manner."),
        },
        digest=summary_answer("While you were away, BotA and BotB talked quietly."),
        threads=threads_answer("What did BotA see?"),
    )
    await engine.turns.take(chat_id, "they speak quietly", RecordingSink())

    closed = await engine.scenes.end_meanwhile(chat_id)

    assert mock.unused == {}
    edits = [e for e in await then_events(db, ManualEdit) if e.target_kind == "memory_pov_summary"]
    memories = {m.id: m for m in await engine.queries.scene_memories(scene_id)}
    assert all(edit.target_id in memories for edit in edits)  # memories of this scene
    owners = [memories[edit.target_id].owner_id for edit in edits]
    assert sorted(owners) == [HOST, GUEST]
    pov = {m.owner_id: m.pov_summary for m in memories.values()}
    assert "BotA reflects" in pov[HOST]
    assert "BotB notices" in pov[GUEST]
    assert "you" not in pov
    assert closed.digest == "While you were away, BotA and BotB talked quietly."
    assert [d.text for d in await then_events(db, DigestWritten)] == [closed.digest]
    assert closed.thread_id == 555
    assert closed.threads == ("What did BotA see?",)


async def test_meanwhile_close_survives_a_failing_thread_detection(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id, _ = await _meanwhile(engine)
    # No turns: no memories, so no POV summaries; then the digest, then a failing detection.
    mock.script(
        digest=summary_answer("While you were away, nothing much."),
        threads=RuntimeError("thread detection broke"),
    )

    closed = await engine.scenes.end_meanwhile(chat_id)

    assert closed.digest == "While you were away, nothing much."
    assert closed.threads == ()
    assert mock.unused == {}


async def test_meanwhile_turn_registered_in_in_flight_tasks(db: Database) -> None:
    snapshot: dict[str, Any] = {}

    class SnapshotMock(ScriptedLLM):
        async def stream(  # type: ignore[override]
            self, messages: Sequence[Message], *, model: str, **params: Any
        ) -> AsyncIterator[str]:
            snapshot["present"] = chat_id in engine.turns.in_flight
            snapshot["task"] = engine.turns.in_flight.get(chat_id)
            async for piece in super().stream(messages, model=model, **params):
                yield piece

    mock = SnapshotMock()
    from bot.config import Settings

    engine = Engine(db, mock, Settings())
    chat_id, _ = await _meanwhile(engine)
    mock.script(
        narrate="BotA leans in.",
        classify=parse_answer("a glance"),
        state=[zero_state(), zero_state()],
    )
    assert chat_id not in engine.turns.in_flight

    await engine.turns.take(chat_id, "a glance", RecordingSink())

    assert snapshot["present"] is True
    assert isinstance(snapshot["task"], asyncio.Task)
    assert chat_id not in engine.turns.in_flight
    assert mock.unused == {}


async def test_a_premise_longer_than_the_log_holds_is_refused_in_words(db: Database) -> None:
    """A console premise has no option length to keep it short: it must not end the console."""
    engine, _ = make_engine(db)
    chat_id = await seed_story(engine)

    with pytest.raises(StoryError, match="premise is 20,001 characters"):
        await engine.scenes.start_meanwhile(chat_id, premise="x" * 20_001)
    assert await engine.queries.open_meanwhile(chat_id) is None
