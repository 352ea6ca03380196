"""Read-only questions adapters ask: the read model, plus what it takes a story to answer."""

from __future__ import annotations

from bot.engine.context import StoryContext, load_cast
from bot.engine.export import chat_log, story_markdown
from bot.engine.recall import cue_words
from bot.store import YOU
from bot.store.views import Chat, ChatStatus, Memory, Scene, Views, present_entities


class Queries(Views):
    """Everything ``Views`` answers, and the reads that need a chat's cast or its log."""

    def __init__(self, ctx: StoryContext) -> None:
        super().__init__(ctx.db)
        self._ctx = ctx

    async def open_meanwhile(self, chat_id: str) -> Scene | None:
        """The meanwhile scene being played in this chat, if one is open."""
        return await self.open_scene(chat_id, "meanwhile")

    async def story_of_thread(self, thread_id: int) -> tuple[Chat, int] | None:
        """The chat and meanwhile scene an adapter's thread shows, if it shows one."""
        scene = await self.meanwhile_in_thread(thread_id)
        if scene is None:
            return None
        chat = await self.chat(scene.chat_id)
        return None if chat is None else (chat, scene.id)

    async def status(self, chat_id: str) -> ChatStatus:
        """The story as the player sees it: the scene, who is there, what "you" saw them do."""
        cast = await load_cast(self._ctx, chat_id)
        scene = cast.scene
        present = present_entities(scene)
        return ChatStatus(
            chat=cast.chat,
            scene=scene,
            meanwhile=cast.meanwhile,
            present=present,
            names=cast.names(),
            activities=await self.activities_seen(chat_id, YOU, present),
        )

    async def own_memories(
        self, chat_id: str, owner_id: str, *, query: str = "", limit: int = 10
    ) -> list[Memory]:
        """A character's own memories in this chat, newest first (best matches with a query)."""
        if query:
            return await self.search_memories(chat_id, owner_id, cue_words(query), limit)
        return await self.memories(chat_id, owner_id, limit=limit)

    async def export(self, chat_id: str) -> tuple[str, str]:
        """The story as Markdown and the chat's log as JSON lines (restorable by import-log)."""
        return await story_markdown(self._ctx, chat_id), await chat_log(self._ctx, chat_id)
