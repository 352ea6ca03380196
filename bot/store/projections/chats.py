"""Chats and the world they hold: place, in-world time, weather, containers."""

from __future__ import annotations

import json

from bot.store import memo
from bot.store.events import CastChanged, ChatCreated, ChatEnded, ContainerCreated, WorldChanged
from bot.store.projector import handles
from bot.store.record import StoredEvent
from bot.store.sql import Connection


@handles(ChatCreated)
def chat_created(raw: Connection, event: StoredEvent[ChatCreated]) -> None:
    p = event.payload
    raw.execute(
        "INSERT INTO chats (id, guild_id, channel_id, owner_id, host_id, guest_id, world_time, "
        "narrative_anchor, weather, place, status, created_event_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?)",
        (
            p.id,
            p.guild_id,
            p.channel_id,
            p.owner_id,
            p.host_bot_id,
            p.guest_bot_id,
            p.initial_time,
            p.narrative_anchor,
            p.weather,
            p.place,
            event.id,
        ),
    )
    _cast_known(raw, p.id, p.host_bot_id, p.guest_bot_id)


def cast_of(raw: Connection, chat_id: str) -> tuple[str | None, str | None]:
    """The chat's host and guest (None, None for a chat not in the story); kept in the batch
    memo, since every beat with no witnesses written on it asks."""
    casts = memo.table(raw, "chat_cast")
    if casts is not None and (known := casts.get(chat_id)) is not None:
        return known  # type: ignore[no-any-return]
    row = raw.execute("SELECT host_id, guest_id FROM chats WHERE id = ?", (chat_id,)).fetchone()
    if row is None:
        return None, None  # not kept: the chat may still be created later in the batch
    return _cast_known(raw, chat_id, row[0], row[1])


def _cast_known(
    raw: Connection, chat_id: str, host: str | None, guest: str | None
) -> tuple[str | None, str | None]:
    casts = memo.table(raw, "chat_cast")
    if casts is not None:
        casts[chat_id] = (host, guest)
    return host, guest


@handles(ChatEnded)
def chat_ended(raw: Connection, event: StoredEvent[ChatEnded]) -> None:
    p = event.payload
    raw.execute("UPDATE chats SET status = 'ended' WHERE id = ?", (p.chat_id,))


@handles(WorldChanged)
def world_changed(raw: Connection, event: StoredEvent[WorldChanged]) -> None:
    p = event.payload
    raw.execute(
        "UPDATE chats SET world_time = COALESCE(?, world_time), place = COALESCE(?, place), "
        "weather = COALESCE(?, weather), narrative_anchor = COALESCE(?, narrative_anchor) "
        "WHERE id = ?",
        (p.time, p.place, p.weather, p.narrative_anchor, p.chat_id),
    )


@handles(ContainerCreated)
def container_created(raw: Connection, event: StoredEvent[ContainerCreated]) -> None:
    p = event.payload
    raw.execute(
        "INSERT INTO containers (id, chat_id, name, type, properties_json) VALUES (?, ?, ?, ?, ?)",
        (event.id, p.chat_id, p.name, p.type, json.dumps(p.properties, sort_keys=True)),
    )


@handles(CastChanged)
def cast_changed(raw: Connection, event: StoredEvent[CastChanged]) -> None:
    p = event.payload
    raw.execute("UPDATE chats SET guest_id = ? WHERE id = ?", (p.guest_bot_id, p.chat_id))
    casts = memo.table(raw, "chat_cast")
    if casts is not None:
        casts.pop(p.chat_id, None)  # asked again: the chat's row says whether it exists
