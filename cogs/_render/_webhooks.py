"""One webhook per (channel, character), carrying the character's name and avatar, like PluralKit.

The avatar image is set on the webhook itself because Discord attachment URLs expire. The webhook
name records which character (and which avatar) it carries, so the pool finds its webhooks again
after a restart; webhooks the bot did not create are never touched.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import discord

from bot.engine import Speaker
from bot.store.events import IMAGE_TYPES

log = logging.getLogger(__name__)

MAX_WEBHOOKS_PER_CHANNEL = 15
"""Discord allows at most 15 webhooks in one channel."""
MAX_WEBHOOKS_REACHED = 30007
UNKNOWN_WEBHOOK = 10015
WEBHOOK_NAME_LIMIT = 80
WEBHOOK_PREFIX = "storybot:"
AVATAR_TAG_LENGTH = 6

WebhookHome = discord.TextChannel | discord.ForumChannel
AvatarSource = Callable[[str], Awaitable[tuple[bytes, str] | None]]
_RESERVED = re.compile(r"clyde|discord", re.IGNORECASE)


class NoWebhook(Exception):
    """The character cannot speak through a webhook here; ``reason`` says why."""

    def __init__(self, reason: Literal["permission", "full"]) -> None:
        super().__init__(reason)
        self.reason = reason


def display_name(name: str) -> str:
    """A webhook username Discord accepts: 1-80 characters, no "clyde" or "discord" in it."""
    safe = _RESERVED.sub(lambda m: m[0][:-1] + _lookalike(m[0][-1]), name.strip())
    return (safe or "someone")[:WEBHOOK_NAME_LIMIT]


def _lookalike(char: str) -> str:
    # Cyrillic e and d look like the Latin letters but break Discord's word filter.
    return {"e": "е", "E": "Е", "d": "ԁ", "D": "Ꭰ"}.get(char, char)


def webhook_key(character_id: str) -> str:
    """The part of a webhook name that says which character it carries."""
    room = WEBHOOK_NAME_LIMIT - 1 - AVATAR_TAG_LENGTH
    return display_name(f"{WEBHOOK_PREFIX}{character_id}")[:room]


def webhook_name(character_id: str, avatar: str) -> str:
    """``storybot:<id>`` plus ``~<avatar sha prefix>`` when the webhook carries an avatar."""
    key = webhook_key(character_id)
    return f"{key}~{avatar[:AVATAR_TAG_LENGTH]}" if avatar else key


def _key_of(name: str | None) -> str | None:
    if not name or not name.startswith(WEBHOOK_PREFIX):
        return None
    return name.rsplit("~", 1)[0] if "~" in name else name


@dataclass
class _ChannelWebhooks:
    ours: OrderedDict[str, discord.Webhook]  # by webhook key, least recently used first
    total: int  # every webhook of the channel, ours or not


class WebhookPool:
    """Finds, creates, refits and evicts the storybot webhooks of each channel."""

    def __init__(self, avatars: AvatarSource) -> None:
        self._avatars = avatars
        self._channels: dict[int, _ChannelWebhooks] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    async def webhook_for(self, home: WebhookHome, speaker: Speaker) -> discord.Webhook:
        """The webhook that shows ``speaker`` in ``home``; raises NoWebhook if there is none."""
        me = home.guild.me
        if not home.permissions_for(me).manage_webhooks:
            raise NoWebhook("permission")
        async with self._locks.setdefault(home.id, asyncio.Lock()):
            entry = await self._load(home, me.id)
            key = webhook_key(speaker.id)
            webhook = entry.ours.get(key)
            if webhook is not None:
                entry.ours.move_to_end(key)
                return await self._refit(home, entry, key, webhook, speaker)
            return await self._new(home, entry, key, speaker)

    async def known(self, home: WebhookHome, webhook_id: int) -> discord.Webhook | None:
        """Our webhook with this id in ``home`` (to edit or delete what it sent), if any."""
        try:
            async with self._locks.setdefault(home.id, asyncio.Lock()):
                entry = await self._load(home, home.guild.me.id)
        except NoWebhook:
            return None
        return next((w for w in entry.ours.values() if w.id == webhook_id), None)

    def forget(self, home_id: int, webhook_id: int) -> None:
        """Drop a webhook Discord says is gone, so the next call makes a new one."""
        entry = self._channels.get(home_id)
        if entry is None:
            return
        for key, webhook in list(entry.ours.items()):
            if webhook.id == webhook_id:
                del entry.ours[key]
                entry.total = max(0, entry.total - 1)

    async def _load(self, home: WebhookHome, my_id: int) -> _ChannelWebhooks:
        entry = self._channels.get(home.id)
        if entry is not None:
            return entry
        try:
            webhooks = await home.webhooks()
        except discord.Forbidden:
            raise NoWebhook("permission") from None
        ours: OrderedDict[str, discord.Webhook] = OrderedDict()
        for webhook in webhooks:
            key = _key_of(webhook.name)
            mine = webhook.user is not None and webhook.user.id == my_id
            if key is not None and mine and webhook.token:
                ours[key] = webhook
        entry = _ChannelWebhooks(ours=ours, total=len(webhooks))
        self._channels[home.id] = entry
        log.debug("channel %d has %d webhooks, %d of them ours", home.id, len(webhooks), len(ours))
        return entry

    async def _new(
        self, home: WebhookHome, entry: _ChannelWebhooks, key: str, speaker: Speaker
    ) -> discord.Webhook:
        if entry.total < MAX_WEBHOOKS_PER_CHANNEL:
            name, avatar = await self._look(speaker)
            try:
                webhook = await self._create(home, name, avatar)
            except discord.Forbidden:
                raise NoWebhook("permission") from None
            except discord.HTTPException as exc:
                if exc.code != MAX_WEBHOOKS_REACHED:
                    raise
                entry.total = MAX_WEBHOOKS_PER_CHANNEL
            else:
                entry.ours[key] = webhook
                entry.total += 1
                log.info("created webhook %s in channel %d", name, home.id)
                return webhook
        if not entry.ours:
            raise NoWebhook("full")
        old_key, webhook = entry.ours.popitem(last=False)
        log.info("channel %d is full: webhook of %s now shows %s", home.id, old_key, key)
        entry.ours[key] = webhook
        return await self._refit(home, entry, key, webhook, speaker)

    async def _create(self, home: WebhookHome, name: str, avatar: bytes | None) -> discord.Webhook:
        try:
            return await home.create_webhook(name=name, avatar=avatar)
        except ValueError:  # discord.py could not tell the image type from its bytes
            log.warning("avatar for webhook %s is not an image Discord takes; using none", name)
            return await home.create_webhook(name=_key_of(name) or name)

    async def _refit(
        self,
        home: WebhookHome,
        entry: _ChannelWebhooks,
        key: str,
        webhook: discord.Webhook,
        speaker: Speaker,
    ) -> discord.Webhook:
        """Make an existing webhook carry ``speaker``'s current name tag and avatar."""
        if webhook.name == webhook_name(speaker.id, speaker.avatar):
            return webhook
        name, avatar = await self._look(speaker)
        if webhook.name == name:
            return webhook
        try:
            fitted = await webhook.edit(name=name, avatar=avatar)
        except discord.NotFound:
            del entry.ours[key]
            entry.total = max(0, entry.total - 1)
            return await self._new(home, entry, key, speaker)
        entry.ours[key] = fitted
        return fitted

    async def _look(self, speaker: Speaker) -> tuple[str, bytes | None]:
        """The webhook name and avatar bytes for ``speaker`` (no tag if the image is missing)."""
        asset = await self._avatars(speaker.avatar) if speaker.avatar else None
        if asset is None:
            return webhook_name(speaker.id, ""), None
        data, content_type = asset
        if content_type not in IMAGE_TYPES:
            log.warning("avatar of %s is %s, which Discord does not take", speaker.id, content_type)
            return webhook_name(speaker.id, ""), None
        return webhook_name(speaker.id, speaker.avatar), data
