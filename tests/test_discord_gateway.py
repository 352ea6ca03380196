"""The gateway connection: any Discord-compatible server by setting, and surviving bad payloads.

A real server (Spacebar) once sent payloads discord.py could not parse; each one ended the
process. Now an event that cannot be parsed is dropped (logged) and the connection stays; a
frame that cannot be read at all reconnects with backoff; the store stays open throughout.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

import pytest
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot import app, server
from bot.app import StoryBot, build_bot
from bot.config import ConfigError, Settings, load_settings
from bot.engine import Engine
from bot.llm import MockLLMClient
from bot.store import Database, open_db
from tests.helpers.fake_gateway import BOT_USER, FakeDiscordServer


class NoWait:
    """A backoff that never waits, so reconnect tests take milliseconds."""

    def __init__(self, base: int = 1) -> None:
        self.delays = 0

    def delay(self) -> float:
        self.delays += 1
        return 0.0


@pytest.fixture
async def discord_server() -> AsyncIterator[FakeDiscordServer]:
    async with FakeDiscordServer() as fake:
        yield fake


@pytest.fixture
async def store() -> AsyncIterator[Database]:
    async with open_db(":memory:") as database:
        yield database


def bot_for(fake: FakeDiscordServer, store: Database) -> StoryBot:
    settings = Settings.model_validate({"discord": {"api_base": fake.api_base}})
    return build_bot(settings, Engine(store, MockLLMClient(), settings), extensions=())


async def run_until(bot: StoryBot, fake: FakeDiscordServer, connections: int) -> None:
    """Start the bot like ``run`` does, wait for ``connections`` READYs, then close it."""
    with server.talking_to(bot.settings.discord.api_base):
        task = asyncio.create_task(bot.start("a-token"))
        try:
            await fake.wait_for_connections(connections)
            assert not task.done(), task.exception() if task.done() else None
        finally:
            await bot.close()
            await asyncio.wait_for(task, 10)


async def test_a_frame_that_is_not_json_reconnects_and_keeps_the_store_open(
    discord_server: FakeDiscordServer,
    store: Database,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    backoff = NoWait()
    monkeypatch.setattr(app, "ExponentialBackoff", lambda base: backoff)
    discord_server.script("{this is not json")
    bot = bot_for(discord_server, store)
    with caplog.at_level(logging.ERROR, logger="bot.app"):
        await run_until(bot, discord_server, connections=2)
    assert backoff.delays == 1
    assert "could not read a gateway event" in caplog.text
    assert len(discord_server.identifies) == 2
    # the store is still open under the engine: the bot can go on writing the story
    assert await bot.engine.characters.all(0) == []


RENAMED = json.dumps(
    {"op": 0, "t": "USER_UPDATE", "s": 3, "d": {**BOT_USER, "username": "storybot-renamed"}}
)


@pytest.mark.parametrize(
    "bad_event",
    [
        {"t": "CHANNEL_CREATE", "d": {"id": "5"}},  # no "type"
        {"t": "MESSAGE_UPDATE", "d": {"channel_id": "5"}},  # no "id"
        {"t": "MESSAGE_REACTION_ADD", "d": {"channel_id": "5"}},
    ],
    ids=lambda event: str(event["t"]),
)
async def test_an_event_that_cannot_be_parsed_is_dropped_and_the_connection_stays(
    discord_server: FakeDiscordServer,
    store: Database,
    bad_event: dict[str, object],
    caplog: pytest.LogCaptureFixture,
) -> None:
    discord_server.script(json.dumps({"op": 0, "s": 2, **bad_event}), RENAMED)
    bot = bot_for(discord_server, store)
    renamed = asyncio.Event()

    async def on_socket_event_type(kind: str) -> None:
        if kind == "USER_UPDATE":  # dispatched as the event arrives; its parser runs first
            renamed.set()

    bot.add_listener(on_socket_event_type)
    with (
        caplog.at_level(logging.ERROR, logger="bot.gateway"),
        server.talking_to(bot.settings.discord.api_base),
    ):
        task = asyncio.create_task(bot.start("a-token"))
        try:
            await asyncio.wait_for(renamed.wait(), 10)
        finally:
            await bot.close()
            await asyncio.wait_for(task, 10)
    assert bot.user is not None and bot.user.name == "storybot-renamed"  # read the next event
    assert f"dropped a {bad_event['t']} event" in caplog.text
    assert len(discord_server.identifies) == 1  # never reconnected: no event was lost


async def test_the_bot_logs_in_and_connects_where_api_base_says(
    discord_server: FakeDiscordServer, store: Database
) -> None:
    before = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
    bot = bot_for(discord_server, store)
    await run_until(bot, discord_server, connections=1)
    assert discord_server.identifies[0]["d"]["token"] == "a-token"
    assert before == (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)  # put back afterwards


def test_discord_is_the_default_server() -> None:
    settings = load_settings(env={})
    assert settings.discord.api_base == "https://discord.com/api/v10"
    assert settings.discord.gateway_url == ""
    assert app.invite_url(1).startswith("https://discord.com/oauth2/authorize?")


def test_a_self_hosted_server_gets_its_own_invite_link() -> None:
    url = app.invite_url(1, "http://127.0.0.1:3001/api/v9")
    assert url.startswith("http://127.0.0.1:3001/oauth2/authorize?client_id=1")


@pytest.mark.parametrize(
    ("key", "value"), [("api_base", "discord.com/api"), ("gateway_url", "http://x")]
)
def test_a_bad_server_address_is_a_clear_config_error(
    tmp_path: pytest.TempPathFactory, key: str, value: str
) -> None:
    path = tmp_path / "c.toml"  # type: ignore[operator]
    path.write_text(f'[discord]\n{key} = "{value}"\n')
    with pytest.raises(ConfigError, match=rf"\[discord\.{key}\]"):
        load_settings(path, env={})
