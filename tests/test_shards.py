"""Sharded runs (issue 16, item 2), without PostgreSQL: settings, the command line, the bot.

``[discord] shard_count`` (or ``run --shard-count``) makes the bot an ``AutoShardedBot``
running ``shards`` of them; shards left to other processes need the story in PostgreSQL.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from discord.ext import commands

from bot import app, cli, server
from bot.app import ShardedStoryBot, StoryBot, build_bot
from bot.config import ConfigError, Settings, load_settings, with_shards
from bot.engine import Engine
from bot.engine.inflight import OneProcess
from bot.llm import MockLLMClient, PriorityGate
from bot.store import Database
from tests.helpers.fake_gateway import FakeDiscordServer
from tests.helpers.serving import capture_serving

PG = "postgresql://storybot@db.example/story"


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_settings_name_this_processs_shards(tmp_path: Path) -> None:
    path = _config(
        tmp_path, f'[discord]\nshards = [3, 1]\nshard_count = 4\n[storage]\nurl = "{PG}"\n'
    )
    discord = load_settings(path, env={}).discord
    assert discord.shards == [1, 3] and discord.shard_ids == [1, 3]
    assert Settings().discord.shard_ids == []  # not sharded by default


def test_a_shard_count_alone_runs_every_shard_here_on_sqlite(tmp_path: Path) -> None:
    discord = load_settings(_config(tmp_path, "[discord]\nshard_count = 3\n"), env={}).discord
    assert discord.shard_ids == [0, 1, 2]


@pytest.mark.parametrize(
    ("discord", "wrong"),
    [
        ("shards = [0, 4]\nshard_count = 4", "shard 4 is not one of the bot's 4 shards"),
        ("shards = [-1]\nshard_count = 2", "shard -1 is not one of the bot's 2 shards"),
        ("shards = [1]", "needs shard_count too"),
        ("shards = [1, 1]\nshard_count = 2", "names a shard twice"),
    ],
)
def test_bad_shards_are_one_line_naming_the_key(tmp_path: Path, discord: str, wrong: str) -> None:
    path = _config(tmp_path, f'[discord]\n{discord}\n[storage]\nurl = "{PG}"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    message = str(caught.value)
    assert message.startswith("config key [discord.shards]") and wrong in message
    assert "\n" not in message


def test_shards_left_to_other_processes_need_postgresql(tmp_path: Path) -> None:
    path = _config(tmp_path, "[discord]\nshards = [0, 1]\nshard_count = 4\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    message = str(caught.value)
    assert "shards 2, 3 run in other processes" in message
    assert "[storage] url" in message and "\n" not in message


def test_the_command_line_overrides_the_settings_with_its_own_words() -> None:
    settings = Settings.model_validate({"storage": {"url": PG}})
    sharded = with_shards(settings, [0, 1], 4)
    assert sharded.discord.shard_ids == [0, 1] and sharded.discord.shard_count == 4
    assert with_shards(settings, None, None) is settings
    with pytest.raises(ConfigError, match=r"^--shards: shard 4 is not one of the bot's 4 shards"):
        with_shards(settings, [4], 4)
    with pytest.raises(ConfigError, match="needs --shard-count too"):
        with_shards(settings, [0], None)
    with pytest.raises(ConfigError, match=r"^--shards: .*\[storage\] url"):
        with_shards(Settings(), [0], 2)


@pytest.mark.parametrize(
    ("argv", "wrong"),
    [
        (["--shards", "0,4", "--shard-count", "4"], "error: --shards: shard 4 is not one of"),
        (["--shards", "0", "--shard-count", "2"], "shards 1 run in other processes"),
    ],
)
def test_run_refuses_bad_shards_before_starting(
    argv: list[str], wrong: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["run", *argv]) == 2
    assert wrong in capsys.readouterr().err


def test_run_refuses_shards_that_are_not_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["run", "--shards", "0,x", "--shard-count", "4"])
    assert exited.value.code == 2
    assert "'0,x' is not a list of shard ids" in capsys.readouterr().err


def test_an_unreachable_postgresql_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config(
        tmp_path,
        '[discord]\ntoken = "t"\n'
        '[storage]\nurl = "postgresql://storybot:hunter2@127.0.0.1:1/story"\n'
        f'db_path = "{tmp_path / "story.db"}"\n',
    )
    assert cli.main(["--config", str(path), "run", "--shards", "0", "--shard-count", "2"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(
        "error: cannot reach PostgreSQL at postgresql://storybot@127.0.0.1:1/story"
    )
    assert "hunter2" not in err and "\n" not in err


async def test_sharded_settings_build_an_auto_sharded_bot(db: Database) -> None:
    settings = Settings.model_validate(
        {"discord": {"shards": [0, 1], "shard_count": 4}, "storage": {"url": PG}}
    )
    bot = build_bot(settings, Engine(db, MockLLMClient(), settings), extensions=())
    async with bot:  # set up and closed, never connected
        assert isinstance(bot, ShardedStoryBot)
        assert isinstance(bot, commands.AutoShardedBot)
        assert bot.shard_ids == [0, 1] and bot.shard_count == 4
        # its gateway events are guarded as the single connection's are (bot/gateway.py)
        bot._connection.parsers["MESSAGE_CREATE"]({"no": "such payload"})


async def test_unsharded_settings_build_one_connection(db: Database) -> None:
    settings = Settings()
    bot = build_bot(settings, Engine(db, MockLLMClient(), settings), extensions=())
    async with bot:
        assert type(bot) is StoryBot
        assert not isinstance(bot, commands.AutoShardedBot)


async def test_a_sharded_bot_connects_exactly_its_own_shards(db: Database) -> None:
    """Shards 1 and 3 of 4: two gateway connections, each identifying as its shard."""
    async with FakeDiscordServer() as fake:
        settings = Settings.model_validate(
            {
                "discord": {"api_base": fake.api_base, "shards": [1, 3], "shard_count": 4},
                "storage": {"url": PG},
            }
        )
        bot = build_bot(settings, Engine(db, MockLLMClient(), settings), extensions=())

        async def at_once(shard_id: int | None, *, initial: bool = False) -> None:
            return None  # discord.py spaces identifies 5 s apart, as Discord asks; not here

        bot.before_identify_hook = at_once  # type: ignore[method-assign]
        with server.talking_to(settings.discord.api_base):
            task = asyncio.create_task(bot.start("a-token"))
            try:
                await fake.wait_for_connections(2)
            finally:
                await bot.close()
                await asyncio.wait_for(task, 10)
    assert sorted(tuple(i["d"]["shard"]) for i in fake.identifies) == [(1, 4), (3, 4)]


async def test_run_on_sqlite_keeps_its_own_cap_and_takes_no_chat_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = capture_serving(monkeypatch)
    settings = Settings.model_validate(
        {"discord": {"token": "t"}, "storage": {"db_path": str(tmp_path / "story.db")}}
    )
    assert await app.run_discord(settings) == 0
    assert isinstance(seen["gate"], PriorityGate) and isinstance(seen["lock"], OneProcess)
