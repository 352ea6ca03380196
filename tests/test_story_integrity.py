"""Story integrity (issue 9): the five ways it broke, each pinned by the story that broke it.

Nobody learns what they did not witness (1), an edit changes what was learned (2), a reply the
player has read is never lost (3, and the kill -9 test in test_story_crash.py), recovery keeps
what a reply answers (4), and no size of LLM output loses a beat (5). After each, rebuilding
the projections from the log gives the state the story built as it went.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import Sequence
from typing import Any

import pytest

from bot.console import BUSY_LINE, Console
from bot.llm import Message, Priority, ScriptedLLM, Task
from bot.llm.mock import RecordedCall
from bot.store import Database, project
from bot.store.events import AssistantTurn, EdgeUpdate, MemoryWritten, UserTurn
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
from tests.helpers.store_factories import snapshot


@pytest.fixture
def db(store: Database) -> Database:
    """Every story here plays on SQLite and on PostgreSQL (``-m postgres``)."""
    return store


def _state(*, verb: str = "", facts: Sequence[str] = (), targets: Sequence[str] = ("you",)) -> str:
    answer: dict[str, Any] = {
        "relationships": [
            {"target_id": t, "affinity_delta": 0, "trust_delta": 0, "knowledge_facts": list(facts)}
            for t in targets
        ]
    }
    if verb:
        answer["activity"] = {"posture": "standing", "verb": verb}
    return json.dumps(answer)


def _prompt(call: RecordedCall) -> str:
    return "\n".join(m.content for m in call.messages)


def _narrative_for(mock: ScriptedLLM, character: str) -> list[str]:
    return [_prompt(c) for c in mock.calls_for(Task.NARRATE, character)]


async def _rebuild_agrees(db: Database) -> None:
    before = await snapshot(db)
    await project(db)
    assert await snapshot(db) == before


async def test_what_the_guest_missed_reaches_none_of_its_prompts(db: Database) -> None:
    """Finding 1: the host's activity, derived from a beat the guest missed, leaked to it."""
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine)
    mock.script(threads=threads_answer())  # nothing was remembered yet, so no one summarizes
    await engine.scenes.guest_leave(chat_id)
    mock.script(
        narrate="BotA nods slowly.",
        classify=parse_answer("the vault code is ZSC1Q"),
        state=_state(verb="thinking about ZSC1Q", facts=["Me told me the vault code ZSC1Q"]),
    )
    await engine.turns.take(chat_id, "the vault code is ZSC1Q", RecordingSink())
    mock.script(
        summary={"you": summary_answer("my view"), HOST: summary_answer("BotA's view")},
        threads=threads_answer(),
    )
    await engine.scenes.guest_join(chat_id)
    mock.script(
        narrate="BotB waves.",
        classify=parse_answer("BotB, hello"),
        state={HOST: _state(targets=("you", GUEST)), GUEST: _state(targets=("you", HOST))},
    )

    await engine.turns.take(chat_id, "BotB, hello", RecordingSink())

    [guest_prompt] = _narrative_for(mock, GUEST)
    assert "ZSC1Q" not in guest_prompt
    [guest_state] = mock.calls_for(Task.STATE, GUEST)
    assert "ZSC1Q" not in _prompt(guest_state)  # nor its state update
    # the host still knows, and the player saw it: the status shows what "you" witnessed
    seen = await engine.queries.activities_seen(chat_id, HOST, (HOST, GUEST))
    assert seen[HOST].verb == "thinking about ZSC1Q"
    assert HOST not in await engine.queries.activities_seen(chat_id, GUEST, (HOST,))
    status = await engine.queries.status(chat_id)
    assert status.activities[HOST].verb == "thinking about ZSC1Q"
    assert mock.unused == {}
    await _rebuild_agrees(db)


async def test_an_edit_leaves_no_fact_or_activity_of_the_old_words(db: Database) -> None:
    """Finding 2: "You know: … ZOL1Q" and "thinking about ZOL1Q" survived an edit to ZNW1Q."""
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    mock.script(
        narrate="BotA repeats it.",
        classify=parse_answer("My name is ZOL1Q."),
        state=_state(verb="thinking about ZOL1Q", facts=["their name is ZOL1Q"]),
    )
    await engine.turns.take(chat_id, "My name is ZOL1Q.", RecordingSink(), message_id=7)
    mock.script(
        classify=parse_answer("My name is ZNW1Q."),
        state=_state(verb="thinking about ZNW1Q", facts=["their name is ZNW1Q"]),
    )

    await engine.history.edit_message(chat_id, 7, "My name is ZNW1Q.")

    relationship = await engine.queries.relationship(chat_id, HOST, "you")
    assert relationship.knowledge_facts == ("their name is ZNW1Q",)
    assert (await engine.queries.status(chat_id)).activities[HOST].verb == "thinking about ZNW1Q"
    mock.script(narrate="BotA smiles.", classify=parse_answer("and you?"), state=zero_state())
    await engine.turns.take(chat_id, "and you?", RecordingSink())
    later = _narrative_for(mock, HOST)[-1]
    assert "ZOL1Q" not in later
    assert "What you know of Me: their name is ZNW1Q." in later and "thinking about ZNW1Q" in later
    for memory in await engine.queries.own_memories(chat_id, HOST, limit=50):
        assert "ZOL1Q" not in memory.text
    await _rebuild_agrees(db)


async def test_an_edit_in_a_closed_scene_summarizes_it_again(db: Database) -> None:
    """The scene's summaries were written from the old words; they are written again."""
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    mock.script(
        narrate="BotA listens.", classify=parse_answer("I hid it under ZOL1Q"), state=zero_state()
    )
    await engine.turns.take(chat_id, "I hid it under ZOL1Q", RecordingSink(), message_id=7)
    mock.script(
        summary={
            HOST: summary_answer("Me hid it under ZOL1Q"),
            "you": summary_answer("I hid it under ZOL1Q"),
        }
    )
    mock.script(threads=threads_answer("Where is ZOL1Q?"))
    await engine.scenes.close(chat_id)
    mock.script(classify=parse_answer("I hid it under ZNW1Q"), state=zero_state())
    mock.script(
        summary={
            HOST: summary_answer("Me hid it under ZNW1Q"),
            "you": summary_answer("I hid it under ZNW1Q"),
        }
    )
    mock.script(threads=threads_answer("Where is ZNW1Q?"))

    await engine.history.edit_message(chat_id, 7, "I hid it under ZNW1Q")

    summaries = [
        m.pov_summary for m in await engine.queries.own_memories(chat_id, HOST) if m.pov_summary
    ]
    summaries += [
        m.pov_summary for m in await engine.queries.own_memories(chat_id, "you") if m.pov_summary
    ]
    assert summaries and all("ZOL1Q" not in s and "ZNW1Q" in s for s in summaries)
    assert await engine.queries.story_threads(chat_id) == ["Where is ZNW1Q?"]
    assert mock.unused == {}
    await _rebuild_agrees(db)


class _SlowJson(ScriptedLLM):
    """Streams replies at once; every JSON call waits until released (a busy local server)."""

    def __init__(self, **script: Any) -> None:
        super().__init__(**script)
        self.release = asyncio.Event()
        self.json_asked = asyncio.Event()

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        priority: Priority = Priority.BACKGROUND,
        **params: Any,
    ) -> str:
        self.json_asked.set()
        await self.release.wait()
        return await super().complete(messages, model=model, priority=priority, **params)


async def test_a_reply_the_player_read_is_kept_when_the_turn_is_cut_after_it(
    db: Database,
) -> None:
    """Finding 3: Ctrl-C while classification ran lost the line, the reply and the memories."""
    engine, _ = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    slow = _SlowJson(
        narrate="BotA answers at length.", classify=parse_answer("hello"), state=zero_state()
    )
    engine.ctx.models.llm = slow
    sink = RecordingSink()
    turn = asyncio.create_task(engine.turns.take(chat_id, "hello", sink))
    await slow.json_asked.wait()  # the reply has streamed; the world update is under way

    turn.cancel()
    await asyncio.gather(turn, return_exceptions=True)

    [line] = await then_events(db, UserTurn)
    reply = (await then_events(db, AssistantTurn))[-1]
    assert line.prose == "hello" and line.witnesses == ["you", HOST]
    assert reply.text == "BotA answers at length." and not reply.interrupted
    assert sorted(m.owner_id for m in await then_events(db, MemoryWritten)) == [HOST, "you"]
    assert await engine.queries.open_turns() == []
    assert sink.ends and sink.ends[0].text == "BotA answers at length."
    await _rebuild_agrees(db)


class _Crash(BaseException):
    """The process dying mid-stream: nothing after this line of code runs."""


async def test_recovery_after_a_crash_during_a_regenerate_keeps_what_the_reply_answers(
    db: Database,
) -> None:
    """Finding 4: recovery dropped answers_turn_id and witnesses; the next regenerate then
    answered nothing ("(Continue the scene as …)")."""
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    mock.script(narrate="BotA first.", classify=parse_answer("tell me"), state=zero_state())
    line = await engine.turns.take(chat_id, "tell me", RecordingSink())
    mock.script(narrate=_Crash())
    with contextlib.suppress(_Crash):
        await engine.history.regenerate(chat_id, RecordingSink())

    restarted, again = make_engine(db)
    assert await restarted.turns.recover_interrupted() == 1
    closed = (await then_events(db, AssistantTurn))[-1]
    assert closed.answers_turn_id == line.user_turn_id
    assert closed.witnesses == ["you", HOST] and closed.interrupted
    again.script(narrate="BotA again.", state=zero_state())
    await restarted.history.regenerate(chat_id, RecordingSink())
    # the line stays in the story, and the new reply is asked to answer it
    assert [b.text for b in await restarted.queries.beats(chat_id)][-2:] == [
        "tell me",
        "BotA again.",
    ]
    prompt = again.calls[0].messages
    assert prompt[-3].content == "Me: tell me"  # the last beat; then the changing context, the cue
    await _rebuild_agrees(db)


async def test_a_huge_reply_to_a_long_line_keeps_its_beat(db: Database) -> None:
    """Finding 5: a 3,996-character line and a 16.5k reply overflowed the memory: beat lost."""
    engine, mock = make_engine(db, engine={"max_turn_chars": 4000})
    chat_id = await seed_story(engine, guest=False)
    line = "word " * 799 + "end."
    reply = "BotA talks. " * 1400
    assert len(line) == 3_999 and len(reply) == 16_800
    mock.script(narrate=reply, classify=parse_answer(line), state=zero_state())

    result = await engine.turns.take(chat_id, line, RecordingSink())

    assert result.status == "done" and result.text == reply
    stored = (await then_events(db, AssistantTurn))[-1]
    assert stored.text == reply
    memories = await then_events(db, MemoryWritten)
    assert len(memories) == 2 and all(len(m.text) <= 20_000 for m in memories)
    await _rebuild_agrees(db)


async def test_the_player_hears_the_story_is_busy_while_the_world_moves_on(db: Database) -> None:
    """Issue 13, never silent: from the reply's end until its world update is written."""
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    heard: list[tuple[str, int, bool, int]] = []

    async def listener(chat: str, where: int, busy: bool) -> None:
        updates = len(await then_events(db, EdgeUpdate))
        heard.append((chat, where, busy, updates))

    engine.on_busy(listener)
    sink = RecordingSink()
    mock.script(narrate="BotA nods.", classify=parse_answer("hello"), state=zero_state())
    await engine.turns.take(chat_id, "hello", sink)
    # busy once the reply had ended, quiet once its state update was written
    assert heard == [(chat_id, 0, True, 0), (chat_id, 0, False, 1)]
    assert sink.ends


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_the_console_shows_a_status_line_that_clears(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    out = _Terminal()
    console = Console(engine, out)
    console.chat_id = chat_id
    mock.script(narrate="BotA nods.", classify=parse_answer("hello"), state=zero_state())
    await engine.turns.take(chat_id, "hello", RecordingSink())
    assert out.getvalue() == BUSY_LINE + "\r\033[K"
    piped = io.StringIO()
    Console(engine, piped)
    mock.script(narrate="BotA nods.", classify=parse_answer("hello"), state=zero_state())
    await engine.turns.take(chat_id, "hello", RecordingSink())
    assert piped.getvalue() == ""  # piped output is the story alone
