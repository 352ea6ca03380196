"""How a character's words reach a channel: its own webhook, or the bot's messages with its name.

A voice sends and edits message contents and knows nothing of streaming; StreamingReply decides
what to show and when.
"""

from __future__ import annotations

import logging
from typing import Protocol

import discord
from discord.utils import MISSING

from bot.engine import Speaker
from cogs._render._types import StoryChannel
from cogs._render._webhooks import UNKNOWN_WEBHOOK, WebhookHome, WebhookPool, display_name

log = logging.getLogger(__name__)

QUIET = discord.AllowedMentions.none()
"""Model-written prose must never ping anyone (an @everyone in a story is just words)."""


class MessageGone(Exception):
    """The message (or the webhook that sent it) no longer exists, so it cannot be edited."""


class Voice(Protocol):
    @property
    def prefix(self) -> str:
        """Shown before every message's text (the name, when the bot speaks for a character)."""
        ...

    async def send(self, content: str) -> int: ...

    async def edit(self, message_id: int, content: str) -> None: ...


class WebhookVoice:
    """A character speaking through its own webhook (in a thread: the parent's, with thread=)."""

    prefix = ""

    def __init__(
        self, pool: WebhookPool, home: WebhookHome, speaker: Speaker, thread: discord.Thread | None
    ) -> None:
        self._pool = pool
        self._home = home
        self._speaker = speaker
        self._thread: discord.Thread = thread if thread is not None else MISSING
        self._senders: dict[int, discord.Webhook] = {}

    async def send(self, content: str) -> int:
        """Send through the webhook; a webhook deleted under us is recreated once."""
        webhook = await self._pool.webhook_for(self._home, self._speaker)
        try:
            message = await self._send(webhook, content)
        except discord.NotFound as exc:
            if exc.code != UNKNOWN_WEBHOOK:
                raise
            log.info(
                "webhook %d in channel %d was deleted; recreating it", webhook.id, self._home.id
            )
            self._pool.forget(self._home.id, webhook.id)
            webhook = await self._pool.webhook_for(self._home, self._speaker)
            message = await self._send(webhook, content)
        self._senders[message.id] = webhook
        return message.id

    async def _send(self, webhook: discord.Webhook, content: str) -> discord.WebhookMessage:
        return await webhook.send(
            content,
            username=display_name(self._speaker.name),
            allowed_mentions=QUIET,
            thread=self._thread,
            wait=True,
        )

    async def edit(self, message_id: int, content: str) -> None:
        webhook = self._senders[message_id]
        try:
            await webhook.edit_message(
                message_id, content=content, allowed_mentions=QUIET, thread=self._thread
            )
        except discord.NotFound as exc:
            if exc.code == UNKNOWN_WEBHOOK:
                self._pool.forget(self._home.id, webhook.id)
            raise MessageGone(str(exc)) from exc


class BotVoice:
    """The fallback without Manage Webhooks: the bot's own messages, led by the character's name."""

    def __init__(self, place: StoryChannel, speaker: Speaker) -> None:
        self._place = place
        self.prefix = f"**{discord.utils.escape_markdown(speaker.name)}**: "
        self._messages: dict[int, discord.Message] = {}

    async def send(self, content: str) -> int:
        message = await self._place.send(content, allowed_mentions=QUIET)
        self._messages[message.id] = message
        return message.id

    async def edit(self, message_id: int, content: str) -> None:
        try:
            self._messages[message_id] = await self._messages[message_id].edit(
                content=content, allowed_mentions=QUIET
            )
        except discord.NotFound as exc:
            raise MessageGone(str(exc)) from exc
