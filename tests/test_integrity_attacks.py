"""Attacks on the story-integrity guarantees of issue 9, each with the smallest story that broke
one: what a character did not witness reaching it through an edit's re-derivation, old words of
an edited line surviving a cut edit, and a reply the player read lost to a cancelled turn.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from typing import Any

from bot.llm import Message, Priority, Purpose, ScriptedLLM, Task
from bot.llm.mock import RecordedCall
from bot.store import Database, project
from tests.helpers.engine_helpers import (
    GUEST,
    HOST,
    RecordingSink,
    make_engine,
    parse_answer,
    seed_story,
    summary_answer,
    threads_answer,
)
from tests.helpers.store_factories import snapshot

WAS_DOING = re.compile(r"^\w+ was (\w+) (.+)\.$", re.MULTILINE)


def _prompt(call: RecordedCall) -> str:
    return "\n".join(m.content for m in call.messages)


async def _rebuild_agrees(db: Database) -> None:
    before = await snapshot(db)
    await project(db)
    assert await snapshot(db) == before


def _state(verb: str, targets: Sequence[str]) -> str:
    return json.dumps(
        {
            "relationships": [
                {"target_id": t, "affinity_delta": 0, "trust_delta": 0, "knowledge_facts": []}
                for t in targets
            ],
            "activity": {"posture": "standing", "verb": verb} if verb else None,
        }
    )


class CarriesOn(ScriptedLLM):
    """A model that, asked for a state update, keeps doing what it was told it was doing
    ("still …"), as real models do, unless the test gives it something new to do (``fresh``);
    every other call comes from the script."""

    def __init__(self) -> None:
        super().__init__()
        self.fresh: list[str] = []

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        priority: Priority = Priority.BACKGROUND,
        purpose: Purpose | None = None,
        **params: Any,
    ) -> str:
        if purpose is None or purpose.task != Task.STATE:
            return await super().complete(
                messages, model=model, priority=priority, purpose=purpose, **params
            )
        self.calls.append(
            RecordedCall("complete", list(messages), model, params, priority, purpose)
        )
        prompt = messages[-1].content
        targets = re.findall(r"\(id (\w+), affinity", prompt)
        if self.fresh:
            return _state(self.fresh.pop(0), targets)
        doing = WAS_DOING.search(prompt)
        return _state(f"still {doing[2]}" if doing else "", targets)


def _prompts_of(llm: ScriptedLLM, character: str) -> list[str]:
    """Every prompt built for ``character``: its replies and its state updates."""
    calls = llm.calls_for(Task.NARRATE, character) + llm.calls_for(Task.STATE, character)
    return [_prompt(c) for c in calls]


async def test_an_edit_does_not_hand_an_old_beat_what_came_after_it(db: Database) -> None:
    """The guest saw the first beat only; the vault code came later, while it was away. An edit
    of the first line derives the host's activity again *for that beat*, which the guest saw;
    it must not be derived from what the host was doing after it (the code on its mind)."""
    engine, _ = make_engine(db)
    llm = CarriesOn()
    engine.ctx.models.llm = llm
    chat_id = await seed_story(engine)
    llm.fresh += ["greeting everyone", "waving"]
    llm.script(narrate="BotA greets everyone.", classify=parse_answer("hello all"))
    await engine.turns.take(chat_id, "hello all", RecordingSink(), message_id=7)
    llm.script(summary=[summary_answer("a greeting")] * 3, threads=threads_answer())
    await engine.scenes.guest_leave(chat_id)
    llm.fresh.append("thinking about ZSC1Q")
    llm.script(narrate="BotA nods slowly.", classify=parse_answer("the vault code is ZSC1Q"))
    await engine.turns.take(chat_id, "the vault code is ZSC1Q", RecordingSink())
    llm.script(
        summary={"you": summary_answer("the code"), HOST: summary_answer("the code")},
        threads=threads_answer(),
    )
    await engine.scenes.guest_join(chat_id)
    assert "ZSC1Q" not in str(await engine.queries.activities_seen(chat_id, GUEST, (HOST,)))

    llm.script(classify=parse_answer("hello everyone"))
    llm.script(summary=[summary_answer("a greeting")] * 3, threads=threads_answer())
    await engine.history.edit_message(chat_id, 7, "hello everyone")

    assert "ZSC1Q" not in str(await engine.queries.activities_seen(chat_id, GUEST, (HOST,)))
    llm.script(narrate="BotB waves.", classify=parse_answer("BotB, hi"))
    await engine.turns.take(chat_id, "BotB, hi", RecordingSink())
    guest = _prompts_of(llm, GUEST)
    assert guest and all("ZSC1Q" not in p for p in guest)
    assert llm.unused == {}
    await _rebuild_agrees(db)


class _Blocking(ScriptedLLM):
    """Answers from the script until ``block`` is set; then every JSON call hangs (a busy
    server, or the moment the player presses Ctrl-C)."""

    def __init__(self) -> None:
        super().__init__()
        self.block = False
        self.hung = asyncio.Event()

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        priority: Priority = Priority.BACKGROUND,
        **params: Any,
    ) -> str:
        if self.block:
            self.hung.set()
            await asyncio.Event().wait()
        return await super().complete(messages, model=model, priority=priority, **params)


async def test_an_edit_cut_short_leaves_no_summary_of_the_old_words(db: Database) -> None:
    """The scene closed with summaries of "ZOL1Q"; the player edits that line, and the edit is
    cut (Ctrl-C, a restart) while its labels and feelings are being asked: the old summary
    must not stay in the host's memories, its prompts or the player's."""
    engine, _ = make_engine(db)
    llm = _Blocking()
    engine.ctx.models.llm = llm
    chat_id = await seed_story(engine, guest=False)
    llm.script(
        narrate="BotA listens.", classify=parse_answer("first, a word"), state=_state("", ["you"])
    )
    await engine.turns.take(chat_id, "first, a word", RecordingSink(), message_id=6)
    llm.script(
        narrate="BotA nods.",
        classify=parse_answer("I hid it under ZOL1Q"),
        state=_state("", ["you"]),
    )
    await engine.turns.take(chat_id, "I hid it under ZOL1Q", RecordingSink(), message_id=7)
    llm.script(
        summary={
            HOST: summary_answer("Me hid it under ZOL1Q"),
            "you": summary_answer("I hid it under ZOL1Q"),
        }
    )
    llm.script(threads=threads_answer("Where is ZOL1Q?"))
    await engine.scenes.close(chat_id)

    llm.block = True
    edit = asyncio.create_task(engine.history.edit_message(chat_id, 7, "I hid it under ZNW1Q"))
    await llm.hung.wait()
    edit.cancel()
    await asyncio.gather(edit, return_exceptions=True)

    for owner in (HOST, "you"):
        for memory in await engine.queries.own_memories(chat_id, owner, limit=50):
            assert "ZOL1Q" not in memory.text + memory.pov_summary, (owner, memory)
    await _rebuild_agrees(db)


async def test_a_turn_cancelled_mid_stream_keeps_what_the_player_read(db: Database) -> None:
    """The turn's task itself is cancelled while the reply streams (a shutdown past its grace,
    an adapter's task torn down): the words already shown are the story's at once, not an open
    turn that a later restart would close after everything played since."""
    engine, _ = make_engine(db)
    llm = ScriptedLLM(chunk_delay=0.01)
    engine.ctx.models.llm = llm
    chat_id = await seed_story(engine, guest=False)
    llm.script(narrate="BotA begins a long story about the harbour and the lanterns and the rain.")
    sink = RecordingSink()
    turn = asyncio.create_task(engine.turns.take(chat_id, "tell me", sink))
    await sink.first_text.wait()

    turn.cancel()
    await asyncio.gather(turn, return_exceptions=True)

    shown = "".join(sink.chunks)
    assert await engine.queries.open_turns() == []
    [line, reply] = (await engine.queries.beats(chat_id))[-2:]
    assert line.text == "tell me" and reply.text.startswith(shown) and shown
    assert reply.answers_turn_id == line.id
    await _rebuild_agrees(db)


async def test_what_the_host_was_doing_alone_does_not_carry_on_before_the_guest(
    db: Database,
) -> None:
    """Finding 1 again, one beat later: the host's state update after the guest is back is told
    what the host was doing while the guest was away ("thinking about ZSC1Q"); a model that
    carries on ("still thinking about ZSC1Q") shows it to the guest, who never saw it."""
    engine, _ = make_engine(db)
    llm = CarriesOn()
    engine.ctx.models.llm = llm
    chat_id = await seed_story(engine)
    llm.script(threads=threads_answer())  # nothing was remembered yet, so no one summarizes
    await engine.scenes.guest_leave(chat_id)
    llm.fresh.append("thinking about ZSC1Q")
    llm.script(narrate="BotA nods slowly.", classify=parse_answer("the vault code is ZSC1Q"))
    await engine.turns.take(chat_id, "the vault code is ZSC1Q", RecordingSink())
    llm.script(
        summary={"you": summary_answer("the code"), HOST: summary_answer("the code")},
        threads=threads_answer(),
    )
    await engine.scenes.guest_join(chat_id)

    llm.script(narrate="BotA turns to the door.", classify=parse_answer("look who is here"))
    await engine.turns.take(chat_id, "look who is here", RecordingSink())
    llm.script(narrate="BotB waves.", classify=parse_answer("BotB, hi"))
    await engine.turns.take(chat_id, "BotB, hi", RecordingSink())

    assert "ZSC1Q" not in str(await engine.queries.activities_seen(chat_id, GUEST, (HOST,)))
    guest = _prompts_of(llm, GUEST)
    assert guest and all("ZSC1Q" not in p for p in guest)
    # the host still knows, and "you" saw it
    assert "ZSC1Q" in str(await engine.queries.activities_seen(chat_id, "you", (HOST,)))
    await _rebuild_agrees(db)


async def test_an_edit_reaches_what_later_beats_carried_on_from_the_old_words(
    db: Database,
) -> None:
    engine, _ = make_engine(db)
    llm = CarriesOn()
    engine.ctx.models.llm = llm
    chat_id = await seed_story(engine, guest=False)
    llm.fresh.append("thinking about ZOL1Q")
    llm.script(narrate="BotA repeats it.", classify=parse_answer("My name is ZOL1Q."))
    await engine.turns.take(chat_id, "My name is ZOL1Q.", RecordingSink(), message_id=7)
    llm.script(narrate="BotA looks outside.", classify=parse_answer("nice weather"))
    await engine.turns.take(chat_id, "nice weather", RecordingSink())  # "still thinking …"

    llm.fresh.append("thinking about ZNW1Q")
    llm.script(classify=parse_answer("My name is ZNW1Q."))
    await engine.history.edit_message(chat_id, 7, "My name is ZNW1Q.")

    assert "ZOL1Q" not in str((await engine.queries.status(chat_id)).activities)


async def test_a_broken_character_in_a_json_answer_costs_nothing(db: Database) -> None:
    """JSON may escape a lone surrogate ("\\ud800"), and models do write them: the state update
    (and a scene's summary) holding one was refused whole, and the turn, already written and
    read, failed in front of the player."""
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    broken = "x \ud800 y"  # json.dumps writes it as the escape a model would
    answer = json.loads(_state(f"waiting {broken}", ["you"]))
    answer["relationships"][0]["knowledge_facts"] = [broken]
    state = json.dumps(answer)
    assert "\\ud800" in state
    mock.script(narrate="BotA nods.", classify=parse_answer("hello"), state=state)

    result = await engine.turns.take(chat_id, "hello", RecordingSink())

    assert result.status == "done"
    assert (await engine.queries.relationship(chat_id, HOST, "you")).knowledge_facts == (
        "x \ufffd y",
    )
    summary = summary_answer(broken)
    mock.script(summary={"you": summary, HOST: summary}, threads=threads_answer())
    await engine.scenes.close(chat_id)
    assert any("\ufffd" in m.pov_summary for m in await engine.queries.own_memories(chat_id, HOST))
    await _rebuild_agrees(db)


async def test_a_rewind_past_an_edit_keeps_the_scene_summaries_it_wrote(db: Database) -> None:
    """An edit in a closed scene writes its summaries on the beat's new memories; a rewind to a
    beat before the edit carries both past itself, as copies with new ids: the summaries must
    still land on the copies."""
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    mock.script(
        narrate="BotA listens.",
        classify=parse_answer("I hid it under ZOL1Q"),
        state=_state("", ["you"]),
    )
    await engine.turns.take(chat_id, "I hid it under ZOL1Q", RecordingSink(), message_id=7)
    mock.script(
        summary={
            HOST: summary_answer("Me hid it under ZOL1Q"),
            "you": summary_answer("I hid it under ZOL1Q"),
        }
    )
    mock.script(threads=threads_answer())
    await engine.scenes.close(chat_id)
    mock.script(narrate="BotA smiles.", classify=parse_answer("next"), state=_state("", ["you"]))
    second = await engine.turns.take(chat_id, "next", RecordingSink())
    mock.script(narrate="BotA waits.", classify=parse_answer("and then"), state=_state("", ["you"]))
    await engine.turns.take(chat_id, "and then", RecordingSink())
    mock.script(classify=parse_answer("I hid it under ZNW1Q"), state=_state("", ["you"]))
    mock.script(
        summary={
            HOST: summary_answer("Me hid it under ZNW1Q"),
            "you": summary_answer("I hid it under ZNW1Q"),
        }
    )
    mock.script(threads=threads_answer())
    await engine.history.edit_message(chat_id, 7, "I hid it under ZNW1Q")

    await engine.history.rewind_to_turn(chat_id, second.assistant_turn_id)

    for owner in (HOST, "you"):
        summaries = [
            m.pov_summary
            for m in await engine.queries.own_memories(chat_id, owner)
            if m.pov_summary
        ]
        assert len(summaries) == 1 and "ZNW1Q" in summaries[0], (owner, summaries)
    await _rebuild_agrees(db)


async def test_a_broken_character_in_the_reply_stream_loses_no_beat(db: Database) -> None:
    """A server may send a lone surrogate in a stream chunk (JSON can escape one): the reply
    the player read could not be checkpointed or written, and was lost."""
    engine, mock = make_engine(db, engine={"checkpoint_seconds": 0.1})
    chat_id = await seed_story(engine, guest=False)
    mock.chunk_delay = 0.06  # a checkpoint falls due while it streams
    mock.script(
        narrate="BotA says \ud83d and goes on.",
        classify=parse_answer("hello"),
        state=_state("", ["you"]),
    )

    result = await engine.turns.take(chat_id, "hello", RecordingSink())

    assert result.status == "done"
    [line, reply] = (await engine.queries.beats(chat_id))[-2:]
    assert line.text == "hello" and reply.text == "BotA says \ufffd and goes on."
    await _rebuild_agrees(db)


def _summary_with_view(view: str) -> str:
    return json.dumps({"summary": "a scene", "knowledge_facts": [], "relationship_summary": view})


async def test_an_edit_in_an_old_scene_keeps_the_latest_view_of_you(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    mock.script(
        narrate="BotA listens.", classify=parse_answer("I am a sailor"), state=_state("", ["you"])
    )
    await engine.turns.take(chat_id, "I am a sailor", RecordingSink(), message_id=7)
    mock.script(
        summary={"you": summary_answer("mine"), HOST: _summary_with_view("a sailor, it seems")},
        threads=threads_answer(),
    )
    await engine.scenes.close(chat_id)
    mock.script(
        narrate="BotA gasps.",
        classify=parse_answer("I lied: I am a spy"),
        state=_state("", ["you"]),
    )
    await engine.turns.take(chat_id, "I lied: I am a spy", RecordingSink())
    mock.script(
        summary={"you": summary_answer("mine"), HOST: _summary_with_view("a spy who lied to me")},
        threads=threads_answer(),
    )
    await engine.scenes.close(chat_id)
    mock.script(classify=parse_answer("I am a sailor, yes"), state=_state("", ["you"]))
    mock.script(
        summary={"you": summary_answer("mine"), HOST: _summary_with_view("a sailor, yes")},
        threads=threads_answer(),
    )

    await engine.history.edit_message(chat_id, 7, "I am a sailor, yes")

    assert (
        await engine.queries.relationship(chat_id, HOST, "you")
    ).summary == "a spy who lied to me"


async def test_world_info_does_not_fire_on_an_aside_no_character_heard(db: Database) -> None:
    """An out-of-character aside is the player's to the owner, not the story's: no character
    hears it, so no world-info entry may fire on its words, in this beat or later ones."""
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    await engine.lore.add(chat_id, {"keys": ["ZSC1Q"], "content": "LORE-VAULT opens at dawn."})
    line = "I sit down. ((OOC: later the vault code should be ZSC1Q))"
    mock.script(
        narrate="BotA waits.", classify=parse_answer("I sit down."), state=_state("", ["you"])
    )
    await engine.turns.take(chat_id, line, RecordingSink())
    mock.script(
        narrate="BotA smiles.", classify=parse_answer("and then?"), state=_state("", ["you"])
    )
    await engine.turns.take(chat_id, "and then?", RecordingSink())

    narrated = [_prompt(c) for c in mock.calls if c.kind == "stream"]
    assert len(narrated) == 2 and all("LORE-VAULT" not in p for p in narrated)
