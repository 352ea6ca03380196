"""The "<name> is typing…" indicator while a character thinks of its first word."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import discord

log = logging.getLogger(__name__)


class TypingIndicator:
    """Holds ``channel.typing()`` open in a background task until stopped.

    Failing to show typing (no permission, a Discord hiccup) is logged and otherwise ignored.
    """

    def __init__(self, channel: discord.abc.Messageable) -> None:
        self._channel = channel
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._hold(), name="typing indicator")

    def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def close(self) -> None:
        """Stop and wait until the indicator's task has finished."""
        self.stop()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _hold(self) -> None:
        try:
            async with self._channel.typing():
                await asyncio.Event().wait()
        except discord.HTTPException as exc:
            log.warning("could not show typing: %s", exc)
