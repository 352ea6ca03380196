"""The one object cogs use to show the story: streaming beats, whole beats, the bot's notices."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

import discord

from bot.config import DiscordSettings
from bot.engine import BeatSink, Speaker
from cogs._render._limiter import EditLimiters
from cogs._render._registry import StreamingMessages
from cogs._render._retire import RetireMode, retire_message
from cogs._render._sending import send_paced
from cogs._render._split import MESSAGE_LIMIT, split_for_discord
from cogs._render._streaming import StreamingReply
from cogs._render._types import StoryChannel
from cogs._render._voices import QUIET, BotVoice, Voice, WebhookVoice
from cogs._render._webhooks import (
    MAX_WEBHOOKS_PER_CHANNEL,
    AvatarSource,
    NoWebhook,
    WebhookHome,
    WebhookPool,
)

log = logging.getLogger(__name__)

MISSING_PERMISSION_NOTICE = (
    "<@{owner}> I can't give the characters their own name and picture in {channel}: "
    "I'm missing the **Manage Webhooks** permission. A server admin can grant it in "
    "Server Settings → Roles → my role, or in this channel's settings → Permissions. "
    "Until then the characters speak through my messages, with their names in bold."
)
CHANNEL_FULL_NOTICE = (
    "<@{owner}> {channel} already has {limit} webhooks that I did not make, so the characters "
    "can't get their own name and picture here. Delete one in this channel's settings → "
    "Integrations → Webhooks; until then they speak through my messages."
)


class Renderer:
    """Shows characters through per-channel webhooks, paced so Discord never rate-limits us."""

    def __init__(
        self,
        avatars: AvatarSource,
        settings: DiscordSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """``avatars`` serves a character's avatar image by its hash (the engine's queries do);
        ``clock`` and ``sleep`` pace edits; tests and the bench pass fakes that agree."""
        self._settings = settings
        self._pool = WebhookPool(avatars)
        self._limiters = EditLimiters(settings.edit_interval_seconds, clock=clock, sleep=sleep)
        self._streaming = StreamingMessages()
        self._told: set[int] = set()

    def sink(self, channel: StoryChannel, *, chat_id: str, owner_id: int) -> BeatSink:
        """A sink that streams one beat into ``channel`` (a text channel or a thread)."""

        async def voice_for(speaker: Speaker) -> Voice:
            return await self.voice(channel, speaker, owner_id=owner_id)

        return StreamingReply(
            channel,
            voice_for=voice_for,
            limiter=self._limiters.of(channel.id),
            registry=self._streaming,
            chat_id=chat_id,
            marker=self._settings.stream_marker,
        )

    async def post(
        self, channel: StoryChannel, speaker: Speaker, text: str, *, owner_id: int
    ) -> list[int]:
        """A whole beat at once (say, the host's kickoff prose), split at Discord's limit."""
        voice = await self.voice(channel, speaker, owner_id=owner_id)
        limiter = self._limiters.of(channel.id)
        ids = []
        for piece in split_for_discord(text.strip(), MESSAGE_LIMIT - len(voice.prefix)):
            send = functools.partial(voice.send, voice.prefix + piece)
            ids.append(await send_paced(limiter, send, channel_id=channel.id))
        return ids

    async def announce(
        self, channel: StoryChannel, text: str, *, view: discord.ui.View | None = None
    ) -> list[int]:
        """The bot's own words for the story (a digest, a thread's intro), split at the limit.

        ``view`` (buttons) goes with the last piece.
        """
        limiter = self._limiters.of(channel.id)
        pieces = split_for_discord(text.strip())
        ids = []
        for index, piece in enumerate(pieces):
            with_view = view if index == len(pieces) - 1 else None
            send = functools.partial(_say, channel, piece, with_view)
            ids.append(await send_paced(limiter, send, channel_id=channel.id))
        return ids

    async def retire(
        self, channel: StoryChannel, message_ids: Iterable[int], *, mode: RetireMode
    ) -> None:
        """Show rewound messages as gone: struck through or deleted (the player's: ⏪)."""
        home = channel.parent if isinstance(channel, discord.Thread) else channel
        for message_id in message_ids:
            try:
                message = await channel.fetch_message(message_id)
            except discord.HTTPException as exc:
                log.info("rewound message %d is not there to retire: %s", message_id, exc)
                continue
            webhook = None
            if message.webhook_id is not None and home is not None:
                webhook = await self._pool.known(home, message.webhook_id)
            mine = message.author.id == channel.guild.me.id
            await retire_message(message, mode, webhook=webhook, mine=mine)

    def streaming_chat(self, message_id: int) -> str | None:
        """The chat whose reply is streaming in this message right now (for ⛔), else None."""
        return self._streaming.chat_of(message_id)

    async def voice(self, channel: StoryChannel, speaker: Speaker, *, owner_id: int) -> Voice:
        """The character's webhook here, or the bot's own messages if that is impossible."""
        thread = channel if isinstance(channel, discord.Thread) else None
        home: WebhookHome | None = (
            channel.parent if isinstance(channel, discord.Thread) else channel
        )
        if home is None:
            log.warning(
                "thread %d has no cached parent; %s speaks as the bot", channel.id, speaker.id
            )
            return BotVoice(channel, speaker)
        try:
            await self._pool.webhook_for(home, speaker)
        except NoWebhook as exc:
            await self._tell_owner(channel, home, owner_id, exc.reason)
            return BotVoice(channel, speaker)
        except discord.HTTPException as exc:
            log.warning("no webhook for %s in channel %d: %s", speaker.id, home.id, exc)
            return BotVoice(channel, speaker)
        return WebhookVoice(self._pool, home, speaker, thread)

    async def _tell_owner(
        self, channel: StoryChannel, home: WebhookHome, owner_id: int, reason: str
    ) -> None:
        """Say once per channel why the characters look like the bot, and how to fix it."""
        if home.id in self._told:
            return
        self._told.add(home.id)
        template = MISSING_PERMISSION_NOTICE if reason == "permission" else CHANNEL_FULL_NOTICE
        text = template.format(owner=owner_id, channel=home.mention, limit=MAX_WEBHOOKS_PER_CHANNEL)
        log.info("characters in channel %d speak as the bot: %s", home.id, reason)
        try:
            await channel.send(
                text, allowed_mentions=discord.AllowedMentions(users=[discord.Object(owner_id)])
            )
        except discord.HTTPException as exc:
            log.warning("could not tell the owner of channel %d why: %s", home.id, exc)


async def _say(channel: StoryChannel, text: str, view: discord.ui.View | None) -> int:
    if view is None:
        message = await channel.send(text, allowed_mentions=QUIET)
    else:
        message = await channel.send(text, allowed_mentions=QUIET, view=view)
    return message.id
