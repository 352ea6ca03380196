"""Point of view: no prompt built for a character holds anything that character did not witness,
and no prompt holds anything that has left the story (issue 6).

Random histories (you-turns, guests joining and leaving, meanwhile scenes, scene closes,
regenerates, rewinds, lines taken back or edited) run against an LLM double that answers every
call from the call itself. Every beat, prose line, summary and learned fact carries a unique
marker; a model of the story tracks who witnessed each one and which are gone (rewound, replaced,
edited away), and every prompt is checked against it: a prompt for a character holds only what
it witnessed, and no prompt made after a marker went holds it. The memories projection holds
nothing gone, and a rebuild from the log gives the tables the story built as it went.
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bot.config import Settings
from bot.engine import Engine, NullSink, StoryError
from bot.engine.prompts import estimate_tokens, prompt_tokens
from bot.llm import Message, MockLLMClient, Priority, Purpose, Task
from bot.llm.mock import RecordedCall, split_words
from bot.store import YOU, Database, open_db, project
from tests.helpers.engine_helpers import GUEST, HOST, character
from tests.helpers.events import count_events
from tests.helpers.store_factories import snapshot

CAROL = "carol"
NAMES = {YOU: "Wren", HOST: "BotA", GUEST: "BotB", CAROL: "Cyra"}
IDS = {name: entity for entity, name in NAMES.items()}
FILLER = "lantern harbour ledger rain"

MARKER = re.compile(r"\b(?:BEAT|PROSE|KICK|SUM|RSUM|FACT|ACT|DIGEST)\d+\b")
BEAT_MARKER = re.compile(r"\b(?:BEAT|KICK)\d+\b")
PROSE_MARKER = re.compile(r"\bPROSE\d+\b")
LABELLED = re.compile(r"^(?:Wren|BotA|BotB|Cyra|Narration): ")
"""A transcript line of the beat a state update is about (not the rest of its prompt)."""
NARRATOR = re.compile(r"^You are (\w+), a character")
STATE = re.compile(r"^You track the inner life of (\w+)\.")
POV_SUMMARY = re.compile(r"^You write (\w+)'s own memory")
TARGET_ID = re.compile(r"\(id (\w+), affinity")
CLASSIFY = "You split a role-play player's message"
DIGEST = "Summarize, in two to four sentences"
THREADS = "List the open plot threads"
CONDENSE = "These lines are one part of a long scene"


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
        self.log: list[str] = []  # every marker, in the order it was made
        self.fact_of: dict[str, str] = {}  # a state update's FACT/ACT marker -> its beat

    def marker(self, prefix: str) -> str:
        self.counter += 1
        self.log.append(f"{prefix}{self.counter}")
        return self.log[-1]

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        priority: Priority = Priority.BACKGROUND,
        purpose: Purpose | None = None,
        **params: Any,
    ) -> str:
        call = RecordedCall("complete", list(messages), model, params, priority, purpose)
        self.calls.append(call)
        assert purpose is not None, "an LLM call that does not say what it is for"
        system = messages[0].content
        if purpose.task == Task.CLASSIFY:
            assert system.startswith(CLASSIFY)
            return json.dumps({"segments": [{"kind": "narration", "text": messages[-1].content}]})
        if purpose.task == Task.STATE:
            # what a real model does: facts and activities in the words of the beat it was shown
            source, text = _owner_of(call), _text(messages)
            assert source is not None
            beat = BEAT_MARKER.findall(text)[-1]
            lived = [line for line in text.splitlines() if LABELLED.match(line)]
            about = " ".join(PROSE_MARKER.findall("\n".join(lived))[:1])
            relationships = []
            for target in TARGET_ID.findall(messages[-1].content):
                fact = self.marker("FACT")
                self.owned[fact] = source
                self.fact_of[fact] = beat
                relationships.append(
                    {
                        "target_id": target,
                        "affinity_delta": 1,
                        "trust_delta": -1,
                        "knowledge_facts": [f"{fact} {about} {FILLER}"],
                    }
                )
            act = self.marker("ACT")  # seen by everyone who witnessed the beat
            self.fact_of[act] = beat
            activity = {"posture": "standing", "verb": f"{act} thinking about {about}"}
            return json.dumps({"relationships": relationships, "activity": activity})
        if purpose.task == Task.SUMMARY:
            owner = _owner_of(call)
            summary, fact, rsum = self.marker("SUM"), self.marker("FACT"), self.marker("RSUM")
            for marker in (summary, fact, rsum):
                self.owned[marker] = owner
            # a summary in the words of the lines it was given (the first one it was shown)
            about = " ".join(PROSE_MARKER.findall(messages[-1].content)[:1])
            text = f"{summary} {about} {FILLER}"
            text += " ~" * max(0, (self.summary_chars - len(text)) // 2)
            return json.dumps(
                {
                    "summary": text,
                    "knowledge_facts": [f"{fact} {FILLER}"],
                    "relationship_summary": f"{rsum} {FILLER}",
                }
            )
        if purpose.task == Task.DIGEST:
            assert system.startswith(DIGEST)
            digest = self.marker("DIGEST")
            self.digests.append(digest)
            return json.dumps({"summary": f"{digest} While you were away, {FILLER}."})
        if purpose.task == Task.THREADS:
            assert system.startswith(THREADS)
            return json.dumps({"threads": []})
        if purpose.task == Task.CONDENSE:  # a part of a long scene, in the words it was given
            assert system.startswith(CONDENSE)
            about = " ".join(PROSE_MARKER.findall(messages[-1].content)[:1])
            return json.dumps({"summary": f"{about} {FILLER}"})
        raise AssertionError(f"an LLM call of no known kind: {system[:80]!r}")

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        priority: Priority = Priority.NARRATIVE,
        purpose: Purpose | None = None,
        **params: Any,
    ) -> AsyncIterator[str]:
        call = RecordedCall("stream", list(messages), model, params, priority, purpose)
        self.calls.append(call)
        speaker = _owner_of(call)
        assert speaker, f"a narrative prompt for no speaker: {messages[0].content[:80]!r}"
        beat = self.marker("BEAT")
        self.beats.append((beat, speaker))
        text = f"{beat} {FILLER}" + " and more" * self.reply_words
        for piece in split_words(text):
            yield piece


# -- the model of the story ------------------------------------------------------------------


@dataclass(frozen=True)
class Presence:
    """Who is where: what a rewind gives back along with the beats."""

    guest: str | None  # the chat's guest character
    guest_present: bool
    meanwhile: bool = False
    you_scene: int = 0  # the number of the open you-scene
    meanwhile_scene: int = 0  # the number of the open (or last) meanwhile scene


@dataclass(frozen=True)
class Entry:
    """One thing in the story as it stands now, in story order.

    ``line`` (a player line), ``beat`` (a character's reply), ``fact`` (learned in the state
    update after ``beat``), ``note`` (a scene summary, relationship summary or digest), ``change``
    (a scene closed, a guest joined or left) and ``boundary`` (a meanwhile scene began or ended).
    """

    kind: str
    marker: str | None
    state: Presence  # who is where right after it
    speaker: str | None = None  # a beat's
    beat: str | None = None  # a fact's
    text: str = ""  # a line's prose
    message_id: int = 0  # a line's
    scene: int = 0  # the scene it belongs to (a note's: the scene whose close wrote it)


TURN_KINDS = ("line", "beat")


@dataclass
class StoryModel:
    """Who is where, as the engine should see it, who witnessed every marker, and what is gone."""

    guest: str | None  # the chat's guest character
    guest_present: bool
    meanwhile: bool = False
    you_scene: int = 0
    meanwhile_scene: int = 0
    scenes_made: int = 0
    witnessed: dict[str, frozenset[str]] = field(default_factory=dict)
    meanwhile_markers: set[str] = field(default_factory=set)
    entries: list[Entry] = field(default_factory=list)
    origin: Presence | None = None
    gone: dict[str, int] = field(default_factory=dict)  # marker -> LLM calls made before it went

    @classmethod
    def start(cls, *, with_guest: bool) -> StoryModel:
        model = cls(guest=GUEST if with_guest else None, guest_present=with_guest)
        model.origin = model.presence()
        model.witness("KICK0")
        model.entries.append(Entry("beat", "KICK0", model.presence(), speaker=HOST))
        return model

    def presence(self) -> Presence:
        return Presence(
            self.guest, self.guest_present, self.meanwhile, self.you_scene, self.meanwhile_scene
        )

    def restore(self, presence: Presence) -> None:
        self.guest, self.guest_present, self.meanwhile = (
            presence.guest,
            presence.guest_present,
            presence.meanwhile,
        )
        self.you_scene, self.meanwhile_scene = presence.you_scene, presence.meanwhile_scene

    def scene(self) -> int:
        """The scene being played now."""
        return self.meanwhile_scene if self.meanwhile else self.you_scene

    def new_scene(self) -> int:
        self.scenes_made += 1
        return self.scenes_made

    def is_closed(self, scene: int) -> bool:
        return scene != self.you_scene and not (self.meanwhile and scene == self.meanwhile_scene)

    def present(self) -> frozenset[str]:
        if self.meanwhile:
            assert self.guest is not None
            return frozenset({HOST, self.guest})
        if self.guest_present and self.guest is not None:
            return frozenset({YOU, HOST, self.guest})
        return frozenset({YOU, HOST})

    def last_meanwhile_speaker(self) -> str | None:
        for entry in reversed(self.entries):
            if entry.kind == "boundary":
                return None
            if entry.kind == "beat" and entry.state.meanwhile:
                return entry.speaker
        return None

    def next_meanwhile_speakers(self, count: int) -> list[str]:
        assert self.guest is not None
        speakers, last = [], self.last_meanwhile_speaker()
        for _ in range(count):
            last = HOST if last in (None, self.guest) else self.guest
            speakers.append(last)
        return speakers

    def witness(self, marker: str) -> None:
        self.witnessed[marker] = self.present()
        if self.meanwhile:
            self.meanwhile_markers.add(marker)

    def turns(self) -> list[tuple[str, str]]:
        """The transcript as (role, marker), as the engine's turns table should hold it."""
        return [
            ("user" if e.kind == "line" else "assistant", e.marker)
            for e in self.entries
            if e.kind in TURN_KINDS and e.marker is not None
        ]

    def indices(self, kind: str) -> list[int]:
        return [i for i, e in enumerate(self.entries) if e.kind == kind]

    def end_of_beat(self, at: int) -> int:
        """The index right after the beat at ``at`` and the facts learned from it."""
        beat = self.entries[at]
        end = at + 1
        while end < len(self.entries) and self.entries[end].beat == beat.marker:
            end += 1
        return end

    def refusal(self, at: int) -> str | None:
        """Why a rewind of everything from ``at`` on must be refused (None: it may go)."""
        after = self.entries[at:]
        if not after:
            return "nothing"
        if any(e.kind == "boundary" for e in after):
            return "meanwhile"
        return None

    def cut(self, at: int, calls: int) -> list[str]:
        """Everything from ``at`` on leaves the story; returns the turns that left."""
        left = [e.marker for e in self.entries[at:] if e.kind in TURN_KINDS and e.marker]
        for entry in self.entries[at:]:
            if entry.marker is not None:
                self.gone.setdefault(entry.marker, calls)
        previous = self.entries[at - 1].state if at else self.origin
        assert previous is not None
        self.restore(previous)
        del self.entries[at:]
        return left


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
        ("turn", 0),
        ("turn", 1),
        ("meanwhile_turn", 0),
        ("regenerate", 0),
        ("regenerate", 0),
        ("rewind", 0),  # to the story's first beat
        ("rewind", 1),  # to the latest beat (refused unless a scene change follows it)
        ("rewind", 2),  # to the one before it, and so on
        ("rewind", 4),
        ("take_back", 0),  # the latest player line
        ("take_back", 1),  # the one before it: refused
        ("edit", 0),  # the latest player line
        ("edit", 2),  # an older one
    ]
)

STEERING = ("regenerate", "rewind", "take_back", "edit")
REFUSALS = {
    "nothing": "already the latest beat",
    "meanwhile": "meanwhile scene",
    "not latest": "only your latest line",
}


async def _seed(engine: Engine, *, with_guest: bool, **host_extra: Any) -> str:
    await engine.characters.author(
        character(HOST, NAMES[HOST], kickoff_prose=f"KICK0 {FILLER}", **host_extra)
    )
    await engine.characters.author(character(GUEST, NAMES[GUEST]))
    await engine.characters.author(character(CAROL, NAMES[CAROL]))
    await engine.characters.set_you(name=NAMES[YOU], pronouns="she/her")
    started = await engine.chats.start(
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
    db: Database
    turn_ids: dict[str, int] = field(default_factory=dict)  # marker -> the engine's turn id
    lines: dict[str, tuple[str, int]] = field(default_factory=dict)  # PROSE -> (text, message)
    handled: set[str] = field(default_factory=set)  # markers an action put in the model itself
    change: str | None = None  # the scene change an action made ("change" or "boundary")
    closed: int | None = None  # the scene an action closed (its notes belong to it)
    messages: int = 1000
    outcome: str = ""
    outcomes: set[str] = field(default_factory=set)  # "<steering action> <how it went>"

    @classmethod
    async def begin(cls, db: Database, *, with_guest: bool, **llm_extra: Any) -> Story:
        llm = StoryDouble(**llm_extra)
        engine = Engine(db, llm, Settings())
        chat_id = await _seed(engine, with_guest=with_guest)
        story = cls(engine, llm, chat_id, StoryModel.start(with_guest=with_guest), db)
        await story.check_transcript()
        return story

    async def act(self, action: Action) -> None:
        """One action; one the model forbids must fail; new markers take their place."""
        kind, arg = action
        beats, log = len(self.llm.beats), len(self.llm.log)
        self.change, self.closed, self.outcome = None, None, "done"
        expected = await getattr(self, f"_{kind}")(arg)
        if kind in STEERING:
            self.outcomes.add(f"{kind} {self.outcome}")
        assert [speaker for _, speaker in self.llm.beats[beats:]] == expected
        self._record(self.llm.log[log:])
        await self.check_transcript()
        await _check_memories_left(self.engine, self.chat_id, self.model)
        await _check_player_view(self.engine, self.chat_id, self.model)

    def _record(self, markers: list[str]) -> None:
        model, speakers = self.model, dict(self.llm.beats)
        for marker in markers:
            if marker in self.handled:
                continue
            model.entries.append(self._entry(marker, speakers))
        if self.change is not None:
            model.entries.append(Entry(self.change, None, model.presence()))

    def _entry(self, marker: str, speakers: dict[str, str]) -> Entry:
        model = self.model
        state, scene = model.presence(), model.scene()
        if marker in self.lines:
            text, message_id = self.lines[marker]
            model.witness(marker)
            return Entry("line", marker, state, text=text, message_id=message_id, scene=scene)
        if marker in speakers:
            model.witness(marker)
            return Entry("beat", marker, state, speaker=speakers[marker], scene=scene)
        if marker in self.llm.fact_of:
            beat = self.llm.fact_of[marker]
            if marker.startswith("ACT"):  # an activity is seen by whoever saw its beat
                model.witnessed[marker] = model.witnessed[beat]
            return Entry("fact", marker, state, beat=beat, scene=scene)
        return Entry("note", marker, state, scene=scene if self.closed is None else self.closed)

    async def _turn_rows(self) -> list[tuple[int, str, str]]:
        beats = await self.engine.queries.beats(self.chat_id)
        return [(beat.id, beat.role, beat.text) for beat in beats]

    async def check_transcript(self) -> None:
        """The engine's transcript is the model's, turn for turn."""
        rows = await self._turn_rows()
        found = [(role, MARKER.findall(text)[0]) for _, role, text in rows]
        assert found == self.model.turns()
        self.turn_ids = {marker: row[0] for (_, marker), row in zip(found, rows, strict=True)}

    async def _refused(self, call: Awaitable[object], reason: str) -> list[str]:
        """A call the model refuses: StoryError for that reason, and nothing changes."""
        rows = await self._turn_rows()
        events = await count_events(self.db)
        with pytest.raises(StoryError, match=REFUSALS[reason]):
            await call
        assert await self._turn_rows() == rows
        assert await count_events(self.db) == events
        self.outcome = f"refused: {reason}"
        return []

    # -- playing on

    async def _turn(self, arg: int) -> list[str]:
        model = self.model
        marker = self.llm.marker("PROSE")
        prose = f"{marker} {FILLER}"
        speaker = HOST
        if model.meanwhile:
            speaker = model.next_meanwhile_speakers(1)[0]
        elif arg:
            named = model.guest if arg == 1 else CAROL
            if named is not None:
                prose = f"{NAMES[named]}, {prose}"
                if model.guest_present and named == model.guest:
                    speaker = named
        self.messages += 1
        self.lines[marker] = (prose, self.messages)
        result = await self.engine.turns.take(
            self.chat_id, prose, NullSink(), message_id=self.messages
        )
        assert result.status == "done" and result.speaker.id == speaker
        return [speaker]

    async def _meanwhile_turn(self, arg: int) -> list[str]:
        return await self._turn(arg) if self.model.meanwhile else []

    async def _meanwhile_start(self, arg: int) -> list[str]:
        if self.model.meanwhile or self.model.guest is None:
            with pytest.raises(StoryError):
                await self.engine.scenes.start_meanwhile(self.chat_id, premise="elsewhere")
            return []
        await self.engine.scenes.start_meanwhile(self.chat_id, premise="elsewhere")
        self.model.meanwhile, self.change = True, "boundary"
        self.model.meanwhile_scene = self.model.new_scene()
        return []

    async def _meanwhile_beats(self, arg: int) -> list[str]:
        results = await self.engine.turns.meanwhile_beats(self.chat_id, arg, NullSink)
        if not self.model.meanwhile:
            assert results == []
            return []
        # the model's last speaker moves on as the beats are recorded, after this action
        expected = self.model.next_meanwhile_speakers(arg)
        assert [r.speaker.id for r in results] == expected
        return expected

    async def _meanwhile_end(self, arg: int, *, close: bool = False) -> list[str]:
        model = self.model
        if not model.meanwhile:
            with pytest.raises(StoryError):
                await self.engine.scenes.end_meanwhile(self.chat_id)
            return []
        end = self.engine.scenes.close if close else self.engine.scenes.end_meanwhile
        closed = await end(self.chat_id)
        assert closed.digest and closed.digest.split()[0] == self.llm.digests[-1]
        assert set(closed.summaries) <= {HOST, model.guest}
        model.meanwhile, self.change, self.closed = False, "boundary", model.meanwhile_scene
        return []

    async def _close(self, arg: int) -> list[str]:
        if self.model.meanwhile:
            return await self._meanwhile_end(arg, close=True)
        closed = await self.engine.scenes.close(self.chat_id)
        assert set(closed.summaries) <= self.model.present()
        self._next_you_scene()
        return []

    def _next_you_scene(self) -> None:
        self.change, self.closed = "change", self.model.you_scene
        self.model.you_scene = self.model.new_scene()

    async def _leave(self, arg: int) -> list[str]:
        model = self.model
        if model.meanwhile or not model.guest_present:
            with pytest.raises(StoryError):
                await self.engine.scenes.guest_leave(self.chat_id)
            return []
        await self.engine.scenes.guest_leave(self.chat_id)
        model.guest_present = False
        self._next_you_scene()
        return []

    async def _join(self, arg: int) -> list[str]:
        model = self.model
        who = CAROL if arg else model.guest
        if who is None or model.meanwhile or (model.guest_present and who == model.guest):
            with pytest.raises(StoryError):
                await self.engine.scenes.guest_join(self.chat_id, who)
            return []
        await self.engine.scenes.guest_join(self.chat_id, who)
        model.guest, model.guest_present = who, True
        self._next_you_scene()
        return []

    # -- steering back

    async def _regenerate(self, arg: int) -> list[str]:
        """The latest reply is replaced by a new one by the same speaker; its line stays."""
        model = self.model
        at = model.indices("beat")[-1]
        reply = model.entries[at]
        if reason := model.refusal(at):
            assert reason == "meanwhile"  # the reply itself is there to rewind
            return await self._refused(
                self.engine.history.regenerate(self.chat_id, NullSink()), reason
            )
        calls = len(self.llm.calls)
        rewound, result = await self.engine.history.regenerate(self.chat_id, NullSink())
        left = model.cut(at, calls)
        assert [MARKER.findall(b.text)[0] for b in rewound.beats] == left == [reply.marker]
        assert reply.speaker is not None and result.speaker.id == reply.speaker
        return [reply.speaker]

    async def _rewind(self, arg: int) -> list[str]:
        """Back to right after a beat (``arg`` 0: the first; n: the n-th from the end)."""
        model = self.model
        turns = [i for i, e in enumerate(model.entries) if e.kind in TURN_KINDS]
        at = turns[0] if arg == 0 else turns[max(0, len(turns) - arg)]
        target = model.entries[at]
        assert target.marker is not None
        if target.kind == "line":  # a player's line keeps the reply to it
            at += 1
            assert model.entries[at].kind == "beat"
        cut = model.end_of_beat(at)
        call = self.engine.history.rewind_to_turn(self.chat_id, self.turn_ids[target.marker])
        if reason := model.refusal(cut):
            return await self._refused(call, reason)
        calls = len(self.llm.calls)
        rewound = await call
        left = model.cut(cut, calls)
        assert [MARKER.findall(b.text)[0] for b in rewound.beats] == left
        return []

    async def _take_back(self, arg: int) -> list[str]:
        """The player deletes a line (``arg`` 0: the latest; others are refused)."""
        model = self.model
        lines = model.indices("line")
        if len(lines) <= arg:
            self.outcome = "skipped"
            return []
        at = lines[-1 - arg]
        line = model.entries[at]
        call = self.engine.history.take_back_message(self.chat_id, line.message_id)
        reason = "not latest" if arg else model.refusal(at)
        if reason:
            return await self._refused(call, reason)
        calls = len(self.llm.calls)
        rewound = await call
        left = model.cut(at, calls)
        assert left[0] == line.marker
        assert [MARKER.findall(b.text)[0] for b in rewound.beats] == left
        return []

    async def _edit(self, arg: int) -> list[str]:
        """The player edits a line (``arg`` back from the latest): new words, a new marker.

        What the old words gave leaves the story with them: the facts and activities of the
        beat that answered the line and, if its scene has closed, the scene's summaries; new
        ones take their places.
        """
        model = self.model
        lines = model.indices("line")
        if not lines:
            self.outcome = "skipped"
            return []
        at = lines[max(0, len(lines) - 1 - arg)]
        line = model.entries[at]
        assert line.marker is not None
        marker = self.llm.marker("PROSE")
        self.handled.add(marker)
        text = line.text.replace(line.marker, marker)
        calls, log = len(self.llm.calls), len(self.llm.log)
        latest = await self.engine.history.edit_message(self.chat_id, line.message_id, text)
        assert latest == (at == lines[-1])
        model.witnessed[marker] = model.witnessed[line.marker]
        if line.marker in model.meanwhile_markers:
            model.meanwhile_markers.add(marker)
        model.gone[line.marker] = calls
        model.entries[at] = replace(line, marker=marker, text=text)
        reply = model.entries[at + 1] if at + 1 < len(model.entries) else None
        if reply is None or reply.kind != "beat":
            return []
        made = self.llm.log[log:]
        self.handled.update(made)
        self._replace(lambda e: e.kind == "fact" and e.beat == reply.marker, made, calls, at + 1)
        if model.is_closed(line.scene):
            self._replace(lambda e: e.kind == "note" and e.scene == line.scene, made, calls, None)
        return []

    def _replace(
        self, old: Callable[[Entry], bool], made: list[str], calls: int, beat_at: int | None
    ) -> None:
        """Entries matching ``old`` leave; the markers of ``made`` of the same kind stand where
        they stood (facts right after their beat ``beat_at``, notes where the old ones were)."""
        model = self.model
        where = [i for i, e in enumerate(model.entries) if old(e)]
        for i in where:
            marker = model.entries[i].marker
            assert marker is not None
            model.gone.setdefault(marker, calls)
        if beat_at is not None:
            template = model.entries[beat_at]
            new = [m for m in made if self.llm.fact_of.get(m) == template.marker]
        else:
            template = model.entries[where[0]] if where else None
            new = [m for m in made if m not in self.llm.fact_of and not m.startswith("PROSE")]
        keep = [e for i, e in enumerate(model.entries) if i not in set(where)]
        insert = (beat_at + 1) if beat_at is not None else (where[0] if where else len(keep))
        if template is None:
            return
        for offset, marker in enumerate(new):
            kind = "fact" if beat_at is not None else "note"
            if marker.startswith("ACT"):
                assert template.marker is not None
                model.witnessed[marker] = model.witnessed[template.marker]
            entry = replace(template, kind=kind, marker=marker)
            if kind == "fact":
                entry = replace(entry, beat=template.marker)
            keep.insert(insert + offset, entry)
        model.entries[:] = keep


OWNED_TASKS = {Task.NARRATE: NARRATOR, Task.STATE: STATE, Task.SUMMARY: POV_SUMMARY}


def _owner_of(call: RecordedCall) -> str | None:
    """The character a call is for (None: a call for no one's point of view); its prompt must
    be written for that character, by name."""
    purpose = call.purpose
    if purpose is None or purpose.task not in OWNED_TASKS:
        return None
    named = OWNED_TASKS[purpose.task].match(call.messages[0].content)
    assert named and IDS[named[1]] == purpose.about, (purpose, call.messages[0].content[:80])
    return purpose.about


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
        for memory in await engine.queries.own_memories(chat_id, owner, limit=10_000):
            for marker in MARKER.findall(f"{memory.text} {memory.pov_summary}"):
                allowed = {llm.owned[marker]} if marker in llm.owned else model.witnessed[marker]
                assert owner in allowed, f"{owner}'s memory {memory.id} holds {marker}"


def _check_nothing_gone_comes_back(llm: StoryDouble, model: StoryModel) -> None:
    """No prompt made after a marker left the story (rewound, replaced, edited) holds it."""
    for number, call in enumerate(llm.calls):
        text = _text(call.messages)
        for marker in set(MARKER.findall(text)):
            went = model.gone.get(marker)
            if went is not None and number >= went:
                raise AssertionError(
                    f"call #{number} holds {marker}, gone from the story since call #{went}:\n"
                    f"{text}"
                )


async def _check_memories_left(engine: Engine, chat_id: str, model: StoryModel) -> None:
    """No memory is of a beat that left the story, nor holds its words."""
    turns = {beat.id for beat in await engine.queries.beats(chat_id)}
    for memory in await engine.queries.chat_memories(chat_id):
        memory_id, beat_id = memory.id, memory.beat_id
        text, pov_summary = memory.text, memory.pov_summary
        assert beat_id is None or beat_id in turns, f"memory {memory_id} is of gone beat {beat_id}"
        gone = set(MARKER.findall(f"{text} {pov_summary}")) & model.gone.keys()
        assert not gone, f"memory {memory_id} holds {gone}, gone from the story"


async def _check_player_view(engine: Engine, chat_id: str, model: StoryModel) -> None:
    """What the player is shown of the story (/chat status) holds only what "you" witnessed."""
    status = await engine.queries.status(chat_id)
    for activity in status.activities.values():
        for marker in MARKER.findall(f"{activity.posture} {activity.verb}"):
            assert YOU in model.witnessed[marker], f"the status shows {marker}, not yours to see"
            assert marker not in model.gone, f"the status shows {marker}, gone from the story"
    for memory in await engine.queries.own_memories(chat_id, YOU, limit=10_000):
        leaked = set(MARKER.findall(f"{memory.text} {memory.pov_summary}"))
        assert not leaked & model.meanwhile_markers, f"your memory {memory.id} holds {leaked}"


async def _check_replay(db: Database) -> None:
    """Rebuilding every projection from the log gives the tables the story built as it went."""
    incremental = await snapshot(db)
    await project(db)
    rebuilt = await snapshot(db)
    for table in incremental:
        assert rebuilt[table] == incremental[table], f"{table} differs after a rebuild"


async def _play(story: Story, actions: Sequence[Action]) -> None:
    for action in actions:
        await story.act(action)
    _check_points_of_view(story.llm, story.model)
    _check_nothing_gone_comes_back(story.llm, story.model)
    await _check_memories(story.engine, story.chat_id, story.llm, story.model)
    await _check_replay(story.db)


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,  # the same 200 seeded stories on every run, so CI is repeatable
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    with_guest=st.sampled_from([True, True, False]),
    actions=st.lists(ACTIONS, min_size=10, max_size=40),
)
def test_no_prompt_holds_what_its_character_did_not_witness(
    with_guest: bool, actions: list[Action]
) -> None:
    """Nor what left the story: rewound, regenerated, taken back or edited away."""

    async def run() -> None:
        async with open_db(":memory:") as db:
            story = await Story.begin(db, with_guest=with_guest)
            await _play(story, [*actions, ("close", 0), ("close", 0)])
            model = story.model
            event(f"lived meanwhile beats: {bool(model.meanwhile_markers)}")
            event(f"Cyra joined: {any(CAROL in w for w in model.witnessed.values())}")
            event(f"markers gone: {min(len(model.gone), 10) // 5 * 5}+")
            for outcome in story.outcomes:
                event(outcome)

    asyncio.run(run())


async def test_a_story_that_touches_every_flow_is_checked() -> None:
    """A fixed history through every action, so the property's checks demonstrably bite."""
    async with open_db(":memory:") as db:
        story = await Story.begin(db, with_guest=True)
        llm, model = story.llm, story.model
        history: list[Action] = [
            ("rewind", 1),  # refused: nothing comes after the kickoff
            ("turn", 0),
            ("turn", 1),
            ("meanwhile_start", 0),
            ("regenerate", 0),  # refused: the meanwhile scene began after the reply
            ("take_back", 0),  # refused: the same
            ("meanwhile_turn", 0),
            ("meanwhile_beats", 3),
            ("regenerate", 0),
            ("rewind", 2),
            ("meanwhile_end", 0),
            ("rewind", 1),  # refused: the meanwhile scene ended after it
            ("turn", 0),
            ("edit", 0),
            ("regenerate", 0),  # answers the edited line
            ("edit", 2),  # an older line, from before the meanwhile scene
            ("leave", 0),
            ("turn", 1),
            ("close", 0),
            ("rewind", 1),  # undoes the close
            ("close", 0),
            ("join", 1),
            ("turn", 2),
            ("take_back", 1),  # refused: not the latest line
            ("take_back", 0),
            ("turn", 2),
            ("meanwhile_start", 0),
            ("meanwhile_turn", 0),
            ("close", 0),
            ("turn", 0),
        ]
        await _play(story, [*history, ("close", 0)])

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
        # beats, lines, facts and summaries left the story, and earlier prompts did hold them
        kinds = {re.sub(r"\d+", "", m) for m in model.gone}
        assert {"BEAT", "PROSE", "FACT", "SUM"} <= kinds
        earlier = "\n".join(_text(c.messages) for c in llm.calls)
        assert all(m in earlier for m in model.gone if m.startswith("BEAT"))
        assert story.outcomes == {
            "rewind refused: nothing",
            "regenerate refused: meanwhile",
            "take_back refused: meanwhile",
            "regenerate done",
            "rewind done",
            "rewind refused: meanwhile",
            "edit done",
            "take_back refused: not latest",
            "take_back done",
        }


async def test_a_meanwhile_join_that_fails_changes_no_one() -> None:
    """Joining another character while a meanwhile scene is open is refused and writes nothing."""
    async with open_db(":memory:") as db:
        llm = StoryDouble()
        engine = Engine(db, llm, Settings())
        chat_id = await _seed(engine, with_guest=True)
        await engine.scenes.start_meanwhile(chat_id)
        before = await count_events(db)

        with pytest.raises(StoryError):
            await engine.scenes.guest_join(chat_id, CAROL)

        assert await count_events(db) == before
        assert (await engine.queries.chat(chat_id)).guest_id == GUEST  # type: ignore[union-attr]
        result = await engine.turns.take(chat_id, "they talk", NullSink())
        assert result.speaker.id == HOST
        result = await engine.turns.take(chat_id, "they talk on", NullSink())
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
                await engine.turns.take(chat_id, f"BotB, {prose}" if n % 3 else prose, NullSink())
            await engine.scenes.close(chat_id)
            await engine.scenes.start_meanwhile(chat_id)
            await engine.turns.meanwhile_beats(chat_id, 4, NullSink)
            await engine.scenes.end_meanwhile(chat_id)
            beats += 12

        narrative = [c for c in llm.calls if c.kind == "stream"]
        assert len(narrative) >= 300
        for call in narrative:
            cue = call.messages[-1].content
            assert prompt_tokens(call.messages) <= budget + estimate_tokens(cue) + 4
        # and so are the summaries, threads and digests of scenes too long for one prompt
        asked = [c for c in llm.calls if c.kind == "complete"]
        assert any(c.messages[0].content.startswith(CONDENSE) for c in asked)
        assert all(prompt_tokens(c.messages) <= budget for c in asked)
        # and the budget is used, not starved, and memories are still recalled. The transcript
        # window only grows between jumps (issue 13): after one it holds 60% of its room, and
        # with replies this long (a quarter of that room each) a prompt can be a third of it.
        late = [prompt_tokens(call.messages) for call in narrative[-24:]]
        assert min(late) >= budget * 0.3 and statistics.median(late) >= budget * 0.6
        for call in narrative[-24:]:
            assert "Things you remember from earlier:" in call.messages[0].content


# -- engine bugs the property above found, pinned by small examples ---------------------------


async def test_an_edited_line_leaves_its_old_words_in_no_memory_or_prompt() -> None:
    """Issue 6: a line's words before an edit left the story; no memory or prompt holds them.

    The edit once updated ``turns.text`` only; the memory every witness wrote of the beat (its
    text holds the player's line) kept the old words, and scene-close summaries and recall
    brought them back. The projection of the edit now rewrites those memories too.
    """
    async with open_db(":memory:") as db:
        llm = StoryDouble()
        engine = Engine(db, llm, Settings())
        chat_id = await _seed(engine, with_guest=False)
        await engine.turns.take(chat_id, f"OLDWORDS {FILLER}", NullSink(), message_id=7)
        await engine.history.edit_message(chat_id, 7, f"NEWWORDS {FILLER}")
        calls = len(llm.calls)
        await engine.scenes.close(chat_id)

        memories = [m.text for m in await engine.queries.chat_memories(chat_id)]
        assert [m for m in memories if "OLDWORDS" in m] == []
        assert [c for c in llm.calls[calls:] if "OLDWORDS" in _text(c.messages)] == []


async def test_a_rewind_to_the_latest_beat_is_refused_after_an_earlier_rewind() -> None:
    """Nothing comes after the latest beat, so rewinding to it is refused, every time.

    ``_end_of_beat`` once counted the earlier rewind's left-out events, the rewind itself and
    later edits as "after the beat", so a second rewind was taken and rewound nothing
    (Discord answered "⏪ rewound 0 beats").
    """
    async with open_db(":memory:") as db:
        engine = Engine(db, StoryDouble(), Settings())
        chat_id = await _seed(engine, with_guest=False)
        first = await engine.turns.take(chat_id, f"one {FILLER}", NullSink())
        await engine.turns.take(chat_id, f"two {FILLER}", NullSink())
        assert (
            len((await engine.history.rewind_to_turn(chat_id, first.assistant_turn_id)).beats) == 2
        )
        events = await count_events(db)

        with pytest.raises(StoryError, match="already the latest beat"):
            await engine.history.rewind_to_turn(chat_id, first.assistant_turn_id)
        assert await count_events(db) == events
