"""Out of character stays out of the story (issue 13, item 4).

A line wholly out of character is no beat: nobody remembers it, no transcript shows it, the
LLM is not asked; the player gets a short acknowledgement. An aside inside a story line is
kept in the stored line (the player's words, verbatim) but no character hears it.
"""

from __future__ import annotations

import io

import pytest

from bot.console import Console
from bot.engine import OutOfCharacter
from bot.llm import Task
from bot.llm.mock import RecordedCall
from bot.store import Database
from bot.store.events import MemoryWritten, UserTurn
from tests.helpers.engine_helpers import (
    RecordingSink,
    make_engine,
    parse_answer,
    seed_story,
    zero_state,
)
from tests.helpers.events import count_events, then_events


def _prompt(call: RecordedCall) -> str:
    return "\n".join(m.content for m in call.messages)


@pytest.mark.parametrize("line", ["(( brb, phone ))", "OOC: sorry, typo above", "// one sec"])
async def test_a_line_wholly_out_of_character_is_no_beat(db: Database, line: str) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    events = await count_events(db)

    with pytest.raises(OutOfCharacter, match="stays out of the story"):
        await engine.turns.take(chat_id, line, RecordingSink())

    assert mock.calls == []
    assert await count_events(db) == events  # nothing written
    mock.script(narrate="BotA smiles.", classify=parse_answer("hello"), state=zero_state())
    await engine.turns.take(chat_id, "hello", RecordingSink())
    assert all(line not in _prompt(c) for c in mock.calls)


async def test_an_aside_in_a_story_line_is_kept_but_heard_by_no_one(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    line = "I sit down by the fire. ((brb, doorbell))"
    mock.script(narrate="BotA pours tea.", classify=parse_answer(line), state=zero_state())

    result = await engine.turns.take(chat_id, line, RecordingSink())

    [stored] = await then_events(db, UserTurn)
    assert stored.prose == line  # the player's words, verbatim
    reply_prompt = _prompt(mock.calls_for(Task.NARRATE)[0])
    assert "I sit down by the fire." in reply_prompt and "doorbell" not in reply_prompt
    # no character's prompt (reply, state update) holds it; only the labeller sees the line
    heard = mock.calls_for(Task.NARRATE) + mock.calls_for(Task.STATE)
    assert len(heard) == 2 and all("doorbell" not in _prompt(c) for c in heard)
    for memory in await then_events(db, MemoryWritten):
        assert "doorbell" not in memory.text and "I sit down by the fire." in memory.text
    mock.script(narrate="BotA nods.", classify=parse_answer("and?"), state=zero_state())
    await engine.turns.take(chat_id, "and?", RecordingSink())
    assert "doorbell" not in _prompt(mock.calls_for(Task.NARRATE)[-1])  # the next reply's
    assert result.status == "done"


async def test_after_an_ooc_line_replies_and_regenerates_stay_in_character(
    db: Database,
) -> None:
    """The measured failure: one OOC line, then ~15 replies of "(OOC: I'm sorry…)"."""
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    mock.script(narrate="BotA greets you.", classify=parse_answer("hi"), state=zero_state())
    await engine.turns.take(chat_id, "hi", RecordingSink())
    with pytest.raises(OutOfCharacter):
        await engine.turns.take(chat_id, "(( can you stop writing for me? ))", RecordingSink())
    mock.script(narrate="BotA waves again.", state=zero_state())

    await engine.history.regenerate(chat_id, RecordingSink())

    assert "stop writing for me" not in _prompt(mock.calls_for(Task.NARRATE)[-1])
    texts = [b.text for b in await engine.queries.beats(chat_id)]
    assert texts[-2:] == ["hi", "BotA waves again."]


async def test_the_console_acknowledges_an_ooc_line_without_calling_it_an_error(
    db: Database,
) -> None:
    engine, _ = make_engine(db)
    out = io.StringIO()
    console = Console(engine, out)
    console.chat_id = await seed_story(engine, guest=False)

    await console.handle("(( brb ))")

    assert out.getvalue().startswith("(( out of character: noted.")
    assert "error" not in out.getvalue()
