"""Regenerate, rewind, take back, edit, why: the log keeps everything, the story shows the rest.

After each, rebuilding the projections from the log equals the incremental state, and no
prompt contains text from a rewound or replaced beat.
"""

from __future__ import annotations

import json

import pytest

from bot.engine import Engine, StoryError
from bot.llm import MockLLMClient
from bot.store import Database, project
from tests.engine_helpers import (
    HOST,
    RecordingSink,
    make_engine,
    parse_answer,
    payloads,
    seed_story,
)
from tests.store_factories import snapshot


def _state(affinity: int) -> str:
    return json.dumps(
        {"relationships": [{"target_id": "you", "affinity_delta": affinity, "trust_delta": 0}]}
    )


async def _play(
    engine: Engine, mock: MockLLMClient, chat_id: str, prose: str, reply: str, *, affinity: int = 0
) -> int:
    mock.add(parse_answer(prose), reply, _state(affinity))
    result = await engine.take_turn(chat_id, prose, RecordingSink(), message_id=hash(prose) % 10**9)
    return result.assistant_turn_id


def _prompt_texts(mock: MockLLMClient) -> list[str]:
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
    assert (await engine.relationship(chat_id, HOST, "you")).affinity == 47
    mock.add("REPLY-TWO-NEW kind", _state(3))

    rewound, result = await engine.regenerate(chat_id, RecordingSink())

    assert [b.text for b in rewound.beats] == ["REPLY-TWO-OLD cold"]
    assert result.text == "REPLY-TWO-NEW kind" and result.speaker.id == HOST
    assert (await engine.relationship(chat_id, HOST, "you")).affinity == 58
    texts = [b.text for b in await engine.views.beats(chat_id)]
    assert texts[-2:] == ["tell me a secret", "REPLY-TWO-NEW kind"]
    memories = await engine.memories(chat_id, HOST, limit=50)
    assert all("REPLY-TWO-OLD" not in m.text for m in memories)
    assert any("REPLY-TWO-NEW" in m.text for m in memories)
    await _assert_replay_equals_incremental(db)

    await _play(engine, mock, chat_id, "and then?", "REPLY-THREE")
    assert all("REPLY-TWO-OLD" not in text for text in _prompt_texts(mock)[-3:])
    assert mock._canned == []


async def test_rewind_returns_the_story_to_right_after_a_beat(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    keep = await _play(engine, mock, chat_id, "first", "KEEP-ME", affinity=4)
    await _play(engine, mock, chat_id, "second", "GONE-ONE", affinity=9)
    await _play(engine, mock, chat_id, "third", "GONE-TWO", affinity=9)

    rewound = await engine.rewind_to_turn(chat_id, keep)

    assert [b.text for b in rewound.beats] == ["second", "GONE-ONE", "third", "GONE-TWO"]
    assert [b.text for b in await engine.views.beats(chat_id)][-1] == "KEEP-ME"
    assert (await engine.relationship(chat_id, HOST, "you")).affinity == 54
    assert len(await payloads(db, "assistant_turn")) == 4  # the log keeps everything
    await _assert_replay_equals_incremental(db)

    await _play(engine, mock, chat_id, "a new path", "NEW-PATH")
    last_prompts = _prompt_texts(mock)[-3:]
    assert all("GONE-" not in text and "second" not in text for text in last_prompts)
    assert mock._canned == []


async def test_rewind_to_the_player_line_keeps_its_reply(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    await _play(engine, mock, chat_id, "first", "REPLY-ONE")
    await _play(engine, mock, chat_id, "second", "REPLY-TWO")

    await engine.rewind_to_message(chat_id, hash("first") % 10**9)

    assert [b.text for b in await engine.views.beats(chat_id)][-2:] == ["first", "REPLY-ONE"]


async def test_rewinding_the_latest_beat_is_refused(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    last = await _play(engine, mock, chat_id, "only", "REPLY")
    with pytest.raises(StoryError, match="latest beat"):
        await engine.rewind_to_turn(chat_id, last)


async def test_deleting_the_latest_line_takes_the_beat_back(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    await _play(engine, mock, chat_id, "keep", "KEPT", affinity=2)
    await _play(engine, mock, chat_id, "oops", "TAKEN-BACK", affinity=7)

    await engine.take_back_message(chat_id, hash("oops") % 10**9)

    assert [b.text for b in await engine.views.beats(chat_id)][-2:] == ["keep", "KEPT"]
    assert (await engine.relationship(chat_id, HOST, "you")).affinity == 52
    await _assert_replay_equals_incremental(db)
    with pytest.raises(StoryError, match="not a beat of this story"):
        await engine.take_back_message(chat_id, hash("oops") % 10**9)
    await _play(engine, mock, chat_id, "newer", "NEWER")
    with pytest.raises(StoryError, match="latest line"):
        await engine.take_back_message(chat_id, hash("keep") % 10**9)


async def test_editing_a_line_changes_the_story_text(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    await _play(engine, mock, chat_id, "I sya hello", "REPLY")

    latest = await engine.edit_message(chat_id, hash("I sya hello") % 10**9, "I say hello")

    assert latest is True
    assert "I say hello" in [b.text for b in await engine.views.beats(chat_id)]
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
    await engine.edit_message(chat_id, hash("first") % 10**9, "first, edited")
    await engine.edit_message(chat_id, hash("I sya hello") % 10**9, "I say hello")
    mock.add("REPLY-NEW", _state(0))

    await engine.regenerate(chat_id, RecordingSink())

    texts = [b.text for b in await engine.views.beats(chat_id)]
    assert texts[-4:] == ["first, edited", "REPLY-ONE", "I say hello", "REPLY-NEW"]
    assert "I sya hello" not in _prompt_texts(mock)[-2]
    await _assert_replay_equals_incremental(db)

    await engine.rewind_to_message(chat_id, hash("first") % 10**9)
    assert [b.text for b in await engine.views.beats(chat_id)][-2:] == [
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

    changes = await engine.why(chat_id, HOST, "you")

    assert [(c.beat_text, c.affinity_delta) for c in changes] == [("COOLED", -4), ("WARMED", 6)]
