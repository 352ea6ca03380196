"""Regenerate, rewind, take back, edit, why: the log keeps everything, the story shows the rest.

After each, rebuilding the projections from the log equals the incremental state, and no
prompt contains text from a rewound or replaced beat.
"""

from __future__ import annotations

import json
import re

import pytest

from bot.engine import Engine, StoryError
from bot.llm import ScriptedLLM
from bot.store import Database, project
from bot.store.events import AssistantTurn, ManualEdit
from tests.helpers.engine_helpers import (
    GUEST,
    HOST,
    RecordingSink,
    character,
    make_engine,
    parse_answer,
    seed_story,
    summary_answer,
)
from tests.helpers.events import count_events, then_events
from tests.helpers.store_factories import snapshot


@pytest.fixture
def db(store: Database) -> Database:
    """Every story here plays on SQLite and on PostgreSQL (``-m postgres``)."""
    return store


def _state(affinity: int) -> str:
    return json.dumps(
        {"relationships": [{"target_id": "you", "affinity_delta": affinity, "trust_delta": 0}]}
    )


async def _play(
    engine: Engine, mock: ScriptedLLM, chat_id: str, prose: str, reply: str, *, affinity: int = 0
) -> int:
    mock.script(narrate=reply, classify=parse_answer(prose), state=_state(affinity))
    result = await engine.turns.take(
        chat_id, prose, RecordingSink(), message_id=hash(prose) % 10**9
    )
    return result.assistant_turn_id


async def _edit(
    engine: Engine, mock: ScriptedLLM, chat_id: str, old: str, new: str, *, affinity: int = 0
) -> bool:
    """Edit the line ``old``: its labels and its beat's state update are asked again."""
    mock.script(classify=parse_answer(new), state=_state(affinity))
    return await engine.history.edit_message(chat_id, hash(old) % 10**9, new)


def _prompt_texts(mock: ScriptedLLM) -> list[str]:
    return ["\n".join(m.content for m in call.messages) for call in mock.calls]


async def _assert_replay_equals_incremental(db: Database) -> None:
    before = await snapshot(db)
    await project(db)
    assert await snapshot(db) == before


async def test_regenerate_replaces_the_latest_reply_and_undoes_its_effects(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    await _play(engine, mock, chat_id, "hello", "REPLY-ONE warm", affinity=5)
    await _play(engine, mock, chat_id, "tell me a secret", "REPLY-TWO-OLD cold", affinity=-8)
    assert (await engine.queries.relationship(chat_id, HOST, "you")).affinity == 47
    mock.script(narrate="REPLY-TWO-NEW kind", state=_state(3))

    rewound, result = await engine.history.regenerate(chat_id, RecordingSink())

    assert [b.text for b in rewound.beats] == ["REPLY-TWO-OLD cold"]
    assert result.text == "REPLY-TWO-NEW kind" and result.speaker.id == HOST
    assert (await engine.queries.relationship(chat_id, HOST, "you")).affinity == 58
    texts = [b.text for b in await engine.queries.beats(chat_id)]
    assert texts[-2:] == ["tell me a secret", "REPLY-TWO-NEW kind"]
    memories = await engine.queries.own_memories(chat_id, HOST, limit=50)
    assert all("REPLY-TWO-OLD" not in m.text for m in memories)
    assert any("REPLY-TWO-NEW" in m.text for m in memories)
    await _assert_replay_equals_incremental(db)

    await _play(engine, mock, chat_id, "and then?", "REPLY-THREE")
    assert all("REPLY-TWO-OLD" not in text for text in _prompt_texts(mock)[-3:])
    assert mock.unused == {}


async def test_rewind_returns_the_story_to_right_after_a_beat(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    keep = await _play(engine, mock, chat_id, "first", "KEEP-ME", affinity=4)
    await _play(engine, mock, chat_id, "second", "GONE-ONE", affinity=9)
    await _play(engine, mock, chat_id, "third", "GONE-TWO", affinity=9)

    rewound = await engine.history.rewind_to_turn(chat_id, keep)

    assert [b.text for b in rewound.beats] == ["second", "GONE-ONE", "third", "GONE-TWO"]
    assert [b.text for b in await engine.queries.beats(chat_id)][-1] == "KEEP-ME"
    assert (await engine.queries.relationship(chat_id, HOST, "you")).affinity == 54
    assert len(await then_events(db, AssistantTurn)) == 4  # the log keeps everything
    await _assert_replay_equals_incremental(db)

    await _play(engine, mock, chat_id, "a new path", "NEW-PATH")
    last_prompts = _prompt_texts(mock)[-3:]
    assert all("GONE-" not in text and "second" not in text for text in last_prompts)
    assert mock.unused == {}


async def test_rewind_to_the_player_line_keeps_its_reply(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    await _play(engine, mock, chat_id, "first", "REPLY-ONE")
    await _play(engine, mock, chat_id, "second", "REPLY-TWO")

    await engine.history.rewind_to_message(chat_id, hash("first") % 10**9)

    assert [b.text for b in await engine.queries.beats(chat_id)][-2:] == ["first", "REPLY-ONE"]


async def test_rewinding_the_latest_beat_is_refused(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    last = await _play(engine, mock, chat_id, "only", "REPLY")
    with pytest.raises(StoryError, match="latest beat"):
        await engine.history.rewind_to_turn(chat_id, last)


async def test_deleting_the_latest_line_takes_the_beat_back(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    await _play(engine, mock, chat_id, "keep", "KEPT", affinity=2)
    await _play(engine, mock, chat_id, "oops", "TAKEN-BACK", affinity=7)

    await engine.history.take_back_message(chat_id, hash("oops") % 10**9)

    assert [b.text for b in await engine.queries.beats(chat_id)][-2:] == ["keep", "KEPT"]
    assert (await engine.queries.relationship(chat_id, HOST, "you")).affinity == 52
    await _assert_replay_equals_incremental(db)
    with pytest.raises(StoryError, match="not a beat of this story"):
        await engine.history.take_back_message(chat_id, hash("oops") % 10**9)
    await _play(engine, mock, chat_id, "newer", "NEWER")
    with pytest.raises(StoryError, match="latest line"):
        await engine.history.take_back_message(chat_id, hash("keep") % 10**9)


async def test_editing_a_line_changes_the_story_text(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    await _play(engine, mock, chat_id, "I sya hello", "REPLY", affinity=5)
    assert (await engine.queries.relationship(chat_id, HOST, "you")).affinity == 55

    latest = await _edit(engine, mock, chat_id, "I sya hello", "I say hello", affinity=-3)

    assert latest is True
    assert "I say hello" in [b.text for b in await engine.queries.beats(chat_id)]
    # the feeling the old words moved is undone, and the new words move it instead
    assert (await engine.queries.relationship(chat_id, HOST, "you")).affinity == 47
    memories = await engine.queries.own_memories(chat_id, HOST)
    assert [m.text for m in memories if "hello" in m.text] == ["Me: I say hello\nBotA: REPLY"]
    await _assert_replay_equals_incremental(db)
    await _play(engine, mock, chat_id, "next", "REPLY-2")
    assert "I sya hello" not in _prompt_texts(mock)[-2]


async def test_an_edited_line_keeps_its_new_words_when_its_reply_is_regenerated(
    db: Database,
) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    await _play(engine, mock, chat_id, "first", "REPLY-ONE")
    await _play(engine, mock, chat_id, "I sya hello", "REPLY-OLD")
    await _edit(engine, mock, chat_id, "first", "first, edited")
    await _edit(engine, mock, chat_id, "I sya hello", "I say hello")
    mock.script(narrate="REPLY-NEW", state=_state(0))

    await engine.history.regenerate(chat_id, RecordingSink())

    texts = [b.text for b in await engine.queries.beats(chat_id)]
    assert texts[-4:] == ["first, edited", "REPLY-ONE", "I say hello", "REPLY-NEW"]
    assert "I sya hello" not in _prompt_texts(mock)[-2]
    await _assert_replay_equals_incremental(db)

    await engine.history.rewind_to_message(chat_id, hash("first") % 10**9)
    assert [b.text for b in await engine.queries.beats(chat_id)][-2:] == [
        "first, edited",
        "REPLY-ONE",
    ]
    await _assert_replay_equals_incremental(db)


async def test_why_lists_the_beats_that_moved_a_feeling_newest_first(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    await _play(engine, mock, chat_id, "gift", "WARMED", affinity=6)
    await _play(engine, mock, chat_id, "nothing", "NEUTRAL", affinity=0)
    await _play(engine, mock, chat_id, "insult", "COOLED", affinity=-4)

    changes = await engine.history.why(chat_id, HOST, "you")

    assert [(c.beat_text, c.affinity_delta) for c in changes] == [("COOLED", -4), ("WARMED", 6)]


async def test_regenerating_twice_still_answers_the_players_line(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    await _play(engine, mock, chat_id, "what is in the box?", "REPLY-1")
    mock.script(narrate="REPLY-2", state=_state(0))
    await engine.history.regenerate(chat_id, RecordingSink())
    mock.script(narrate="REPLY-3", state=_state(0))

    _, result = await engine.history.regenerate(chat_id, RecordingSink())

    cue = next(c for c in reversed(mock.calls) if c.kind == "stream").messages
    assert "what is in the box?" in "\n".join(m.content for m in cue)
    assert [b.text for b in await engine.queries.beats(chat_id)][-2:] == [
        "what is in the box?",
        "REPLY-3",
    ]
    memories = await engine.queries.own_memories(chat_id, HOST, limit=5)
    assert "what is in the box?" in memories[0].text and "REPLY-3" in memories[0].text
    assert result.text == "REPLY-3"
    await _assert_replay_equals_incremental(db)


async def test_rewinding_to_a_regenerated_line_keeps_its_new_reply(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    await _play(engine, mock, chat_id, "first", "OLD")
    mock.script(narrate="NEW", state=_state(0))
    await engine.history.regenerate(chat_id, RecordingSink())
    await _play(engine, mock, chat_id, "second", "LATER")

    await engine.history.rewind_to_message(chat_id, hash("first") % 10**9)

    assert [b.text for b in await engine.queries.beats(chat_id)][-2:] == ["first", "NEW"]
    assert await engine.queries.open_turns() == []


async def test_regenerate_and_rewind_never_cross_a_meanwhile_scene(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine)
    mock.script(narrate="BEFORE", classify=parse_answer("x"), state=[_state(0), _state(0)])
    await engine.turns.take(chat_id, "hello", RecordingSink(), message_id=11)
    await engine.scenes.start_meanwhile(chat_id, thread_id=5)
    mock.script(narrate="AWAY", classify=parse_answer("x"), state=[_state(0), _state(0)])
    await engine.turns.take(chat_id, "they talk", RecordingSink())
    mock.script(
        summary={HOST: summary_answer("a"), GUEST: summary_answer("b")},
        digest=summary_answer("While you were away…"),
        threads="{}",
    )
    await engine.scenes.end_meanwhile(chat_id)

    with pytest.raises(StoryError, match="meanwhile scene that ended"):
        await engine.history.regenerate(chat_id, RecordingSink())
    with pytest.raises(StoryError, match="meanwhile scene that ended"):
        await engine.history.rewind_to_message(chat_id, 11)
    status = await engine.queries.status(chat_id)
    assert status.meanwhile is None
    assert [text for _, text in await engine.queries.digests(chat_id)] == ["While you were away…"]


async def test_an_update_that_changes_no_text_is_no_edit(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    await _play(engine, mock, chat_id, "same words", "REPLY")
    before = await then_events(db, ManualEdit)

    changed = await engine.history.edit_message(chat_id, hash("same words") % 10**9, "same words")

    assert changed is False
    assert await then_events(db, ManualEdit) == before


async def _play_with_guest(
    engine: Engine, mock: ScriptedLLM, chat_id: str, prose: str, reply: str
) -> None:
    mock.script(narrate=reply, classify=parse_answer(prose), state=[_state(0), _state(0)])
    await engine.turns.take(chat_id, prose, RecordingSink())


async def _story_with_a_meanwhile(
    db: Database, *, end: bool = True
) -> tuple[Engine, ScriptedLLM, str]:
    """A line, a meanwhile scene of one beat, then (``end``) the meanwhile ends and the world
    moves on: the next line is the first after the meanwhile's end."""
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine)
    await _play_with_guest(engine, mock, chat_id, "before the meanwhile", "REPLY-BEFORE")
    await engine.scenes.start_meanwhile(chat_id)
    mock.script(
        narrate="REPLY-MEANWHILE", classify=parse_answer("they whisper"), state=["{}", "{}"]
    )
    await engine.turns.take(chat_id, "they whisper", RecordingSink())
    if not end:
        return engine, mock, chat_id
    mock.script(
        summary={HOST: summary_answer("host"), GUEST: summary_answer("guest")},
        digest=summary_answer("While away"),
        threads=json.dumps({"threads": []}),
    )
    await engine.scenes.end_meanwhile(chat_id)
    await engine.chats.set_world(chat_id, time="23:30")
    return engine, mock, chat_id


async def test_any_beat_after_a_meanwhiles_end_can_be_rewound_to_or_taken_back(
    db: Database,
) -> None:
    engine, mock, chat_id = await _story_with_a_meanwhile(db)
    await _play_with_guest(engine, mock, chat_id, "first after", "REPLY-AFTER-1")
    await _play_with_guest(engine, mock, chat_id, "second after", "REPLY-AFTER-2")
    first = next(b for b in await engine.queries.beats(chat_id) if b.text == "first after")

    to_it = await engine.history.rewind_to_turn(chat_id, first.id)
    assert [b.text for b in to_it.beats] == ["second after", "REPLY-AFTER-2"]
    await _play_with_guest(engine, mock, chat_id, "second again", "REPLY-AFTER-2B")
    from_it = await engine.history.rewind_from_turn(chat_id, first.id)

    assert [b.text for b in from_it.beats] == [
        "first after",
        "REPLY-AFTER-1",
        "second again",
        "REPLY-AFTER-2B",
    ]
    # what came before the line stays: the meanwhile's digest and the world's new time
    assert await engine.queries.digests(chat_id) != []
    chat = await engine.queries.chat(chat_id)
    assert chat is not None and chat.world_time == "23:30"
    await _assert_replay_equals_incremental(db)


async def test_a_rewind_into_a_meanwhile_is_refused_naming_the_earliest_line(
    db: Database,
) -> None:
    engine, mock, chat_id = await _story_with_a_meanwhile(db)
    beats = await engine.queries.beats(chat_id)
    whisper = next(b for b in beats if b.text == "they whisper")
    with pytest.raises(StoryError, match="nothing after it can be rewound yet"):
        await engine.history.rewind_from_turn(chat_id, whisper.id)

    await _play_with_guest(
        engine, mock, chat_id, "what were you two whispering about?", "REPLY-AFTER"
    )
    events = await count_events(db)
    earliest = "the earliest you can rewind to is your line “what were you two whispering about?”"
    with pytest.raises(StoryError, match="meanwhile scene that ended") as refused:
        await engine.history.rewind_from_turn(chat_id, whisper.id)
    assert earliest in str(refused.value)
    before = next(b for b in beats if b.text == "REPLY-BEFORE")
    with pytest.raises(StoryError, match=re.escape(earliest)):
        await engine.history.rewind_to_turn(chat_id, before.id)
    assert await count_events(db) == events


async def test_a_rewind_out_of_an_open_meanwhile_is_refused_naming_its_first_beat(
    db: Database,
) -> None:
    engine, _mock, chat_id = await _story_with_a_meanwhile(db, end=False)
    before = next(b for b in await engine.queries.beats(chat_id) if b.text == "REPLY-BEFORE")

    with pytest.raises(StoryError, match="leave the open meanwhile scene behind") as refused:
        await engine.history.rewind_to_turn(chat_id, before.id)
    assert "the earliest you can rewind to is your line “they whisper”" in str(refused.value)


async def test_rewind_lines_takes_back_the_last_n_lines_and_keeps_the_opening(
    db: Database,
) -> None:
    """Both adapters' "rewind N lines" is the engine's: its count and its one refusal."""
    engine, mock = make_engine(db)
    await engine.characters.author(character(HOST, "BotA", kickoff_prose=""))
    await engine.characters.set_you(name="Me")
    chat_id = (await engine.chats.start(host_id=HOST, chat_id="quiet")).chat.id
    assert (await engine.queries.beats(chat_id)) == []  # no greeting: the first line opens it
    await _play(engine, mock, chat_id, "one", "BotA one.", affinity=1)
    await _play(engine, mock, chat_id, "two", "BotA two.", affinity=4)
    await _play(engine, mock, chat_id, "three", "BotA three.", affinity=4)

    with pytest.raises(StoryError, match="only 3 of your lines to take back, not 4"):
        await engine.history.rewind_lines(chat_id, 4)
    with pytest.raises(StoryError, match="past the start of the story"):
        await engine.history.rewind_lines(chat_id, 3)  # the first line is the story's opening
    rewound = await engine.history.rewind_lines(chat_id, 2)

    assert [b.text for b in rewound.beats] == ["two", "BotA two.", "three", "BotA three."]
    assert [b.text for b in await engine.queries.beats(chat_id)] == ["one", "BotA one."]
    assert (await engine.queries.relationship(chat_id, HOST, "you")).affinity == 51
    await _assert_replay_equals_incremental(db)


async def test_rewind_lines_asked_for_more_than_the_one_line_there_is_says_so_in_words(
    db: Database,
) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    await _play(engine, mock, chat_id, "hello", "REPLY-ONE")

    with pytest.raises(StoryError) as refused:
        await engine.history.rewind_lines(chat_id, 2)
    assert str(refused.value) == "there is only 1 of your lines to take back, not 2"
