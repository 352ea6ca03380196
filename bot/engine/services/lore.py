"""The story's world book: import, add, remove, and what would fire."""

from __future__ import annotations

from collections.abc import Mapping

from bot.cards.lorebook import Lorebook
from bot.engine.context import load_cast
from bot.engine.errors import (
    NotInStory,
)
from bot.engine.lore import add_entry, lore_now, remove_entry
from bot.engine.lore import import_world_book as replace_world_book
from bot.engine.lore import world_book as chat_world_book
from bot.engine.services.base import Service
from bot.engine.worldinfo import Activation
from bot.store.views import (
    Character,
)


class Lore(Service):
    """The story's world book: import, add, remove, and what would fire."""

    async def import_book(self, chat_id: str, data: bytes, filename: str) -> Lorebook:
        """Replace the story's world book with a SillyTavern world-info file's entries."""
        async with self._turn(chat_id):
            await load_cast(self.ctx, chat_id)
            return await replace_world_book(self.ctx, chat_id, data, filename)

    async def add(self, chat_id: str, fields: Mapping[str, object]) -> int:
        """Add an entry to the story's world book; returns its number."""
        async with self._turn(chat_id):
            await load_cast(self.ctx, chat_id)
            return await add_entry(self.ctx, chat_id, fields)

    async def remove(self, chat_id: str, number: int) -> None:
        async with self._turn(chat_id):
            await load_cast(self.ctx, chat_id)
            await remove_entry(self.ctx, chat_id, number)

    async def book(self, chat_id: str) -> Lorebook:
        return await chat_world_book(self.ctx, chat_id)

    async def why(
        self, chat_id: str, character_id: str | None = None, line: str = ""
    ) -> tuple[Character, Activation]:
        """What world info would fire for a character's next prompt (default: the host)."""
        cast = await load_cast(self.ctx, chat_id)
        speaker = cast.character(character_id) if character_id else cast.host
        if speaker is None:
            raise NotInStory(str(character_id))
        return speaker, await lore_now(self.ctx, cast, speaker, line)
