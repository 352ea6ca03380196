"""Partial gateway payloads: every listener copes with an event that left fields out.

A real server sent MESSAGE_UPDATE without ``author``; discord.py then builds a Message with no
``author`` attribute and the edit listener raised AttributeError. Given such payloads, no
listener fails, and a partial edit of the owner's line still changes the story.
"""

from __future__ import annotations

import sys
from typing import Any

import discord
import discord.ext.test as dpytest
import discord.ext.test.backend as dpytest_backend
import pytest

from bot.llm import ScriptedLLM
from tests.helpers.discord_fakes import StoryWorld, forget_cached, stored_message
from tests.helpers.discord_story import feeling, texts, turn
from tests.helpers.engine_helpers import parse_answer


@pytest.fixture
def listener_errors(world: StoryWorld, monkeypatch: pytest.MonkeyPatch) -> list[BaseException]:
    """Exceptions raised in any listener (discord.py would only log them)."""
    errors: list[BaseException] = []

    async def on_error(event: str, *args: Any, **kwargs: Any) -> None:
        error = sys.exc_info()[1]
        assert error is not None
        errors.append(error)

    monkeypatch.setattr(world.bot, "on_error", on_error)
    return errors


def state() -> Any:
    return dpytest_backend.get_state()


def update_without_author(world: StoryWorld, message_id: int | str, content: str) -> None:
    """MESSAGE_UPDATE carrying only what changed: no author, no member."""
    state().parse_message_update(
        {
            "id": str(message_id),
            "channel_id": str(world.channel.id),
            "guild_id": str(world.channel.guild.id),
            "content": content,
            "type": 0,
        }
    )


async def test_an_update_without_author_still_edits_the_owners_line(
    world: StoryWorld, llm: ScriptedLLM, listener_errors: list[BaseException]
) -> None:
    chat_id = await world.story()
    line, _ = await turn(world, llm, "I sya hello", "BotA tilts her head.")
    stored_message(world.channel.id, line.id)["content"] = "I say hello"
    # Not in discord.py's cache (as on the real server): a cached one fails inside discord.py's
    # own parser, which the gateway guard turns into a reconnect (tests/test_discord_gateway.py).
    forget_cached(world.bot, line.id)
    llm.script(
        classify=parse_answer("I say hello"), state=feeling()
    )  # the edit labels the new words again
    update_without_author(world, line.id, "I say hello")
    await dpytest.run_all_events()
    assert listener_errors == []
    assert (await texts(world, chat_id))[-2:] == ["I say hello", "BotA tilts her head."]


async def test_a_partial_update_outside_a_story_is_ignored(
    world: StoryWorld, listener_errors: list[BaseException]
) -> None:
    update_without_author(world, 123456, "an embed unfurled")
    await dpytest.run_all_events()
    assert listener_errors == []


async def test_a_message_without_author_is_no_turn(
    world: StoryWorld, listener_errors: list[BaseException]
) -> None:
    chat_id = await world.story()
    before = await texts(world, chat_id)
    state().parse_message_create(
        {
            "id": "223456",
            "channel_id": str(world.channel.id),
            "guild_id": str(world.channel.guild.id),
            "content": "who said this?",
            "type": 0,
            "attachments": [],
            "embeds": [],
            "mentions": [],
            "mention_roles": [],
            "pinned": False,
            "mention_everyone": False,
            "tts": False,
            "timestamp": discord.utils.utcnow().isoformat(),
        }
    )
    await dpytest.run_all_events()
    assert listener_errors == []
    assert await texts(world, chat_id) == before


@pytest.mark.parametrize("emoji", ["⛔", "🔄"])
async def test_a_reaction_without_member_or_guild_is_ignored(
    world: StoryWorld, listener_errors: list[BaseException], emoji: str
) -> None:
    await world.story()
    state().parse_message_reaction_add(
        {
            "user_id": str(world.owner.id),
            "channel_id": str(world.channel.id),
            "message_id": "323456",
            "emoji": {"id": None, "name": emoji},
            "type": 0,
            "burst": False,
        }
    )
    state().parse_message_delete({"id": "323456", "channel_id": str(world.channel.id)})
    await dpytest.run_all_events()
    assert listener_errors == []
