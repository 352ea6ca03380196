"""You-scene turns: witnesses per present set, the pairs that move, who speaks, and the budget."""

from __future__ import annotations

import json

import pytest

from bot.engine import StoryError
from bot.store import Database, project
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
from tests.helpers.store_factories import snapshot


@pytest.fixture
def db(store: Database) -> Database:
    """Every story here plays on SQLite and on PostgreSQL (``-m postgres``)."""
    return store


async def test_you_host_turn_writes_two_witness_memories_and_one_pair(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    mock._canned.extend(["BotA smiles.", parse_answer('"Hello."', "dialogue"), zero_state()])

    result = await engine.turns.take(chat_id, '"Hello."', RecordingSink())

    assert result.status == "done" and result.speaker.id == HOST
    memories = await payloads(db, "memory_written")
    assert sorted(m["owner_id"] for m in memories) == [HOST, "you"]
    assert {(m["witness_you"], m["witness_host"], m["witness_guest"]) for m in memories} == {
        (1, 1, 0)
    }
    updates = await payloads(db, "edge_update", after=result.assistant_turn_id)
    assert [(u["source_id"], u["target_id"]) for u in updates] == [(HOST, "you")]
    # the line is written with the rules' labels at once (quotes are dialogue); the
    # classifier's come as a later event
    user_turn = (await payloads(db, "user_turn"))[0]
    assert user_turn["segments"] == [{"kind": "dialogue", "text": '"Hello."'}]
    [classified] = await payloads(db, "turn_classified")
    assert classified["turn_id"] == result.user_turn_id
    assert classified["segments"] == [{"kind": "dialogue", "text": '"Hello."'}]
    row = await db.fetchone("SELECT segments_json FROM turns WHERE id = ?", (result.user_turn_id,))
    assert row is not None and json.loads(row[0]) == classified["segments"]
    assert mock._canned == []


async def test_you_host_guest_turn_is_one_state_call_per_character(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine)
    state_host = json.dumps(
        {
            "relationships": [
                {
                    "target_id": "you",
                    "affinity_delta": 3,
                    "trust_delta": 1,
                    "knowledge_facts": ["likes tea"],
                },
                {"target_id": "BotB", "affinity_delta": -2, "trust_delta": 0},
            ]
        }
    )
    mock._canned.extend(["BotA waves.", parse_answer("hi all"), state_host, zero_state()])

    result = await engine.turns.take(chat_id, "hi all", RecordingSink())

    kinds = [call.kind for call in mock.calls]
    assert kinds == ["stream", "complete", "complete", "complete"]
    memories = await payloads(db, "memory_written")
    assert sorted(m["owner_id"] for m in memories) == [HOST, GUEST, "you"]
    assert {(m["witness_you"], m["witness_host"], m["witness_guest"]) for m in memories} == {
        (1, 1, 1)
    }
    updates = await payloads(db, "edge_update", after=result.assistant_turn_id)
    assert sorted((u["source_id"], u["target_id"]) for u in updates) == sorted(
        [(HOST, "you"), (HOST, GUEST), (GUEST, "you"), (GUEST, HOST)]
    )
    rel = await engine.queries.relationship(chat_id, HOST, "you")
    assert (rel.affinity, rel.trust, rel.knowledge_facts) == (53, 51, ("likes tea",))
    assert (await engine.queries.relationship(chat_id, HOST, GUEST)).affinity == 48
    # the guest's flat zero answer fits neither of its two targets: both stay at the defaults
    assert (await engine.queries.relationship(chat_id, GUEST, HOST)).affinity == 50


async def test_addressing_the_guest_by_name_makes_the_guest_speak(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine)
    mock._canned.extend(["BotB answers.", parse_answer("x"), zero_state(), zero_state()])

    result = await engine.turns.take(chat_id, "What do you think, botb?", RecordingSink())

    assert result.speaker.id == GUEST


async def test_unaddressed_turn_goes_to_the_host(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine)
    mock._canned.extend(["BotA answers.", parse_answer("x"), zero_state(), zero_state()])

    result = await engine.turns.take(chat_id, "I look around the room.", RecordingSink())

    assert result.speaker.id == HOST


async def test_deltas_are_clamped_per_beat_and_to_0_100(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    huge = json.dumps({"affinity_delta": 95, "trust_delta": -400, "knowledge_facts": []})
    for _ in range(6):
        mock._canned.extend(["ok", parse_answer("x"), huge])
        await engine.turns.take(chat_id, "again", RecordingSink())

    rel = await engine.queries.relationship(chat_id, HOST, "you")
    assert (rel.affinity, rel.trust) == (100, 0)
    deltas = {(u["affinity_delta"], u["trust_delta"]) for u in await payloads(db, "edge_update")}
    assert deltas == {(10, -10)}


async def test_a_malformed_classifier_and_state_answer_never_crash_a_turn(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    mock._canned.extend(["The reply.", "not json", "still not json", "{broken", "{broken again"])

    result = await engine.turns.take(chat_id, '*I wave.* "Hello?"', RecordingSink())

    assert result.status == "done" and result.text == "The reply."
    user_turn = (await payloads(db, "user_turn"))[0]
    assert user_turn["segments"] == [
        {"kind": "action", "text": "*I wave.*"},
        {"kind": "dialogue", "text": '"Hello?"'},
    ]
    assert (await engine.queries.relationship(chat_id, HOST, "you")).affinity == 50
    assert mock._canned == []


async def test_a_too_long_message_is_refused_and_writes_nothing(db: Database) -> None:
    engine, _ = make_engine(db)
    chat_id = await seed_story(engine)
    before = await db.fetchone("SELECT COUNT(*) FROM event_log")

    with pytest.raises(StoryError, match="10,000 characters"):
        await engine.turns.take(chat_id, "x" * 10_000, RecordingSink())

    assert await db.fetchone("SELECT COUNT(*) FROM event_log") == before


async def test_the_sink_sees_the_reply_stream_in_order(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    mock._canned.extend(
        ["Rain ticks on the glass, slow and patient.", parse_answer("x"), zero_state()]
    )
    sink = RecordingSink()

    await engine.turns.take(chat_id, "hello", sink)

    assert [s.name for s in sink.speakers] == ["BotA"]
    assert "".join(sink.chunks) == "Rain ticks on the glass, slow and patient."
    assert sink.ends[0].status == "done"


async def test_closing_a_you_scene_summarizes_every_witness_and_opens_the_next(
    db: Database,
) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    mock._canned.extend(["BotA nods.", parse_answer("x"), zero_state()])
    await engine.turns.take(chat_id, "hello", RecordingSink())
    mock._canned.extend(
        [summary_answer("I met BotA."), summary_answer("BotA met Me."), threads_answer()]
    )

    closed = await engine.scenes.close(chat_id)

    assert closed.summaries == {"you": "I met BotA.", HOST: "BotA met Me."}
    status = await engine.queries.status(chat_id)
    assert status.scene is not None and status.scene.id == closed.new_scene_id
    assert mock._canned == []


async def test_guest_join_and_leave_change_the_present_set(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    await engine.characters.author({"id": "carol", "name": "Carol", "persona": "p"})
    mock._canned.extend([threads_answer()])

    joined = await engine.scenes.guest_join(chat_id, "carol")

    status = await engine.queries.status(chat_id)
    assert status.present == ("you", HOST, "carol")
    assert status.scene is not None and status.scene.present_set_kind == "you_host_guest"
    mock._canned.extend([threads_answer()])
    await engine.scenes.guest_leave(chat_id)
    assert (await engine.queries.status(chat_id)).present == ("you", HOST)
    assert joined.new_scene_id is not None
    assert mock._canned == []


async def test_replay_equals_incremental_after_a_whole_story(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine)
    state = json.dumps(
        {"relationships": [{"target_id": "you", "affinity_delta": 4, "trust_delta": 2}]}
    )
    for prose in ["hello", "how are you", "BotB, your turn"]:
        mock._canned.extend([f"reply to {prose}", parse_answer(prose), state, state])
        await engine.turns.take(chat_id, prose, RecordingSink())
    await engine.scenes.start_meanwhile(chat_id, thread_id=9)
    mock._canned.extend(["meanwhile beat", parse_answer("n"), zero_state(), zero_state()])
    await engine.turns.take(chat_id, "they talk", RecordingSink())
    mock._canned.extend(
        [summary_answer("a"), summary_answer("b"), summary_answer("digest"), threads_answer("t")]
    )
    await engine.scenes.end_meanwhile(chat_id)
    before = await snapshot(db, ("reply", "meanwhile"))

    await project(db)

    assert await snapshot(db, ("reply", "meanwhile")) == before
    assert mock._canned == []


async def test_the_world_moves_on_and_the_next_prompt_says_so(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)

    chat = await engine.chats.set_world(
        chat_id, time="23:10", weather="fog rolling in", narrative_anchor="Day 2"
    )
    mock.add("BotA shivers.", parse_answer("x"), zero_state())
    await engine.turns.take(chat_id, "cold?", RecordingSink())

    assert (chat.world_time, chat.weather, chat.narrative_anchor, chat.place) == (
        "23:10",
        "fog rolling in",
        "Day 2",
        "office",
    )
    # the world changes turn to turn, so it is in the context message just before the cue
    context = next(c for c in mock.calls if c.kind == "stream").messages[-2].content
    assert "Day 2, 23:10" in context and "fog rolling in" in context
    with pytest.raises(StoryError, match="say what changes"):
        await engine.chats.set_world(chat_id)


async def test_a_scene_close_cut_short_leaves_the_story_playable(db: Database) -> None:
    engine, mock = make_engine(db)
    mock.chunk_delay = 0.0
    chat_id = await seed_story(engine, guest=False)
    mock.add("BotA nods.", parse_answer("x"), zero_state())
    await engine.turns.take(chat_id, "hello", RecordingSink())
    mock.add(RuntimeError("the process is going down"))

    with pytest.raises(RuntimeError):
        await engine.scenes.close(chat_id)

    status = await engine.queries.status(chat_id)
    assert status.scene is not None and status.scene.status == "open"
    mock.add("BotA goes on.", parse_answer("x"), zero_state())
    assert (await engine.turns.take(chat_id, "still here?", RecordingSink())).status == "done"


async def test_ending_a_story_closes_its_meanwhile_scene(db: Database) -> None:
    engine, _ = make_engine(db)
    chat_id = await seed_story(engine)
    await engine.scenes.start_meanwhile(chat_id, thread_id=77)

    ended = await engine.chats.end(chat_id)

    assert ended.meanwhile_thread_id == 77
    assert await engine.queries.open_scene(chat_id, "meanwhile") is None
    assert await engine.queries.chat_in_channel(0) is None
