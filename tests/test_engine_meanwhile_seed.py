"""Five meanwhile behaviours the story keeps, checked through the engine API.

Each test pins the exact LLM calls a flow makes: the mock raises when its queue runs dry, and
every test checks the queue ends empty. The narrative stream asks first, so classification
never delays the first token, and the
canned queues are in that order: narrative, classification, state updates.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from bot.engine import Engine
from bot.llm import Message, MockLLMClient
from bot.store import Database
from tests.helpers.engine_helpers import (
    GUEST,
    HOST,
    RecordingSink,
    make_engine,
    parse_answer,
    payloads,
    seed_story,
    summary_answer,
    threads_answer,
    zero_state,
)


async def _meanwhile(engine: Engine) -> tuple[str, int]:
    chat_id = await seed_story(engine)
    scene_id = await engine.scenes.start_meanwhile(
        chat_id, thread_id=555, premise="the office after hours"
    )
    return chat_id, scene_id


async def test_meanwhile_turn_writes_memories_with_witness_0_1_1(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id, scene_id = await _meanwhile(engine)
    mock._canned.extend(
        [
            "BotA leans in. *quietly* Tell me what you saw.",
            parse_answer("they exchange a glance"),
            zero_state(),
            zero_state(),
        ]
    )

    await engine.turns.take(chat_id, "they exchange a glance", RecordingSink())

    assert mock._canned == []
    memories = await payloads(db, "memory_written")
    assert sorted(m["owner_id"] for m in memories) == [HOST, GUEST]
    for memory in memories:
        assert (memory["witness_you"], memory["witness_host"], memory["witness_guest"]) == (0, 1, 1)
        assert memory["scene_id"] == scene_id


async def test_meanwhile_turn_emits_2_edge_updates_only(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id, _ = await _meanwhile(engine)
    mock._canned.extend(
        [
            "BotA whispers. I noticed something.",
            parse_answer("they whisper"),
            zero_state(),
            zero_state(),
        ]
    )

    result = await engine.turns.take(chat_id, "they whisper", RecordingSink())

    updates = await payloads(db, "edge_update", after=result.assistant_turn_id)
    assert sorted((u["source_id"], u["target_id"]) for u in updates) == [
        (HOST, GUEST),
        (GUEST, HOST),
    ]
    assert all("you" not in (u["source_id"], u["target_id"]) for u in updates)
    assert mock._canned == []


async def test_meanwhile_turn_alternates_speaker(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id, scene_id = await _meanwhile(engine)
    mock.add("BotA speaks first.", parse_answer("they pause"), zero_state(), zero_state())
    mock.add("BotB replies.", parse_answer("and again"), zero_state(), zero_state())

    first = await engine.turns.take(chat_id, "they pause", RecordingSink())
    second = await engine.turns.take(chat_id, "and again", RecordingSink())

    assert (first.speaker.id, second.speaker.id) == (HOST, GUEST)
    turns = [t for t in await payloads(db, "assistant_turn") if t["meanwhile_scene_id"]]
    assert [t["speaker_id"] for t in turns] == [HOST, GUEST]
    assert [t["meanwhile_scene_id"] for t in turns] == [scene_id, scene_id]
    assert [t["present_set_kind"] for t in turns] == ["host_guest", "host_guest"]
    assert mock._canned == []


async def test_meanwhile_scene_close_writes_per_pov_for_both_bots_only(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id, scene_id = await _meanwhile(engine)
    mock.add("BotA speaks. *quietly*", parse_answer("they speak quietly"))
    mock.add(zero_state(), zero_state())
    mock.add(
        summary_answer("BotA reflects on the quiet moment with BotB."),
        summary_answer("BotB notices BotA's reserved manner."),
        summary_answer("While you were away, BotA and BotB talked quietly."),
        threads_answer("What did BotA see?"),
    )
    await engine.turns.take(chat_id, "they speak quietly", RecordingSink())

    closed = await engine.scenes.end_meanwhile(chat_id)

    assert mock._canned == []
    edits = [
        e for e in await payloads(db, "manual_edit") if e["target_kind"] == "memory_pov_summary"
    ]
    owners = []
    for edit in edits:
        row = await db.fetchone(
            "SELECT owner_id, scene_id FROM memories WHERE id = ?", (edit["target_id"],)
        )
        assert row is not None and row[1] == scene_id
        owners.append(row[0])
    assert sorted(owners) == [HOST, GUEST]
    host_pov = await db.fetchone(
        "SELECT pov_summary FROM memories WHERE owner_id = ? AND scene_id = ?", (HOST, scene_id)
    )
    guest_pov = await db.fetchone(
        "SELECT pov_summary FROM memories WHERE owner_id = ? AND scene_id = ?", (GUEST, scene_id)
    )
    assert host_pov is not None and "BotA reflects" in host_pov[0]
    assert guest_pov is not None and "BotB notices" in guest_pov[0]
    assert (
        await db.fetchone(
            "SELECT id FROM memories WHERE owner_id = 'you' AND scene_id = ?", (scene_id,)
        )
        is None
    )
    assert closed.digest == "While you were away, BotA and BotB talked quietly."
    assert [d["text"] for d in await payloads(db, "digest_written")] == [closed.digest]
    assert closed.thread_id == 555
    assert closed.threads == ("What did BotA see?",)


async def test_meanwhile_close_survives_a_failing_thread_detection(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id, _ = await _meanwhile(engine)
    # No turns: no memories, so no POV summaries; then the digest, then a failing detection.
    mock._canned.extend(
        [
            summary_answer("While you were away, nothing much."),
            RuntimeError("thread detection broke"),
        ]
    )

    closed = await engine.scenes.end_meanwhile(chat_id)

    assert closed.digest == "While you were away, nothing much."
    assert closed.threads == ()
    assert mock._canned == []


async def test_meanwhile_turn_registered_in_in_flight_tasks(db: Database) -> None:
    snapshot: dict[str, Any] = {}

    class SnapshotMock(MockLLMClient):
        async def stream(  # type: ignore[override]
            self, messages: Sequence[Message], *, model: str, **params: Any
        ) -> AsyncIterator[str]:
            text = self._canned.pop(0)
            for i, ch in enumerate(text):
                if i == 0:
                    snapshot["present"] = chat_id in engine.turns.in_flight
                    snapshot["task"] = engine.turns.in_flight.get(chat_id)
                yield ch

    mock = SnapshotMock(canned=[])
    from bot.config import Settings

    engine = Engine(db, mock, Settings())
    chat_id, _ = await _meanwhile(engine)
    mock._canned.extend(["BotA leans in.", parse_answer("a glance"), zero_state(), zero_state()])
    assert chat_id not in engine.turns.in_flight

    await engine.turns.take(chat_id, "a glance", RecordingSink())

    assert snapshot["present"] is True
    assert isinstance(snapshot["task"], asyncio.Task)
    assert chat_id not in engine.turns.in_flight
    assert mock._canned == []
