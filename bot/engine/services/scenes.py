"""Scenes: closing one, the guest joining or leaving, meanwhile scenes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from bot.engine.context import Cast, load_cast
from bot.engine.errors import PremiseTooLong
from bot.engine.player_text import refuse_unwritable
from bot.engine.scenes import SceneClose, close_you_scene, guest_joins, guest_leaves
from bot.engine.scenes import end_meanwhile as close_meanwhile
from bot.engine.scenes import start_meanwhile as open_meanwhile
from bot.engine.services.base import Service
from bot.engine.turns import showing_place
from bot.store.events import MAX_TEXT


class Scenes(Service):
    """Scenes: closing one, the guest joining or leaving, meanwhile scenes."""

    @contextlib.asynccontextmanager
    async def _scene_change(self, chat_id: str) -> AsyncIterator[Cast]:
        """The chat's turn, told as busy: a close writes summaries, which takes a while."""
        async with self._turn(chat_id):
            cast = await load_cast(self.ctx, chat_id)
            async with self.ctx.busy.during(chat_id, showing_place(cast)):
                yield cast

    async def close(self, chat_id: str) -> SceneClose:
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
        if len(premise) > MAX_TEXT:
            raise PremiseTooLong(len(premise), MAX_TEXT)
        async with self._turn(chat_id):
            cast = await load_cast(self.ctx, chat_id)
            return await open_meanwhile(self.ctx, cast, thread_id=thread_id, premise=premise)

    async def end_meanwhile(self, chat_id: str) -> SceneClose:
        async with self._scene_change(chat_id) as cast:
            return await close_meanwhile(self.ctx, cast)
