"""How the bot answers: deferred before slow work, embeds within Discord's limits, threads
archived after the answer, and one player's mistake never logged as our crash.
"""

from __future__ import annotations

import logging
from typing import Any
from unittest.mock import MagicMock

import discord
import discord.ext.test as dpytest
import pytest
from discord.ext.test.backend import FakeHttp, FakeRequest

from bot.engine import FeelingChange
from bot.llm import ScriptedLLM
from bot.store.views import Memory, Relationship
from cogs._embeds import (
    DESCRIPTION_LIMIT,
    EMBED_TOTAL_LIMIT,
    FIELD_COUNT_LIMIT,
    FIELD_LIMIT,
    TITLE_LIMIT,
    memories_embed,
    relationship_embed,
    why_embed,
)
from cogs._regenerate import OWNER_ONLY, RegenerateOffer
from tests.helpers.cards import make_png
from tests.helpers.discord_fakes import (
    HOST,
    StoryWorld,
    edit_by_author,
    invoke,
    make_attachment,
    make_interaction,
)
from tests.helpers.engine_helpers import (
    character,
    parse_answer,
    summary_answer,
    threads_answer,
    zero_state,
)


def slash_interaction(
    world: StoryWorld, user: discord.Member, channel: Any = None, **kwargs: Any
) -> MagicMock:
    return make_interaction(world.bot, user, channel or world.channel, **kwargs)


async def run(
    world: StoryWorld, cog_name: str, command: str, asked: MagicMock, **options: Any
) -> Any:
    cog = world.bot.get_cog(cog_name)
    assert cog is not None, cog_name
    return await invoke(cog, getattr(cog, command), asked, **options)


def deferred_before(asked: MagicMock, seen: list[int]) -> Any:
    """A spy to wrap an engine call: records how often ``asked`` had deferred when it ran."""

    def spy(method: Any) -> Any:
        async def call(*args: Any, **kwargs: Any) -> Any:
            seen.append(asked.response.defer.await_count)
            return await method(*args, **kwargs)

        return call

    return spy


async def open_meanwhile(world: StoryWorld) -> discord.Thread:
    asked = slash_interaction(world, world.owner)
    await run(world, "Meanwhile", "meanwhile", asked, premise="after hours")
    (thread,) = world.channel.threads
    return thread


# -- defer before waiting on the turn queue or downloading ------------------------------------


async def test_chat_end_and_chat_set_defer_before_the_engine_waits_on_the_turn_queue(
    world: StoryWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    await world.story()
    seen: list[int] = []

    asked = slash_interaction(world, world.owner)
    monkeypatch.setattr(
        world.engine.chats, "set_world", deferred_before(asked, seen)(world.engine.chats.set_world)
    )
    (shown,) = await run(world, "Chats", "set_world", asked, weather="fog")
    assert seen == [1]
    asked.response.defer.assert_awaited_once_with(ephemeral=False, thinking=True)
    asked.response.send_message.assert_not_awaited()
    assert shown.content.endswith("fog") and not shown.ephemeral

    asked = slash_interaction(world, world.owner)
    monkeypatch.setattr(
        world.engine.chats, "end", deferred_before(asked, seen)(world.engine.chats.end)
    )
    (ended,) = await run(world, "Chats", "end", asked)
    assert seen == [1, 1]
    assert ended.content == "The story ends here."
    asked.followup.send.assert_awaited_once()


async def test_character_avatar_defers_before_downloading_the_image(world: StoryWorld) -> None:
    await world.story()
    asked = slash_interaction(world, world.owner)
    image = make_attachment("face.png", make_png(), "image/png")
    seen: list[int] = []

    async def read(*args: Any, **kwargs: Any) -> bytes:
        seen.append(asked.response.defer.await_count)
        return make_png()

    image.read.side_effect = read
    (done,) = await run(world, "Characters", "avatar", asked, character=HOST, image=image)

    assert seen == [1]
    asked.response.defer.assert_awaited_once_with(ephemeral=True, thinking=True)
    assert done.content == "BotA has a new avatar" and done.ephemeral


async def test_a_story_error_after_a_public_defer_is_answered_privately(world: StoryWorld) -> None:
    await world.story()
    asked = slash_interaction(world, world.owner)

    (refusal,) = await run(world, "Chats", "set_world", asked)  # nothing to change: StoryError

    assert refusal.content.startswith("say what changes")
    assert refusal.ephemeral
    asked.delete_original_response.assert_awaited_once()  # the public "thinking…" goes away


async def test_commands_are_refused_while_the_bot_shuts_down(world: StoryWorld) -> None:
    await world.story()
    await world.engine.close(grace=0.1)
    cog = world.bot.get_cog("Chats")
    assert cog is not None
    asked = slash_interaction(world, world.owner)

    with pytest.raises(discord.app_commands.AppCommandError, match="shutting down"):
        await cog.interaction_check(asked)


# -- meanwhile threads: answered first, archived after ------------------------------------------


async def test_the_end_button_answers_before_it_archives_the_thread(
    world: StoryWorld, llm: ScriptedLLM
) -> None:
    await world.story(guest=True)
    thread = await open_meanwhile(world)
    llm.script(
        digest=summary_answer("While you were away, nothing much."), threads=threads_answer()
    )
    pressed = make_interaction(world.bot, world.owner, thread)
    archived_when_answered: list[bool] = []
    answer_in_thread = pressed.followup.send.side_effect

    async def followup(*args: Any, **kwargs: Any) -> None:
        archived_when_answered.append(bool(world.gaps.thread_edits))
        await answer_in_thread(*args, **kwargs)

    pressed.followup.send.side_effect = followup
    await world.bot.persistent_views[0].end.callback(pressed)  # type: ignore[attr-defined]

    assert archived_when_answered == [False]
    assert pressed.answers[-1].content == "The meanwhile scene ends."
    assert world.gaps.thread_edits == [(thread.id, {"archived": True})]


async def test_chat_end_archives_the_open_meanwhile_thread(world: StoryWorld) -> None:
    await world.story(guest=True)
    thread = await open_meanwhile(world)

    (ended,) = await run(world, "Chats", "end", slash_interaction(world, world.owner))
    await dpytest.run_all_events()

    assert ended.content == "The story ends here."
    assert world.gaps.thread_edits == [(thread.id, {"archived": True})]
    assert await world.engine.queries.story_of_thread(thread.id) is None
    assert await world.engine.queries.chat_in_channel(world.channel.id) is None


# -- embeds within Discord's limits --------------------------------------------------------------


def assert_fits(embed: discord.Embed | None) -> discord.Embed:
    assert embed is not None
    assert len(embed) <= EMBED_TOTAL_LIMIT
    assert len(embed.title or "") <= TITLE_LIMIT
    assert len(embed.description or "") <= DESCRIPTION_LIMIT
    assert len(embed.fields) <= FIELD_COUNT_LIMIT
    assert all(len(str(f.value)) <= FIELD_LIMIT and f.value for f in embed.fields)
    return embed


async def test_character_show_of_a_20000_character_persona_fits_in_one_embed(
    world: StoryWorld,
) -> None:
    long = character(
        "epic",
        "Epic",
        persona="p" * 20_000,
        kickoff_prose="k" * 20_000,
        voice_samples=["v" * 2_000] * 5,
        traits=["t" * 50] * 40,
    )
    await world.engine.characters.author(long, guild_id=world.channel.guild.id)

    (shown,) = await run(
        world, "Characters", "show", slash_interaction(world, world.owner), character="epic"
    )

    embed = assert_fits(shown.embed)
    assert embed.description is not None and embed.description.endswith("…")
    assert {f.name for f in embed.fields} >= {"id", "traits", "voice", "kickoff"}


def test_long_memories_why_lists_and_relationships_fit() -> None:
    memories = [Memory(i, HOST, i, None, "m" * 5_000, "s" * 5_000, 1, 1, 0) for i in range(40)]
    assert_fits(memories_embed("BotA", memories, "q" * 1_000))

    changes = [FeelingChange(i, 3, -2, i, "w " * 500, HOST) for i in range(200)]
    why = assert_fits(why_embed(changes, "BotA" * 100, "You"))
    assert why.description is not None and why.description.endswith("…")

    relationship = Relationship(
        source_id=HOST,
        target_id="you",
        affinity=60,
        trust=40,
        knowledge_facts=("f" * 900,) * 20,
        summary="s" * 5_000,
    )
    assert_fits(relationship_embed(relationship, "BotA", "You"))


# -- regenerate: the owner, or someone who manages the channel -----------------------------------


async def test_a_channel_manager_may_press_regenerate_and_a_stranger_may_not(
    world: StoryWorld,
) -> None:
    chat_id = await world.story()
    chat = await world.engine.queries.chat(chat_id)
    assert chat is not None
    offer = RegenerateOffer(chat, 1, {}, timeout=60)

    manager = slash_interaction(
        world, world.stranger, permissions=discord.Permissions(manage_channels=True)
    )
    stranger = slash_interaction(world, world.stranger)

    assert await offer.interaction_check(manager)
    assert not await offer.interaction_check(stranger)
    assert stranger.answers[0].content == OWNER_ONLY
    offer.stop()


# -- listeners: one player's mistake is not our crash -------------------------------------------


async def test_an_edit_whose_offer_cannot_be_posted_is_logged_not_raised(
    world: StoryWorld,
    llm: ScriptedLLM,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    chat_id = await world.story()
    llm.script(narrate="BotA waves.", classify=parse_answer("Hi"), state=zero_state())
    line = await dpytest.message("Hi", channel=world.channel, member=world.owner)

    async def forbidden(*args: Any, **kwargs: Any) -> None:
        raise discord.Forbidden(FakeRequest(403, "Missing Permissions"), "Missing Permissions")

    monkeypatch.setattr(FakeHttp, "send_message", forbidden)
    llm.script(
        classify=parse_answer("Hi there"), state=zero_state()
    )  # the edit's new labels and feelings
    with caplog.at_level(logging.INFO):
        edit_by_author(line, "Hi there")
        await dpytest.run_all_events()

    assert [b.text for b in await world.engine.queries.beats(chat_id)][-2] == "Hi there"
    history = world.bot.get_cog("History")
    assert history is not None and history.offers == {}  # type: ignore[attr-defined]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "could not offer to regenerate" in caplog.text
