"""Replies as a player should see them: no speaker label, no lines for someone else, and
structured answers that keep what is usable."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from bot.config import Settings
from bot.engine import Engine
from bot.engine.clean import ReplyCleaner, name_forms, speaker_labels
from bot.engine.parse import ParsedTurn
from bot.engine.state import StateUpdate
from bot.engine.summaries import SceneSummary, StoryThreads
from bot.llm import Message, Priority, ScriptedLLM, Task
from bot.store import Database
from bot.store.events import AssistantTurn
from tests.helpers.engine_helpers import (
    GUEST,
    HOST,
    RecordingSink,
    character,
    make_engine,
    parse_answer,
    seed_story,
)
from tests.helpers.events import then_events


def _run(chunks: list[str], name: str = "Mira Vale") -> str:
    cleaner = _cleaner(name)
    return "".join(cleaner.feed(c) for c in chunks) + cleaner.flush()


def _cleaner(name: str = "Mira Vale") -> ReplyCleaner:
    others = [name_forms("Tomás Reyes", "Tom"), name_forms("Alex")]
    own = speaker_labels(name_forms(name, "Mimi"))
    return ReplyCleaner(own, [label for names in others for label in speaker_labels(names)])


@pytest.mark.parametrize(
    "chunks",
    [
        ["Mira Vale: She smiles."],
        ["Mi", "ra V", "ale", ":", " She smiles."],
        ["  mira:", " She smiles."],
        ["**Mira Vale:**", " She smiles."],
        ["Mimi: She smiles."],
        ["Tomás Reyes: Mira Vale: She smiles."],
        ["Tomás", " Reyes:", " **Mira:** ", "She smiles."],
        ["Alex: She smiles."],
    ],
)
def test_every_label_opening_a_reply_is_dropped_however_it_arrives(chunks: list[str]) -> None:
    assert _run(chunks) == "She smiles."


@pytest.mark.parametrize(
    "chunks, expected",
    [
        (["Mir", "acles happen."], "Miracles happen."),
        (["Mi"], "Mi"),
        (["She says: Mira Vale: no"], "She says: Mira Vale: no"),
        (["She waves.\n\nAlice waves back."], "She waves.\n\nAlice waves back."),
        (["She waves.\n", "Al", "ice waves back."], "She waves.\nAlice waves back."),
        (["A toast: to Tomás, who is late.\nTom is always late."], None),
    ],
)
def test_other_text_comes_through_unchanged(chunks: list[str], expected: str | None) -> None:
    assert _run(chunks) == (expected if expected is not None else "".join(chunks))


@pytest.mark.parametrize(
    "chunks",
    [
        ["She smiles.\nAlex: I smile back."],
        ["She smiles.", "\n", "\n", "Al", "ex", ":", " I smile back."],
        ["She smiles.\n\n**Tomás:** Me too."],
        ["She smiles.\n  tom: Me too.\nMira: And again."],
    ],
)
def test_a_reply_that_starts_to_speak_for_someone_else_keeps_what_came_before(
    chunks: list[str],
) -> None:
    cleaner = _cleaner()
    shown = "".join(cleaner.feed(c) for c in chunks) + cleaner.flush()
    assert shown == "She smiles." and cleaner.cut


def test_the_speakers_own_label_starting_a_later_line_is_dropped() -> None:
    assert _run(["She smiles.\n\nMira: And waits."]) == "She smiles.\n\nAnd waits."


def test_one_broken_item_costs_that_item_not_the_answer() -> None:
    parsed = ParsedTurn.model_validate(
        {"segments": [{"kind": "dialogue", "text": "hi"}, {"oops": 1}, "x"]}
    )
    assert [(s.kind, s.text) for s in parsed.segments] == [("dialogue", "hi")]
    state = StateUpdate.model_validate(
        {"relationships": [{"target_id": "you", "affinity_delta": "3"}, 7], "activity": "sitting"}
    )
    assert [(p.target_id, p.affinity_delta) for p in state.relationships] == [("you", 3)]
    assert state.activity is None
    threads = StoryThreads.model_validate({"threads": [{"title": "t" * 500}, {"no": "title"}]})
    assert [len(t.title) for t in threads.threads] == [200]
    summary = SceneSummary.model_validate({"summary": "s" * 9000, "knowledge_facts": "not a list"})
    assert len(summary.summary) == 4000 and summary.knowledge_facts == []


async def test_a_reply_stops_where_the_model_speaks_for_someone_else(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine)
    mock.script(
        narrate="BotA: Hello there.", classify=parse_answer("hi"), state=[json.dumps({})] * 2
    )
    sink = RecordingSink()

    result = await engine.turns.take(chat_id, "hi", sink)

    assert result.text == "Hello there." and "".join(sink.chunks) == "Hello there."
    [narrative] = mock.calls_for(Task.NARRATE)
    assert narrative.params["stop"] == ["\nMe:", "\nBotB:", "\nNarration:"]
    assert result.speaker.id == HOST


async def test_a_reply_the_server_did_not_stop_is_cut_where_it_speaks_for_the_player(
    db: Database,
) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    mock.script(
        narrate="BotA waves.\n\nMe: I wave back.\nBotA: Good.",
        classify=parse_answer("hi"),
        state="{}",
    )
    sink = RecordingSink()

    result = await engine.turns.take(chat_id, "hi", sink)

    assert result.text == "BotA waves." and "".join(sink.chunks) == "BotA waves."
    *_kickoff, reply = await then_events(db, AssistantTurn)
    assert reply.text == "BotA waves."


async def test_in_a_meanwhile_the_stops_cover_the_absent_player_and_every_name(
    db: Database,
) -> None:
    engine, mock = make_engine(db, llm={"max_stop_sequences": 16})
    await engine.characters.author(character(HOST, "Bo Anders", nickname="Bo"))
    await engine.characters.author(character(GUEST, "Bea Brook", nickname="Bee"))
    await engine.characters.set_you(name="Alex Kim", pronouns="they/them")
    started = await engine.chats.start(host_id=HOST, guest_id=GUEST, place="office")
    await engine.scenes.start_meanwhile(started.chat.id)
    mock.script(narrate="She waits.", state=["{}", "{}"])
    await engine.turns.meanwhile_beats(started.chat.id, 1, RecordingSink)

    stops = mock.calls_for(Task.NARRATE)[0].params["stop"]
    assert stops == [
        "\nBea Brook:",
        "\nAlex Kim:",
        "\nNarration:",
        "\nBea:",
        "\nBee:",
        "\nAlex:",
    ]


async def test_the_stop_list_keeps_what_the_server_takes_most_important_first(
    db: Database,
) -> None:
    engine, mock = make_engine(db, llm={"max_stop_sequences": 2})
    chat_id = await seed_story(engine)
    mock.script(narrate="Hello.", classify=parse_answer("hi"), state=["{}", "{}"])
    await engine.turns.take(chat_id, "hi", RecordingSink())
    stops = mock.calls_for(Task.NARRATE)[0].params["stop"]
    assert stops == ["\nMe:", "\nBotB:"]


class _EndlessReply(ScriptedLLM):
    """A server that ignores stop sequences and would write for the player forever."""

    closed = False

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        priority: Priority = Priority.NARRATIVE,
        **params: Any,
    ) -> AsyncIterator[str]:
        try:
            yield "BotA waves."
            while True:
                yield "\nMe: and I answer for myself, again and again."
                await asyncio.sleep(0)
        finally:
            self.closed = True


async def test_a_cut_reply_stops_its_stream(db: Database) -> None:
    llm = _EndlessReply(classify=parse_answer("hi"), state="{}")
    engine = Engine(db, llm, Settings())
    chat_id = await seed_story(engine, guest=False)

    result = await asyncio.wait_for(engine.turns.take(chat_id, "hi", RecordingSink()), 5)

    assert result.text == "BotA waves." and result.status == "done"
    assert llm.closed
