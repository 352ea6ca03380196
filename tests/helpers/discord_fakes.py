"""The one place that fills dpytest 0.7's gaps with discord.py 2.7, for the Discord-layer tests.

dpytest (last released mid-2023) drives ``on_message`` and bot messages well, but with discord.py
2.7 it lacks:

- reactions: its gateway payload has no ``type``/``burst``, so discord.py raises KeyError. We wrap
  ``FakeState.parse_message_reaction_add/remove`` to fill them in.
- permission overwrites: dpytest writes their ``type`` as "member"/"role" where discord.py 2 wants
  1/0, so every member or role overwrite is silently ignored. We write the numbers.
- threads: ``message.create_thread``, and a bot message that mentions a thread (``<#id>``: dpytest
  looks mentions up among guild channels only and crashes on the None); we drop unknown mentions.
- threads: ``message.create_thread``, ``thread.edit(archived=True)`` and ``thread.delete()`` hit
  routes it does not capture. We add ``start_thread_with_message`` /
  ``start_thread_without_message`` / ``edit_channel`` / ``delete_channel`` (threads) to FakeHttp,
  each dispatching the gateway event Discord would send.
- webhooks: ``channel_webhooks`` and ``create_webhook`` are uncaptured, and ``Webhook.send`` /
  ``edit_message`` / ``edit`` bypass dpytest's HTTP entirely. We fake the channel's webhook list and
  patch discord's ``AsyncWebhookAdapter`` to record each payload and echo it as a channel message
  (author = the webhook's username), so ``fetch_message``, reactions and ``on_message`` see it;
  ``delete_message`` removes the post and dispatches the delete as Discord would.
- a user editing or deleting their own message: ``edit_by_author`` / ``delete_by_author``
  dispatch the gateway's MESSAGE_UPDATE / MESSAGE_DELETE (dpytest has no user-side edit).
- interactions: none at all. ``make_interaction`` builds a ``create_autospec``'d Interaction (a
  misspelled attribute fails the test) whose response and followup record what was answered;
  ``invoke`` calls a command's callback and routes errors to the cog's handler as discord.py does;
  ``invoke_menu`` does the same for a context menu (its own ``on_error``).

``DiscordGaps.install`` patches with ``monkeypatch``, so everything is undone after each test.
Drop the matching part here when dpytest catches up.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from unittest.mock import MagicMock, create_autospec

import discord
import discord.ext.test as dpytest
import discord.ext.test.backend as dpytest_backend
import discord.ext.test.factories as dpytest_factories
import pytest
from discord import app_commands
from discord.ext import commands
from discord.ext.test.backend import FakeHttp, FakeRequest
from discord.ext.test.state import FakeState
from discord.webhook.async_ import AsyncWebhookAdapter

from bot.app import StoryBot, build_bot
from bot.config import Settings
from bot.engine import Engine
from bot.llm import LLMClient, ScriptedLLM
from bot.store import Database
from tests.helpers.engine_helpers import character
from tests.helpers.stores import BACKENDS, fresh_store

HOST, GUEST = "bot_a", "bot_b"
UNKNOWN_WEBHOOK = 10015
PUBLIC_THREAD = 11


@dataclass
class WebhookPost:
    """A message a webhook sent, as users see it, with every later edit and when it happened."""

    message_id: int
    webhook_id: int
    channel_id: int
    username: str
    content: str
    at: float
    edits: list[tuple[float, str]] = field(default_factory=list)


def _not_found(code: int, text: str) -> discord.NotFound:
    return discord.NotFound(FakeRequest(404, text), {"code": code, "message": text})  # type: ignore[arg-type]


class DiscordGaps:
    """Fake threads, webhooks and reaction payloads on top of dpytest; records what happened."""

    def __init__(self) -> None:
        self.webhooks: dict[int, dict[str, Any]] = {}
        self.posts: dict[int, WebhookPost] = {}
        self.deleted_posts: list[WebhookPost] = []
        self.removed_reactions: list[tuple[int, str, int]] = []  # (message, emoji, member)
        self.thread_edits: list[tuple[int, dict[str, Any]]] = []
        self._ids = itertools.count(9_000_000_000_000_000)

    # -- installing -----------------------------------------------------------------------------

    def install(self, monkeypatch: pytest.MonkeyPatch) -> DiscordGaps:
        gaps = self
        original_add = FakeState.parse_message_reaction_add
        original_remove = FakeState.parse_message_reaction_remove
        original_delete_channel = FakeHttp.delete_channel

        def reaction_add(state: FakeState, data: dict[str, Any]) -> None:
            original_add(state, {"type": 0, "burst": False, **data})

        def reaction_remove(state: FakeState, data: dict[str, Any]) -> None:
            original_remove(state, {"type": 0, "burst": False, **data})

        async def remove_reaction(
            http: FakeHttp, channel_id: int, message_id: int, emoji: str, member_id: int
        ) -> None:
            # dpytest's own version reads the caller's locals, which a wrapper cannot provide.
            gaps.removed_reactions.append((message_id, emoji, member_id))
            channel = http.state.get_channel(channel_id)
            assert isinstance(channel, discord.TextChannel | discord.Thread), channel_id
            member = channel.guild.get_member(member_id)
            assert member is not None, member_id
            message = channel.get_partial_message(message_id)
            dpytest_backend.remove_reaction(message, member, emoji)  # type: ignore[arg-type]

        async def delete_channel(
            http: FakeHttp, channel_id: int, *, reason: str | None = None
        ) -> None:
            thread = gaps._thread(http.state, channel_id)
            if thread is None:
                await original_delete_channel(http, channel_id, reason=reason)
                return
            http.state.parse_thread_delete(
                {
                    "id": thread.id,
                    "guild_id": thread.guild.id,
                    "parent_id": thread.parent_id,
                    "type": PUBLIC_THREAD,
                }
            )

        def overwrite(
            target: discord.Member | discord.Role, value: discord.PermissionOverwrite
        ) -> dict[str, Any]:
            allow, deny = value.pair()
            kind = 0 if isinstance(target, discord.Role) else 1
            return {"id": target.id, "type": kind, "allow": allow.value, "deny": deny.value}

        original_mentions = dpytest_backend.find_channel_mentions

        def channel_mentions(content: str | None, guild: discord.Guild | None) -> list[Any]:
            return [c for c in original_mentions(content, guild) if c is not None]

        monkeypatch.setattr(dpytest_factories, "dict_from_overwrite", overwrite)
        monkeypatch.setattr(dpytest_backend, "find_channel_mentions", channel_mentions)
        monkeypatch.setattr(FakeState, "parse_message_reaction_add", reaction_add)
        monkeypatch.setattr(FakeState, "parse_message_reaction_remove", reaction_remove)
        monkeypatch.setattr(FakeHttp, "remove_reaction", remove_reaction)
        monkeypatch.setattr(FakeHttp, "delete_channel", delete_channel)
        for name, method in {
            "start_thread_with_message": self._start_thread,
            "start_thread_without_message": self._start_thread,
            "edit_channel": self._edit_channel,
            "channel_webhooks": self._channel_webhooks,
            "create_webhook": self._create_webhook,
        }.items():
            monkeypatch.setattr(FakeHttp, name, _as_method(method), raising=False)
        for name, method in {
            "execute_webhook": self._execute,
            "edit_webhook_message": self._edit_message,
            "delete_webhook_message": self._delete_message,
            "edit_webhook": self._edit_webhook,
            "edit_webhook_with_token": self._edit_webhook,
        }.items():
            monkeypatch.setattr(AsyncWebhookAdapter, name, _as_method(method))
        return self

    # -- threads --------------------------------------------------------------------------------

    @staticmethod
    def _thread(state: FakeState, channel_id: int) -> discord.Thread | None:
        for guild in state.guilds:
            thread = guild.get_thread(channel_id)
            if thread is not None:
                return thread
        return None

    async def _start_thread(
        self,
        http: FakeHttp,
        channel_id: int,
        message_id: int | None = None,
        *,
        name: str,
        auto_archive_duration: int = 1440,
        **_: Any,
    ) -> dict[str, Any]:
        channel = http.state.get_channel(channel_id)
        assert isinstance(channel, discord.TextChannel), channel
        data = {
            "id": message_id or next(self._ids),
            "guild_id": channel.guild.id,
            "parent_id": channel_id,
            "owner_id": http.state.self_id,
            "name": name,
            "type": PUBLIC_THREAD,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "message_count": 0,
            "member_count": 1,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": auto_archive_duration,
                "archive_timestamp": discord.utils.utcnow().isoformat(),
                "locked": False,
            },
            "newly_created": True,
        }
        http.state.parse_thread_create(data)  # type: ignore[arg-type]
        return data

    async def _edit_channel(
        self,
        http: FakeHttp,
        channel_id: int,
        *,
        reason: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        thread = self._thread(http.state, channel_id)
        if thread is None:
            raise NotImplementedError(f"only threads can be edited here, not {channel_id}")
        self.thread_edits.append((channel_id, options))
        data = {
            "id": thread.id,
            "guild_id": thread.guild.id,
            "parent_id": thread.parent_id,
            "owner_id": thread.owner_id,
            "name": options.get("name", thread.name),
            "type": PUBLIC_THREAD,
            "last_message_id": thread.last_message_id,
            "rate_limit_per_user": 0,
            "message_count": 0,
            "member_count": 1,
            "thread_metadata": {
                "archived": options.get("archived", thread.archived),
                "auto_archive_duration": thread.auto_archive_duration,
                "archive_timestamp": discord.utils.utcnow().isoformat(),
                "locked": options.get("locked", thread.locked),
            },
        }
        http.state.parse_thread_update(data)  # type: ignore[arg-type]
        return data

    # -- webhooks -------------------------------------------------------------------------------

    async def _channel_webhooks(
        self,
        http: FakeHttp,
        channel_id: int,
    ) -> list[dict[str, Any]]:
        return [dict(w) for w in self.webhooks.values() if w["channel_id"] == channel_id]

    async def _create_webhook(
        self,
        http: FakeHttp,
        channel_id: int,
        *,
        name: str,
        avatar: bytes | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        channel = http.state.get_channel(channel_id)
        assert isinstance(channel, discord.TextChannel), channel
        webhook_id = next(self._ids)
        user = http.state.user
        assert user is not None
        data = {
            "id": webhook_id,
            "type": 1,
            "guild_id": channel.guild.id,
            "channel_id": channel_id,
            "user": {
                "id": user.id,
                "username": user.name,
                "discriminator": "0001",
                "avatar": None,
                "bot": True,
            },
            "name": name,
            "avatar": "a" * 32 if avatar else None,
            "token": f"token-{webhook_id}",
            "application_id": None,
        }
        self.webhooks[webhook_id] = data
        return dict(data)

    def delete_webhook(self, webhook_id: int) -> None:
        """Someone deleted this webhook in the channel's settings."""
        del self.webhooks[webhook_id]

    async def _edit_webhook(
        self,
        adapter: AsyncWebhookAdapter,
        webhook_id: int,
        token: str,
        *,
        payload: dict[str, Any],
        **_: Any,
    ) -> dict[str, Any]:
        data = self.webhooks.get(webhook_id)
        if data is None:
            raise _not_found(UNKNOWN_WEBHOOK, "Unknown Webhook")
        data["name"] = payload.get("name", data["name"])
        return dict(data)

    async def _execute(
        self,
        adapter: AsyncWebhookAdapter,
        webhook_id: int,
        token: str,
        *,
        payload: dict[str, Any] | None = None,
        thread_id: int | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        hook = self.webhooks.get(webhook_id)
        if hook is None:
            raise _not_found(UNKNOWN_WEBHOOK, "Unknown Webhook")
        body = payload or {}
        username = body.get("username") or hook["name"]
        state = dpytest_backend.get_state()
        channel = state.get_channel(thread_id or hook["channel_id"])
        assert channel is not None, (thread_id, hook)
        author = discord.User(
            state=state,
            data={
                "id": webhook_id,
                "username": username,
                "discriminator": "0000",
                "avatar": None,
                "bot": True,
            },
        )
        data = dpytest_factories.make_message_dict(
            channel,
            author,
            content=body.get("content", ""),
            guild_id=hook["guild_id"],
            webhook_id=webhook_id,
        )
        state.parse_message_create(data)
        dpytest_backend._cur_config.messages.setdefault(channel.id, []).append(data)
        self.posts[data["id"]] = WebhookPost(
            data["id"], webhook_id, channel.id, username, data["content"], time.monotonic()
        )
        return dict(data)

    async def _edit_message(
        self,
        adapter: AsyncWebhookAdapter,
        webhook_id: int,
        token: str,
        message_id: int,
        *,
        payload: dict[str, Any] | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        if webhook_id not in self.webhooks:
            raise _not_found(UNKNOWN_WEBHOOK, "Unknown Webhook")
        post = self.posts[message_id]
        content = (payload or {}).get("content", post.content)
        post.content = content
        post.edits.append((time.monotonic(), content))
        stored = next(
            m
            for m in dpytest_backend._cur_config.messages[post.channel_id]
            if m["id"] == message_id
        )
        stored["content"] = content
        return dict(stored)

    async def _delete_message(
        self,
        adapter: AsyncWebhookAdapter,
        webhook_id: int,
        token: str,
        message_id: int,
        **_: Any,
    ) -> None:
        if webhook_id not in self.webhooks:
            raise _not_found(UNKNOWN_WEBHOOK, "Unknown Webhook")
        post = self.posts.pop(message_id)
        self.deleted_posts.append(post)
        _delete_stored(post.channel_id, message_id)

    # -- reading what users see ----------------------------------------------------------------

    def posts_in(self, channel_id: int) -> list[WebhookPost]:
        return [p for p in self.posts.values() if p.channel_id == channel_id]


def _as_method(function: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """A plain function to set on a class, so the patched object comes in as its first argument."""

    async def method(owner: Any, *args: Any, **kwargs: Any) -> Any:
        return await function(owner, *args, **kwargs)

    return method


def channel_texts(channel_id: int) -> list[str]:
    """Every message's current content in a channel or thread, oldest first."""
    return [m["content"] for m in dpytest_backend._cur_config.messages.get(channel_id, [])]


def stored_message(channel_id: int, message_id: int) -> dict[str, Any]:
    return next(
        m for m in dpytest_backend._cur_config.messages[channel_id] if m["id"] == message_id
    )


def cached_message(client: discord.Client, message_id: int) -> discord.Message:
    """The message as discord.py's cache holds it (what a listener is handed)."""
    found = discord.utils.get(client.cached_messages, id=message_id)
    assert found is not None, message_id
    return found


def forget_cached(client: discord.Client, message_id: int) -> None:
    """Drop a message from discord.py's cache, as a real server's gateway never filled it."""
    dpytest_backend.get_state()._messages.remove(cached_message(client, message_id))


def _delete_stored(channel_id: int, message_id: int) -> None:
    """Drop a message from dpytest's store and dispatch MESSAGE_DELETE, as Discord would."""
    state = dpytest_backend.get_state()
    channel = state.get_channel(channel_id)
    assert isinstance(channel, discord.TextChannel | discord.Thread), channel_id
    stored = dpytest_backend._cur_config.messages[channel_id]
    stored[:] = [m for m in stored if m["id"] != message_id]
    state.parse_message_delete(
        {"id": message_id, "channel_id": channel_id, "guild_id": channel.guild.id}
    )


def edit_by_author(message: discord.Message, content: str) -> None:
    """The author edits their message: the gateway sends MESSAGE_UPDATE with the whole message."""
    stored = stored_message(message.channel.id, message.id)
    stored["content"] = content
    stored["edited_timestamp"] = discord.utils.utcnow().isoformat()
    assert message.guild is not None
    # dpytest's stored "member" lacks "roles", which discord.py reads on an update: leave it out.
    update = {k: v for k, v in stored.items() if k != "member"}
    dpytest_backend.get_state().parse_message_update({**update, "guild_id": message.guild.id})


def delete_by_author(message: discord.Message) -> None:
    """The author deletes their message (no permission needed for one's own)."""
    _delete_stored(message.channel.id, message.id)


def post_message(
    channel: discord.abc.Messageable, member: discord.Member, content: str
) -> discord.Message:
    """A user's message, dispatched without waiting for its handlers (for mid-stream checks)."""
    return dpytest_backend.make_message(content, member, channel)


async def wait_until(condition: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for a condition")
        await asyncio.sleep(0.01)


# -- interactions ---------------------------------------------------------------------------------


@dataclass
class Answer:
    """One thing an interaction answered: text, embed, ephemeral flag, or a modal."""

    content: str
    embed: discord.Embed | None
    ephemeral: bool
    modal: discord.ui.Modal | None = None
    files: list[discord.File] = field(default_factory=list)


def make_interaction(
    bot: commands.Bot,
    user: discord.Member,
    channel: discord.abc.GuildChannel | discord.Thread,
    *,
    permissions: discord.Permissions | None = None,
    app_permissions: discord.Permissions | None = None,
) -> MagicMock:
    """An Interaction spec'd from discord.py's, answering into ``answers(interaction)``."""
    interaction = create_autospec(discord.Interaction, instance=True)
    interaction.client = bot
    interaction.user = user
    interaction.guild = channel.guild
    interaction.guild_id = channel.guild.id
    interaction.channel = channel
    interaction.channel_id = channel.id
    interaction.permissions = discord.Permissions.none() if permissions is None else permissions
    interaction.app_permissions = (
        discord.Permissions.all() if app_permissions is None else app_permissions
    )
    answered: list[Answer] = []
    done = [False]

    response = create_autospec(discord.InteractionResponse, instance=True)
    response.is_done.side_effect = lambda: done[0]

    async def send_message(content: Any = None, **kwargs: Any) -> None:
        answered.append(_answer(content, kwargs))
        done[0] = True

    async def defer(**kwargs: Any) -> None:
        done[0] = True

    async def send_modal(modal: discord.ui.Modal, /) -> None:
        answered.append(Answer("", None, True, modal=modal))
        done[0] = True

    response.send_message.side_effect = send_message
    response.defer.side_effect = defer
    response.send_modal.side_effect = send_modal
    interaction.response = response

    followup = create_autospec(discord.Webhook, instance=True)

    async def followup_send(content: Any = None, **kwargs: Any) -> None:
        answered.append(_answer(content, kwargs))

    followup.send.side_effect = followup_send
    interaction.followup = followup
    interaction.answers = answered  # not an Interaction attribute: read it with answers()
    return interaction


def _answer(content: Any, kwargs: dict[str, Any]) -> Answer:
    embed = kwargs.get("embed")
    return Answer(
        content=str(content or ""),
        embed=embed if isinstance(embed, discord.Embed) else None,
        ephemeral=bool(kwargs.get("ephemeral", False)),
        files=[f for f in kwargs.get("files") or [] if isinstance(f, discord.File)],
    )


def file_bytes(file: discord.File) -> bytes:
    """What an answered attachment holds."""
    file.fp.seek(0)
    data: bytes = file.fp.read()
    return data


def answers(interaction: MagicMock) -> list[Answer]:
    found: list[Answer] = interaction.answers
    return found


async def invoke(
    cog: commands.Cog,
    command: app_commands.Command[Any, ..., Any],
    interaction: MagicMock,
    **options: Any,
) -> list[Answer]:
    """Run a slash command's body; errors reach the tree's handler as discord.py routes them."""
    tree = interaction.client.tree
    try:
        await command.callback(cog, interaction, **options)  # type: ignore[arg-type]
    except app_commands.AppCommandError as error:
        await tree.on_error(interaction, error)
    except Exception as error:
        await tree.on_error(interaction, app_commands.CommandInvokeError(command, error))
    return answers(interaction)


async def invoke_menu(
    menu: app_commands.ContextMenu, interaction: MagicMock, target: Any
) -> list[Answer]:
    """Run a context menu on ``target``; errors reach the tree's handler, as in discord.py."""
    try:
        await menu.callback(interaction, target)
    except Exception as error:
        await interaction.client.tree.on_error(
            interaction, app_commands.CommandInvokeError(menu, error)
        )
    return answers(interaction)


def fill_modal(modal: discord.ui.Modal, **values: str) -> discord.ui.Modal:
    """What the user typed into a modal's text inputs (discord.py keeps it in ``_value``)."""
    for name, value in values.items():
        text_input = getattr(modal, name)
        assert isinstance(text_input, discord.ui.TextInput), name
        text_input._value = value
    return modal


def make_attachment(filename: str, data: bytes, content_type: str) -> MagicMock:
    attachment = create_autospec(discord.Attachment, instance=True)
    attachment.filename = filename
    attachment.size = len(data)
    attachment.content_type = content_type
    attachment.read.return_value = data
    return attachment


# -- a configured bot -----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def configured(
    bot: commands.Bot,
    monkeypatch: pytest.MonkeyPatch,
    *,
    guilds: int = 1,
    members: int = 2,
) -> AsyncIterator[DiscordGaps]:
    """dpytest around ``bot``, with the gaps filled, set up and torn down as the notes say.

    dpytest never runs ``setup_hook`` (we do, before ``configure``), its fake websocket has no
    socket (``bot.ws = None`` before closing), and ``configure`` replaces the connection state,
    so persistent views registered in ``setup_hook`` are registered again after it, and the new
    state gets the running loop (``channel.typing()`` needs it; dpytest leaves it MISSING).
    """
    gaps = DiscordGaps().install(monkeypatch)
    await bot._async_setup_hook()
    await bot.setup_hook()
    views = list(bot.persistent_views)
    dpytest.configure(bot, guilds=guilds, text_channels=1, voice_channels=0, members=members)
    bot._connection.loop = asyncio.get_running_loop()
    for view in views:
        bot.add_view(view)
    try:
        yield gaps
    finally:
        await dpytest.empty_queue()
        bot.ws = None  # type: ignore[assignment]
        await bot.close()


# -- a story bot in a guild -------------------------------------------------------------------

BOT_CAN = discord.PermissionOverwrite(
    manage_webhooks=True,
    create_public_threads=True,
    send_messages_in_threads=True,
    manage_threads=True,
    manage_messages=True,
)


@dataclass
class StoryWorld:
    """A configured story bot: engine, the gaps' records, a channel, its owner, a stranger."""

    bot: StoryBot
    engine: Engine
    gaps: DiscordGaps
    db: Database
    channel: discord.TextChannel
    owner: discord.Member
    stranger: discord.Member

    async def story(self, *, guest: bool = False) -> str:
        """Given: BotA (and BotB) of this server, and a story of the owner's in the channel."""
        guild_id = self.channel.guild.id
        for bot_id, name in ((HOST, "BotA"), (GUEST, "BotB")):
            await self.engine.characters.author(
                character(bot_id, name), guild_id=guild_id, creator_id=self.owner.id
            )
        started = await self.engine.chats.start(
            host_id=HOST,
            guest_id=GUEST if guest else None,
            guild_id=guild_id,
            channel_id=self.channel.id,
            owner_id=self.owner.id,
            place="office",
            time="2026-04-26T20:00:00+00:00",
        )
        return started.chat.id


@dataclass
class Wiring:
    """Builds a StoryWorld on any LLM client (a ScriptedLLM, or one of the loopback server)."""

    monkeypatch: pytest.MonkeyPatch

    async def world(
        self, llm: LLMClient, *, guilds: int = 1, store: str = "sqlite", **discord_settings: object
    ) -> AsyncIterator[StoryWorld]:
        """``store``: "sqlite" (in memory) or "postgres" (a schema of its own, ``BACKENDS``)."""
        async with fresh_store(store) as db:
            settings = Settings.model_validate(
                {"discord": {"edit_interval_seconds": 0.2, **discord_settings}}
            )
            engine = Engine(db, llm, settings)
            bot = build_bot(settings, engine, intents=discord.Intents.all())
            async with configured(bot, self.monkeypatch, guilds=guilds) as gaps:
                config = dpytest.get_config()
                channel = config.channels[0]
                me = channel.guild.me
                await dpytest.set_permission_overrides(me, channel, BOT_CAN)
                yield StoryWorld(bot, engine, gaps, db, channel, *config.members[:2])


# -- fixtures shared by the Discord flow tests (registered in tests/conftest.py) ----------------


@pytest.fixture
def llm() -> ScriptedLLM:
    """The scripted LLM behind the bot; a test scripts, by purpose, the answers its flow needs."""
    return ScriptedLLM()


@pytest.fixture
async def world(monkeypatch: pytest.MonkeyPatch, llm: ScriptedLLM) -> AsyncIterator[StoryWorld]:
    """A configured bot on dpytest with one guild, a bound story channel and its owner."""
    async for built in Wiring(monkeypatch).world(llm):
        yield built


@pytest.fixture(params=BACKENDS)
async def world_on_each_store(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, llm: ScriptedLLM
) -> AsyncIterator[StoryWorld]:
    """``world`` on SQLite and on PostgreSQL (marked ``postgres``): a module whose stories
    must play on both says ``world = world_on_each_store``-style (see test_discord_history)."""
    async for built in Wiring(monkeypatch).world(llm, store=request.param):
        yield built
