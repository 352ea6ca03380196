"""The Tavern features through Discord: /chat start greeting, 🔄 on the opening, /lore, and
/character show."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import discord
import discord.ext.test as dpytest
import discord.ext.test.backend as dpytest_backend
from discord.ext import commands

from bot.llm import ScriptedLLM
from cogs._choices import greeting_choices
from tests.helpers.discord_fakes import (
    HOST,
    StoryWorld,
    cached_message,
    invoke,
    make_attachment,
    make_interaction,
)
from tests.helpers.engine_helpers import character, parse_answer, zero_state

GREETINGS = {"kickoff_prose": "BotA waves at {{user}}.", "alternate_greetings": ["BotA bows."]}


async def slash(
    world: StoryWorld, cog_name: str, command: str, user: discord.Member, **options: Any
) -> list[Any]:
    target = world.bot.get_cog(cog_name)
    assert isinstance(target, commands.Cog), cog_name
    asked = make_interaction(world.bot, user, world.channel)
    return await invoke(target, getattr(target, command), asked, **options)


async def cast(world: StoryWorld, **fields: Any) -> None:
    await world.engine.characters.author(
        character(HOST, "BotA", **fields),
        guild_id=world.channel.guild.id,
        creator_id=world.owner.id,
    )
    await world.engine.characters.set_you(
        guild_id=world.channel.guild.id, owner_id=world.owner.id, name="Sam"
    )


async def test_chat_start_opens_with_the_chosen_greeting_and_cycles_on_regenerate(
    world: StoryWorld, llm: ScriptedLLM
) -> None:
    await cast(world, **GREETINGS)
    await slash(world, "Chats", "start", world.owner, host=HOST, greeting=1)
    (opening,) = world.gaps.posts_in(world.channel.id)
    assert (opening.username, opening.content) == ("BotA", "BotA bows.")

    found = cached_message(world.bot, opening.message_id)
    dpytest_backend.add_reaction(found, world.owner, "🔄")
    await dpytest.run_all_events()

    struck, shown = world.gaps.posts_in(world.channel.id)
    assert struck.content == "~~BotA bows.~~ *(rewound)*"
    assert (shown.username, shown.content) == ("BotA", "BotA waves at Sam.")
    assert llm.calls == []


async def test_the_greeting_option_previews_each_greeting_of_the_host(world: StoryWorld) -> None:
    await cast(world, **GREETINGS)
    asked = make_interaction(world.bot, world.owner, world.channel)
    asked.namespace = SimpleNamespace(host=HOST)
    choices = await greeting_choices(asked, "")
    assert [(c.name, c.value) for c in choices] == [
        ("0: first message — BotA waves at Sam.", 0),
        ("1: alternate 1 — BotA bows.", 1),
    ]
    asked.namespace = SimpleNamespace(host="nobody")
    assert await greeting_choices(asked, "") == []


async def test_lore_commands_change_the_world_book_and_show_what_fires(
    world: StoryWorld, llm: ScriptedLLM
) -> None:
    chat_id = await world.story()
    (added,) = await slash(
        world, "Lore", "add", world.owner, keys="lamp, beacon", content="The lamp never fails."
    )
    assert added.content == "World-book entry #1 added."
    (refused,) = await slash(world, "Lore", "add", world.stranger, keys="x", content="y")
    assert refused.content == "only the owner of this story can change its world book"

    book = {"entries": {"0": {"key": ["gull"], "content": "Gulls steal.", "comment": "gulls"}}}
    upload = make_attachment("vale.json", json.dumps(book).encode(), "application/json")
    (imported,) = await slash(world, "Lore", "import_", world.owner, book=upload)
    assert imported.content.startswith("The world book is now vale: 1 entries")
    await slash(world, "Lore", "add", world.owner, keys="lamp", content="The lamp never fails.")

    (listed,) = await slash(world, "Lore", "list_", world.stranger)
    assert listed.embed.description == (
        "#1 gulls: Gulls steal. (keys: gull)\n#2 The lamp never fails. (keys: lamp)"
    )
    (why,) = await slash(world, "Lore", "why", world.stranger, line="a gull and the lamp")
    assert why.embed.title == "World info for BotA's next reply"
    assert why.embed.description == (
        "**gulls** (the story's world book): key 'gull' in the line being answered\n"
        "**lamp** (the story's world book): key 'lamp' in the line being answered"
    )
    (removed,) = await slash(world, "Lore", "remove", world.owner, number=1)
    assert removed.content == "World-book entry #1 removed."
    (missing,) = await slash(world, "Lore", "remove", world.owner, number=1)
    assert missing.ephemeral and "no entry 1" in missing.content

    llm.script(narrate="BotA trims the lamp.", classify=parse_answer("x"), state=zero_state())
    await dpytest.message("How is the lamp?", channel=world.channel, member=world.owner)
    prompt = next(call for call in llm.calls if call.kind == "stream").messages
    assert any(m.content == "World info:\nThe lamp never fails." for m in prompt)
    assert chat_id


async def test_character_show_shows_creator_and_version(world: StoryWorld) -> None:
    await cast(world, creator="cliffside", character_version="2.1", personality="wry")
    (shown,) = await slash(world, "Characters", "show", world.owner, character=HOST)
    fields = {field.name: field.value for field in shown.embed.fields}
    assert fields["creator"] == "cliffside" and fields["version"] == "2.1"
    assert fields["personality"] == "wry"
