"""Steps of a story played on the fake Discord that several test modules take."""

from __future__ import annotations

import json

import discord
import discord.ext.test as dpytest

from bot.llm import ScriptedLLM
from tests.helpers.discord_fakes import StoryWorld
from tests.helpers.engine_helpers import parse_answer


def feeling(affinity: int = 0, trust: int = 0) -> str:
    """A state update moving the host's affinity and trust toward you."""
    change = {"target_id": "you", "affinity_delta": affinity, "trust_delta": trust}
    return json.dumps({"relationships": [change]})


async def turn(
    world: StoryWorld, llm: ScriptedLLM, prose: str, reply: str, **moved: int
) -> tuple[discord.Message, int]:
    """The owner writes ``prose``; BotA answers ``reply``. Returns the line and the reply's id."""
    llm.script(narrate=reply, classify=parse_answer(prose), state=feeling(**moved))
    line = await dpytest.message(prose, channel=world.channel, member=world.owner)
    return line, world.gaps.posts_in(world.channel.id)[-1].message_id


async def texts(world: StoryWorld, chat_id: str) -> list[str]:
    return [b.text for b in await world.engine.queries.beats(chat_id)]
