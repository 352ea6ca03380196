"""The Tavern card features in play: macros in every prompt, world info, the character note at
depth, greetings, and the starting relationship toward you. Given/when/then over the engine,
with the scripted LLM recording every prompt it is sent."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from bot.engine import Engine, StoryError
from bot.llm import Message, ScriptedLLM, Task
from bot.store import Database, project
from bot.store.events import AssistantTurn, LoreEntryAdded
from tests.helpers.engine_helpers import (
    GUEST,
    HOST,
    RecordingSink,
    character,
    make_engine,
    parse_answer,
    summary_answer,
    threads_answer,
    zero_state,
)
from tests.helpers.events import then_events
from tests.helpers.store_factories import snapshot

MACRO = re.compile(r"\{\{\s*(char|user|original)\s*\}\}|<(bot|user|char)>", re.IGNORECASE)
CHAT = "tavern"


def macro_card(bot_id: str, name: str, **extra: Any) -> dict[str, Any]:
    """A character whose every text field is written with macros, as real cards are."""
    fields: dict[str, Any] = {
        "persona": "{{char}} keeps the light and teases {{User}}. <BOT> never sleeps.",
        "personality": "{{CHAR}} is wry with <USER>.",
        "scenario": "{{user}} arrives at {{char}}'s lighthouse.",
        "backstory": "{{char}} met {{user}} once, years ago.",
        "traits": ["fond of {{user}}"],
        "voice_samples": ["{{char}}: Evening, {{user}}.", "<BOT>: Tea, <USER>?"],
        "system_prompt": "{{original}} Stay with {{char}}'s voice.",
        "post_history_instructions": "{{original}}Keep {{char}} brief with {{user}}.",
        "kickoff_prose": "*{{char}} looks up.* You're soaked, {{user}}.",
        "alternate_greetings": ["{{char}} waves at {{user}}.", "<BOT> nods to <USER>."],
        "initial_relationship_to_you": "{{char}} owes {{user}} a favour.",
        "extensions": {"depth_prompt": {"prompt": "{{char}} is tired.", "depth": 1}},
        "character_book": {
            "entries": [
                {"keys": ["{{user}}"], "content": "{{char}} remembers {{user}}'s boat."},
                {"keys": ["x"], "content": "<BOT> hums.", "constant": True},
            ]
        },
    }
    fields.update(extra)
    return character(bot_id, name, **fields)


async def start(engine: Engine, *, guest: bool = True, greeting: int = 0, **host: Any) -> str:
    await engine.characters.author(macro_card(HOST, "Mira", **host))
    await engine.characters.author(macro_card(GUEST, "Tomas"))
    await engine.characters.set_you(name="Sam", pronouns="they/them")
    started = await engine.chats.start(
        host_id=HOST,
        guest_id=GUEST if guest else None,
        place="the lighthouse",
        time="21:40",
        chat_id=CHAT,
        greeting=greeting,
    )
    return started.chat.id


def texts(messages: list[Message]) -> str:
    return "\n".join(m.content for m in messages)


def narrative_prompts(mock: ScriptedLLM) -> list[list[Message]]:
    return [call.messages for call in mock.calls_for(Task.NARRATE)]


# --- 1. macros everywhere -------------------------------------------------------------------


async def test_no_macro_reaches_the_llm_in_any_kind_of_prompt(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await start(engine)
    mock.script(
        narrate="Mira smiles.", classify=parse_answer("I wave."), state=[zero_state(), zero_state()]
    )
    await engine.turns.take(chat_id, "I wave at {{char}} and <BOT>.", RecordingSink())
    mock.script(summary=[summary_answer("A quiet evening.")] * 3, threads=threads_answer("boat"))
    await engine.scenes.close(chat_id)
    await engine.scenes.start_meanwhile(chat_id, premise="{{char}} and Tomas talk")
    mock.script(
        narrate="Tomas shrugs.",
        classify=parse_answer("They talk."),
        state=[zero_state(), zero_state()],
    )
    await engine.turns.take(chat_id, "They talk about {{user}}.", RecordingSink())
    mock.script(
        summary=[summary_answer("s"), summary_answer("s")],
        digest=summary_answer("While…"),
        threads=threads_answer(),
    )
    await engine.scenes.end_meanwhile(chat_id)

    kinds = {
        "reply": mock.calls_for(Task.NARRATE),
        "classification": mock.calls_for(Task.CLASSIFY),
        "state update": mock.calls_for(Task.STATE),
        "summary": mock.calls_for(Task.SUMMARY),
        "digest": mock.calls_for(Task.DIGEST),
        "threads": mock.calls_for(Task.THREADS),
    }
    assert {kind: len(calls) for kind, calls in kinds.items()} == {
        "reply": 2,
        "classification": 2,
        "state update": 4,
        "summary": 5,
        "digest": 1,
        "threads": 2,
    }
    for kind, calls in kinds.items():
        for call in calls:
            found = MACRO.search(texts(call.messages))
            assert found is None, f"{found.group(0)!r} reached the LLM in a {kind} prompt"
    reply = texts(kinds["reply"][0].messages)
    assert "Mira keeps the light and teases Sam. Mira never sleeps." in reply
    assert "I wave at Mira and Mira." in reply
    state = texts(kinds["state update"][0].messages)
    assert "Mira is wry with Sam." in state


async def test_original_inserts_the_text_the_card_replaces(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await start(engine, guest=False)
    mock.script(narrate="Hello.", classify=parse_answer("Hi"), state=zero_state())
    await engine.turns.take(chat_id, "Hi", RecordingSink())
    system = narrative_prompts(mock)[0][0].content
    assert system.startswith("You are Mira, a character in an ongoing role-play story.")
    assert "never for Sam. Stay with Mira's voice." in system
    assert narrative_prompts(mock)[0][-1] == Message(
        role="system", content="Keep Mira brief with Sam."
    )


async def test_a_card_system_prompt_without_original_replaces_ours(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await start(engine, guest=False, system_prompt="You are {{char}}. Be terse.")
    mock.script(narrate="Hello.", classify=parse_answer("Hi"), state=zero_state())
    await engine.turns.take(chat_id, "Hi", RecordingSink())
    system = narrative_prompts(mock)[0][0].content
    assert system.startswith("You are Mira. Be terse.\nPersona:")
    assert "ongoing role-play story" not in system


# --- 3. depth prompt ------------------------------------------------------------------------


async def test_the_character_note_sits_at_its_depth_in_the_transcript(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await start(engine, guest=False)
    mock.script(narrate="First reply.", classify=parse_answer("One"), state=zero_state())
    await engine.turns.take(chat_id, "One", RecordingSink())
    mock.script(narrate="Second reply.", classify=parse_answer("Two"), state=zero_state())
    await engine.turns.take(chat_id, "Two", RecordingSink())
    prompt = narrative_prompts(mock)[1]
    note = prompt.index(Message(role="system", content="Mira is tired."))
    # depth 1: one message of the chat (the line being answered) comes after it; world info
    # and the rest of what changes each turn sit just before that line
    after = [m.content for m in prompt[note + 1 :]]
    assert after[0] == "World info:\nMira remembers Sam's boat.\nMira hums."
    assert after[1].startswith("Now: ")
    assert after[2:] == ["Sam: Two", "Keep Mira brief with Sam."]
    assert prompt[note - 1] == Message(role="assistant", content="First reply.")


async def test_depth_zero_puts_the_note_after_the_line_and_roles_are_kept(db: Database) -> None:
    engine, mock = make_engine(db)
    note = {"prompt": "OOC: slow down.", "depth": 0, "role": "user"}
    chat_id = await start(engine, guest=False, extensions={"depth_prompt": note})
    mock.script(narrate="Reply.", classify=parse_answer("Go"), state=zero_state())
    await engine.turns.take(chat_id, "Go", RecordingSink())
    prompt = narrative_prompts(mock)[0]
    at = prompt.index(Message(role="user", content="OOC: slow down."))
    assert prompt[at - 1].content == "Sam: Go"


# --- 2. world info in play ------------------------------------------------------------------


async def test_an_at_depth_entry_goes_into_the_transcript(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await start(engine, guest=False, character_book=None, extensions={})
    entry = {"keys": ["storm"], "content": "Thunder, {{user}}.", "position": "at_depth"}
    await engine.lore.add(chat_id, {**entry, "depth": 0, "role": "user"})
    mock.script(narrate="Reply.", classify=parse_answer("x"), state=zero_state())
    await engine.turns.take(chat_id, "A storm comes.", RecordingSink())
    prompt = narrative_prompts(mock)[0]
    at = prompt.index(Message(role="user", content="Thunder, Sam."))
    assert prompt[at - 1] == Message(role="user", content="Sam: A storm comes.")
    assert prompt[at + 1 :] == [Message(role="system", content="Keep Mira brief with Sam.")]
    assert not any(m.content.startswith("World info:") for m in prompt)


async def test_a_cards_lorebook_reaches_only_its_own_characters_prompts(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await start(engine)
    mock.script(
        narrate="Mira replies.", classify=parse_answer("Hi"), state=[zero_state(), zero_state()]
    )
    await engine.turns.take(chat_id, "Hi Sam here", RecordingSink())
    mock.script(
        narrate="Tomas replies.",
        classify=parse_answer("Tomas?"),
        state=[zero_state(), zero_state()],
    )
    await engine.turns.take(chat_id, "Tomas, Sam again", RecordingSink())
    mira, tomas = narrative_prompts(mock)
    assert "Mira remembers Sam's boat." in texts(mira) and "Mira hums." in texts(mira)
    assert "Tomas remembers Sam's boat." in texts(tomas)
    assert "Mira remembers" not in texts(tomas) and "Mira hums" not in texts(tomas)


async def test_the_world_book_reaches_every_character(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await start(engine, character_book=None)
    number = await engine.lore.add(
        chat_id, {"keys": ["lantern"], "content": "The lantern is {{char}}'s."}
    )
    assert number == 1
    mock.script(narrate="Mira.", classify=parse_answer("x"), state=[zero_state(), zero_state()])
    await engine.turns.take(chat_id, "the lantern", RecordingSink())
    mock.script(narrate="Tomas.", classify=parse_answer("x"), state=[zero_state(), zero_state()])
    await engine.turns.take(chat_id, "Tomas, the lantern", RecordingSink())
    mira, tomas = narrative_prompts(mock)
    assert "The lantern is Mira's." in texts(mira)
    assert "The lantern is Tomas's." in texts(tomas)
    lore_message = next(m for m in mira if m.content.startswith("World info:"))
    # with what changes each turn, just before the cue (and the PHI)
    assert mira.index(lore_message) == len(mira) - 4


async def test_world_info_stays_within_its_share_of_the_prompt_budget(db: Database) -> None:
    engine, mock = make_engine(db, engine={"prompt_token_budget": 1000})
    chat_id = await start(engine, guest=False, character_book=None)
    for word, priority in (("lamp", 1), ("storm", 9)):
        entry = {"keys": [word], "content": f"{word} " * 90, "priority": priority}
        await engine.lore.add(chat_id, entry)  # about 135 tokens each; the share is 150
    mock.script(narrate="Reply.", classify=parse_answer("x"), state=zero_state())
    await engine.turns.take(chat_id, "The lamp in the storm.", RecordingSink())
    lore = next(m for m in narrative_prompts(mock)[0] if m.content.startswith("World info:"))
    assert "storm" in lore.content and "lamp" not in lore.content
    _, now = await engine.lore.why(chat_id, HOST, "The lamp in the storm.")
    assert [f.entry.priority for f in now.over_budget] == [1]


async def test_lore_keyed_on_what_a_character_missed_does_not_fire_for_it(db: Database) -> None:
    """Tomas was not there when the letter came up: its entry fires for Mira, never for him."""
    engine, mock = make_engine(db)
    chat_id = await start(engine, guest=False, character_book=None)
    await engine.lore.import_book(
        chat_id,
        json.dumps(
            {"scanDepth": 50, "entries": {"0": {"key": ["letter"], "content": "The letter."}}}
        ).encode(),
        "vale.json",
    )
    mock.script(narrate="Mira reads it.", classify=parse_answer("x"), state=zero_state())
    await engine.turns.take(chat_id, "I hand you the letter.", RecordingSink())
    mock.script(summary=[summary_answer("s"), summary_answer("s")], threads=threads_answer())
    await engine.scenes.guest_join(chat_id, GUEST)
    mock.script(
        narrate="Tomas hello.", classify=parse_answer("x"), state=[zero_state(), zero_state()]
    )
    await engine.turns.take(chat_id, "Tomas, hello.", RecordingSink())

    _, tomas = narrative_prompts(mock)
    assert "The letter." not in texts(tomas)
    speaker, now = await engine.lore.why(chat_id, GUEST)
    assert speaker.id == GUEST
    assert {f.book for f in now.fired} == {"Tomas's lorebook"}  # its own book only
    speaker, now = await engine.lore.why(chat_id, HOST)
    assert [f.reason for f in now.fired if f.book == "the story's world book"] == [
        "key 'letter' in Sam's line (3 before the latest)"
    ]


async def test_world_book_changes_are_events_and_survive_a_regenerate(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await start(engine, guest=False, character_book=None)
    mock.script(narrate="Reply.", classify=parse_answer("x"), state=zero_state())
    await engine.turns.take(chat_id, "the lantern", RecordingSink())
    book = {"entries": {"0": {"key": ["a"], "content": "A."}, "1": {"key": ["b"], "content": "B"}}}
    await engine.lore.import_book(chat_id, json.dumps(book).encode(), "w.json")
    await engine.lore.add(chat_id, {"keys": ["lantern"], "content": "The lantern glows."})
    await engine.lore.remove(chat_id, 1)
    mock.script(narrate="Again.", state=zero_state())
    await engine.history.regenerate(chat_id, RecordingSink())

    assert "The lantern glows." in texts(narrative_prompts(mock)[1])
    listed = await engine.lore.book(chat_id)
    assert [(n, e.content) for n, e in zip(listed.numbers, listed.entries, strict=True)] == [
        (2, "B"),
        (3, "The lantern glows."),
    ]
    before = await snapshot(db)
    await project(db)
    assert await snapshot(db) == before


async def test_bad_lore_is_refused_with_a_reason(db: Database) -> None:
    engine, _ = make_engine(db)
    chat_id = await start(engine, guest=False)
    for fields, words in [
        ({"keys": ["a"], "content": " "}, "needs some content"),
        ({"keys": [], "content": "x"}, "needs keys"),
        ({"keys": ["a"], "content": "x", "priority": "high"}, "priority"),
    ]:
        try:
            await engine.lore.add(chat_id, fields)
        except StoryError as exc:
            assert words in str(exc)
        else:
            raise AssertionError(f"{fields} was accepted")
    for data, words in [(b"[1]", "should be a JSON object"), (b'{"x": 1}', "no 'entries'")]:
        try:
            await engine.lore.import_book(chat_id, data, "w.json")
        except StoryError as exc:
            assert words in str(exc)
        else:
            raise AssertionError(f"{data!r} was accepted")
    try:
        await engine.lore.remove(chat_id, 9)
    except StoryError as exc:
        assert "no entry 9" in str(exc)
    assert await then_events(db, LoreEntryAdded) == []


# --- 4. greetings ---------------------------------------------------------------------------


async def test_a_story_opens_with_the_chosen_greeting(db: Database) -> None:
    engine, _ = make_engine(db)
    await start(engine, guest=False, greeting=2)
    [opening] = await then_events(db, AssistantTurn)
    assert opening.text == "Mira nods to Sam."
    assert await engine.chats.greetings(0, 0, HOST) == [
        "*Mira looks up.* You're soaked, Sam.",
        "Mira waves at Sam.",
        "Mira nods to Sam.",
    ]


async def test_a_greeting_that_does_not_exist_is_refused(db: Database) -> None:
    engine, _ = make_engine(db)
    try:
        await start(engine, guest=False, greeting=3)
    except StoryError as exc:
        assert "greetings 0 to 2" in str(exc)
    else:
        raise AssertionError("greeting 3 was accepted")


async def test_regenerating_the_opening_shows_the_next_greeting_without_the_llm(
    db: Database,
) -> None:
    engine, mock = make_engine(db)
    chat_id = await start(engine, guest=False)
    shown = []
    for _ in range(3):
        sink = RecordingSink()
        _, result = await engine.history.regenerate(chat_id, sink)
        shown.append("".join(sink.chunks))
        assert result.status == "done" and sink.ends[0].status == "done"
    assert shown == [
        "Mira waves at Sam.",
        "Mira nods to Sam.",
        "*Mira looks up.* You're soaked, Sam.",
    ]
    assert mock.calls == []
    beats = await engine.queries.beats(chat_id)
    assert [b.text for b in beats] == [shown[-1]]


async def test_after_the_first_line_regenerate_asks_the_llm_again(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await start(engine, guest=False)
    mock.script(narrate="Reply.", classify=parse_answer("x"), state=zero_state())
    await engine.turns.take(chat_id, "Hi", RecordingSink())
    mock.script(narrate="Another reply.", state=zero_state())
    _, result = await engine.history.regenerate(chat_id, RecordingSink())
    assert result.text == "Another reply."


# --- 5. the starting relationship toward you -------------------------------------------------


async def test_initial_relationship_to_you_seeds_the_edge_and_reaches_the_prompt(
    db: Database,
) -> None:
    engine, mock = make_engine(db)
    chat_id = await start(engine, guest=False)
    relationship = await engine.queries.relationship(chat_id, HOST, "you")
    assert relationship.summary == "Mira owes Sam a favour."
    assert (relationship.affinity, relationship.trust) == (50, 50)
    assert await engine.history.why(chat_id, HOST, "you") == []
    mock.script(narrate="Reply.", classify=parse_answer("x"), state=zero_state())
    await engine.turns.take(chat_id, "Hi", RecordingSink())
    # the relationship's summary is part of how Mira feels now: the changing context
    [context] = [m for m in narrative_prompts(mock)[0] if m.content.startswith("Now: ")]
    assert "Mira owes Sam a favour." in context.content


async def test_a_guest_joining_later_brings_its_starting_view_of_you(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await start(engine, guest=False)
    mock.script(summary=summary_answer("s"), threads=threads_answer())
    await engine.scenes.guest_join(chat_id, GUEST)
    assert (await engine.queries.relationship(chat_id, GUEST, "you")).summary == (
        "Tomas owes Sam a favour."
    )


async def test_a_starting_view_too_long_once_its_macros_are_filled_is_refused_clearly(
    db: Database,
) -> None:
    """A card's view of you fits its field, but ``{{user}}`` filled in with a longer name does
    not fit the edge's summary: the start is refused in words, and nothing is written."""
    engine, _ = make_engine(db)
    await engine.characters.author(
        character(HOST, "Mira", initial_relationship_to_you="{{user}}" * 2500)
    )
    await engine.characters.set_you(name="Alexandria")

    with pytest.raises(StoryError, match=r"cannot start that story: .*relationship_summary"):
        await engine.chats.start(host_id=HOST, chat_id=CHAT)
    assert await engine.queries.chat(CHAT) is None


async def test_a_guest_whose_view_outgrows_its_field_once_filled_is_refused_clearly(
    db: Database,
) -> None:
    """The same for a guest joining for the first time: the join is refused in words, and the
    scene goes on as it was, nothing written."""
    engine, _ = make_engine(db)
    await engine.characters.author(character(HOST, "Mira"))
    await engine.characters.author(
        character(GUEST, "Tomas", initial_relationship_to_you="{{user}}" * 2500)
    )
    await engine.characters.set_you(name="Alexandria")
    await engine.chats.start(host_id=HOST, chat_id=CHAT)
    before = await snapshot(db)

    with pytest.raises(StoryError, match=r"that guest cannot join: .*relationship_summary"):
        await engine.scenes.guest_join(CHAT, GUEST)
    assert await snapshot(db) == before
    assert GUEST not in (await engine.queries.status(CHAT)).present
