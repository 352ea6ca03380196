"""The Discord bot on a database that becomes unusable: it stops, saying why, playing nothing."""

from __future__ import annotations

from pathlib import Path

import discord.ext.test as dpytest

from bot.llm import ScriptedLLM
from bot.store import DatabaseGoneError
from bot.store.health import FileIdentity
from tests.helpers.discord_fakes import StoryWorld, wait_until


async def test_a_database_gone_under_the_discord_bot_stops_it(
    world: StoryWorld, llm: ScriptedLLM, tmp_path: Path
) -> None:
    chat_id = await world.story()
    world.db.identity = FileIdentity(tmp_path / "story.db", 0, 0)  # as if the file was deleted
    world.bot.ws = None  # type: ignore[assignment]  # dpytest's websocket cannot close

    await dpytest.message("Hello there", channel=world.channel, member=world.owner)
    await wait_until(world.bot.is_closed)

    assert isinstance(world.bot.store_failure, DatabaseGoneError)
    assert "was deleted while storybot was running" in str(world.bot.store_failure)
    assert llm.calls == []  # nothing was played on a store that cannot keep it
    assert world.gaps.posts_in(world.channel.id) == []
    world.db.identity = None
    assert len(await world.engine.queries.beats(chat_id)) == 1  # only the opening
