"""The composition root: settings -> store -> LLM -> engine -> the Discord client.

``build_bot`` wires a bot from settings and an engine without connecting, so tests drive the
same composition the real run uses; ``run_discord`` owns the resources around it (the store, the
LLM client) and turns every start-up failure a user can fix into one clear line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Iterator, Sequence
from typing import Any, Self, cast

import aiohttp
import discord
from discord.backoff import ExponentialBackoff
from discord.ext import commands
from discord.state import AutoShardedConnectionState, ConnectionState

from bot import server
from bot.config import DISCORD_API_BASE, Settings
from bot.engine import SHUTDOWN_GRACE_SECONDS, Engine
from bot.errors import CommandError
from bot.gateway import guard_parsers
from bot.llm import OpenAICompatibleClient
from bot.sharing import sharing
from bot.store import StoreError, open_store
from cogs._render import Renderer

log = logging.getLogger(__name__)

# Loaded in this order; one that fails to load is logged and the others still load.
EXTENSIONS: tuple[str, ...] = (
    "cogs.story",
    "cogs.characters",
    "cogs.chats",
    "cogs.meanwhile",
    "cogs.history",
    "cogs.insight",
    "cogs.lore",
    "cogs.admin",
)

# Exactly what the bot does in a story channel: speak through webhooks, stream and split replies,
# open and archive meanwhile threads, pre-add ⛔ and remove other people's ⛔ and 🔄, mark rewound
# lines ⏪ (or delete them, when set to).
PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    create_public_threads=True,
    manage_webhooks=True,
    add_reactions=True,
    read_message_history=True,
    embed_links=True,
    attach_files=True,
    manage_messages=True,
    manage_threads=True,
)

# Seconds of the first wait before reconnecting after a gateway payload discord.py could not
# read: a random wait up to 2 s, doubling per failure in a row up to about 17 minutes.
GATEWAY_RETRY_BASE = 1

# How long turns cancelled after the grace get to unwind before the store closes.
SHUTDOWN_CANCEL_SECONDS = 1.0


def story_intents() -> discord.Intents:
    """Guild messages with their content (turns) and reactions (⛔); nothing more."""
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.message_content = True
    intents.guild_reactions = True
    return intents


def invite_url(application_id: int, api_base: str = DISCORD_API_BASE) -> str:
    return server.invite_url(api_base, application_id, PERMISSIONS)


class StoryBot(commands.Bot):
    """The Discord client of one storybot process: the engine, its renderer, and running turns."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        intents: discord.Intents | None = None,
        extensions: Sequence[str] = EXTENSIONS,
        **options: Any,
    ) -> None:
        # storybot never joins voice: discord.py's warnings about voice libraries are noise
        discord.VoiceClient.warn_nacl = False
        discord.VoiceClient.warn_dave = False
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents or story_intents(),
            help_command=None,
            allowed_mentions=discord.AllowedMentions.none(),
            **options,
        )
        self.settings = settings
        self.engine = engine
        self.renderer = Renderer(engine.queries.asset, settings.discord)
        self.story_extensions = tuple(extensions)
        self.failed_extensions: list[str] = []
        self.store_failure: StoreError | None = None
        """Set when the database became unusable (deleted, full): the bot then stops."""
        self._turns: set[asyncio.Task[object]] = set()

    def _get_state(self, **options: Any) -> ConnectionState[Self]:
        """discord.py's connection state, with every event parser guarded (bot/gateway.py)."""
        state = super()._get_state(**options)
        guard_parsers(state.parsers)
        return state

    async def setup_hook(self) -> None:
        await self.load_story_extensions()
        if self.application_id is not None:
            api_base = self.settings.discord.api_base
            log.info("invite storybot with %s", invite_url(self.application_id, api_base))
            await self.sync_guild_commands()

    async def login(self, token: str) -> None:
        """Log in; a server other than Discord is asked where its gateway is."""
        await super().login(token)
        discord_settings = self.settings.discord
        if not server.is_discord(discord_settings.api_base) and not discord_settings.gateway_url:
            _, url, _ = await self.http.get_bot_gateway()
            server.use_gateway(url)

    async def connect(self, *, reconnect: bool = True) -> None:
        """Stay connected through gateway frames discord.py cannot read (bot/gateway.py).

        discord.py reconnects after network trouble, but a frame it cannot decode escapes
        ``connect`` and would end the process, and the store with it. Such a failure is
        logged and the gateway is opened again, with a growing wait; the store and the engine
        stay as they are. discord.py's own fatal errors (a refused token, a missing intent)
        still end the run.
        """
        backoff: ExponentialBackoff[bool] = ExponentialBackoff(base=GATEWAY_RETRY_BASE)
        while not self.is_closed():
            try:
                await super().connect(reconnect=reconnect)
                return
            except Exception as exc:
                if isinstance(exc, discord.DiscordException) or not reconnect or self.is_closed():
                    raise
                retry = backoff.delay()
                log.exception("could not read a gateway event; reconnecting in %.1f s", retry)
                await self._drop_socket()
                await asyncio.sleep(retry)

    async def _drop_socket(self) -> None:
        """Close the websocket a failed event left open, so its heartbeat stops."""
        ws = self.ws
        if ws is not None and ws.open:
            try:
                await ws.close(code=4000)
            except (OSError, aiohttp.ClientError) as exc:
                log.info("the old gateway connection did not close cleanly: %s", exc)

    async def load_story_extensions(self) -> None:
        for name in self.story_extensions:
            try:
                await self.load_extension(name)
            except commands.ExtensionError:
                self.failed_extensions.append(name)
                log.exception("could not load %s; the other extensions still load", name)

    async def sync_guild_commands(self) -> None:
        """Sync slash commands to the configured guilds only (instant, unlike a global sync)."""
        for guild_id in self.settings.discord.guild_ids:
            guild = discord.Object(id=guild_id)
            self.tree.copy_global_to(guild=guild)
            try:
                synced = await self.tree.sync(guild=guild)
            except discord.HTTPException as exc:
                log.warning("could not sync commands to guild %d: %s", guild_id, exc)
            else:
                log.info("synced %d commands to guild %d", len(synced), guild_id)

    async def on_error(self, event_method: str, /, *args: object, **kwargs: object) -> None:
        """A database that can no longer be written stops the bot; other errors are logged."""
        failure = sys.exc_info()[1]
        if not isinstance(failure, StoreError):
            await super().on_error(event_method, *args, **kwargs)
            return
        if self.store_failure is None:
            self.store_failure = failure
            log.critical("%s; storybot stops", failure)
            task = asyncio.create_task(self.close())
            _shutdowns.add(task)
            task.add_done_callback(_shutdowns.discard)

    async def process_commands(self, message: discord.Message, /) -> None:
        """Prefix commands (``@storybot sync``); a message whose payload had no author is none."""
        if getattr(message, "author", None) is not None:
            await super().process_commands(message)

    async def is_owner(self, user: discord.abc.User, /) -> bool:
        if user.id in self.settings.discord.owner_ids:
            return True
        return await super().is_owner(user)

    @contextlib.contextmanager
    def turn_running(self) -> Iterator[None]:
        """Mark the current task as playing a beat, so shutdown waits for it to be written."""
        task = asyncio.current_task()
        if task is None:
            yield
            return
        kept = task in self._turns  # by keep_until_done: kept until the task ends
        self._turns.add(task)
        try:
            yield
        finally:
            if not kept:
                self._turns.discard(task)

    @property
    def turns_running(self) -> int:
        """How many tasks of story work shutdown would still wait for."""
        return len(self._turns)

    def keep_until_done(self) -> None:
        """Shutdown waits for the current task (story work that writes), then cancels it."""
        task = asyncio.current_task()
        if task is not None and task not in self._turns:
            self._turns.add(task)
            task.add_done_callback(self._turns.discard)

    async def close(self) -> None:
        """Stop the story first, then Discord: nothing writes to the store once this returns.

        The engine stops every streaming reply (written, marked stopped) and refuses new beats;
        turns already running get the rest of the grace to be written and shown, and whatever
        still runs after it is cancelled, so the store can be closed under no one.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SHUTDOWN_GRACE_SECONDS
        streaming = len(self.engine.turns.in_flight)
        await self.engine.close(grace=SHUTDOWN_GRACE_SECONDS)
        me = asyncio.current_task()
        running = {t for t in self._turns if not t.done() and t is not me}
        if running:
            log.info("stopped %d replies, waiting for %d turns", streaming, len(running))
            _, late = await asyncio.wait(running, timeout=max(0.0, deadline - loop.time()))
            if late:
                log.warning("cancelling %d turns still running after the grace", len(late))
                for task in late:
                    task.cancel()
                await asyncio.wait(late, timeout=SHUTDOWN_CANCEL_SECONDS)
        await super().close()


class ShardedStoryBot(StoryBot, commands.AutoShardedBot):
    """The bot over several gateway connections: the shards ``[discord] shards`` names, of
    ``shard_count``. Every guild's events come through its own shard, so each chat is played
    by the one process running that guild's shard."""

    def _get_state(self, **options: Any) -> AutoShardedConnectionState[Self]:
        """The sharded connection state, guarded as ``StoryBot``'s is (the MRO reaches it)."""
        return cast(AutoShardedConnectionState[Self], super()._get_state(**options))


def build_bot(
    settings: Settings,
    engine: Engine,
    *,
    intents: discord.Intents | None = None,
    extensions: Sequence[str] = EXTENSIONS,
) -> StoryBot:
    """The bot, wired but not connected: what ``run_discord`` starts and what tests drive.

    Sharded settings (``[discord] shard_count``) give an ``AutoShardedBot`` running this
    process's shards; otherwise one connection, as a bot in fewer than 2,500 servers needs.
    """
    discord_settings = settings.discord
    if not discord_settings.shard_count:
        return StoryBot(settings, engine, intents=intents, extensions=extensions)
    return ShardedStoryBot(
        settings,
        engine,
        intents=intents,
        extensions=extensions,
        shard_ids=discord_settings.shard_ids,
        shard_count=discord_settings.shard_count,
    )


async def run_discord(settings: Settings) -> int:
    """Run the bot until it is closed; a start-up problem the user can fix is one clear line."""
    token = settings.discord.token.get_secret_value()
    if not token:
        raise CommandError(
            "[discord] token is empty: put the bot token from the Discord developer portal in "
            "the config file or in STORYBOT_DISCORD_TOKEN"
        )
    async with (
        open_store(settings.storage) as db,
        sharing(settings) as shared,
        OpenAICompatibleClient.from_settings(settings.llm, gate=shared.gate) as llm,
    ):
        with server.talking_to(settings.discord.api_base, settings.discord.gateway_url):
            return await _serve(
                settings, Engine(db, llm, settings, chat_lock=shared.chat_lock), token
            )


async def _serve(settings: Settings, engine: Engine, token: str) -> int:
    recovered = await engine.turns.recover_interrupted()
    if recovered:
        log.info("closed %d turns cut off by the last shutdown", recovered)
    bot = build_bot(settings, engine)
    async with bot:
        _close_on_sigterm(bot)
        await _start(bot, token)
    if bot.store_failure is not None:
        raise bot.store_failure
    return 0


async def _start(bot: StoryBot, token: str) -> None:
    try:
        await bot.start(token)
    except discord.LoginFailure:
        raise CommandError(
            "Discord refused the bot token: copy it again from the developer portal "
            "(Bot > Reset Token) into [discord] token or STORYBOT_DISCORD_TOKEN"
        ) from None
    except discord.PrivilegedIntentsRequired:
        raise CommandError(
            "the Message Content intent is off: enable it in the developer portal "
            "(Bot > Privileged Gateway Intents > Message Content Intent), then run again"
        ) from None
    except (aiohttp.ClientError, OSError) as exc:
        api_base = bot.settings.discord.api_base
        where = "Discord" if server.is_discord(api_base) else f"the server at {api_base}"
        raise CommandError(
            f"cannot reach {where} ({exc}); check this machine's network, then run again"
        ) from None


_shutdowns: set[asyncio.Task[None]] = set()


def _close_on_sigterm(bot: StoryBot) -> None:
    """SIGTERM closes the bot the same clean way Ctrl-C does (replies stopped and marked)."""

    def close() -> None:
        task = asyncio.create_task(bot.close())
        _shutdowns.add(task)
        task.add_done_callback(_shutdowns.discard)

    with contextlib.suppress(NotImplementedError, RuntimeError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, close)
