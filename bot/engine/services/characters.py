"""The cast of a server: its characters and each player's "you"."""

from __future__ import annotations

import hashlib
from base64 import b64encode
from collections.abc import Mapping

from pydantic import ValidationError

from bot.engine.errors import (
    AvatarTooLarge,
    BadAvatarType,
    CharacterInUse,
    Invalid,
)
from bot.engine.services.base import Service
from bot.store import EventError, append, append_events, checked
from bot.store.events import (
    IMAGE_TYPES,
    MAX_IMAGE_BYTES,
    AssetStored,
    BotAuthored,
    CharacterDeleted,
    Payload,
    YouAuthored,
)
from bot.store.views import (
    Character,
    You,
)
from bot.validation import first_problem


class Characters(Service):
    """The cast of a server: its characters and each player's "you"."""

    async def author(
        self,
        fields: Mapping[str, object],
        *,
        guild_id: int = 0,
        creator_id: int = 0,
        avatar: tuple[bytes, str] | None = None,
    ) -> Character:
        """Write (or rewrite) a character of this server; a bad field raises StoryError."""
        payload = {**fields, "guild_id": guild_id, "creator_id": creator_id}
        existing = await self.ctx.views.character(guild_id, str(fields.get("id", "")))
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
        return await self.author(
            fields,
            guild_id=guild_id,
            creator_id=character.card.creator_id,
            avatar=(data, content_type),
        )

    async def delete(self, guild_id: int, character_id: str) -> None:
        await self._character(guild_id, character_id)
        for chat in await self.ctx.views.chats_of_guild(guild_id):
            if character_id in (chat.host_id, chat.guest_id):
                raise CharacterInUse(character_id, chat)
        await append(self.ctx.db, CharacterDeleted(id=character_id, guild_id=guild_id))

    async def all(self, guild_id: int) -> list[Character]:
        return await self.ctx.views.characters(guild_id)

    async def get(self, guild_id: int, character_id: str) -> Character | None:
        return await self.ctx.views.character(guild_id, character_id)

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
        return await self.ctx.views.you(guild_id, owner_id)

    async def you(self, guild_id: int, owner_id: int) -> You:
        return await self.ctx.views.you(guild_id, owner_id)
