"""The runtime: start-up failures in one clear line, extensions, command sync, the invite URL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from unittest.mock import AsyncMock

import discord
import discord.ext.test as dpytest
import pytest
from discord.ext import commands

from bot import cli
from bot.app import PERMISSIONS, StoryBot, build_bot, invite_url
from bot.config import Settings
from bot.engine import Engine
from bot.llm import MockLLMClient
from bot.store import open_db
from tests.helpers.discord_fakes import configured


def config_file(tmp_path: Path, token: str) -> str:
    path = tmp_path / "storybot.toml"
    path.write_text(
        f'[discord]\ntoken = "{token}"\n[storage]\ndb_path = "{tmp_path / "story.db"}"\n'
    )
    return str(path)


def run(tmp_path: Path, token: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(["--config", config_file(tmp_path, token), "run"])
    return code, capsys.readouterr().err


@pytest.fixture(autouse=True)
def no_token_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STORYBOT_DISCORD_TOKEN", raising=False)
    monkeypatch.delenv("STORYBOT_CONFIG", raising=False)


def test_a_missing_token_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run(tmp_path, "", capsys)
    assert code != 0
    assert err.strip().splitlines() == [
        "error: [discord] token is empty: put the bot token from the Discord developer portal "
        "in the config file or in STORYBOT_DISCORD_TOKEN"
    ]


def test_an_invalid_token_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(StoryBot, "login", AsyncMock(side_effect=discord.LoginFailure("bad")))
    code, err = run(tmp_path, "not-a-token", capsys)
    assert code != 0
    assert "Traceback" not in err
    (line,) = err.strip().splitlines()
    assert line.startswith("error: Discord refused the bot token")


def test_no_way_to_reach_discord_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    refused = OSError("Cannot connect to host discord.com:443 [Name or service not known]")
    monkeypatch.setattr(StoryBot, "login", AsyncMock(side_effect=refused))
    code, err = run(tmp_path, "a-token", capsys)
    assert code != 0
    (line,) = err.strip().splitlines()
    assert line.startswith("error: cannot reach Discord")
    assert str(tmp_path) not in line  # not mistaken for a database problem


def test_the_message_content_intent_off_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(StoryBot, "login", AsyncMock())
    monkeypatch.setattr(
        StoryBot, "connect", AsyncMock(side_effect=discord.PrivilegedIntentsRequired(None))
    )
    code, err = run(tmp_path, "a-token", capsys)
    assert code != 0
    (line,) = err.strip().splitlines()
    assert "Message Content Intent" in line


def test_the_invite_url_asks_for_exactly_what_the_bot_needs() -> None:
    url = invite_url(1234)
    assert "client_id=1234" in url
    assert "scope=bot+applications.commands" in url
    assert f"permissions={PERMISSIONS.value}" in url
    assert not PERMISSIONS.administrator
    assert PERMISSIONS.manage_webhooks
    assert PERMISSIONS.manage_threads


@pytest.fixture
async def engine() -> AsyncIterator[Engine]:
    async with open_db(":memory:") as db:
        yield Engine(db, MockLLMClient(), Settings())


async def test_a_broken_extension_is_logged_and_the_others_load(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    bot = build_bot(Settings(), engine, extensions=("cogs.story", "cogs.no_such_cog"))
    await bot.load_story_extensions()
    assert bot.failed_extensions == ["cogs.no_such_cog"]
    assert "Story" in bot.cogs
    assert "could not load cogs.no_such_cog" in caplog.text
    await bot.close()


async def test_commands_sync_to_the_configured_guilds_only(engine: Engine) -> None:
    settings = Settings.model_validate({"discord": {"guild_ids": [111, 222]}})
    bot = build_bot(settings, engine)
    bot.tree.sync = AsyncMock(return_value=[])  # type: ignore[method-assign]
    await bot.sync_guild_commands()
    synced = [call.kwargs["guild"].id for call in bot.tree.sync.await_args_list]
    assert synced == [111, 222]
    await bot.close()


async def test_only_an_owner_can_sync_commands(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings.model_validate({"discord": {"owner_ids": [1]}})
    bot = build_bot(settings, engine, intents=discord.Intents.all())
    async with configured(bot, monkeypatch):
        bot.tree.sync = AsyncMock(return_value=[])  # type: ignore[method-assign]
        assert bot.user is not None
        with pytest.raises(commands.NotOwner):  # dpytest re-raises command errors
            await dpytest.message(f"<@{bot.user.id}> sync global")
        assert dpytest.verify().message().content("only the owner of this bot can sync commands")
        bot.tree.sync.assert_not_awaited()
