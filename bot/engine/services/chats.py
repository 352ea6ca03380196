"""Stories opened in channels: start, end, and the world they are set in."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from pydantic import ValidationError

from bot.engine.context import load_cast
from bot.engine.errors import (
    ChannelHasStory,
    GuestIsHost,
    Invalid,
    NoOpenStory,
    NothingToChange,
)
from bot.engine.opening import chosen_greeting, relationship_seeds
from bot.engine.opening import greetings as host_greetings
from bot.engine.services.base import Service
from bot.engine.sink import Speaker
from bot.engine.turns import speaker_of
from bot.store import YOU, Batch, EventError, append, append_events, checked
from bot.store.events import (
    AssistantTurn,
    ChatCreated,
    ChatEnded,
    ContainerCreated,
    MeanwhileSceneClosed,
    Payload,
    SceneOpened,
    WorldChanged,
)
from bot.store.views import (
    Chat,
)
from bot.validation import all_problems


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


class Chats(Service):
    """Stories opened in channels: start, end, and the world they are set in."""

    async def start(
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
        existing = await self.ctx.views.chat_in_channel(channel_id) if channel_id else None
        if existing is not None:
            raise ChannelHasStory(existing)
        host = await self._character(guild_id, host_id)
        if guest_id == host_id:
            raise GuestIsHost()
        guest = await self._character(guild_id, guest_id) if guest_id else None
        new_id = chat_id or f"{channel_id or 'console'}-{secrets.token_hex(3)}"
        you = await self.ctx.views.you(guild_id, owner_id)
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
            scene = batch.later(
                SceneOpened,
                chat_id=new_id,
                container_id=container,
                started_at=world_time,
                participants=participants,
            )
            cast = [host] if guest is None else [host, guest]
            # a card's view of you, its macros filled in, may outgrow the edge's summary
            batch.extend(relationship_seeds(new_id, cast, you.name))
        except ValidationError as exc:
            raise Invalid("story", all_problems(exc, root="(payload)")) from None
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
        chat = await self.ctx.views.chat(new_id)
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
        you = await self.ctx.views.you(guild_id, owner_id)
        return host_greetings(host, you.name)

    async def end(self, chat_id: str) -> ChatEnd:
        """End the story: a reply streaming now stops, an open meanwhile scene closes with it."""
        self.ctx.in_flight.cancel(chat_id)
        async with self._turn(chat_id):
            chat = await self.ctx.views.chat(chat_id)
            if chat is None or chat.status != "open":
                raise NoOpenStory(chat_id)
            meanwhile = await self.ctx.views.open_scene(chat_id, "meanwhile")
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
        chat = await self.ctx.views.chat(chat_id)
        assert chat is not None
        return chat
