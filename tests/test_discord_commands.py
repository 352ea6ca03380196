"""Slash command bodies through spec'd Interactions: who may do what, and what they are shown."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import discord
import discord.ext.test as dpytest
import pytest
from discord.ext import commands

from bot.cards import export_card
from bot.llm import ScriptedLLM
from bot.store.events import BotAuthored
from cogs._choices import character_choices
from tests.helpers.cards import make_png
from tests.helpers.discord_fakes import (
    GUEST,
    HOST,
    StoryWorld,
    Wiring,
    fill_modal,
    invoke,
    make_attachment,
    make_interaction,
)
from tests.helpers.engine_helpers import parse_answer, threads_answer, zero_state

MIRA_TOML = b'name = "Mira"\npersona = "A lighthouse keeper."\nkickoff_prose = "Mira waves."\n'


@pytest.fixture
def llm() -> ScriptedLLM:
    return ScriptedLLM()


@pytest.fixture
async def world(monkeypatch: pytest.MonkeyPatch, llm: ScriptedLLM) -> AsyncIterator[StoryWorld]:
    async for built in Wiring(monkeypatch).world(llm, guilds=2):
        yield built


def cog(world: StoryWorld, name: str) -> commands.Cog:
    found = world.bot.get_cog(name)
    assert found is not None, name
    return found


async def slash(
    world: StoryWorld,
    cog_name: str,
    command: str,
    user: discord.Member,
    channel: discord.TextChannel | discord.Thread | None = None,
    *,
    permissions: discord.Permissions | None = None,
    app_permissions: discord.Permissions | None = None,
    **options: Any,
) -> list[Any]:
    """Run ``/…`` by its cog and method name, as ``user`` in ``channel`` (the story's)."""
    target = cog(world, cog_name)
    interaction = make_interaction(
        world.bot,
        user,
        channel or world.channel,
        permissions=permissions,
        app_permissions=app_permissions,
    )
    return await invoke(target, getattr(target, command), interaction, **options)


def other_guild(world: StoryWorld) -> tuple[discord.TextChannel, discord.Member]:
    config = dpytest.get_config()
    return config.channels[1], config.members[2]


async def test_only_the_owner_or_a_channel_manager_can_change_the_story(world: StoryWorld) -> None:
    await world.story()

    (refusal,) = await slash(world, "Chats", "end", world.stranger)
    assert refusal.ephemeral
    assert refusal.content == "only the owner of this story can end it"
    assert await world.engine.queries.chat_in_channel(world.channel.id) is not None

    manager = discord.Permissions(manage_channels=True)
    (done,) = await slash(world, "Chats", "end", world.stranger, permissions=manager)
    assert done.content == "The story ends here."
    assert await world.engine.queries.chat_in_channel(world.channel.id) is None


async def test_chat_start_binds_the_channel_and_posts_the_kickoff_through_the_host(
    world: StoryWorld,
) -> None:
    await world.engine.characters.author(
        {"id": "mira", "name": "Mira", "persona": "", "kickoff_prose": "Mira looks up."},
        guild_id=world.channel.guild.id,
    )
    no_webhooks = discord.Permissions.all()
    no_webhooks.manage_webhooks = False

    (started,) = await slash(
        world, "Chats", "start", world.owner, app_permissions=no_webhooks, host="mira",
        place="lighthouse", weather="fog",
    )  # fmt: skip

    assert started.content.startswith("A story begins with Mira")
    assert "Manage Webhooks" in started.content
    chat = await world.engine.queries.chat_in_channel(world.channel.id)
    assert chat is not None
    assert chat.owner_id == world.owner.id
    (kickoff,) = world.gaps.posts_in(world.channel.id)
    assert (kickoff.username, kickoff.content) == ("Mira", "Mira looks up.")
    beats = await world.engine.queries.beats(chat.id)
    assert beats[0].message_ids == (kickoff.message_id,)


async def test_chat_start_is_refused_where_the_bot_cannot_speak(world: StoryWorld) -> None:
    await world.engine.characters.author(
        {"id": "mira", "name": "Mira", "persona": ""}, guild_id=world.channel.guild.id
    )
    (refusal,) = await slash(
        world, "Chats", "start", world.owner, app_permissions=discord.Permissions.none(),
        host="mira",
    )  # fmt: skip
    assert refusal.ephemeral
    assert "can't send messages" in refusal.content
    assert await world.engine.queries.chat_in_channel(world.channel.id) is None


async def test_chat_status_shows_time_place_weather_and_who_is_present(world: StoryWorld) -> None:
    await world.story(guest=True)

    (shown,) = await slash(world, "Chats", "status", world.stranger)

    embed = shown.embed
    assert embed is not None
    assert embed.title == "Day 1 · 2026-04-26T20:00:00+00:00"
    fields = {field.name: field.value for field in embed.fields}
    assert fields["place"] == "office"
    assert fields["weather"] == "unremarkable"
    assert fields["present"].splitlines() == ["**You**", "**BotA**", "**BotB**"]


async def test_chat_set_moves_the_world_on_for_the_owner_only(world: StoryWorld) -> None:
    chat_id = await world.story()

    (shown,) = await slash(
        world, "Chats", "set_world", world.owner, time="23:10", weather="fog", day="Day 2"
    )
    refused = await slash(world, "Chats", "set_world", world.stranger, weather="sun")

    assert shown.content == "Now: Day 2, 23:10, office, fog"
    assert "only the owner of this story can" in refused[0].content
    chat = await world.engine.queries.chat(chat_id)
    assert chat is not None and (chat.world_time, chat.weather) == ("23:10", "fog")


async def test_relationship_shows_affinity_and_trust_as_bars(world: StoryWorld) -> None:
    await world.story()

    (shown,) = await slash(world, "Insight", "relationship", world.owner, a=HOST, b="you")

    assert shown.ephemeral and shown.embed is not None
    fields = {field.name: field.value for field in shown.embed.fields}
    assert fields["affinity"] == "`█████░░░░░ 50`"
    assert fields["trust"] == "`█████░░░░░ 50`"
    assert fields["knows"] == "nothing yet"


async def test_character_import_reads_a_toml_attachment(world: StoryWorld) -> None:
    card = make_attachment("mira.toml", MIRA_TOML, "application/toml")

    answered = await slash(world, "Characters", "import_", world.owner, card=card)

    assert answered[-1].content.startswith("Mira imported")
    mira = await world.engine.characters.get(world.channel.guild.id, "mira")
    assert mira is not None
    assert mira.card.creator_id == world.owner.id
    assert mira.card.kickoff_prose == "Mira waves."


async def test_character_create_through_the_modal_and_edit_by_others_refused(
    world: StoryWorld,
) -> None:
    (form,) = await slash(world, "Characters", "create", world.owner)
    assert form.modal is not None
    fill_modal(form.modal, name="Ada", persona="An engineer.", traits="curious, dry")
    submitted = make_interaction(world.bot, world.owner, world.channel)
    await form.modal.on_submit(submitted)
    ada = await world.engine.characters.get(world.channel.guild.id, "ada")
    assert ada is not None
    assert ada.card.traits == ["curious", "dry"]

    (refusal,) = await slash(world, "Characters", "edit", world.stranger, character="ada")
    assert refusal.content.startswith("only the creator of Ada")


async def test_a_server_never_sees_another_servers_characters_or_stories(
    world: StoryWorld,
) -> None:
    await world.story()
    elsewhere, member = other_guild(world)

    assert await character_choices(make_interaction(world.bot, member, elsewhere), "") == []
    here = make_interaction(world.bot, world.owner, world.channel)
    assert [c.value for c in await character_choices(here, "bot")] == ["bot_a", "bot_b"]

    (shown,) = await slash(world, "Characters", "show", member, elsewhere, character=HOST)
    assert shown.content == "no character 'bot_a' in this server"
    (start,) = await slash(world, "Chats", "start", member, elsewhere, host=HOST)
    assert start.content == "no character 'bot_a' in this server"
    (memories,) = await slash(world, "Insight", "memories", member, elsewhere, character=HOST)
    assert memories.content.startswith("there is no story in this channel")
    assert await world.engine.characters.all(elsewhere.guild.id) == []


async def test_stop_with_nothing_streaming_says_so(world: StoryWorld) -> None:
    await world.story()
    (answer,) = await slash(world, "Story", "stop", world.owner)
    assert answer.ephemeral
    assert answer.content == "no reply is streaming in this story right now"


# -- characters, you, scenes, memories ----------------------------------------------------------


async def test_character_delete_is_refused_while_a_story_uses_the_character(
    world: StoryWorld,
) -> None:
    await world.story()

    (refusal,) = await slash(world, "Characters", "delete", world.owner, character=HOST)
    assert refusal.content == f"bot_a is in the open story in <#{world.channel.id}>: end it first"
    assert await world.engine.characters.get(world.channel.guild.id, HOST) is not None

    (done,) = await slash(world, "Characters", "delete", world.owner, character=GUEST)
    assert done.content == "BotB deleted"
    assert await world.engine.characters.get(world.channel.guild.id, GUEST) is None


async def test_character_avatar_from_an_attachment_and_you_set(world: StoryWorld) -> None:
    await world.story()
    png = make_png()
    image = make_attachment("face.png", png, "image/png")

    (done,) = await slash(world, "Characters", "avatar", world.owner, character=HOST, image=image)

    assert done.content == "BotA has a new avatar"
    bot_a = await world.engine.characters.get(world.channel.guild.id, HOST)
    assert bot_a is not None
    assert bot_a.card.avatar == hashlib.sha256(png).hexdigest()
    assert await world.engine.queries.asset(bot_a.card.avatar) == (png, "image/png")

    (you,) = await slash(
        world, "Characters", "you_set", world.owner, name="Alex", pronouns="they/them"
    )
    assert you.content == "you are Alex (they/them)"
    alex = await world.engine.characters.you(world.channel.guild.id, world.owner.id)
    assert (alex.name, alex.pronouns) == ("Alex", "they/them")


async def test_character_import_of_a_tavern_png_card_makes_the_png_its_avatar(
    world: StoryWorld,
) -> None:
    nova = BotAuthored.model_validate(
        {"id": "nova", "name": "Nova", "persona": "A night-shift pilot.", "traits": ["calm"]}
    )
    data, filename = export_card(nova, version="v3", avatar_png=make_png())
    card = make_attachment(filename, data, "image/png")

    answered = await slash(world, "Characters", "import_", world.owner, card=card)

    assert answered[-1].content.startswith("Nova imported")
    found = await world.engine.characters.get(world.channel.guild.id, "nova")
    assert found is not None
    assert (found.card.persona, found.card.traits) == ("A night-shift pilot.", ["calm"])
    asset = await world.engine.queries.asset(found.card.avatar)
    assert asset is not None and asset[1] == "image/png"
    assert asset[0].startswith(b"\x89PNG")


async def test_scene_join_and_leave_open_new_scenes_with_the_new_present_set(
    world: StoryWorld, llm: ScriptedLLM
) -> None:
    chat_id = await world.story()
    llm.script(threads=threads_answer())

    (joined,) = await slash(world, "Chats", "join", world.owner, character=GUEST)

    assert joined.content == "The scene closes."
    assert not joined.ephemeral
    status = await world.engine.queries.status(chat_id)
    assert status.present == ("you", HOST, GUEST)

    llm.script(threads=threads_answer("the missing key"))
    (left,) = await slash(world, "Chats", "leave", world.owner)

    assert left.content == "The scene closes. Threads to follow: the missing key"
    assert (await world.engine.queries.status(chat_id)).present == ("you", HOST)
    (refusal,) = await slash(world, "Chats", "leave", world.owner)
    assert refusal.content == "the guest is not in the scene"
    assert llm.unused == {}


async def test_memories_shows_what_the_character_remembers(
    world: StoryWorld, llm: ScriptedLLM
) -> None:
    await world.story()
    llm.script(
        narrate="BotA takes the tea gratefully.",
        classify=parse_answer("I brought you tea"),
        state=zero_state(),
    )
    await dpytest.message("I brought you tea", channel=world.channel, member=world.owner)

    (refused,) = await slash(world, "Insight", "memories", world.stranger, character=HOST)
    (shown,) = await slash(world, "Insight", "memories", world.owner, character=HOST)
    (searched,) = await slash(
        world, "Insight", "memories", world.owner, character=HOST, query="tea"
    )
    (nothing,) = await slash(
        world, "Insight", "memories", world.owner, character=HOST, query="volcano"
    )

    # what the characters know is the owner's to see, and only the owner sees the answer
    assert refused.ephemeral and refused.embed is None
    assert refused.content == "only the owner of this story can look behind the scenes"
    assert shown.ephemeral and searched.ephemeral and nothing.ephemeral
    assert shown.embed is not None and shown.embed.title == "BotA remembers"
    (memory,) = shown.embed.fields
    assert "tea" in str(memory.value)
    assert searched.embed is not None and searched.embed.title == "BotA remembers “tea”"
    assert [f.value for f in searched.embed.fields] == [memory.value]
    assert nothing.embed is not None and nothing.embed.description == "nothing yet"
