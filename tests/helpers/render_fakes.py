"""A small fake Discord for the renderer's tests and bench (its own tests: test_render_fakes.py).

Every fake is ``create_autospec``'d from the real discord.py class, so code that calls a
misspelled method or attribute fails here as it would against Discord. The fake keeps what users
would see (messages with their author name and webhook avatar, reactions, typing) and enforces
the rules the renderer must respect: 15 webhooks per channel, unknown (deleted) webhooks, missing
Manage Webhooks, and optionally 5 edits per 5 s per channel (answering 429 beyond that).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any
from unittest.mock import create_autospec

import discord

from bot.config import DiscordSettings

BOT_ID = 1
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16


def http_error(kind: type[discord.HTTPException], status: int, code: int, text: str) -> Any:
    response = SimpleNamespace(status=status, reason=text)
    return kind(response, {"code": code, "message": text})


@dataclass
class Shown:
    """A message as a user sees it."""

    id: int
    channel_id: int
    content: str
    author: str
    webhook_id: int | None
    avatar: bytes | None
    edits: list[str] = field(default_factory=list)


@dataclass
class Call:
    at: float
    verb: str  # send edit typing_on typing_off react unreact create refit 429 500
    channel_id: int
    message_id: int = 0
    content: str = ""


class VirtualClock:
    """Time that moves only when someone sleeps, so pacing tests are exact and instant."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)
        await asyncio.sleep(0)


class FakeDiscord:
    """One guild with channels, threads and webhooks, recording what users would see."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        edits_per_window: int | None = None,
        window: float = 5.0,
        latency: float = 0.0,
    ) -> None:
        self.clock = clock
        self.edits_per_window = edits_per_window
        self.window = window
        self.latency = latency
        self.ids = itertools.count(1000)
        self.messages: dict[int, Shown] = {}
        self.handles: dict[int, Any] = {}  # message id -> the discord.py object returned for it
        self.calls: list[Call] = []
        self.reactions: dict[int, set[str]] = {}
        self.webhooks: dict[int, list[Any]] = {}  # channel id -> its webhooks
        self.avatars: dict[int, bytes | None] = {}  # webhook id -> its avatar image
        self.deleted_webhooks: set[int] = set()
        self.rate_limited = 0
        self.fail_edits = 0  # the next N edits answer 500
        self.fail_sends = 0  # the next N new messages answer 500 (after discord.py's own tries)
        self.fail_reactions = False
        self.me = create_autospec(discord.Member, instance=True)
        self.me.id = BOT_ID
        self.guild = create_autospec(discord.Guild, instance=True)
        self.guild.id = 42
        self.guild.me = self.me

    # -- building the world ----------------------------------------------------------------

    def channel(self, *, manage_webhooks: bool = True, foreign_webhooks: int = 0) -> Any:
        channel = create_autospec(discord.TextChannel, instance=True)
        channel.id = next(self.ids)
        channel.guild = self.guild
        channel.mention = f"<#{channel.id}>"
        channel.permissions_for.return_value = discord.Permissions(
            manage_webhooks=manage_webhooks, send_messages=True, add_reactions=True
        )
        self.webhooks[channel.id] = []
        for n in range(foreign_webhooks):
            self._webhook(channel.id, f"someone else's {n}", None, user_id=99)

        async def webhooks() -> list[Any]:
            await self._network()
            if not manage_webhooks:
                raise http_error(discord.Forbidden, 403, 50013, "Missing Permissions")
            return list(self.webhooks[channel.id])

        async def create_webhook(
            *, name: str, avatar: bytes | None = None, reason: Any = None
        ) -> Any:
            await self._network()
            if not manage_webhooks:
                raise http_error(discord.Forbidden, 403, 50013, "Missing Permissions")
            if len(self.webhooks[channel.id]) >= 15:
                raise http_error(discord.HTTPException, 400, 30007, "Maximum number of webhooks")
            self._log("create", channel.id, content=name)
            return self._webhook(channel.id, name, avatar, user_id=BOT_ID)

        channel.webhooks.side_effect = webhooks
        channel.create_webhook.side_effect = create_webhook
        self._messageable(channel, channel.id)
        return channel

    def thread(self, parent: Any) -> Any:
        thread = create_autospec(discord.Thread, instance=True)
        thread.id = next(self.ids)
        thread.guild = self.guild
        thread.parent = parent
        thread.mention = f"<#{thread.id}>"
        self._messageable(thread, thread.id)
        return thread

    def avatar_source(
        self, images: dict[str, bytes] | None = None
    ) -> Callable[[str], Awaitable[tuple[bytes, str] | None]]:
        """An avatar source serving the given images by hash, as the engine's queries do."""
        served = images or {}

        async def asset(sha256: str) -> tuple[bytes, str] | None:
            return (served[sha256], "image/png") if sha256 in served else None

        return asset

    def delete_webhook(self, webhook: Any) -> None:
        """Someone deletes a webhook in the channel settings."""
        self.deleted_webhooks.add(webhook.id)
        for hooks in self.webhooks.values():
            if webhook in hooks:
                hooks.remove(webhook)

    # -- what users see --------------------------------------------------------------------

    def shown(self, channel_id: int) -> list[Shown]:
        return [m for m in self.messages.values() if m.channel_id == channel_id]

    def verbs(self, channel_id: int) -> list[str]:
        return [c.verb for c in self.calls if c.channel_id == channel_id]

    def edit_times(self, channel_id: int) -> list[float]:
        return [c.at for c in self.calls if c.channel_id == channel_id and c.verb == "edit"]

    # -- internals -------------------------------------------------------------------------

    def _log(self, verb: str, channel_id: int, message_id: int = 0, content: str = "") -> None:
        self.calls.append(Call(self.clock(), verb, channel_id, message_id, content))

    def _check_edit_rate(self, channel_id: int) -> None:
        if self.fail_edits:
            self.fail_edits -= 1
            self._log("500", channel_id)
            raise http_error(discord.DiscordServerError, 500, 0, "Internal Server Error")
        if self.edits_per_window is None:
            return
        now = self.clock()
        recent = [t for t in self.edit_times(channel_id) if now - t < self.window]
        if len(recent) >= self.edits_per_window:
            self.rate_limited += 1
            self._log("429", channel_id)
            raise http_error(discord.HTTPException, 429, 0, "You are being rate limited.")

    def _check_send(self, channel_id: int) -> None:
        if self.fail_sends:
            self.fail_sends -= 1
            self._log("500", channel_id)
            raise http_error(discord.DiscordServerError, 500, 0, "Internal Server Error")

    async def _network(self) -> None:
        if self.latency:
            await asyncio.sleep(self.latency)

    def _webhook(self, channel_id: int, name: str, avatar: bytes | None, *, user_id: int) -> Any:
        webhook = create_autospec(discord.Webhook, instance=True)
        webhook.id = next(self.ids)
        webhook.name = name
        webhook.token = f"token-{webhook.id}"
        webhook.user = create_autospec(discord.User, instance=True)
        webhook.user.id = user_id
        webhook.channel_id = channel_id
        self.avatars[webhook.id] = avatar
        self.webhooks[channel_id].append(webhook)

        def gone() -> None:
            if webhook.id in self.deleted_webhooks:
                raise http_error(discord.NotFound, 404, 10015, "Unknown Webhook")

        async def send(content: str, **kwargs: Any) -> Any:
            gone()
            assert kwargs.get("wait") is True, "a webhook send must wait=True to get the message"
            assert kwargs.get("allowed_mentions") is not None
            thread = kwargs.get("thread", discord.utils.MISSING)
            target = channel_id if thread is discord.utils.MISSING else thread.id
            self._check_send(target)
            await self._network()
            message = self._message(target, content, kwargs["username"], webhook.id)
            self._log("send", target, message.id, content)
            sent = create_autospec(discord.WebhookMessage, instance=True)
            sent.id = message.id
            self.handles[message.id] = sent
            return sent

        async def edit_message(message_id: int, **kwargs: Any) -> Any:
            gone()
            thread = kwargs.get("thread", discord.utils.MISSING)
            target = channel_id if thread is discord.utils.MISSING else thread.id
            self._check_edit_rate(target)
            message = self.messages[message_id]
            assert message.webhook_id == webhook.id and message.channel_id == target
            self._log("edit", target, message_id, kwargs["content"])
            await self._network()
            message.content = kwargs["content"]
            message.edits.append(kwargs["content"])
            return self.handles[message_id]

        async def edit(*, name: Any = None, avatar: Any = None, **kwargs: Any) -> Any:
            gone()
            self._log("refit", channel_id, content=str(name))
            webhook.name = name
            self.avatars[webhook.id] = avatar
            return webhook

        webhook.send.side_effect = send
        webhook.edit_message.side_effect = edit_message
        webhook.edit.side_effect = edit
        return webhook

    def _message(self, channel_id: int, content: str, author: str, webhook_id: int | None) -> Shown:
        assert 0 < len(content) <= 2000, f"Discord refuses a message of {len(content)} characters"
        avatar = self.avatars.get(webhook_id) if webhook_id is not None else None
        message = Shown(next(self.ids), channel_id, content, author, webhook_id, avatar)
        self.messages[message.id] = message
        return message

    def _messageable(self, place: Any, place_id: int) -> None:
        fake = self

        async def send(content: str, **kwargs: Any) -> Any:
            assert kwargs.get("allowed_mentions") is not None
            fake._check_send(place_id)
            await fake._network()
            shown = fake._message(place_id, content, "storybot", None)
            fake._log("send", place_id, shown.id, content)
            return fake._bot_message(place, shown)

        class Typing:
            async def __aenter__(self) -> None:
                fake._log("typing_on", place_id)

            async def __aexit__(self, *exc: object) -> None:
                fake._log("typing_off", place_id)

        def partial(message_id: int) -> Any:
            message = create_autospec(discord.PartialMessage, instance=True)
            message.id = message_id

            async def add_reaction(emoji: str) -> None:
                if fake.fail_reactions:
                    raise http_error(discord.Forbidden, 403, 50013, "Missing Permissions")
                fake.reactions.setdefault(message_id, set()).add(emoji)
                fake._log("react", place_id, message_id, emoji)

            async def remove_reaction(emoji: str, member: Any) -> None:
                assert member.id == BOT_ID
                fake.reactions.get(message_id, set()).discard(emoji)
                fake._log("unreact", place_id, message_id, emoji)

            async def delete(**kwargs: Any) -> None:
                fake.messages.pop(message_id, None)
                fake._log("delete", place_id, message_id)

            message.add_reaction.side_effect = add_reaction
            message.remove_reaction.side_effect = remove_reaction
            message.delete.side_effect = delete
            return message

        place.send.side_effect = send
        place.typing.side_effect = Typing
        place.get_partial_message.side_effect = partial

    def _bot_message(self, place: Any, shown: Shown) -> Any:
        message = create_autospec(discord.Message, instance=True)
        message.id = shown.id

        async def edit(**kwargs: Any) -> Any:
            self._check_edit_rate(shown.channel_id)
            self._log("edit", shown.channel_id, shown.id, kwargs["content"])
            await self._network()
            shown.content = kwargs["content"]
            shown.edits.append(kwargs["content"])
            return message

        message.edit.side_effect = edit
        return message


def settings(interval: float = 1.0, marker: str = " ▌") -> DiscordSettings:
    """Settings with any edit interval (tests may go below the 0.2 s that config allows)."""
    return DiscordSettings.model_construct(edit_interval_seconds=interval, stream_marker=marker)


# -- the fake itself behaves like Discord -------------------------------------------------------
