"""Point of view: no prompt built for a character holds anything that character did not witness.

Random histories (you-turns, guests joining and leaving, meanwhile scenes, scene closes) run
against an LLM double that answers every call from the call itself. Every beat, prose line,
summary and learned fact carries a unique marker; a model of the story tracks who witnessed each
one, and every prompt built for a character is checked against it.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bot.config import Settings
from bot.engine import Engine, NullSink, StoryError
from bot.engine.prompts import estimate_tokens, prompt_tokens
from bot.llm import Message, MockLLMClient, Priority
from bot.llm.mock import RecordedCall, split_words
from bot.store import YOU, open_db
from tests.engine_helpers import GUEST, HOST, character

CAROL = "carol"
NAMES = {YOU: "Wren", HOST: "BotA", GUEST: "BotB", CAROL: "Cyra"}
IDS = {name: entity for entity, name in NAMES.items()}
FILLER = "lantern harbour ledger rain"

MARKER = re.compile(r"\b(?:BEAT|PROSE|KICK|SUM|RSUM|FACT|DIGEST)\d+\b")
NARRATOR = re.compile(r"^You are (\w+), a character")
STATE = re.compile(r"^You track the inner life of (\w+)\.")
POV_SUMMARY = re.compile(r"^You write (\w+)'s own memory")
TARGET_ID = re.compile(r"\(id (\w+), affinity")
CLASSIFY = "You split a role-play player's message"
DIGEST = "Summarize, in two to four sentences"
THREADS = "List the open plot threads"


def _text(messages: Sequence[Message]) -> str:
    return "\n".join(m.content for m in messages)


class StoryDouble(MockLLMClient):
    """Answers from the call itself; remembers which character each invented marker belongs to."""

    def __init__(self, *, reply_words: int = 0, summary_chars: int = 0) -> None:
        super().__init__()
        self.counter = 0
        self.reply_words = reply_words
        self.summary_chars = summary_chars
        self.beats: list[tuple[str, str]] = []  # (marker, speaker id), in stream order
        self.owned: dict[str, str] = {}  # SUM/RSUM/FACT marker -> the entity it belongs to
        self.digests: list[str] = []

    def _marker(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        priority: Priority = Priority.BACKGROUND,
        **params: Any,
    ) -> str:
        self.calls.append(RecordedCall("complete", list(messages), model, params, priority))
        system = messages[0].content
        if system.startswith(CLASSIFY):
            return json.dumps({"segments": [{"kind": "narration", "text": messages[-1].content}]})
        if match := STATE.match(system):
            source = IDS[match[1]]
            relationships = []
            for target in TARGET_ID.findall(messages[-1].content):
                fact = self._marker("FACT")
                self.owned[fact] = source
                relationships.append(
                    {
                        "target_id": target,
                        "affinity_delta": 1,
                        "trust_delta": -1,
                        "knowledge_facts": [f"{fact} {FILLER}"],
                    }
                )
            return json.dumps({"relationships": relationships})
        if match := POV_SUMMARY.match(system):
            owner = IDS[match[1]]
            summary, fact, rsum = self._marker("SUM"), self._marker("FACT"), self._marker("RSUM")
            for marker in (summary, fact, rsum):
                self.owned[marker] = owner
            text = f"{summary} {FILLER}"
            text += " ~" * max(0, (self.summary_chars - len(text)) // 2)
            return json.dumps(
                {
                    "summary": text,
                    "knowledge_facts": [f"{fact} {FILLER}"],
                    "relationship_summary": f"{rsum} {FILLER}",
                }
            )
        if system.startswith(DIGEST):
            digest = self._marker("DIGEST")
            self.digests.append(digest)
            return json.dumps({"summary": f"{digest} While you were away, {FILLER}."})
        if system.startswith(THREADS):
            return json.dumps({"threads": []})
        raise AssertionError(f"an LLM call of no known kind: {system[:80]!r}")

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        priority: Priority = Priority.NARRATIVE,
        **params: Any,
    ) -> AsyncIterator[str]:
        self.calls.append(RecordedCall("stream", list(messages), model, params, priority))
        match = NARRATOR.match(messages[0].content)
        assert match, f"a narrative prompt that names no speaker: {messages[0].content[:80]!r}"
        beat = self._marker("BEAT")
        self.beats.append((beat, IDS[match[1]]))
        text = f"{beat} {FILLER}" + " and more" * self.reply_words
        for piece in split_words(text):
            yield piece


# -- the model of the story ------------------------------------------------------------------


@dataclass
class StoryModel:
    """Who is where, as the engine should see it, and who witnessed every marker."""

    guest: str | None  # the chat's guest character
    guest_present: bool
    meanwhile: bool = False
    last_meanwhile_speaker: str | None = None
    witnessed: dict[str, frozenset[str]] = field(default_factory=dict)
    meanwhile_markers: set[str] = field(default_factory=set)

    def present(self) -> frozenset[str]:
        if self.meanwhile:
            assert self.guest is not None
            return frozenset({HOST, self.guest})
        if self.guest_present and self.guest is not None:
            return frozenset({YOU, HOST, self.guest})
        return frozenset({YOU, HOST})

    def next_meanwhile_speaker(self) -> str:
        assert self.guest is not None
        speaker = HOST if self.last_meanwhile_speaker in (None, self.guest) else self.guest
        self.last_meanwhile_speaker = speaker
        return speaker

    def witness(self, marker: str) -> None:
        self.witnessed[marker] = self.present()
        if self.meanwhile:
            self.meanwhile_markers.add(marker)


Action = tuple[str, int]
ACTIONS = st.sampled_from(
    [
        ("turn", 0),  # the host answers
        ("meanwhile_start", 0),
        ("meanwhile_turn", 0),
        ("turn", 1),  # names the chat's guest
        ("meanwhile_start", 0),
        ("meanwhile_turn", 0),
        ("turn", 2),  # names Cyra, who may not be here
        ("meanwhile_beats", 1),
        ("meanwhile_beats", 3),
        ("meanwhile_start", 0),
        ("meanwhile_end", 0),
        ("close", 0),
        ("leave", 0),
        ("join", 0),  # the chat's guest comes back
        ("join", 1),  # Cyra joins (and becomes the guest)
    ]
)


async def _seed(engine: Engine, *, with_guest: bool, **host_extra: Any) -> str:
    await engine.author_character(
        character(HOST, NAMES[HOST], kickoff_prose=f"KICK0 {FILLER}", **host_extra)
    )
    await engine.author_character(character(GUEST, NAMES[GUEST]))
    await engine.author_character(character(CAROL, NAMES[CAROL]))
    await engine.set_you(name=NAMES[YOU], pronouns="she/her")
    started = await engine.start_chat(
        host_id=HOST, guest_id=GUEST if with_guest else None, place="the Lantern", chat_id="pov"
    )
    return started.chat.id


@dataclass
class Story:
    """Plays actions on the engine and on the model side by side."""

    engine: Engine
    llm: StoryDouble
    chat_id: str
    model: StoryModel

    async def act(self, action: Action) -> None:
        """One action; one the model forbids must fail; new beats get their witnesses."""
        kind, arg = action
        before = len(self.llm.beats)
        expected = await getattr(self, f"_{kind}")(arg)
        new = self.llm.beats[before:]
        assert [speaker for _, speaker in new] == expected
        for marker, _ in new:
            self.model.witness(marker)

    async def _turn(self, arg: int) -> list[str]:
        model = self.model
        marker = self.llm._marker("PROSE")
        prose = f"{marker} {FILLER}"
        speaker = HOST
        if model.meanwhile:
            speaker = model.next_meanwhile_speaker()
        elif arg:
            named = model.guest if arg == 1 else CAROL
            if named is not None:
                prose = f"{NAMES[named]}, {prose}"
                if model.guest_present and named == model.guest:
                    speaker = named
        model.witness(marker)
        result = await self.engine.take_turn(self.chat_id, prose, NullSink())
        assert result.status == "done" and result.speaker.id == speaker
        return [speaker]

    async def _meanwhile_turn(self, arg: int) -> list[str]:
        return await self._turn(arg) if self.model.meanwhile else []

    async def _meanwhile_start(self, arg: int) -> list[str]:
        if self.model.meanwhile or self.model.guest is None:
            with pytest.raises(StoryError):
                await self.engine.start_meanwhile(self.chat_id, premise="elsewhere")
            return []
        await self.engine.start_meanwhile(self.chat_id, premise="elsewhere")
        self.model.meanwhile, self.model.last_meanwhile_speaker = True, None
        return []

    async def _meanwhile_beats(self, arg: int) -> list[str]:
        results = await self.engine.meanwhile_beats(self.chat_id, arg, NullSink)
        if not self.model.meanwhile:
            assert results == []
            return []
        expected = [self.model.next_meanwhile_speaker() for _ in range(arg)]
        assert [r.speaker.id for r in results] == expected
        return expected

    async def _meanwhile_end(self, arg: int, *, close: bool = False) -> list[str]:
        model = self.model
        if not model.meanwhile:
            with pytest.raises(StoryError):
                await self.engine.end_meanwhile(self.chat_id)
            return []
        end = self.engine.close_scene if close else self.engine.end_meanwhile
        closed = await end(self.chat_id)
        assert closed.digest and closed.digest.split()[0] == self.llm.digests[-1]
        assert set(closed.summaries) <= {HOST, model.guest}
        model.meanwhile = False
        return []

    async def _close(self, arg: int) -> list[str]:
        if self.model.meanwhile:
            return await self._meanwhile_end(arg, close=True)
        closed = await self.engine.close_scene(self.chat_id)
        assert set(closed.summaries) <= self.model.present()
        return []

    async def _leave(self, arg: int) -> list[str]:
        model = self.model
        if model.meanwhile or not model.guest_present:
            with pytest.raises(StoryError):
                await self.engine.guest_leave(self.chat_id)
            return []
        await self.engine.guest_leave(self.chat_id)
        model.guest_present = False
        return []

    async def _join(self, arg: int) -> list[str]:
        model = self.model
        who = CAROL if arg else model.guest
        if who is None or model.meanwhile or (model.guest_present and who == model.guest):
            with pytest.raises(StoryError):
                await self.engine.guest_join(self.chat_id, who)
            return []
        await self.engine.guest_join(self.chat_id, who)
        model.guest, model.guest_present = who, True
        return []


def _owner_of(call: RecordedCall) -> str | None:
    """The character a call's prompt is built for (None: a call for no one's point of view)."""
    first = call.messages[0].content
    for pattern in (NARRATOR, STATE, POV_SUMMARY):
        if match := pattern.match(first):
            return IDS[match[1]]
    return None


def _check_points_of_view(llm: StoryDouble, model: StoryModel) -> None:
    for number, call in enumerate(llm.calls):
        text = _text(call.messages)
        for digest in llm.digests:
            assert digest not in text, f"call #{number} was given the player's digest {digest}"
        owner = _owner_of(call)
        if owner is None:
            continue
        for marker in MARKER.findall(text):
            if marker in llm.owned:
                assert llm.owned[marker] == owner, (
                    f"call #{number} for {owner} holds {marker}, which is {llm.owned[marker]}'s"
                )
            else:
                assert owner in model.witnessed[marker], (
                    f"call #{number} for {owner} holds {marker}, witnessed only by "
                    f"{sorted(model.witnessed[marker])}:\n{text}"
                )
        if owner == YOU:
            leaked = set(MARKER.findall(text)) & model.meanwhile_markers
            assert not leaked, f"the player's own summary holds meanwhile beats {leaked}"


async def _check_memories(
    engine: Engine, chat_id: str, llm: StoryDouble, model: StoryModel
) -> None:
    """Every stored memory (what /memories shows) holds only what its owner witnessed."""
    for owner in (YOU, HOST, GUEST, CAROL):
        for memory in await engine.memories(chat_id, owner, limit=10_000):
            for marker in MARKER.findall(f"{memory.text} {memory.pov_summary}"):
                allowed = {llm.owned[marker]} if marker in llm.owned else model.witnessed[marker]
                assert owner in allowed, f"{owner}'s memory {memory.id} holds {marker}"


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    with_guest=st.sampled_from([True, True, False]),
    actions=st.lists(ACTIONS, min_size=6, max_size=30),
)
def test_no_prompt_holds_what_its_character_did_not_witness(
    with_guest: bool, actions: list[Action]
) -> None:
    async def run() -> None:
        async with open_db(":memory:") as db:
            llm = StoryDouble()
            engine = Engine(db, llm, Settings())
            chat_id = await _seed(engine, with_guest=with_guest)
            model = StoryModel(guest=GUEST if with_guest else None, guest_present=with_guest)
            model.witness("KICK0")
            story = Story(engine, llm, chat_id, model)
            for action in [*actions, ("close", 0), ("close", 0)]:
                await story.act(action)
            event(f"lived meanwhile beats: {bool(model.meanwhile_markers)}")
            event(f"Cyra joined: {any(CAROL in w for w in model.witnessed.values())}")
            _check_points_of_view(llm, model)
            await _check_memories(engine, chat_id, llm, model)

    asyncio.run(run())


async def test_a_story_that_touches_every_flow_is_checked() -> None:
    """A fixed history through every action, so the property's checks demonstrably bite."""
    async with open_db(":memory:") as db:
        llm = StoryDouble()
        engine = Engine(db, llm, Settings())
        chat_id = await _seed(engine, with_guest=True)
        model = StoryModel(guest=GUEST, guest_present=True)
        model.witness("KICK0")
        history: list[Action] = [
            ("turn", 0),
            ("turn", 1),
            ("meanwhile_start", 0),
            ("meanwhile_turn", 0),
            ("meanwhile_beats", 3),
            ("meanwhile_end", 0),
            ("turn", 0),
            ("leave", 0),
            ("turn", 1),
            ("close", 0),
            ("join", 1),
            ("turn", 2),
            ("meanwhile_start", 0),
            ("meanwhile_turn", 0),
            ("close", 0),
            ("turn", 0),
        ]
        story = Story(engine, llm, chat_id, model)
        for action in [*history, ("close", 0)]:
            await story.act(action)
        _check_points_of_view(llm, model)
        await _check_memories(engine, chat_id, llm, model)

        owners = [_owner_of(c) for c in llm.calls]
        assert {HOST, GUEST, CAROL, YOU} <= set(owners)
        assert len(llm.digests) == 2
        # the host's prompts hold the meanwhile beats it lived; the player's summary does not
        host_text = "\n".join(_text(c.messages) for c in llm.calls if _owner_of(c) == HOST)
        assert model.meanwhile_markers & set(MARKER.findall(host_text))
        # a fact or summary owned by one character reached that character's later prompts
        assert any(m in host_text for m, o in llm.owned.items() if o == HOST)
        # Cyra joined late: she never saw the story's first beats
        cyra_text = "\n".join(_text(c.messages) for c in llm.calls if _owner_of(c) == CAROL)
        assert "KICK0" not in cyra_text and "BEAT" in cyra_text


async def test_a_meanwhile_join_that_fails_changes_no_one() -> None:
    """Joining another character while a meanwhile scene is open is refused and writes nothing."""
    async with open_db(":memory:") as db:
        llm = StoryDouble()
        engine = Engine(db, llm, Settings())
        chat_id = await _seed(engine, with_guest=True)
        await engine.start_meanwhile(chat_id)
        before = await db.fetchone("SELECT COUNT(*) FROM event_log")

        with pytest.raises(StoryError):
            await engine.guest_join(chat_id, CAROL)

        assert await db.fetchone("SELECT COUNT(*) FROM event_log") == before
        assert (await engine.chat(chat_id)).guest_id == GUEST  # type: ignore[union-attr]
        result = await engine.take_turn(chat_id, "they talk", NullSink())
        assert result.speaker.id == HOST
        result = await engine.take_turn(chat_id, "they talk on", NullSink())
        assert result.speaker.id == GUEST


async def test_the_narrative_prompt_stays_within_budget_after_300_beats() -> None:
    """Long replies, long summaries, a huge persona: the prompt is capped by the budget."""
    async with open_db(":memory:") as db:
        llm = StoryDouble(reply_words=150, summary_chars=3_900)
        app_settings = Settings()
        budget = app_settings.engine.prompt_token_budget
        engine = Engine(db, llm, app_settings)
        chat_id = await _seed(engine, with_guest=True, persona="A long persona. " * 1_200)
        beats = 0
        while beats < 300:
            for n in range(8):
                prose = f"PROSE{beats} {FILLER} " + "and so on " * 20
                await engine.take_turn(chat_id, f"BotB, {prose}" if n % 3 else prose, NullSink())
            await engine.close_scene(chat_id)
            await engine.start_meanwhile(chat_id)
            await engine.meanwhile_beats(chat_id, 4, NullSink)
            await engine.end_meanwhile(chat_id)
            beats += 12

        narrative = [c for c in llm.calls if c.kind == "stream"]
        assert len(narrative) >= 300
        for call in narrative:
            cue = call.messages[-1].content
            assert prompt_tokens(call.messages) <= budget + estimate_tokens(cue) + 4
        # and the budget is used, not starved: late prompts are near it and still recall memories
        for call in narrative[-10:]:
            assert prompt_tokens(call.messages) >= budget * 0.8
            assert "Things you remember from earlier:" in call.messages[0].content
