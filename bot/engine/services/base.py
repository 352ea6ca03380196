"""What every engine service shares: the story context, and a chat's turn."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from bot.engine.context import StoryContext
from bot.engine.errors import NoSuchCharacter, ShuttingDown
from bot.store.views import Character


class Service:
    """One part of the engine's API, over the context all parts share."""

    def __init__(self, ctx: StoryContext) -> None:
        self.ctx = ctx

    @contextlib.asynccontextmanager
    async def _turn(self, chat_id: str) -> AsyncIterator[None]:
        """This chat's turn (FIFO), refused once the engine is closing: anything that changes
        a chat runs inside it."""
        async with self.ctx.queues.turn(chat_id):
            if self.ctx.closing:
                raise ShuttingDown()
            yield

    async def _character(self, guild_id: int, character_id: str) -> Character:
        character = await self.ctx.views.character(guild_id, character_id)
        if character is None:
            raise NoSuchCharacter(character_id)
        return character
