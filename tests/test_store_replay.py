"""Rebuilding every projection from the log gives exactly the tables incremental application gave.

Hypothesis draws a list of abstract actions; ``Story`` turns them into valid events over one to
three chats (it knows the id each event will get, since ids are given in order), so every
reference points at a scene, memory or turn that was written.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tests.helpers.store_factories as f
from bot.store import Appendable, Later, append_and_apply, append_events, journal, open_db, project
from bot.store.events import MemoryWritten
from tests.helpers.stores import BACKENDS, fresh_store

CHARACTERS = ("bot_a", "bot_b", "bot_c")
FACTS = ("likes tea", "saw the letter", "owes money", "")
WORDS = ("lighthouse", "letter", "storm", "tea")
OPS = (
    "chat",
    "character",
    "delete_character",
    "you",
    "asset",
    "world",
    "cast",
    "container",
    "scene",
    "close_scene",
    "meanwhile",
    "close_meanwhile",
    "turn",
    "memory",
    "edge",
    "activity",
    "edit",
    "link",
    "digest",
    "thread",
    "rewind",
    "classify",
    "rederive",
    "end_chat",
    "lore_import",
    "lore_add",
    "lore_remove",
)

# the story's bread and butter comes up more often than the bookkeeping
WEIGHTED_OPS = (
    *OPS,
    *(["turn", "memory", "edge", "activity", "edit", "rewind", "meanwhile", "rederive"] * 3),
)

Event = tuple[str, dict[str, Any]]


@dataclass
class Chat:
    id: str
    containers: list[int] = field(default_factory=list)
    scenes: list[int] = field(default_factory=list)
    open_scenes: list[int] = field(default_factory=list)
    meanwhiles: list[int] = field(default_factory=list)
    open_meanwhiles: list[int] = field(default_factory=list)
    events: list[int] = field(default_factory=list)
    memories: list[int] = field(default_factory=list)
    user_turns: list[int] = field(default_factory=list)
    assistant_turns: list[int] = field(default_factory=list)


@dataclass
class Story:
    """Turns abstract actions into valid events, predicting each event's id."""

    next_id: int = 1
    chats: list[Chat] = field(default_factory=list)
    characters: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def emit(self, kind: str, payload: dict[str, Any], chat: Chat | None = None) -> int:
        event_id = self.next_id
        self.next_id += 1
        self.events.append((kind, payload))
        if chat is not None:
            chat.events.append(event_id)
        return event_id

    def act(self, op: str, a: int, b: int, delta: tuple[int, int], word: int) -> None:
        """Emit the action's event(s), first creating whatever it needs that does not exist."""
        if op == "character" or not self.characters:
            name = CHARACTERS[a % len(CHARACTERS)]
            self.emit("bot_authored", f.bot_authored(name, name.title(), persona=WORDS[word]))
            self.characters.append(name)
            if op == "character":
                return
        if op == "asset":
            self.emit("asset_stored", f.asset_stored(WORDS[word].encode() * b))
            return
        if op == "you":
            self.emit("you_authored", f.you_authored(name=WORDS[word], owner_id=a % 2))
            return
        if op == "delete_character":
            self.emit("character_deleted", f.character_deleted(CHARACTERS[a % len(CHARACTERS)]))
            return
        if (op == "chat" and len(self.chats) < 3) or not self.chats:
            chat = Chat(f"chat{len(self.chats)}")
            self.chats.append(chat)
            host = self.characters[a % len(self.characters)]
            self.emit("chat_created", f.chat_created(chat.id, host, CHARACTERS[b % 3]), chat)
        if op == "chat":
            return
        chat = self.chats[a % len(self.chats)]
        getattr(self, f"_{op}")(chat, b, delta, word)

    # chat-scoped actions ------------------------------------------------------------------

    def _world(self, chat: Chat, b: int, delta: tuple[int, int], word: int) -> None:
        self.emit("world_changed", f.world_changed(chat.id, weather=WORDS[word]), chat)

    def _cast(self, chat: Chat, b: int, delta: tuple[int, int], word: int) -> None:
        guest = None if b % 4 == 0 else CHARACTERS[b % 3]
        self.emit("cast_changed", f.cast_changed(chat.id, guest), chat)

    def _end_chat(self, chat: Chat, b: int, delta: tuple[int, int], word: int) -> None:
        self.emit("chat_ended", f.chat_ended(chat.id), chat)

    def _container(self, chat: Chat, b: int, delta: tuple[int, int], word: int) -> None:
        payload = f.container_created(chat.id, WORDS[word], properties={"n": b})
        chat.containers.append(self.emit("container_created", payload, chat))

    def _scene(self, chat: Chat, b: int, delta: tuple[int, int], word: int) -> None:
        if not chat.containers:
            self._container(chat, b, delta, word)
        shapes = (("you", "bot_a"), ("you", "bot_a", "bot_b"), ("bot_a", "bot_b"))
        payload = f.scene_opened(chat.id, chat.containers[b % len(chat.containers)], shapes[b % 3])
        scene = self.emit("scene_opened", payload, chat)
        chat.scenes.append(scene)
        chat.open_scenes.append(scene)

    def _close_scene(self, chat: Chat, b: int, delta: tuple[int, int], word: int) -> None:
        if chat.open_scenes:
            scene = chat.open_scenes.pop(b % len(chat.open_scenes))
            self.emit("scene_closed", f.scene_closed(scene), chat)

    def _meanwhile(self, chat: Chat, b: int, delta: tuple[int, int], word: int) -> None:
        if not chat.open_scenes:
            self._scene(chat, b, delta, word)
        parent = chat.open_scenes[b % len(chat.open_scenes)]
        payload = f.meanwhile_scene_started(chat.id, parent, thread_id=b, premise=WORDS[word])
        scene = self.emit("meanwhile_scene_started", payload, chat)
        chat.meanwhiles.append(scene)
        chat.open_meanwhiles.append(scene)

    def _close_meanwhile(self, chat: Chat, b: int, delta: tuple[int, int], word: int) -> None:
        if chat.open_meanwhiles:
            scene = chat.open_meanwhiles.pop(b % len(chat.open_meanwhiles))
            self.emit("meanwhile_scene_closed", f.meanwhile_scene_closed(scene), chat)

    def _any_scene(self, chat: Chat, b: int, delta: tuple[int, int], word: int) -> int:
        if not chat.scenes:
            self._scene(chat, b, delta, word)
        scenes = chat.scenes + chat.meanwhiles
        return scenes[b % len(scenes)]

    def _turn(self, chat: Chat, b: int, delta: tuple[int, int], word: int) -> None:
        scene = self._any_scene(chat, b, delta, word)
        meanwhile = scene if scene in chat.meanwhiles else None
        shape = {"meanwhile_scene_id": meanwhile}
        started = None
        if b % 3:
            started = self.emit("turn_started", f.turn_started(scene, chat.id, **shape), chat)
        if b % 2:
            user = f.user_turn(scene, chat.id, prose=WORDS[word], **shape)
            chat.user_turns.append(self.emit("user_turn", user, chat))
        reply = f.assistant_turn(
            scene,
            chat.id,
            text=f"a reply about the {WORDS[word]}",
            cancelled=b % 5 == 0,
            turn_started_id=started,
            **shape,
        )
        if b % 7:  # sometimes the reply never arrives and the turn stays open
            chat.assistant_turns.append(self.emit("assistant_turn", reply, chat))

    def _memory(self, chat: Chat, b: int, delta: tuple[int, int], word: int) -> None:
        scene = self._any_scene(chat, b, delta, word)
        beat = chat.assistant_turns[-1] if chat.assistant_turns else None
        payload = f.memory_written(
            CHARACTERS[b % 3],
            scene,
            chat.id,
            witness=(b % 2, 1, (b // 2) % 2),
            text=f"{WORDS[word]} and {WORDS[(word + b) % len(WORDS)]}",
            pov_summary=WORDS[b % len(WORDS)] if b % 3 == 0 else "",
            beat_id=beat,
        )
        chat.memories.append(self.emit("memory_written", payload, chat))

    def _edge(self, chat: Chat, b: int, delta: tuple[int, int], word: int) -> None:
        source, target = ("you", *CHARACTERS)[b % 4], CHARACTERS[(b + 1) % 3]
        payload = f.edge_update(
            source,
            target,
            chat.id,
            affinity_delta=delta[0],
            trust_delta=delta[1],
            knowledge_facts=[FACTS[word], FACTS[b % len(FACTS)]],
            relationship_summary=None if b % 2 else f"summary {b}",
            beat_id=chat.assistant_turns[-1] if chat.assistant_turns else None,
        )
        self.emit("edge_update", payload, chat)

    def _activity(self, chat: Chat, b: int, delta: tuple[int, int], word: int) -> None:
        scoped = {"chat_id": chat.id} if b % 2 else {}  # a first-shape activity: no chat
        beat = chat.assistant_turns[-1] if chat.assistant_turns and b % 3 else None
        payload = f.activity_change(
            CHARACTERS[b % 3], WORDS[word], holding=[WORDS[b % 4]], beat_id=beat, **scoped
        )
        self.emit("activity_change", payload, chat)

    def _classify(self, chat: Chat, b: int, delta: tuple[int, int], word: int) -> None:
        if not chat.user_turns:
            self._turn(chat, 1, delta, word)
        if chat.user_turns:
            turn = chat.user_turns[b % len(chat.user_turns)]
            self.emit("turn_classified", f.turn_classified(turn, chat.id), chat)

    def _rederive(self, chat: Chat, b: int, delta: tuple[int, int], word: int) -> None:
        """What an edit writes: derived items of a beat (or a scene) replaced, then new ones."""
        if b % 3 == 0:
            scene = self._any_scene(chat, b, delta, word)
            replaced = f.derivations_replaced(None, chat.id, scene_id=scene)
            self.emit("derivations_replaced", replaced, chat)
            payload = f.story_thread_detected(scene, chat.id, title=f"again {WORDS[word]}")
            self.emit("story_thread_detected", payload, chat)
            return
        if not chat.assistant_turns:
            self._turn(chat, 1, delta, word)
        if chat.assistant_turns:
            beat = chat.assistant_turns[b % len(chat.assistant_turns)]
            self.emit("derivations_replaced", f.derivations_replaced(beat, chat.id), chat)
            self._memory(chat, b, delta, word)

    def _edit(self, chat: Chat, b: int, delta: tuple[int, int], word: int) -> None:
        targets = [
            ("memory_pov_summary", chat.memories),
            ("user_turn_prose", chat.user_turns),
            ("assistant_turn_text", chat.assistant_turns),
        ]
        kind, ids = targets[b % 3]
        if not ids:
            (self._memory if kind == "memory_pov_summary" else self._turn)(chat, 1, delta, word)
        if ids:
            scoped = {"chat_id": chat.id} if b % 2 else {}  # a first-shape edit: no chat
            payload = f.manual_edit(ids[b % len(ids)], f"edited {WORDS[word]}", kind, **scoped)
            self.emit("manual_edit", payload, chat)

    def _link(self, chat: Chat, b: int, delta: tuple[int, int], word: int) -> None:
        turns = chat.user_turns + chat.assistant_turns
        if not turns:
            self._turn(chat, b, delta, word)
            turns = chat.user_turns + chat.assistant_turns
        if turns:
            payload = f.turn_messages_linked(turns[b % len(turns)], chat.id, message_ids=[b])
            self.emit("turn_messages_linked", payload, chat)

    def _digest(self, chat: Chat, b: int, delta: tuple[int, int], word: int) -> None:
        if not chat.meanwhiles:
            self._meanwhile(chat, b, delta, word)
        if chat.meanwhiles:
            scene = chat.meanwhiles[b % len(chat.meanwhiles)]
            payload = f.digest_written(scene, chat.id, text=WORDS[word])
            self.emit("digest_written", payload, chat)

    def _thread(self, chat: Chat, b: int, delta: tuple[int, int], word: int) -> None:
        scene = self._any_scene(chat, b, delta, word)
        payload = f.story_thread_detected(scene, chat.id, title=WORDS[word])
        self.emit("story_thread_detected", payload, chat)

    def _lore_import(self, chat: Chat, b: int, delta: tuple[int, int], word: int) -> None:
        entries = [f.lore_entry(WORDS[(word + i) % len(WORDS)]) for i in range(b % 3)]
        payload = f.world_book_imported(chat.id, entries=entries, scan_depth=b % 4 or None)
        self.emit("world_book_imported", payload, chat)

    def _lore_add(self, chat: Chat, b: int, delta: tuple[int, int], word: int) -> None:
        self.emit("lore_entry_added", f.lore_entry_added(chat.id, WORDS[word]), chat)

    def _lore_remove(self, chat: Chat, b: int, delta: tuple[int, int], word: int) -> None:
        self.emit("lore_entry_removed", f.lore_entry_removed(chat.id, 1 + b % 3), chat)

    def _rewind(self, chat: Chat, b: int, delta: tuple[int, int], word: int) -> None:
        # after any event of this chat, or (b % 5 == 0) before the whole chat
        after = 0 if b % 5 == 0 else chat.events[b % len(chat.events)]
        reason = ("rewind", "regenerate", "deleted")[word % 3]
        self.emit("beats_rewound", f.beats_rewound(after, chat.id, reason=reason), chat)


deltas = st.one_of(st.integers(-100, 100), st.sampled_from([-100, -60, 60, 100]))
actions = st.lists(
    st.tuples(
        st.sampled_from(WEIGHTED_OPS),
        st.integers(0, 11),
        st.integers(0, 59),
        st.tuples(deltas, deltas),
        st.integers(0, 3),
    ),
    min_size=3,
    max_size=50,
)


def story_of(drawn: list[tuple[str, int, int, tuple[int, int], int]]) -> Story:
    story = Story()
    for op, a, b, delta, word in drawn:
        story.act(op, a, b, delta, word)
    return story


@dataclass(frozen=True)
class _CheckedLater(Later[MemoryWritten]):
    """A memory built in its batch's transaction, checking it sees the id the story predicted
    for the event before it."""

    want: int = 0

    def build(self, ids: list[int]) -> dict[str, Any]:
        assert ids[-1] == self.want
        return dict(self.fields)


def as_batches(events: list[Event], cuts: list[int]) -> list[list[Appendable]]:
    """Split into batches at ``cuts``; every memory but a batch's first is built in the
    transaction (a ``Later``), checking the ids given so far."""
    batches: list[list[Appendable]] = []
    start = 0
    for end in [*sorted(set(cuts)), len(events)]:
        if end <= start:
            continue
        batch: list[Appendable] = []
        for offset, (kind, payload) in enumerate(events[start:end]):
            if kind == "memory_written" and offset > 0:
                previous_id = start + offset  # ids start at 1, so the previous event's id

                batch.append(_CheckedLater(MemoryWritten, payload, want=previous_id))
            else:
                batch.append((kind, payload))
        batches.append(batch)
        start = end
    return batches


async def replay_matches(
    events: list[Event], cuts: list[int], backend: str = "sqlite", *, recall_span: int = 0
) -> None:
    async with fresh_store(backend) as single, fresh_store(backend) as batched:
        if recall_span:  # SQLite's full-text tiers moving rows to the archive every few events
            for db in (single, batched):
                await db.write(lambda raw: f.small_recall_tiers(raw, recall_span))
        # Given the same story appended one event at a time, and in batches
        for kind, payload in events:
            await append_and_apply(single, kind=kind, payload=payload)
        for batch in as_batches(events, cuts):
            await append_events(batched, batch)
        incremental = await f.snapshot(single, WORDS)
        assert await f.snapshot(batched, WORDS) == incremental
        log_sql = "SELECT id, kind, payload_json, chat_id FROM event_log ORDER BY id"
        assert [tuple(r) for r in await single.fetchall(log_sql)] == [
            tuple(r) for r in await batched.fetchall(log_sql)
        ]
        # When every projection is rebuilt from the log
        assert await project(single) == len(events)
        # Then the tables are exactly the incremental ones
        assert await f.snapshot(single, WORDS) == incremental


EXAMPLES = {"sqlite": 300, "postgres": 60}
"""Stories drawn per property: each PostgreSQL example makes two schemas and talks over TCP."""


def property_settings(backend: str, share: int = 1) -> settings:
    return settings(
        max_examples=EXAMPLES[backend] // share,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_replay_equals_incremental(backend: str) -> None:
    @property_settings(backend)
    @given(drawn=actions, cuts=st.lists(st.integers(0, 200), max_size=12))
    def check(drawn: list[tuple[str, int, int, tuple[int, int], int]], cuts: list[int]) -> None:
        asyncio.run(replay_matches(story_of(drawn).events, cuts, backend))

    check()


def test_replay_equals_incremental_with_tiny_recall_tiers() -> None:
    """The same on SQLite with full-text tiers a few keys wide: rows move to the archive
    between (and inside) batches, rewinds and edits take rows out of either tier, and what
    every word recalls is still what a rebuild from the log gives."""

    @property_settings("sqlite", share=3)
    @given(drawn=actions, cuts=st.lists(st.integers(0, 200), max_size=12), span=st.integers(1, 4))
    def check(
        drawn: list[tuple[str, int, int, tuple[int, int], int]], cuts: list[int], span: int
    ) -> None:
        asyncio.run(replay_matches(story_of(drawn).events, cuts, recall_span=span))

    check()


def test_the_story_generator_reaches_every_kind() -> None:
    """Guards the property above against a generator that quietly stopped producing a kind."""
    drawn = [(op, a, b, (100, -100), b % 4) for b in range(12) for op in OPS for a in range(3)]
    kinds = {kind for kind, _ in story_of(drawn).events}
    assert kinds == set(f.PAYLOAD_FACTORIES)


@pytest.mark.parametrize("backend", BACKENDS)
def test_replay_of_a_story_with_a_rewind_inside_a_batch(backend: str) -> None:
    drawn = [
        (op, 0, b, (70, -70), b % 4)
        for b in range(1, 8)
        for op in ("scene", "meanwhile", "turn", "memory", "edge", "edit", "rewind", "turn")
    ]
    events = story_of(drawn).events
    assert sum(kind == "beats_rewound" for kind, _ in events) == 7
    asyncio.run(replay_matches(events, [5, 40], backend))


async def replay_after_a_rebuild_matches(events: list[Event], cut: int, backend: str) -> None:
    """The undo journal covers only events after a rebuild: a rewind reaching behind it replays
    its chat whole, and later rewinds undo through the journal again."""
    async with fresh_store(backend) as db:
        for kind, payload in events[:cut]:
            await append_and_apply(db, kind=kind, payload=payload)
        await project(db)
        for kind, payload in events[cut:]:
            await append_and_apply(db, kind=kind, payload=payload)
        incremental = await f.snapshot(db, WORDS)
        await project(db)
        assert await f.snapshot(db, WORDS) == incremental


@pytest.mark.parametrize("backend", BACKENDS)
def test_replay_equals_incremental_across_a_rebuild(backend: str) -> None:
    @property_settings(backend, share=3)
    @given(drawn=actions, cut=st.integers(0, 60))
    def check(drawn: list[tuple[str, int, int, tuple[int, int], int]], cut: int) -> None:
        asyncio.run(replay_after_a_rebuild_matches(story_of(drawn).events, cut, backend))

    check()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_rewind_undoes_only_what_came_after_its_point(backend: str) -> None:
    """Rewinding the last beat of a long chat replays no event before it (the journal undoes
    the range), and the chat is what a rebuild from the log makes of it."""
    drawn = [(op, 0, b, (5, -5), b % 4) for b in range(1, 30) for op in ("turn", "memory", "edge")]
    events = [*story_of([("chat", 0, 0, (0, 0), 0), ("scene", 0, 0, (0, 0), 0), *drawn]).events]

    async def run() -> None:
        async with fresh_store(backend) as db:
            for kind, payload in events:
                await append_and_apply(db, kind=kind, payload=payload)
            last = len(events)
            undone = await db.fetchone(
                "SELECT COUNT(*) FROM undo_journal WHERE event_id > ?", (last - 3,)
            )
            assert undone is not None and undone[0] > 0
            await append_and_apply(
                db, kind="beats_rewound", payload=f.beats_rewound(last - 3, "chat0")
            )
            left = await db.fetchone(
                "SELECT COUNT(*) FROM undo_journal WHERE event_id > ?", (last - 3,)
            )
            assert left is not None and left[0] == 0
            kept = await db.fetchone("SELECT COUNT(*) FROM undo_journal")
            assert kept is not None and kept[0] > 50  # the journal before the point is intact
            incremental = await f.snapshot(db, WORDS)
            await project(db)
            assert await f.snapshot(db, WORDS) == incremental

    asyncio.run(run())


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_rewind_gives_back_the_world_book_a_later_import_replaced(backend: str) -> None:
    """The undo journal sees every row a handler replaces (an upsert, never INSERT OR REPLACE,
    whose deletes fire no trigger)."""
    drawn = [
        ("chat", 0, 0, (0, 0), 0),
        ("lore_import", 0, 2, (0, 0), 0),
        ("turn", 0, 1, (0, 0), 0),
        ("lore_import", 0, 1, (0, 0), 1),
        ("rewind", 0, 2, (0, 0), 0),
    ]
    events = story_of(drawn).events
    assert [kind for kind, _ in events][-2:] == ["world_book_imported", "beats_rewound"]
    asyncio.run(replay_matches(events, [], backend))


@contextlib.contextmanager
def journal_bounded(beats: int, every: int) -> Iterator[None]:
    """A journal pruned far more eagerly than in production, so small stories reach behind it."""
    saved = (journal.JOURNAL_BEATS, journal.PRUNE_EVERY)
    journal.JOURNAL_BEATS, journal.PRUNE_EVERY = beats, every
    try:
        yield
    finally:
        journal.JOURNAL_BEATS, journal.PRUNE_EVERY = saved


def test_the_journal_keeps_only_the_last_beats_and_deeper_rewinds_replay_the_chat() -> None:
    """The journal is bounded: it covers a chat's last JOURNAL_BEATS beats; a rewind inside
    them undoes through it, one further back replays the chat whole. Both give what a
    rebuild from the log gives."""
    drawn = [(op, 0, b, (5, -5), b % 4) for b in range(1, 40) for op in ("turn", "memory", "edge")]
    events = story_of([("chat", 0, 0, (0, 0), 0), ("scene", 0, 0, (0, 0), 0), *drawn]).events

    async def since(db: Any) -> int:
        row = await db.fetchone("SELECT since FROM undo_since WHERE chat_id = 'chat0'")
        assert row is not None
        return int(row[0])

    async def run() -> None:
        async with open_db(":memory:") as db:
            for kind, payload in events:
                await append_and_apply(db, kind=kind, payload=payload)
            # Then the journal reaches back only to (about) the chat's last 10 beats
            beats = await db.fetchall(
                "SELECT id FROM turns WHERE chat_id = 'chat0' ORDER BY id DESC"
            )
            assert len(beats) > 40
            cut = await since(db)
            assert beats[16][0] <= cut < beats[9][0]  # 10 beats kept, pruned every 16 events
            oldest = await db.fetchone("SELECT MIN(event_id) FROM undo_journal")
            assert oldest is not None and oldest[0] > cut
            # When the last beat is rewound, the journal undoes it (nothing replayed whole)
            last = len(events)
            await append_and_apply(
                db, kind="beats_rewound", payload=f.beats_rewound(last - 3, "chat0")
            )
            assert await since(db) == cut
            # When a rewind reaches behind the journal, the chat is replayed whole (and
            # journalled from its start again)
            await append_and_apply(
                db, kind="beats_rewound", payload=f.beats_rewound(beats[30][0], "chat0")
            )
            assert await since(db) == 0
            # the beats each saw, kept as a count, are still the beats each saw
            counted = await db.fetchall(
                "SELECT chat_id, entity_id, COUNT(*) FROM turn_witnesses GROUP BY 1, 2"
            )
            kept = await db.fetchall("SELECT chat_id, entity_id, beats FROM witness_counts")
            assert sorted(map(tuple, counted)) == sorted(map(tuple, kept))
            incremental = await f.snapshot(db, WORDS)
            await project(db)
            assert await f.snapshot(db, WORDS) == incremental

    with journal_bounded(beats=10, every=16):
        asyncio.run(run())


@settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(drawn=actions, cuts=st.lists(st.integers(0, 200), max_size=12))
def test_replay_equals_incremental_with_a_pruned_journal(
    drawn: list[tuple[str, int, int, tuple[int, int], int]], cuts: list[int]
) -> None:
    """Every kind of rewind and edit, with the journal pruned to two beats every few events:
    rewinds behind it replay their chat whole, and the tables still equal a rebuild."""
    story = story_of(drawn)
    with journal_bounded(beats=2, every=3):
        asyncio.run(replay_matches(story.events, cuts))
