"""Read models: what adapters and prompts see of the projections, in the story's vocabulary."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.store import recall
from bot.store.database import Database
from bot.store.events import YOU, BotAuthored, LoreEntry, PresentSetKind, Segment
from bot.store.projections.relationships import fact_scope
from bot.store.projections.story import memory_scope
from bot.store.reads import beat_showing
from bot.store.sql import Connection, Row

FACTS_NEWEST = 6
FACTS_MATCHING = 4
MATCH_WORDS = 8
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class Character:
    guild_id: int
    card: BotAuthored

    @property
    def id(self) -> str:
        return self.card.id

    @property
    def name(self) -> str:
        return self.card.name


@dataclass(frozen=True, slots=True)
class You:
    name: str
    pronouns: str
    persona: str


DEFAULT_YOU = You(name="You", pronouns="they/them", persona="")


@dataclass(frozen=True, slots=True)
class Scene:
    id: int
    chat_id: str
    kind: str  # "you" or "meanwhile"
    present_set_kind: PresentSetKind
    participants: tuple[str, ...]
    parent_scene_id: int | None
    thread_id: int
    premise: str
    status: str


@dataclass(frozen=True, slots=True)
class Chat:
    id: str
    guild_id: int
    channel_id: int
    owner_id: int
    host_id: str
    guest_id: str | None
    world_time: str
    narrative_anchor: str
    weather: str
    place: str
    status: str


@dataclass(frozen=True, slots=True)
class Activity:
    entity_id: str
    posture: str
    verb: str
    attention: str
    holding: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Relationship:
    source_id: str
    target_id: str
    affinity: int = 50
    trust: int = 50
    knowledge_facts: tuple[str, ...] = ()
    summary: str = ""


@dataclass(frozen=True, slots=True)
class Memory:
    id: int
    owner_id: str
    scene_id: int
    beat_id: int | None
    text: str
    pov_summary: str
    witness_you: int
    witness_host: int
    witness_guest: int


@dataclass(frozen=True, slots=True)
class Beat:
    """One line of the transcript: the player's prose or a character's reply."""

    id: int
    role: str  # "user" or "assistant"
    speaker_id: str
    text: str
    scene_id: int
    meanwhile_scene_id: int | None
    cancelled: bool
    interrupted: bool
    message_ids: tuple[int, ...] = ()
    answers_turn_id: int | None = None
    """For a reply: the player's line it answers."""
    segments: tuple[Segment, ...] = ()
    """For a player's line: its labels (narration, dialogue, action...), the classifier's once
    it answered."""


@dataclass(frozen=True, slots=True)
class ChatStatus:
    chat: Chat
    scene: Scene | None
    meanwhile: Scene | None
    present: tuple[str, ...]
    names: dict[str, str] = field(default_factory=dict)
    activities: dict[str, Activity] = field(default_factory=dict)


def _chat(row: Row) -> Chat:
    return Chat(
        id=row["id"],
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        owner_id=row["owner_id"],
        host_id=row["host_id"],
        guest_id=row["guest_id"],
        world_time=row["world_time"],
        narrative_anchor=row["narrative_anchor"],
        weather=row["weather"],
        place=row["place"],
        status=row["status"],
    )


def _scene(row: Row) -> Scene:
    return Scene(
        id=row["id"],
        chat_id=row["chat_id"],
        kind=row["kind"],
        present_set_kind=row["present_set_kind"],
        participants=tuple(json.loads(row["participants_json"])),
        parent_scene_id=row["parent_scene_id"],
        thread_id=row["thread_id"],
        premise=row["premise"],
        status=row["status"],
    )


def _activity(row: Row) -> Activity:
    return Activity(
        entity_id=row["entity_id"],
        posture=row["posture"],
        verb=json.loads(row["action_json"]).get("verb", ""),
        attention=row["attention"],
        holding=tuple(json.loads(row["holding_json"])),
    )


def _memory(row: Row) -> Memory:
    return _memory_of(tuple(row), tuple(row.keys()))


def _memories(rows: Sequence[Row]) -> list[Memory]:
    """``_memory`` of each row, their column names read once (a turn reads fifty or more)."""
    if not rows:
        return []
    keys = tuple(rows[0].keys())
    return [_memory_of(tuple(row), keys) for row in rows]


@functools.lru_cache(maxsize=4096)
def _memory_of(values: tuple[object, ...], keys: tuple[str, ...]) -> Memory:
    # every prompt reads the same memories again: a row seen before is the same Memory
    row: dict[str, Any] = dict(zip(keys, values, strict=True))
    return Memory(
        id=row["id"],
        owner_id=row["owner_id"],
        scene_id=row["scene_id"],
        beat_id=row["beat_id"],
        text=row["text"],
        pov_summary=row["pov_summary"],
        witness_you=row["witness_you"],
        witness_host=row["witness_host"],
        witness_guest=row["witness_guest"],
    )


def _beat(row: Row) -> Beat:
    return _beat_of(tuple(row), tuple(row.keys()))


def _beats(rows: Sequence[Row]) -> list[Beat]:
    """``_beat`` of each row, their column names read once (a turn's window is 70 or more)."""
    if not rows:
        return []
    keys = tuple(rows[0].keys())
    return [_beat_of(tuple(row), keys) for row in rows]


@functools.lru_cache(maxsize=4096)
def _beat_of(values: tuple[object, ...], keys: tuple[str, ...]) -> Beat:
    # every prompt reads its transcript window again: a row seen before is the same Beat
    row: dict[str, Any] = dict(zip(keys, values, strict=True))
    return Beat(
        id=row["id"],
        role=row["role"],
        speaker_id=row["speaker_id"],
        text=row["text"],
        scene_id=row["scene_id"],
        meanwhile_scene_id=row["meanwhile_scene_id"],
        cancelled=bool(row["cancelled"]),
        interrupted=bool(row["interrupted"]),
        message_ids=tuple(json.loads(row["message_ids_json"])),
        answers_turn_id=row["answers_turn_id"],
        segments=tuple(Segment.model_validate(s) for s in json.loads(row["segments_json"])),
    )


@dataclass(frozen=True, slots=True)
class Setting:
    """A chat as every turn reads it first: its characters, open scenes and player."""

    chat: Chat
    host: Character | None
    guest: Character | None
    you: You
    scene: Scene | None
    meanwhile: Scene | None


def _setting(raw: Connection, chat_id: str) -> Setting | None:
    row = raw.execute("SELECT * FROM chats WHERE id = ?", (chat_id,)).fetchone()
    if row is None:
        return None
    chat = _chat(row)

    def character(character_id: str | None) -> Character | None:
        if not character_id:
            return None
        found = raw.execute(
            "SELECT payload_json FROM characters WHERE guild_id = ? AND id = ?",
            (chat.guild_id, character_id),
        ).fetchone()
        return None if found is None else Character(chat.guild_id, _card(found[0]))

    def open_scene(kind: str) -> Scene | None:
        found = raw.execute(
            "SELECT * FROM scenes WHERE chat_id = ? AND status = 'open' AND kind = ? "
            "ORDER BY id DESC LIMIT 1",
            (chat_id, kind),
        ).fetchone()
        return None if found is None else _scene(found)

    you = raw.execute(
        "SELECT name, pronouns, persona FROM yous WHERE guild_id = ? AND owner_id = ?",
        (chat.guild_id, chat.owner_id),
    ).fetchone()
    return Setting(
        chat=chat,
        host=character(chat.host_id),
        guest=character(chat.guest_id),
        you=DEFAULT_YOU if you is None else You(you[0], you[1], you[2]),
        scene=open_scene("you"),
        meanwhile=open_scene("meanwhile"),
    )


@functools.lru_cache(maxsize=256)
def _card(payload_json: str) -> BotAuthored:
    """A card as stored (read every turn; the same text gives the same card, never changed)."""
    return BotAuthored.model_validate_json(payload_json)


class Views:
    """Queries over the projections, each on an index. Prompts use only bounded ones (LIMIT);
    ``beats`` reads a whole transcript, for exports and rewinds."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def setting(self, chat_id: str) -> Setting | None:
        """The chat, its characters, open scenes and player, in one trip to the store."""
        return await self.db.read(lambda raw: _setting(raw, chat_id))

    async def character(self, guild_id: int, character_id: str) -> Character | None:
        row = await self.db.fetchone(
            "SELECT payload_json FROM characters WHERE guild_id = ? AND id = ?",
            (guild_id, character_id),
        )
        if row is None:
            return None
        return Character(guild_id, _card(row[0]))

    async def characters(self, guild_id: int) -> list[Character]:
        rows = await self.db.fetchall(
            "SELECT payload_json FROM characters WHERE guild_id = ? ORDER BY id", (guild_id,)
        )
        return [Character(guild_id, _card(r[0])) for r in rows]

    async def asset(self, sha256: str) -> tuple[bytes, str] | None:
        row = await self.db.fetchone(
            "SELECT data, content_type FROM assets WHERE sha256 = ?", (sha256,)
        )
        return None if row is None else (bytes(row[0]), str(row[1]))

    async def you(self, guild_id: int, owner_id: int) -> You:
        row = await self.db.fetchone(
            "SELECT name, pronouns, persona FROM yous WHERE guild_id = ? AND owner_id = ?",
            (guild_id, owner_id),
        )
        return DEFAULT_YOU if row is None else You(row[0], row[1], row[2])

    async def chat(self, chat_id: str) -> Chat | None:
        row = await self.db.fetchone("SELECT * FROM chats WHERE id = ?", (chat_id,))
        return None if row is None else _chat(row)

    async def chat_in_channel(self, channel_id: int) -> Chat | None:
        row = await self.db.fetchone(
            "SELECT * FROM chats WHERE channel_id = ? AND status = 'open' "
            "ORDER BY created_event_id DESC LIMIT 1",
            (channel_id,),
        )
        return None if row is None else _chat(row)

    async def chats_of_guild(self, guild_id: int) -> list[Chat]:
        rows = await self.db.fetchall(
            "SELECT * FROM chats WHERE guild_id = ? AND status = 'open'", (guild_id,)
        )
        return [_chat(r) for r in rows]

    async def scene(self, scene_id: int) -> Scene | None:
        row = await self.db.fetchone("SELECT * FROM scenes WHERE id = ?", (scene_id,))
        return None if row is None else _scene(row)

    async def open_scene(self, chat_id: str, kind: str) -> Scene | None:
        row = await self.db.fetchone(
            "SELECT * FROM scenes WHERE chat_id = ? AND status = 'open' AND kind = ? "
            "ORDER BY id DESC LIMIT 1",
            (chat_id, kind),
        )
        return None if row is None else _scene(row)

    async def meanwhile_in_thread(self, thread_id: int) -> Scene | None:
        row = await self.db.fetchone(
            "SELECT * FROM scenes WHERE thread_id = ? AND kind = 'meanwhile' AND status = 'open'",
            (thread_id,),
        )
        return None if row is None else _scene(row)

    async def relationship(
        self, chat_id: str, source_id: str, target_id: str, *, about: str = ""
    ) -> Relationship:
        """How ``source_id`` sees ``target_id``, with a bounded choice of the facts it learned:
        the newest, and those that share words with ``about`` (the line being answered)."""
        return await self.db.read(
            lambda raw: _relationship(raw, chat_id, source_id, target_id, about)
        )

    async def known_facts(
        self,
        chat_id: str,
        source_id: str,
        target_id: str,
        *,
        about: str = "",
        newest: int = FACTS_NEWEST,
        matching: int = FACTS_MATCHING,
    ) -> tuple[str, ...]:
        """Facts in the order learned: up to ``matching`` that hold a word of ``about``, and
        the ``newest``; never the whole list, which grows with the story."""
        key = (chat_id, source_id, target_id)
        return await self.db.read(lambda raw: _known_facts(raw, key, about, newest, matching))

    async def edge_history(
        self, chat_id: str, source_id: str, target_id: str, limit: int = 25
    ) -> list[tuple[int, int, int, int | None]]:
        """(event id, affinity delta, trust delta, beat id), newest first."""
        rows = await self.db.fetchall(
            "SELECT event_id, affinity_delta, trust_delta, beat_id FROM edge_changes "
            "WHERE chat_id = ? AND source_id = ? AND target_id = ? "
            "ORDER BY event_id DESC LIMIT ?",
            (chat_id, source_id, target_id, limit),
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    async def activities_seen(
        self,
        chat_id: str,
        viewer_id: str,
        entity_ids: tuple[str, ...],
        *,
        before: int | None = None,
    ) -> dict[str, Activity]:
        """What ``viewer_id`` last saw each entity doing: only beats it witnessed tell it.

        ``before`` (a beat id) leaves out what was seen at or after that beat: an old beat
        derived again must not be told what came later, or its witnesses would learn it."""
        if not entity_ids:
            return {}
        return await self.db.read(
            lambda raw: _activities_seen(raw, chat_id, viewer_id, entity_ids, before)
        )

    async def memories(self, chat_id: str, owner_id: str, limit: int = 20) -> list[Memory]:
        rows = await self.db.fetchall(
            "SELECT * FROM memories WHERE chat_id = ? AND owner_id = ? ORDER BY id DESC LIMIT ?",
            (chat_id, owner_id, limit),
        )
        return _memories(rows)

    async def chat_memories(self, chat_id: str) -> list[Memory]:
        """Every memory of the story, oldest first: unbounded, so for checks, never a prompt."""
        rows = await self.db.fetchall(
            "SELECT * FROM memories WHERE chat_id = ? ORDER BY id", (chat_id,)
        )
        return _memories(rows)

    async def search_memories(
        self, chat_id: str, owner_id: str, words: list[str], limit: int
    ) -> list[Memory]:
        """The owner's newest memories holding any of ``words``, newest first.

        The search is scoped by a token to this (chat, owner) and walks the index newest first,
        stopping at ``limit``: its cost does not grow with the length of the story.
        """
        return await self.db.read(
            lambda raw: _search_memories(raw, chat_id, owner_id, words, limit)
        )

    async def scene_memories(self, scene_id: int) -> list[Memory]:
        rows = await self.db.fetchall(
            "SELECT * FROM memories WHERE scene_id = ? ORDER BY id", (scene_id,)
        )
        return _memories(rows)

    async def witnessed_beats(self, chat_id: str, entity_id: str, limit: int) -> list[Beat]:
        """The latest beats ``entity_id`` was present for, oldest first."""
        rows = await self.db.fetchall(
            "SELECT t.* FROM turn_witnesses w JOIN turns t ON t.id = w.turn_id "
            "WHERE w.entity_id = ? AND w.chat_id = ? ORDER BY w.turn_id DESC LIMIT ?",
            (entity_id, chat_id, limit),
        )
        return _beats(rows[::-1])

    async def scene_beats(self, scene_id: int, limit: int = 200) -> list[Beat]:
        rows = await self.db.fetchall(
            "SELECT * FROM turns WHERE (scene_id = ? AND meanwhile_scene_id IS NULL) "
            "OR meanwhile_scene_id = ? ORDER BY id DESC LIMIT ?",
            (scene_id, scene_id, limit),
        )
        return _beats(rows[::-1])

    async def beat_showing(self, chat_id: str, message_id: int) -> Beat | None:
        """The beat an adapter's message shows (the player's message or a reply's)."""
        row = await self.db.read(lambda raw: beat_showing(raw, chat_id, message_id))
        return None if row is None else _beat(row)

    async def beat(self, chat_id: str, turn_id: int) -> Beat | None:
        row = await self.db.fetchone(
            "SELECT * FROM turns WHERE chat_id = ? AND id = ?", (chat_id, turn_id)
        )
        return None if row is None else _beat(row)

    async def latest_reply_to(self, chat_id: str, turn_id: int) -> Beat | None:
        """The reply in the story now that answers the player's line ``turn_id``."""
        row = await self.db.fetchone(
            "SELECT * FROM turns WHERE chat_id = ? AND answers_turn_id = ? AND role = 'assistant' "
            "ORDER BY id DESC LIMIT 1",
            (chat_id, turn_id),
        )
        return None if row is None else _beat(row)

    async def witnesses(self, turn_id: int) -> tuple[str, ...]:
        """Who witnessed a beat, "you" first when there."""
        rows = await self.db.fetchall(
            "SELECT entity_id FROM turn_witnesses WHERE turn_id = ?", (turn_id,)
        )
        found = {row[0] for row in rows}
        return tuple(sorted(found, key=lambda e: (e != YOU, e)))

    async def last_beat(self, chat_id: str) -> Beat | None:
        row = await self.db.fetchone(
            "SELECT * FROM turns WHERE chat_id = ? ORDER BY id DESC LIMIT 1", (chat_id,)
        )
        return None if row is None else _beat(row)

    async def beats(self, chat_id: str, *, after_id: int = 0) -> list[Beat]:
        """The whole transcript after ``after_id`` (exports and rewinds read all of it)."""
        rows = await self.db.fetchall(
            "SELECT * FROM turns WHERE chat_id = ? AND id > ? ORDER BY id", (chat_id, after_id)
        )
        return _beats(rows)

    async def last_meanwhile_speaker(self, meanwhile_scene_id: int) -> str | None:
        row = await self.db.fetchone(
            "SELECT speaker_id FROM turns WHERE meanwhile_scene_id = ? AND role = 'assistant' "
            "ORDER BY id DESC LIMIT 1",
            (meanwhile_scene_id,),
        )
        return None if row is None else str(row[0])

    async def digests(self, chat_id: str) -> list[tuple[int, str]]:
        rows = await self.db.fetchall(
            "SELECT meanwhile_scene_id, text FROM digests WHERE chat_id = ? ORDER BY id",
            (chat_id,),
        )
        return [(r[0], r[1]) for r in rows]

    async def turn_started_of(self, turn_id: int) -> int | None:
        """The ``turn_started`` event a beat was written for (None for a greeting)."""
        row = await self.db.fetchone("SELECT turn_started_id FROM turns WHERE id = ?", (turn_id,))
        return None if row is None or row[0] is None else int(row[0])

    async def last_player_lines(self, chat_id: str, count: int) -> list[Beat]:
        """The player's newest ``count`` lines in the story, newest first."""
        rows = await self.db.fetchall(
            "SELECT * FROM turns WHERE chat_id = ? AND role = 'user' ORDER BY id DESC LIMIT ?",
            # a LIMIT is a 64-bit integer: a larger count (a typed one) asks for every line
            (chat_id, min(count, 2**63 - 1)),
        )
        return _beats(rows)

    async def first_beat_after(
        self, chat_id: str, after: int, *, players_only: bool = False
    ) -> Beat | None:
        """The story's first beat after event ``after`` (the player's first line, if asked)."""
        role = " AND role = 'user'" if players_only else ""
        row = await self.db.fetchone(
            f"SELECT * FROM turns WHERE chat_id = ? AND id > ?{role} ORDER BY id LIMIT 1",
            (chat_id, after),
        )
        return None if row is None else _beat(row)

    async def opening_beat(self, chat_id: str) -> tuple[int, bool] | None:
        """The story's first beat, and whether the player has written a line yet."""
        row = await self.db.fetchone(
            "SELECT MIN(id), SUM(CASE WHEN role = 'user' THEN 1 ELSE 0 END) FROM turns "
            "WHERE chat_id = ?",
            (chat_id,),
        )
        return None if row is None or row[0] is None else (int(row[0]), bool(row[1]))

    async def place_of(self, scene_id: int) -> int:
        """The container (place) a scene is set in; 0 if it has none."""
        row = await self.db.fetchone("SELECT container_id FROM scenes WHERE id = ?", (scene_id,))
        return int(row[0]) if row is not None and row[0] is not None else 0

    async def world_book(self, chat_id: str) -> WorldBook:
        """The chat's world-book settings and its entries, by number (what /lore list shows)."""

        return await self.db.read(lambda raw: _world_book(raw, chat_id))  # every prompt asks

    async def lore_number(self, chat_id: str, event_id: int) -> int | None:
        """The number the entry added by event ``event_id`` was given."""
        row = await self.db.fetchone(
            "SELECT number FROM lore_entries WHERE chat_id = ? AND event_id = ?",
            (chat_id, event_id),
        )
        return None if row is None else int(row[0])

    async def has_lore_entry(self, chat_id: str, number: int) -> bool:
        row = await self.db.fetchone(
            "SELECT 1 FROM lore_entries WHERE chat_id = ? AND number = ?", (chat_id, number)
        )
        return row is not None

    async def story_threads(self, chat_id: str) -> list[str]:
        """The titles of the plot threads the story's closed scenes left open, oldest first."""
        rows = await self.db.fetchall(
            "SELECT title FROM story_threads WHERE chat_id = ? ORDER BY id", (chat_id,)
        )
        return [r[0] for r in rows]

    # -- the reads of a turn, each gathering in one trip what several queries find --

    async def recall_candidates(
        self,
        chat_id: str,
        owner_id: str,
        *,
        recent: int,
        beat_ids: Collection[int],
        scene_ids: Collection[int],
        words: list[str],
        matching: int,
    ) -> tuple[list[Memory], list[Memory]]:
        """The owner's ``recent`` newest memories that repeat nothing the transcript shows
        (memories of ``beat_ids``, summaries of ``scene_ids``), and ``search_memories``,
        together."""

        def read(raw: Connection) -> tuple[list[Memory], list[Memory]]:
            return (
                _memories_not_shown(
                    raw, chat_id, owner_id, beat_ids=beat_ids, scene_ids=scene_ids, limit=recent
                ),
                _search_memories(raw, chat_id, owner_id, words, matching),
            )

        return await self.db.read(read)

    async def state_inputs(
        self,
        chat_id: str,
        sources: tuple[str, ...],
        present: tuple[str, ...],
        *,
        before: int,
    ) -> list[StateInputs]:
        """For each source: how it sees the others present, and what each viewer present
        (itself first) last saw it doing before beat ``before``, together."""

        def read(raw: Connection) -> list[StateInputs]:
            found = []
            for source in sources:
                others = tuple(p for p in present if p != source)
                viewers = tuple(dict.fromkeys((source, *present)))
                found.append(
                    StateInputs(
                        relationships=_relationships(raw, chat_id, source, others, ""),
                        seen_doing=_activities_seen_by(raw, chat_id, viewers, source, before),
                    )
                )
            return found

        return await self.db.read(read)

    async def open_turns(self) -> list[tuple[int, str]]:
        rows = await self.db.fetchall(
            "SELECT turn_started_id, payload_json FROM open_turns ORDER BY turn_started_id"
        )
        return [(r[0], r[1]) for r in rows]


def speaker_view_read(
    chat_id: str,
    speaker_id: str,
    present: tuple[str, ...],
    *,
    about: str,
    window: Callable[[int], int],
) -> Callable[[Connection], SpeakerView]:
    """What one character may know as it speaks (``SpeakerView``), read in one go: its
    ``relationships`` to the others present, ``activities_seen`` of everyone present, the
    ``world_book``, and the latest ``window(count)`` beats it was present for (count: how many
    it was), oldest first. A turn sends it along with its first write
    (``Database.write_then_read``)."""
    others = tuple(p for p in present if p != speaker_id)

    def read(raw: Connection) -> SpeakerView:
        return SpeakerView(
            relationships=_relationships(raw, chat_id, speaker_id, others, about),
            activities=_activities_seen(raw, chat_id, speaker_id, present, None),
            world_book=_world_book(raw, chat_id),
            beats=_witnessed_latest(raw, chat_id, speaker_id, window),
        )

    return read


NARRATION = "Narration"
"""How the player's lines read in a meanwhile scene, where "you" are not there to say them."""


def player_label(you_name: str, *, meanwhile: bool) -> str:
    return NARRATION if meanwhile else you_name


def speaker_label(beat: Beat, you_name: str, names: dict[str, str]) -> str:
    """Who said a beat, as a transcript line names them."""
    if beat.role == "user":
        return player_label(you_name, meanwhile=beat.meanwhile_scene_id is not None)
    return names.get(beat.speaker_id, beat.speaker_id)


def present_entities(scene: Scene) -> tuple[str, ...]:
    """Everyone present in a scene, "you" first when there."""
    others = tuple(p for p in scene.participants if p != YOU)
    return (YOU, *others) if YOU in scene.participants else others


def _relationship(
    raw: Connection, chat_id: str, source_id: str, target_id: str, about: str
) -> Relationship:
    key = (chat_id, source_id, target_id)
    row = raw.execute(
        "SELECT affinity, trust, relationship_summary FROM edges "
        "WHERE chat_id = ? AND source_id = ? AND target_id = ?",
        key,
    ).fetchone()
    facts = _known_facts(raw, key, about, FACTS_NEWEST, FACTS_MATCHING)
    if row is None:
        return Relationship(source_id, target_id, knowledge_facts=facts)
    return Relationship(
        source_id, target_id, affinity=row[0], trust=row[1], knowledge_facts=facts, summary=row[2]
    )


def _known_facts(
    raw: Connection,
    key: tuple[str, str, str],
    about: str,
    newest: int,
    matching: int,
) -> tuple[str, ...]:
    recent = raw.execute(
        "SELECT event_id, fact FROM edge_facts WHERE chat_id = ? AND source_id = ? "
        "AND target_id = ? ORDER BY event_id DESC, fact_key LIMIT ?",
        (*key, newest),
    ).fetchall()
    chosen = {(r[0], r[1]) for r in recent}
    words = [w for w in _WORD.findall(about.casefold()) if len(w) >= 4][:MATCH_WORDS]
    if words and matching > 0:
        # the newest facts of this edge holding a word of the line, through the edge's scope
        # in the full-text index, newest first, stopping at ``matching``: a fact learned long
        # ago still comes back. Whole words only: a prefix query ("word"*) merges every term it
        # begins, 10x dearer on a 10,000-fact edge
        found = recall.search_facts(raw, fact_scope(*key), words, matching)
        chosen |= {(r[0], r[1]) for r in found}
    return tuple(fact for _, fact in sorted(chosen))


WorldBook = tuple[dict[str, Any], list[tuple[int, LoreEntry]]]
"""A chat's world-book settings and its entries, by number."""


@dataclass(frozen=True, slots=True)
class SpeakerView:
    """What one character may know as it speaks, read in one trip to the store: how it sees
    the others, what it last saw everyone present doing, the chat's world book, and the beats
    it witnessed since its transcript's anchor (oldest first)."""

    relationships: list[Relationship]
    activities: dict[str, Activity]
    world_book: WorldBook
    beats: list[Beat]


@dataclass(frozen=True, slots=True)
class StateInputs:
    """What one character's state update after a beat starts from: how it saw each of the
    others, and what each viewer present had last seen it doing (None: nothing)."""

    relationships: list[Relationship]
    seen_doing: dict[str, Activity | None]


def _relationships(
    raw: Connection, chat_id: str, source_id: str, target_ids: tuple[str, ...], about: str
) -> list[Relationship]:
    return [_relationship(raw, chat_id, source_id, t, about) for t in target_ids]


def _activities_seen(
    raw: Connection,
    chat_id: str,
    viewer_id: str,
    entity_ids: tuple[str, ...],
    before: int | None,
) -> dict[str, Activity]:
    if not entity_ids:
        return {}
    marks = ",".join("?" * len(entity_ids))
    rows = raw.execute(
        "SELECT * FROM activity_views WHERE chat_id = ? AND viewer_id = ? "
        f"AND entity_id IN ({marks}) AND seen_at < ?",
        (chat_id, viewer_id, *entity_ids, 2**62 if before is None else before),
    ).fetchall()
    found = {r["entity_id"]: _activity(r) for r in rows}
    return {entity: found[entity] for entity in entity_ids if entity in found}


def _activities_seen_by(
    raw: Connection, chat_id: str, viewer_ids: tuple[str, ...], entity_id: str, before: int
) -> dict[str, Activity | None]:
    marks = ",".join("?" * len(viewer_ids))
    rows = raw.execute(
        "SELECT * FROM activity_views WHERE chat_id = ? AND entity_id = ? "
        f"AND viewer_id IN ({marks}) AND seen_at < ?",
        (chat_id, entity_id, *viewer_ids, before),
    ).fetchall()
    found = {r["viewer_id"]: _activity(r) for r in rows}
    return {viewer: found.get(viewer) for viewer in viewer_ids}


def _memories_not_shown(
    raw: Connection,
    chat_id: str,
    owner_id: str,
    *,
    beat_ids: Collection[int],
    scene_ids: Collection[int],
    limit: int,
) -> list[Memory]:
    unshown = ""
    if beat_ids:
        unshown += f" AND (beat_id IS NULL OR beat_id NOT IN ({','.join('?' * len(beat_ids))}))"
    if scene_ids:
        marks = ",".join("?" * len(scene_ids))
        unshown += f" AND (pov_summary = '' OR scene_id NOT IN ({marks}))"
    rows = raw.execute(
        f"SELECT * FROM memories WHERE chat_id = ? AND owner_id = ?{unshown} "
        "ORDER BY id DESC LIMIT ?",
        (chat_id, owner_id, *beat_ids, *scene_ids, limit),
    ).fetchall()
    return _memories(rows)


def _search_memories(
    raw: Connection, chat_id: str, owner_id: str, words: list[str], limit: int
) -> list[Memory]:
    rows = recall.search(raw, memory_scope(chat_id, owner_id), words, limit)
    return _memories(rows)


def _witnessed_latest(
    raw: Connection, chat_id: str, entity_id: str, how_many: Callable[[int], int]
) -> list[Beat]:
    found = raw.execute(
        "SELECT beats FROM witness_counts WHERE chat_id = ? AND entity_id = ?",
        (chat_id, entity_id),
    ).fetchone()
    count = 0 if found is None else found[0]
    rows = raw.execute(
        "SELECT t.* FROM turn_witnesses w JOIN turns t ON t.id = w.turn_id "
        "WHERE w.entity_id = ? AND w.chat_id = ? ORDER BY w.turn_id DESC LIMIT ?",
        (entity_id, chat_id, how_many(int(count))),
    ).fetchall()
    return _beats(rows[::-1])


def _world_book(raw: Connection, chat_id: str) -> WorldBook:
    settings_row = raw.execute(
        "SELECT settings_json FROM world_books WHERE chat_id = ?", (chat_id,)
    ).fetchone()
    rows = raw.execute(
        "SELECT number, entry_json FROM lore_entries WHERE chat_id = ? ORDER BY number",
        (chat_id,),
    ).fetchall()
    settings = json.loads(settings_row[0]) if settings_row is not None else {}
    return settings, [(int(row[0]), LoreEntry.model_validate_json(row[1])) for row in rows]
