"""Characters, the player's persona, and stored images."""

from __future__ import annotations

import base64

from bot.store.events import AssetStored, BotAuthored, CharacterDeleted, YouAuthored
from bot.store.projector import handles
from bot.store.record import StoredEvent
from bot.store.sql import Connection


@handles(BotAuthored)
def character_written(raw: Connection, event: StoredEvent[BotAuthored]) -> None:
    p = event.payload
    raw.execute(
        "INSERT INTO characters "
        "(guild_id, id, name, nickname, creator_id, avatar, payload_json, updated_event_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (guild_id, id) DO UPDATE SET "
        "name = excluded.name, nickname = excluded.nickname, creator_id = excluded.creator_id, "
        "avatar = excluded.avatar, payload_json = excluded.payload_json, "
        "updated_event_id = excluded.updated_event_id",
        (
            p.guild_id,
            p.id,
            p.name,
            p.nickname,
            p.creator_id,
            p.avatar,
            p.model_dump_json(),
            event.id,
        ),
    )


@handles(CharacterDeleted)
def character_deleted(raw: Connection, event: StoredEvent[CharacterDeleted]) -> None:
    p = event.payload
    raw.execute("DELETE FROM characters WHERE guild_id = ? AND id = ?", (p.guild_id, p.id))


@handles(YouAuthored)
def you_written(raw: Connection, event: StoredEvent[YouAuthored]) -> None:
    p = event.payload
    raw.execute(
        "INSERT INTO yous (guild_id, owner_id, name, pronouns, persona) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (guild_id, owner_id) DO UPDATE SET name = excluded.name, "
        "pronouns = excluded.pronouns, persona = excluded.persona",
        (p.guild_id, p.owner_id, p.name, p.pronouns, p.persona),
    )


@handles(AssetStored)
def asset_stored(raw: Connection, event: StoredEvent[AssetStored]) -> None:
    p = event.payload
    raw.execute(
        "INSERT INTO assets (sha256, content_type, data) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        (p.sha256, p.content_type, base64.b64decode(p.data_b64)),
    )
