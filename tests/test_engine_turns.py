"""You-scene turns: witnesses per present set, the pairs that move, who speaks, and the budget."""

from __future__ import annotations

import json

import pytest

from bot.engine import StoryError
from bot.store import Database, project
from bot.store.events import EdgeUpdate, MemoryWritten, Segment, TurnClassified, UserTurn
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
from tests.helpers.events import count_events, then_events
from tests.helpers.store_factories import snapshot


@pytest.fixture
def db(store: Database) -> Database:
    """Every story here plays on SQLite and on PostgreSQL (``-m postgres``)."""
    return store


async def test_you_host_turn_writes_two_witness_memories_and_one_pair(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    mock.script(
        narrate="BotA smiles.", classify=parse_answer('"Hello."', "dialogue"), state=zero_state()
    )

    result = await engine.turns.take(chat_id, '"Hello."', RecordingSink())

    assert result.status == "done" and result.speaker.id == HOST
    memories = await then_events(db, MemoryWritten)
    assert sorted(m.owner_id for m in memories) == [HOST, "you"]
    assert {(m.witness_you, m.witness_host, m.witness_guest) for m in memories} == {(1, 1, 0)}
    updates = await then_events(db, EdgeUpdate, after=result.assistant_turn_id)
    assert [(u.source_id, u.target_id) for u in updates] == [(HOST, "you")]
    # the line is written with the rules' labels at once (quotes are dialogue); the
    # classifier's come as a later event
    user_turn = (await then_events(db, UserTurn))[0]
    assert user_turn.segments == [Segment(kind="dialogue", text='"Hello."')]
    [classified] = await then_events(db, TurnClassified)
    assert classified.turn_id == result.user_turn_id
    assert classified.segments == [Segment(kind="dialogue", text='"Hello."')]
    beat = await engine.queries.beat(chat_id, result.user_turn_id)
    assert beat is not None and list(beat.segments) == classified.segments
    assert mock.unused == {}


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
    mock.script(
        narrate="BotA waves.",
        classify=parse_answer("hi all"),
        state={HOST: state_host, GUEST: zero_state()},
    )

    result = await engine.turns.take(chat_id, "hi all", RecordingSink())

    kinds = [call.kind for call in mock.calls]
    assert kinds == ["stream", "complete", "complete", "complete"]
    memories = await then_events(db, MemoryWritten)
    assert sorted(m.owner_id for m in memories) == [HOST, GUEST, "you"]
    assert {(m.witness_you, m.witness_host, m.witness_guest) for m in memories} == {(1, 1, 1)}
    updates = await then_events(db, EdgeUpdate, after=result.assistant_turn_id)
    assert sorted((u.source_id, u.target_id) for u in updates) == sorted(
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
    mock.script(
        narrate="BotB answers.", classify=parse_answer("x"), state=[zero_state(), zero_state()]
    )

    result = await engine.turns.take(chat_id, "What do you think, botb?", RecordingSink())

    assert result.speaker.id == GUEST


async def test_unaddressed_turn_goes_to_the_host(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine)
    mock.script(
        narrate="BotA answers.", classify=parse_answer("x"), state=[zero_state(), zero_state()]
    )

    result = await engine.turns.take(chat_id, "I look around the room.", RecordingSink())

    assert result.speaker.id == HOST


async def test_deltas_are_clamped_per_beat_and_to_0_100(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    huge = json.dumps({"affinity_delta": 95, "trust_delta": -400, "knowledge_facts": []})
    for _ in range(6):
        mock.script(narrate="ok", classify=parse_answer("x"), state=huge)
        await engine.turns.take(chat_id, "again", RecordingSink())

    rel = await engine.queries.relationship(chat_id, HOST, "you")
    assert (rel.affinity, rel.trust) == (100, 0)
    deltas = {(u.affinity_delta, u.trust_delta) for u in await then_events(db, EdgeUpdate)}
    assert deltas == {(10, -10)}


async def test_a_malformed_classifier_and_state_answer_never_crash_a_turn(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    mock.script(
        narrate="The reply.",
        classify=["not json", "still not json"],  # the first answer, then its repair round
        state=["{broken", "{broken again"],
    )

    result = await engine.turns.take(chat_id, '*I wave.* "Hello?"', RecordingSink())

    assert result.status == "done" and result.text == "The reply."
    user_turn = (await then_events(db, UserTurn))[0]
    assert user_turn.segments == [
        Segment(kind="action", text="*I wave.*"),
        Segment(kind="dialogue", text='"Hello?"'),
    ]
    assert (await engine.queries.relationship(chat_id, HOST, "you")).affinity == 50
    assert mock.unused == {}


async def test_a_too_long_message_is_refused_and_writes_nothing(db: Database) -> None:
    engine, _ = make_engine(db)
    chat_id = await seed_story(engine)
    before = await count_events(db)

    with pytest.raises(StoryError, match="10,000 characters"):
        await engine.turns.take(chat_id, "x" * 10_000, RecordingSink())

    assert await count_events(db) == before


async def test_the_sink_sees_the_reply_stream_in_order(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    mock.script(
        narrate="Rain ticks on the glass, slow and patient.",
        classify=parse_answer("x"),
        state=zero_state(),
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
    mock.script(narrate="BotA nods.", classify=parse_answer("x"), state=zero_state())
    await engine.turns.take(chat_id, "hello", RecordingSink())
    mock.script(
        summary={"you": summary_answer("I met BotA."), HOST: summary_answer("BotA met Me.")},
        threads=threads_answer(),
    )

    closed = await engine.scenes.close(chat_id)

    assert closed.summaries == {"you": "I met BotA.", HOST: "BotA met Me."}
    status = await engine.queries.status(chat_id)
    assert status.scene is not None and status.scene.id == closed.new_scene_id
    assert mock.unused == {}


async def test_guest_join_and_leave_change_the_present_set(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    await engine.characters.author({"id": "carol", "name": "Carol", "persona": "p"})
    mock.script(threads=threads_answer())

    joined = await engine.scenes.guest_join(chat_id, "carol")

    status = await engine.queries.status(chat_id)
    assert status.present == ("you", HOST, "carol")
    assert status.scene is not None and status.scene.present_set_kind == "you_host_guest"
    mock.script(threads=threads_answer())
    await engine.scenes.guest_leave(chat_id)
    assert (await engine.queries.status(chat_id)).present == ("you", HOST)
    assert joined.new_scene_id is not None
    assert mock.unused == {}


async def test_replay_equals_incremental_after_a_whole_story(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine)
    state = json.dumps(
        {"relationships": [{"target_id": "you", "affinity_delta": 4, "trust_delta": 2}]}
    )
    for prose in ["hello", "how are you", "BotB, your turn"]:
        mock.script(narrate=f"reply to {prose}", classify=parse_answer(prose), state=[state, state])
        await engine.turns.take(chat_id, prose, RecordingSink())
    await engine.scenes.start_meanwhile(chat_id, thread_id=9)
    mock.script(
        narrate="meanwhile beat", classify=parse_answer("n"), state=[zero_state(), zero_state()]
    )
    await engine.turns.take(chat_id, "they talk", RecordingSink())
    mock.script(
        summary=[summary_answer("a"), summary_answer("b")],
        digest=summary_answer("digest"),
        threads=threads_answer("t"),
    )
    await engine.scenes.end_meanwhile(chat_id)
    before = await snapshot(db, ("reply", "meanwhile"))

    await project(db)

    assert await snapshot(db, ("reply", "meanwhile")) == before
    assert mock.unused == {}


async def test_the_world_moves_on_and_the_next_prompt_says_so(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)

    chat = await engine.chats.set_world(
        chat_id, time="23:10", weather="fog rolling in", narrative_anchor="Day 2"
    )
    mock.script(narrate="BotA shivers.", classify=parse_answer("x"), state=zero_state())
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
    mock.script(narrate="BotA nods.", classify=parse_answer("x"), state=zero_state())
    await engine.turns.take(chat_id, "hello", RecordingSink())
    mock.script(summary=RuntimeError("the process is going down"))

    with pytest.raises(RuntimeError):
        await engine.scenes.close(chat_id)

    status = await engine.queries.status(chat_id)
    assert status.scene is not None and status.scene.status == "open"
    mock.script(narrate="BotA goes on.", classify=parse_answer("x"), state=zero_state())
    assert (await engine.turns.take(chat_id, "still here?", RecordingSink())).status == "done"


async def test_ending_a_story_closes_its_meanwhile_scene(db: Database) -> None:
    engine, _ = make_engine(db)
    chat_id = await seed_story(engine)
    await engine.scenes.start_meanwhile(chat_id, thread_id=77)

    ended = await engine.chats.end(chat_id)

    assert ended.meanwhile_thread_id == 77
    assert await engine.queries.open_scene(chat_id, "meanwhile") is None
    assert await engine.queries.chat_in_channel(0) is None
