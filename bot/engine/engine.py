"""The engine API that adapters (Discord cogs, the console, tests) call.

Adapters translate their world into these calls and render what comes back; every story rule
lives below this line. Anything that changes a chat runs inside that chat's FIFO turn queue.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
from base64 import b64encode
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import ValidationError

from bot.cards.lorebook import Lorebook
from bot.config import Settings
from bot.engine.beat_events import turn_events
from bot.engine.busy import BusyListener
from bot.engine.context import Cast, StoryContext, load_cast
from bot.engine.edits import edit_player_line
from bot.engine.errors import (
    AvatarTooLarge,
    BadAvatarType,
    ChannelHasStory,
    CharacterInUse,
    EditOutOfBounds,
    GuestIsHost,
    Invalid,
    NoOpenStory,
    NoSuchCharacter,
    NotABeat,
    NothingToChange,
    NotInStory,
    OutOfCharacter,
    SceneMovedOn,
    ShuttingDown,
)
from bot.engine.export import chat_log, story_markdown
from bot.engine.history import (
    FeelingChange,
    Rewound,
    beat_by_id,
    beat_by_message,
    is_latest_player_line,
    latest_reply,
    rewind_from,
    rewind_reply,
    rewind_to,
    take_back,
)
from bot.engine.history import why as feeling_changes
from bot.engine.lore import add_entry, lore_now, remove_entry
from bot.engine.lore import import_world_book as replace_world_book
from bot.engine.lore import world_book as chat_world_book
from bot.engine.models import StoryModels
from bot.engine.opening import chosen_greeting, next_greeting, relationship_seeds, show_greeting
from bot.engine.opening import greetings as host_greetings
from bot.engine.parse import is_out_of_character
from bot.engine.player_text import player_line, refuse_unwritable
from bot.engine.recall import fts_query
from bot.engine.scenes import SceneClose, close_you_scene, guest_joins, guest_leaves
from bot.engine.scenes import end_meanwhile as close_meanwhile
from bot.engine.scenes import start_meanwhile as open_meanwhile
from bot.engine.sink import BeatSink, Speaker
from bot.engine.speakers import choose_speaker, next_meanwhile_speaker
from bot.engine.turns import TurnResult, play_beat, showing_place, speaker_of
from bot.engine.worldinfo import Activation
from bot.llm import LLMClient
from bot.store import YOU, Batch, Database, EventError, append, append_events, checked
from bot.store.checkpoints import checkpoint_text
from bot.store.events import (
    IMAGE_TYPES,
    MAX_IMAGE_BYTES,
    AssetStored,
    AssistantTurn,
    BotAuthored,
    CharacterDeleted,
    ChatCreated,
    ChatEnded,
    ContainerCreated,
    MeanwhileSceneClosed,
    Payload,
    SceneOpened,
    TurnMessagesLinked,
    TurnStarted,
    WorldChanged,
    YouAuthored,
)
from bot.store.views import (
    Beat,
    Character,
    Chat,
    ChatStatus,
    Memory,
    Relationship,
    Scene,
    Views,
    You,
)
from bot.store.views import present_entities as _present
from bot.validation import all_problems, first_problem

log = logging.getLogger(__name__)


SHUTDOWN_GRACE_SECONDS = 5.0
"""How long shutdown waits for stopped replies to be marked and written before closing."""

SceneChoice = Literal["auto", "you"] | int
"""Where a player's line was written: anywhere, the story channel, or one meanwhile scene."""


def _check_scene(cast: Cast, scene: SceneChoice) -> None:
    playing = cast.meanwhile.id if cast.meanwhile is not None else "you"
    if scene in ("auto", playing):
        return
    raise SceneMovedOn(cast.meanwhile)


@dataclass(frozen=True, slots=True)
class ChatEnd:
    chat: Chat
    meanwhile_thread_id: int
    """The thread of a meanwhile scene the end closed (0 if none): the adapter archives it."""


@dataclass(frozen=True, slots=True)
class ChatStart:
    chat: Chat
    scene_id: int
    kickoff: Speaker
    kickoff_text: str
    kickoff_turn_id: int | None


class Engine:
    """The story engine. One per process; safe to call from many tasks at once."""

    def __init__(
        self,
        db: Database,
        llm: LLMClient,
        settings: Settings,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings
        self.views = Views(db)
        self.ctx = StoryContext(
            db=db,
            views=self.views,
            models=StoryModels(llm, settings.llm),
            settings=settings.engine,
        )
        if clock is not None:
            self.ctx.clock = clock

    @property
    def closing(self) -> bool:
        """True once ``close`` was called: no new beat starts."""
        return self.ctx.closing

    async def close(self, *, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        """Stop every reply now (each is written, marked stopped) and refuse new beats.

        Waits up to ``grace`` seconds for beats already past their stream to be written, so
        the store can be closed under no one.
        """
        self.ctx.closing = True
        self.ctx.in_flight.cancel_all()
        await self.ctx.queues.drained(grace)

    @contextlib.asynccontextmanager
    async def _turn(self, chat_id: str) -> AsyncIterator[None]:
        """This chat's turn (FIFO), refused once the engine is closing."""
        async with self.ctx.queues.turn(chat_id):
            if self.ctx.closing:
                raise ShuttingDown()
            yield

    def queued(self, chat_id: str) -> int:
        """Beats and story changes of this chat running or waiting their turn."""
        return self.ctx.queues.pending(chat_id)

    @property
    def in_flight(self) -> dict[str, object]:
        """Chat id -> the task streaming its reply right now (read-only view for adapters)."""
        return dict(self.ctx.in_flight.tasks)

    # -- characters and you -------------------------------------------------------------------

    async def author_character(
        self,
        fields: Mapping[str, object],
        *,
        guild_id: int = 0,
        creator_id: int = 0,
        avatar: tuple[bytes, str] | None = None,
    ) -> Character:
        """Write (or rewrite) a character of this server; a bad field raises StoryError."""
        payload = {**fields, "guild_id": guild_id, "creator_id": creator_id}
        existing = await self.views.character(guild_id, str(fields.get("id", "")))
        if existing is not None:
            payload["creator_id"] = existing.card.creator_id or creator_id
            payload.setdefault("avatar", existing.card.avatar)
        events: list[Payload] = []
        if avatar is not None:
            events.append(self._asset(*avatar))
            payload["avatar"] = hashlib.sha256(avatar[0]).hexdigest()
        try:
            card = BotAuthored.model_validate(payload)
        except ValidationError as exc:
            raise Invalid("character", first_problem(exc, root="character")) from None
        events.append(card)
        await append_events(self.ctx.db, events)
        return Character(guild_id, card)

    def _asset(self, data: bytes, content_type: str) -> AssetStored:
        if content_type not in IMAGE_TYPES:
            raise BadAvatarType(content_type)
        if len(data) > MAX_IMAGE_BYTES:
            raise AvatarTooLarge(len(data), MAX_IMAGE_BYTES)
        return AssetStored(
            sha256=hashlib.sha256(data).hexdigest(),
            content_type=content_type,
            data_b64=b64encode(data).decode("ascii"),
        )

    async def set_avatar(
        self, guild_id: int, character_id: str, data: bytes, content_type: str
    ) -> Character:
        character = await self._character(guild_id, character_id)
        fields = character.card.model_dump()
        return await self.author_character(
            fields,
            guild_id=guild_id,
            creator_id=character.card.creator_id,
            avatar=(data, content_type),
        )

    async def delete_character(self, guild_id: int, character_id: str) -> None:
        await self._character(guild_id, character_id)
        for chat in await self.views.chats_of_guild(guild_id):
            if character_id in (chat.host_id, chat.guest_id):
                raise CharacterInUse(character_id, chat)
        await append(self.ctx.db, CharacterDeleted(id=character_id, guild_id=guild_id))

    async def characters(self, guild_id: int) -> list[Character]:
        return await self.views.characters(guild_id)

    async def character(self, guild_id: int, character_id: str) -> Character | None:
        return await self.views.character(guild_id, character_id)

    async def _character(self, guild_id: int, character_id: str) -> Character:
        character = await self.views.character(guild_id, character_id)
        if character is None:
            raise NoSuchCharacter(character_id)
        return character

    async def set_you(
        self,
        *,
        guild_id: int = 0,
        owner_id: int = 0,
        name: str,
        pronouns: str = "",
        persona: str = "",
    ) -> You:
        fields = {
            "name": name.strip(),
            "pronouns": pronouns.strip(),
            "persona": persona.strip(),
            "owner_id": owner_id,
            "guild_id": guild_id,
        }
        try:
            await append(self.ctx.db, checked(YouAuthored, fields))
        except EventError as exc:
            raise Invalid("you", str(exc).removeprefix("invalid you_authored payload: ")) from None
        return await self.views.you(guild_id, owner_id)

    async def you(self, guild_id: int, owner_id: int) -> You:
        return await self.views.you(guild_id, owner_id)

    # -- chats --------------------------------------------------------------------------------

    async def start_chat(
        self,
        *,
        host_id: str,
        guest_id: str | None = None,
        place: str = "",
        time: str = "",
        weather: str = "",
        narrative_anchor: str = "Day 1",
        guild_id: int = 0,
        channel_id: int = 0,
        owner_id: int = 0,
        chat_id: str | None = None,
        greeting: int = 0,
    ) -> ChatStart:
        """Open a story: the chat, its first place and scene, and the host's kickoff beat.

        ``greeting`` picks the host's opening: 0 the card's first message, 1… its alternates.
        """
        existing = await self.views.chat_in_channel(channel_id) if channel_id else None
        if existing is not None:
            raise ChannelHasStory(existing)
        host = await self._character(guild_id, host_id)
        if guest_id == host_id:
            raise GuestIsHost()
        guest = await self._character(guild_id, guest_id) if guest_id else None
        new_id = chat_id or f"{channel_id or 'console'}-{secrets.token_hex(3)}"
        you = await self.views.you(guild_id, owner_id)
        kickoff = chosen_greeting(host, you.name, greeting)
        participants = [YOU, host.id] + ([guest.id] if guest else [])
        world_time = time.strip() or self.ctx.now()
        batch = Batch()
        try:
            batch.add(
                ChatCreated(
                    id=new_id,
                    host_bot_id=host.id,
                    guest_bot_id=guest.id if guest else None,
                    initial_time=world_time,
                    narrative_anchor=narrative_anchor or "Day 1",
                    weather=weather.strip(),
                    place=place.strip(),
                    owner_id=owner_id,
                    guild_id=guild_id,
                    channel_id=channel_id,
                )
            )
            container = batch.add(
                ContainerCreated(chat_id=new_id, name=place.strip() or "somewhere", type="place")
            )
        except ValidationError as exc:
            raise Invalid("story", all_problems(exc, root="(payload)")) from None
        scene = batch.later(
            SceneOpened,
            chat_id=new_id,
            container_id=container,
            started_at=world_time,
            participants=participants,
        )
        cast = [host] if guest is None else [host, guest]
        batch.extend(relationship_seeds(new_id, cast, you.name))
        opening = None
        if kickoff.strip():
            opening = batch.later(
                AssistantTurn,
                chat_id=new_id,
                scene_id=scene,
                speaker_id=host.id,
                text=kickoff,
                present_set_kind="you_host_guest" if guest else "you_host",
                witnesses=participants,
            )
        try:
            ids = await append_events(self.ctx.db, batch)
        except EventError as exc:
            raise Invalid("story", str(exc)) from None
        chat = await self.views.chat(new_id)
        assert chat is not None
        return ChatStart(
            chat=chat,
            scene_id=ids[scene.index],
            kickoff=speaker_of(host),
            kickoff_text=kickoff,
            kickoff_turn_id=ids[opening.index] if opening is not None else None,
        )

    async def greetings(self, guild_id: int, owner_id: int, host_id: str) -> list[str]:
        """The host's greetings as this player would see them (0: the card's first message)."""
        host = await self._character(guild_id, host_id)
        you = await self.views.you(guild_id, owner_id)
        return host_greetings(host, you.name)

    async def end_chat(self, chat_id: str) -> ChatEnd:
        """End the story: a reply streaming now stops, an open meanwhile scene closes with it."""
        self.ctx.in_flight.cancel(chat_id)
        async with self._turn(chat_id):
            chat = await self.views.chat(chat_id)
            if chat is None or chat.status != "open":
                raise NoOpenStory(chat_id)
            meanwhile = await self.views.open_scene(chat_id, "meanwhile")
            events: list[Payload] = []
            if meanwhile is not None:
                closed = MeanwhileSceneClosed(
                    scene_id=meanwhile.id, closed_at=chat.world_time, chat_id=chat_id
                )
                events.append(closed)
            events.append(ChatEnded(chat_id=chat_id))
            await append_events(self.ctx.db, events)
        return ChatEnd(chat, meanwhile.thread_id if meanwhile is not None else 0)

    async def set_world(
        self,
        chat_id: str,
        *,
        time: str | None = None,
        place: str | None = None,
        weather: str | None = None,
        narrative_anchor: str | None = None,
    ) -> Chat:
        """Move the story's clock, place or weather on (None leaves a field as it is)."""
        changes = {
            "time": time,
            "place": place,
            "weather": weather,
            "narrative_anchor": narrative_anchor,
        }
        given = {key: value.strip() for key, value in changes.items() if value is not None}
        if not given:
            raise NothingToChange()
        async with self._turn(chat_id):
            await load_cast(self.ctx, chat_id)
            try:
                await append(self.ctx.db, checked(WorldChanged, {"chat_id": chat_id, **given}))
            except EventError as exc:
                raise Invalid("world change", str(exc)) from None
        chat = await self.views.chat(chat_id)
        assert chat is not None
        return chat

    async def chat_in_channel(self, channel_id: int) -> Chat | None:
        return await self.views.chat_in_channel(channel_id)

    async def chat(self, chat_id: str) -> Chat | None:
        return await self.views.chat(chat_id)

    async def scene(self, scene_id: int) -> Scene | None:
        return await self.views.scene(scene_id)

    async def latest_beat(self, chat_id: str) -> Beat | None:
        """The story's newest beat (so an adapter can tell whether a reply is the latest)."""
        return await self.views.last_beat(chat_id)

    async def open_meanwhile(self, chat_id: str) -> Scene | None:
        """The meanwhile scene being played in this chat, if one is open."""
        return await self.views.open_scene(chat_id, "meanwhile")

    async def meanwhile_in_thread(self, thread_id: int) -> tuple[Chat, int] | None:
        scene = await self.views.meanwhile_in_thread(thread_id)
        if scene is None:
            return None
        chat = await self.views.chat(scene.chat_id)
        return None if chat is None else (chat, scene.id)

    async def link_messages(self, chat_id: str, turn_id: int, message_ids: list[int]) -> None:
        """Remember which adapter messages show a beat (for rewinds, edits and ⛔)."""
        linked = TurnMessagesLinked(chat_id=chat_id, turn_id=turn_id, message_ids=message_ids)
        await append(self.ctx.db, linked)

    # -- turns --------------------------------------------------------------------------------

    async def take_turn(
        self,
        chat_id: str,
        prose: str,
        sink: BeatSink,
        *,
        author_id: int = 0,
        message_id: int = 0,
        scene: SceneChoice = "auto",
    ) -> TurnResult:
        """The player's beat. While a meanwhile scene is open it steers that scene.

        ``scene`` says where the line was written, checked when its turn comes (it may wait
        behind others): ``"you"`` for the story channel, a meanwhile scene's id for its thread.
        If that scene is no longer the one being played, the line is refused, not misplaced.
        """
        text = player_line(prose, self.ctx.settings.max_turn_chars)
        if is_out_of_character(text):
            raise OutOfCharacter()
        async with self._turn(chat_id):
            cast = await load_cast(self.ctx, chat_id)
            _check_scene(cast, scene)
            if cast.meanwhile is not None and cast.guest is not None:
                last = await self.views.last_meanwhile_speaker(cast.meanwhile.id)
                speaker = next_meanwhile_speaker(cast.host, cast.guest, last)
            else:
                present_guest = (
                    cast.guest if cast.guest and cast.guest.id in cast.scene.participants else None
                )
                speaker = choose_speaker(text, cast.host, present_guest)
            return await play_beat(
                self.ctx, cast, speaker, text, sink, author_id=author_id, message_id=message_id
            )

    async def meanwhile_beats(
        self, chat_id: str, beats: int, sink_for_beat: Callable[[], BeatSink]
    ) -> list[TurnResult]:
        """Auto mode: host and guest take up to ``beats`` beats on their own (capped)."""
        count = max(0, min(beats, self.ctx.settings.meanwhile_max_beats))
        results: list[TurnResult] = []
        for _ in range(count):
            async with self._turn(chat_id):
                cast = await load_cast(self.ctx, chat_id)
                if cast.meanwhile is None or cast.guest is None:
                    break
                last = await self.views.last_meanwhile_speaker(cast.meanwhile.id)
                speaker = next_meanwhile_speaker(cast.host, cast.guest, last)
                result = await play_beat(self.ctx, cast, speaker, None, sink_for_beat())
            results.append(result)
            if result.status != "done":
                break
        return results

    def cancel(self, chat_id: str) -> bool:
        """Stop the reply streaming in this chat now; its text so far stays, marked stopped."""
        return self.ctx.in_flight.cancel(chat_id)

    async def recover_interrupted(self) -> int:
        """Close every turn a crash cut off mid-stream, so no half-done turn stays open.

        The beat is written as the pipeline would have written a failed one (same witnesses,
        same line it answers), keeping the text last checkpointed: what the player saw.
        """
        closed = 0
        for started_id, raw in await self.views.open_turns():
            started = TurnStarted.model_validate_json(raw)
            text = await checkpoint_text(self.ctx.db, started_id)
            beat = turn_events(started, started_id, text=text, status="failed")
            await append_events(self.ctx.db, beat.batch)
            closed += 1
            log.warning(
                "closed turn %d of chat %s, cut off by a restart (%d characters kept)",
                started_id,
                started.chat_id,
                len(text),
            )
        return closed

    # -- steering back ------------------------------------------------------------------------

    async def regenerate(self, chat_id: str, sink: BeatSink) -> tuple[Rewound, TurnResult]:
        """Replace the latest reply with a new one by the same character.

        The old beat leaves the story (its memories and relationship changes with it); the
        player's line it answered stays and is answered again.
        """
        async with self._turn(chat_id):
            reply, player = await latest_reply(self.ctx, chat_id)
            cast = await load_cast(self.ctx, chat_id)
            greeting = await next_greeting(self.ctx, cast, reply)
            rewound = await rewind_reply(self.ctx, chat_id, reply, player)
            if greeting is not None:  # the opening, before the player's first line
                shown = await show_greeting(self.ctx, cast, cast.scene, greeting, sink)
                return rewound, shown
            cast = await load_cast(self.ctx, chat_id)
            speaker = cast.character(reply.speaker_id) or cast.host
            result = await play_beat(self.ctx, cast, speaker, None, sink, answering=player)
            return rewound, result

    async def _beat_of_message(self, chat_id: str, message_id: int) -> Beat:
        beat = await beat_by_message(self.ctx, chat_id, message_id)
        if beat is None:
            raise NotABeat()
        return beat

    async def rewind_to_message(self, chat_id: str, message_id: int) -> Rewound:
        """Return the story to right after the beat this message shows."""
        async with self._turn(chat_id):
            beat = await self._beat_of_message(chat_id, message_id)
            return await rewind_to(self.ctx, chat_id, beat)

    async def rewind_to_turn(self, chat_id: str, turn_id: int) -> Rewound:
        async with self._turn(chat_id):
            beat = await beat_by_id(self.ctx, chat_id, turn_id)
            if beat is None:
                raise NotABeat(turn_id)
            return await rewind_to(self.ctx, chat_id, beat)

    async def rewind_from_turn(self, chat_id: str, turn_id: int) -> Rewound:
        """Take beat ``turn_id`` and everything after it out of the story."""
        async with self._turn(chat_id):
            beat = await beat_by_id(self.ctx, chat_id, turn_id)
            if beat is None:
                raise NotABeat(turn_id)
            return await rewind_from(self.ctx, chat_id, beat)

    async def take_back_message(self, chat_id: str, message_id: int) -> Rewound:
        """The player deleted their latest line: it and the reply to it leave the story."""
        async with self._turn(chat_id):
            beat = await self._beat_of_message(chat_id, message_id)
            return await take_back(self.ctx, chat_id, beat)

    async def edit_message(self, chat_id: str, message_id: int, new_prose: str) -> bool:
        """The player edited a line: the story's text follows.

        True if the text changed and it is the latest line (so a regenerate makes sense).
        """
        text = new_prose.strip()
        if not text or len(text) > self.ctx.settings.max_turn_chars:
            raise EditOutOfBounds(self.ctx.settings.max_turn_chars)
        refuse_unwritable(text, "the edited line")
        async with self._turn(chat_id):
            beat = await self._beat_of_message(chat_id, message_id)
            if beat.text == text:
                return False  # an update that is no edit (an embed or a link preview arrived)
            await edit_player_line(self.ctx, chat_id, beat, text)
            return await is_latest_player_line(self.ctx, chat_id, beat)

    async def why(self, chat_id: str, source_id: str, target_id: str) -> list[FeelingChange]:
        return await feeling_changes(self.ctx, chat_id, source_id, target_id)

    # -- world info ---------------------------------------------------------------------------

    async def import_world_book(self, chat_id: str, data: bytes, filename: str) -> Lorebook:
        """Replace the story's world book with a SillyTavern world-info file's entries."""
        async with self._turn(chat_id):
            await load_cast(self.ctx, chat_id)
            return await replace_world_book(self.ctx, chat_id, data, filename)

    async def add_lore(self, chat_id: str, fields: Mapping[str, object]) -> int:
        """Add an entry to the story's world book; returns its number."""
        async with self._turn(chat_id):
            await load_cast(self.ctx, chat_id)
            return await add_entry(self.ctx, chat_id, fields)

    async def remove_lore(self, chat_id: str, number: int) -> None:
        async with self._turn(chat_id):
            await load_cast(self.ctx, chat_id)
            await remove_entry(self.ctx, chat_id, number)

    async def world_book(self, chat_id: str) -> Lorebook:
        return await chat_world_book(self.ctx, chat_id)

    async def lore_why(
        self, chat_id: str, character_id: str | None = None, line: str = ""
    ) -> tuple[Character, Activation]:
        """What world info would fire for a character's next prompt (default: the host)."""
        cast = await load_cast(self.ctx, chat_id)
        speaker = cast.character(character_id) if character_id else cast.host
        if speaker is None:
            raise NotInStory(str(character_id))
        return speaker, await lore_now(self.ctx, cast, speaker, line)

    # -- scenes -------------------------------------------------------------------------------

    def on_busy(self, listener: BusyListener) -> None:
        """Hear when a story is busy after a reply or on a scene's close (to show it)."""
        self.ctx.busy.subscribe(listener)

    @contextlib.asynccontextmanager
    async def _scene_change(self, chat_id: str) -> AsyncIterator[Cast]:
        """The chat's turn, told as busy: a close writes summaries, which takes a while."""
        async with self._turn(chat_id):
            cast = await load_cast(self.ctx, chat_id)
            async with self.ctx.busy.during(chat_id, showing_place(cast)):
                yield cast

    async def close_scene(self, chat_id: str) -> SceneClose:
        """Close the open scene (the meanwhile one if open) and, for a you-scene, open the next."""
        async with self._scene_change(chat_id) as cast:
            if cast.meanwhile is not None:
                return await close_meanwhile(self.ctx, cast)
            return await close_you_scene(self.ctx, cast)

    async def guest_join(self, chat_id: str, character_id: str | None = None) -> SceneClose:
        async with self._scene_change(chat_id) as cast:
            return await guest_joins(self.ctx, cast, character_id)

    async def guest_leave(self, chat_id: str, character_id: str | None = None) -> SceneClose:
        async with self._scene_change(chat_id) as cast:
            return await guest_leaves(self.ctx, cast, character_id)

    async def start_meanwhile(self, chat_id: str, *, thread_id: int = 0, premise: str = "") -> int:
        refuse_unwritable(premise, "the premise")
        async with self._turn(chat_id):
            cast = await load_cast(self.ctx, chat_id)
            return await open_meanwhile(self.ctx, cast, thread_id=thread_id, premise=premise)

    async def end_meanwhile(self, chat_id: str) -> SceneClose:
        async with self._scene_change(chat_id) as cast:
            return await close_meanwhile(self.ctx, cast)

    # -- read models --------------------------------------------------------------------------

    async def status(self, chat_id: str) -> ChatStatus:
        cast = await load_cast(self.ctx, chat_id)
        scene = cast.scene
        present = _present(scene)
        return ChatStatus(
            chat=cast.chat,
            scene=scene,
            meanwhile=cast.meanwhile,
            present=present,
            names=cast.names(),
            activities=await self.views.activities_seen(chat_id, YOU, present),
        )

    async def memories(
        self, chat_id: str, owner_id: str, *, query: str = "", limit: int = 10
    ) -> list[Memory]:
        """A character's own memories in this chat, newest first (best matches with a query)."""
        if query:
            return await self.views.search_memories(chat_id, owner_id, fts_query(query), limit)
        return await self.views.memories(chat_id, owner_id, limit=limit)

    async def relationship(self, chat_id: str, source_id: str, target_id: str) -> Relationship:
        return await self.views.relationship(chat_id, source_id, target_id)

    async def export_chat(self, chat_id: str) -> tuple[str, str]:
        """The story as Markdown and the chat's log as JSON lines (restorable by import-log)."""
        return await story_markdown(self.ctx, chat_id), await chat_log(self.ctx, chat_id)
