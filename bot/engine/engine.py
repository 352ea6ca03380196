"""The engine API that adapters (Discord cogs, the console, tests) call.

Adapters translate their world into these calls and render what comes back; every story rule
lives below this line. ``Engine`` only composes small services over one shared context, each
with one part of the story: ``characters``, ``chats``, ``turns``, ``history``, ``scenes``,
``lore``, and the read-only ``queries``. Anything that changes a chat runs inside that chat's
FIFO turn queue.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from bot.config import Settings
from bot.engine.busy import BusyListener
from bot.engine.context import StoryContext
from bot.engine.inflight import ChatLock, ChatQueues
from bot.engine.models import StoryModels
from bot.engine.services.characters import Characters
from bot.engine.services.chats import Chats
from bot.engine.services.history import History
from bot.engine.services.lore import Lore
from bot.engine.services.queries import Queries
from bot.engine.services.scenes import Scenes
from bot.engine.services.turns import Turns
from bot.llm import LLMClient
from bot.store import Database
from bot.store.views import Views

SHUTDOWN_GRACE_SECONDS = 5.0
"""How long shutdown waits for stopped replies to be marked and written before closing."""


class Engine:
    """The story engine. One per process; safe to call from many tasks at once."""

    def __init__(
        self,
        db: Database,
        llm: LLMClient,
        settings: Settings,
        *,
        clock: Callable[[], datetime] | None = None,
        chat_lock: ChatLock | None = None,
    ) -> None:
        """``chat_lock`` keeps each chat to one process when several share the story."""
        self.settings = settings
        self.ctx = StoryContext(
            db=db,
            views=Views(db),
            models=StoryModels(llm, settings.llm),
            settings=settings.engine,
            queues=ChatQueues(chat_lock),
        )
        if clock is not None:
            self.ctx.clock = clock
        self.characters = Characters(self.ctx)
        self.chats = Chats(self.ctx)
        self.turns = Turns(self.ctx)
        self.history = History(self.ctx)
        self.scenes = Scenes(self.ctx)
        self.lore = Lore(self.ctx)
        self.queries = Queries(self.ctx)

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

    def on_busy(self, listener: BusyListener) -> None:
        """Hear when a story is busy after a reply or on a scene's close (to show it)."""
        self.ctx.busy.subscribe(listener)
