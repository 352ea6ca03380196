"""Never silent: adapters hear when a story is busy after a reply, so they can show it.

After a reply has streamed, the world still moves (labels, feelings, facts; a scene's
summaries): on a small local model that takes seconds. The engine says when that work starts
and ends for a place (the story's channel, or a meanwhile scene's thread); Discord shows typing
there, the console a status line that clears.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

log = logging.getLogger(__name__)

BusyListener = Callable[[str, int, bool], Awaitable[None]]
"""(chat id, where it shows: a channel or thread id, 0 in the console; busy or not)."""


class BusyNotice:
    def __init__(self) -> None:
        self._listeners: list[BusyListener] = []

    def subscribe(self, listener: BusyListener) -> None:
        self._listeners.append(listener)

    @asynccontextmanager
    async def during(self, chat_id: str, where: int) -> AsyncIterator[None]:
        await self._tell(chat_id, where, busy=True)
        try:
            yield
        finally:
            await self._tell(chat_id, where, busy=False)

    async def _tell(self, chat_id: str, where: int, *, busy: bool) -> None:
        for listener in self._listeners:
            try:
                await listener(chat_id, where, busy)
            except Exception:  # showing "busy" must never break the story
                log.exception("a busy-notice listener failed")
