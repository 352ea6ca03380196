"""Characters, the player's persona, and stored images."""

from __future__ import annotations

import base64
import sqlite3

from bot.store.events import AssetStored, BotAuthored, CharacterDeleted, YouAuthored
from bot.store.projector import handles
from bot.store.record import StoredEvent


@handles(BotAuthored)
def character_written(raw: sqlite3.Connection, event: StoredEvent[BotAuthored]) -> None:
    p = event.payload
    raw.execute(
        "INSERT OR REPLACE INTO characters "
        "(guild_id, id, name, nickname, creator_id, avatar, payload_json, updated_event_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
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
def character_deleted(raw: sqlite3.Connection, event: StoredEvent[CharacterDeleted]) -> None:
    p = event.payload
    raw.execute("DELETE FROM characters WHERE guild_id = ? AND id = ?", (p.guild_id, p.id))


@handles(YouAuthored)
def you_written(raw: sqlite3.Connection, event: StoredEvent[YouAuthored]) -> None:
    p = event.payload
    raw.execute(
        "INSERT OR REPLACE INTO yous (guild_id, owner_id, name, pronouns, persona) "
        "VALUES (?, ?, ?, ?, ?)",
        (p.guild_id, p.owner_id, p.name, p.pronouns, p.persona),
    )


@handles(AssetStored)
def asset_stored(raw: sqlite3.Connection, event: StoredEvent[AssetStored]) -> None:
    p = event.payload
    raw.execute(
        "INSERT OR IGNORE INTO assets (sha256, content_type, data) VALUES (?, ?, ?)",
        (p.sha256, p.content_type, base64.b64decode(p.data_b64)),
    )
