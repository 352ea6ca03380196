"""Steering the story back through Discord: 🔄 and /regenerate, rewind, edits, deletes, /why,
and exporting a story or a character.

Given a story played through dpytest, when the player reacts, edits, deletes or asks, then the
channel shows the change (old messages struck through or deleted) and the engine agrees.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import discord
import discord.ext.test as dpytest
import discord.ext.test.backend as dpytest_backend
import pytest
from discord.ext import commands
from discord.ext.test.backend import FakeHttp, FakeRequest

from bot.cards import load_character
from bot.llm import ScriptedLLM
from bot.store import open_db, project
from bot.store.backup import import_log
from bot.store.views import Views
from cogs._choices import someone_choices
from cogs._regenerate import RegenerateOffer
from tests.helpers.cards import make_png
from tests.helpers.discord_fakes import (
    HOST,
    StoryWorld,
    Wiring,
    cached_message,
    channel_texts,
    delete_by_author,
    edit_by_author,
    file_bytes,
    invoke,
    invoke_menu,
    make_interaction,
    stored_message,
    wait_until,
)
from tests.helpers.discord_story import feeling, texts, turn
from tests.helpers.engine_helpers import parse_answer, zero_state
from tests.helpers.store_factories import snapshot


@pytest.fixture
def world(world_on_each_store: StoryWorld) -> StoryWorld:
    """Every story here plays on SQLite and on PostgreSQL (``-m postgres``)."""
    return world_on_each_store


REGENERATE = "🔄"
REWOUND = "⏪"


@pytest.fixture
async def deleting_world(
    monkeypatch: pytest.MonkeyPatch, llm: ScriptedLLM
) -> AsyncIterator[StoryWorld]:
    async for built in Wiring(monkeypatch).world(llm, rewound_messages="delete"):
        yield built


async def react(world: StoryWorld, message_id: int, member: discord.Member) -> None:
    dpytest_backend.add_reaction(cached_message(world.bot, message_id), member, REGENERATE)
    await dpytest.run_all_events()


def reactions(world: StoryWorld, message_id: int) -> list[str]:
    stored = stored_message(world.channel.id, message_id)
    return [r["emoji"]["name"] for r in stored.get("reactions", [])]


async def assert_replay_equals_incremental(world: StoryWorld) -> None:
    before = await snapshot(world.db)
    await project(world.db)
    assert await snapshot(world.db) == before


def cog(world: StoryWorld, name: str) -> commands.Cog:
    found = world.bot.get_cog(name)
    assert found is not None, name
    return found


async def slash(
    world: StoryWorld, cog_name: str, command: str, user: discord.Member, **options: Any
) -> list[Any]:
    target = cog(world, cog_name)
    asked = make_interaction(world.bot, user, world.channel)
    return await invoke(target, getattr(target, command), asked, **options)


# -- regenerate -----------------------------------------------------------------------------------


async def test_regenerate_by_the_owner_replaces_the_reply_and_strikes_the_old_one(
    world: StoryWorld, llm: ScriptedLLM
) -> None:
    chat_id = await world.story()
    _, old = await turn(world, llm, "Hello", "BotA smiles.", affinity=5)
    llm.script(narrate="BotA frowns.", state=feeling(affinity=-2))

    await react(world, old, world.owner)

    struck, new = world.gaps.posts_in(world.channel.id)
    assert struck.message_id == old
    assert struck.content == "~~BotA smiles.~~ *(rewound)*"
    assert (new.username, new.content) == ("BotA", "BotA frowns.")
    beats = await world.engine.queries.beats(chat_id)
    assert [b.text for b in beats][-2:] == ["Hello", "BotA frowns."]
    assert beats[-1].message_ids == (new.message_id,)
    assert (await world.engine.queries.relationship(chat_id, HOST, "you")).affinity == 48
    await assert_replay_equals_incremental(world)
    assert llm.unused == {}


async def test_regenerate_with_the_delete_setting_deletes_the_old_reply(
    deleting_world: StoryWorld, llm: ScriptedLLM
) -> None:
    world = deleting_world
    chat_id = await world.story()
    _, old = await turn(world, llm, "Hello", "BotA smiles.")
    llm.script(narrate="BotA frowns.", state=feeling())

    (answered,) = await slash(world, "History", "regenerate", world.owner)

    assert answered.ephemeral and answered.content.startswith(REGENERATE)
    assert [p.message_id for p in world.gaps.deleted_posts] == [old]
    assert channel_texts(world.channel.id) == ["Hello", "BotA frowns."]
    assert (await texts(world, chat_id))[-1] == "BotA frowns."


async def test_regenerate_from_a_stranger_or_on_an_older_reply_is_removed_and_ignored(
    world: StoryWorld, llm: ScriptedLLM
) -> None:
    chat_id = await world.story()
    _, first = await turn(world, llm, "One", "BotA one.")
    _, latest = await turn(world, llm, "Two", "BotA two.")
    calls = len(llm.calls)

    await react(world, latest, world.stranger)
    await react(world, first, world.owner)

    assert world.gaps.removed_reactions == [
        (latest, REGENERATE, world.stranger.id),
        (first, REGENERATE, world.owner.id),
    ]
    assert len(llm.calls) == calls
    assert (await texts(world, chat_id))[-1] == "BotA two."
    assert len(world.gaps.posts_in(world.channel.id)) == 2
    (refusal,) = await slash(world, "History", "regenerate", world.stranger)
    assert refusal.content == "only the owner of this story can regenerate its replies"


# -- rewind ---------------------------------------------------------------------------------------


def rewind_menu(world: StoryWorld) -> discord.app_commands.ContextMenu:
    menu = world.bot.tree.get_command("Rewind story to here", type=discord.AppCommandType.message)
    assert isinstance(menu, discord.app_commands.ContextMenu)
    return menu


async def test_rewind_retires_the_later_beats_messages_and_the_story_ends_there(
    world: StoryWorld, llm: ScriptedLLM
) -> None:
    chat_id = await world.story()
    _, kept = await turn(world, llm, "One", "BotA one.", affinity=2)
    second, gone_a = await turn(world, llm, "Two", "BotA two.", affinity=9)
    third, gone_b = await turn(world, llm, "Three", "BotA three.", affinity=9)

    refused = make_interaction(world.bot, world.stranger, world.channel)
    (refusal,) = await invoke_menu(rewind_menu(world), refused, cached_message(world.bot, kept))
    assert refusal.ephemeral
    assert refusal.content == "only the owner of this story can rewind it"
    assert (await texts(world, chat_id))[-1] == "BotA three."

    asked = make_interaction(world.bot, world.owner, world.channel)
    (done,) = await invoke_menu(rewind_menu(world), asked, cached_message(world.bot, kept))

    assert done.ephemeral and done.content == "⏪ rewound 4 beats"
    assert (await texts(world, chat_id))[-2:] == ["One", "BotA one."]
    assert (await world.engine.queries.relationship(chat_id, HOST, "you")).affinity == 52
    posts = {p.message_id: p.content for p in world.gaps.posts_in(world.channel.id)}
    assert posts[kept] == "BotA one."
    assert posts[gone_a] == "~~BotA two.~~ *(rewound)*"
    assert posts[gone_b] == "~~BotA three.~~ *(rewound)*"
    assert reactions(world, second.id) == reactions(world, third.id) == [REWOUND]
    await assert_replay_equals_incremental(world)


async def test_slash_rewind_takes_back_the_last_lines_and_refuses_past_the_opening(
    world: StoryWorld, llm: ScriptedLLM
) -> None:
    chat_id = await world.story()
    _, kept = await turn(world, llm, "One", "BotA one.", affinity=2)
    await turn(world, llm, "Two", "BotA two.", affinity=9)
    await turn(world, llm, "Three", "BotA three.", affinity=9)

    (refusal,) = await slash(world, "History", "rewind", world.stranger, lines=1)
    assert refusal.content == "only the owner of this story can rewind it"
    (too_many,) = await slash(world, "History", "rewind", world.owner, lines=4)
    assert too_many.content == "there are only 3 of your lines to take back, not 4"
    (done,) = await slash(world, "History", "rewind", world.owner, lines=2)

    assert done.ephemeral and done.content == "⏪ rewound 4 beats"
    assert (await texts(world, chat_id))[-2:] == ["One", "BotA one."]
    assert (await world.engine.queries.relationship(chat_id, HOST, "you")).affinity == 52
    posts = {p.message_id: p.content for p in world.gaps.posts_in(world.channel.id)}
    assert posts[kept] == "BotA one."
    await assert_replay_equals_incremental(world)


async def test_rewind_with_the_delete_setting_deletes_the_later_messages(
    deleting_world: StoryWorld, llm: ScriptedLLM
) -> None:
    world = deleting_world
    chat_id = await world.story()
    line, kept = await turn(world, llm, "One", "BotA one.")
    await turn(world, llm, "Two", "BotA two.")

    asked = make_interaction(world.bot, world.owner, world.channel)
    (done,) = await invoke_menu(rewind_menu(world), asked, line)
    await dpytest.run_all_events()

    assert done.content == "⏪ rewound 2 beats"
    assert channel_texts(world.channel.id) == ["One", "BotA one."]
    assert (await texts(world, chat_id))[-2:] == ["One", "BotA one."]
    assert kept in world.gaps.posts


# -- edits and deletes ----------------------------------------------------------------------------


async def test_editing_the_latest_line_changes_the_story_and_offers_to_regenerate(
    world: StoryWorld, llm: ScriptedLLM
) -> None:
    chat_id = await world.story()
    older, _ = await turn(world, llm, "Hi", "BotA waves.")
    line, old_reply = await turn(world, llm, "I sya hello", "BotA tilts her head.")

    # each edit labels the new words and updates the beat's feelings from them again
    llm.script(
        classify=[parse_answer("Hi there"), parse_answer("I say hello")],
        state=[feeling(), feeling()],
    )
    edit_by_author(older, "Hi there")
    edit_by_author(line, "I say hello")
    await dpytest.run_all_events()

    assert (await texts(world, chat_id))[-4:] == [
        "Hi there",
        "BotA waves.",
        "I say hello",
        "BotA tilts her head.",
    ]
    offers = cog(world, "History").offers  # type: ignore[attr-defined]
    assert list(offers) == [line.id]
    assert channel_texts(world.channel.id)[-1].startswith("Your line changed")
    offer = offers[line.id]

    pressed = make_interaction(world.bot, world.stranger, world.channel)
    assert not await offer.interaction_check(pressed)
    assert pressed.answers[0].content.startswith("only the owner of this story")

    llm.script(narrate="BotA smiles warmly.", state=feeling())
    pressed = make_interaction(world.bot, world.owner, world.channel)
    assert await offer.interaction_check(pressed)
    await offer.regenerate.callback(pressed)

    assert offers == {}
    assert not any(t.startswith("Your line changed") for t in channel_texts(world.channel.id))
    assert (await texts(world, chat_id))[-2:] == ["I say hello", "BotA smiles warmly."]
    posts = {p.message_id: p.content for p in world.gaps.posts_in(world.channel.id)}
    assert posts[old_reply] == "~~BotA tilts her head.~~ *(rewound)*"
    await assert_replay_equals_incremental(world)


async def test_deleting_the_latest_line_takes_the_beat_back(
    world: StoryWorld, llm: ScriptedLLM
) -> None:
    chat_id = await world.story()
    older, _ = await turn(world, llm, "Keep", "BotA keeps.", affinity=2)
    line, reply = await turn(world, llm, "Oops", "BotA hears oops.", affinity=7)

    delete_by_author(older)  # not the latest line: nothing happens
    await dpytest.run_all_events()
    assert (await texts(world, chat_id))[-2:] == ["Oops", "BotA hears oops."]

    delete_by_author(line)
    await dpytest.run_all_events()

    assert (await texts(world, chat_id))[-2:] == ["Keep", "BotA keeps."]
    assert (await world.engine.queries.relationship(chat_id, HOST, "you")).affinity == 52
    assert world.gaps.posts[reply].content == "~~BotA hears oops.~~ *(rewound)*"
    await assert_replay_equals_incremental(world)


# -- why and exports ------------------------------------------------------------------------------


async def test_why_lists_what_moved_a_feeling_newest_first(
    world: StoryWorld, llm: ScriptedLLM
) -> None:
    await world.story()
    await turn(world, llm, "A gift", "BotA beams at the gift.", affinity=3)
    await turn(world, llm, "A lie", "BotA narrows her eyes.", affinity=-1, trust=-2)

    (shown,) = await slash(world, "Insight", "why", world.owner, a=HOST, b="you")

    assert shown.embed is not None
    assert shown.embed.title == "Why BotA feels so about You"
    assert shown.embed.description == (
        '−1 affinity, −2 trust — "BotA narrows her eyes."\n'
        '+3 affinity, 0 trust — "BotA beams at the gift."'
    )
    (refusal,) = await slash(world, "Insight", "why", world.owner, a="nobody", b="you")
    assert refusal.content == "'nobody' is not in this story"
    asked = make_interaction(world.bot, world.owner, world.channel)
    assert [c.value for c in await someone_choices(asked, "")] == ["you", HOST, "bot_b"]
    assert [c.value for c in await someone_choices(asked, "yo")] == ["you"]


async def test_chat_export_attaches_markdown_and_a_log_that_restores_the_chat(
    world: StoryWorld, llm: ScriptedLLM
) -> None:
    chat_id = await world.story()
    await turn(world, llm, "Hello", "BotA smiles.")

    (answered,) = await slash(world, "Chats", "export", world.owner)

    markdown, log = answered.files
    assert markdown.filename == f"story-{chat_id}.md"
    assert log.filename == f"story-{chat_id}.jsonl"
    story = file_bytes(markdown).decode()
    assert "**You:** Hello" in story and "**BotA:** BotA smiles." in story
    lines = file_bytes(log).decode().splitlines()
    assert all(json.loads(line)["id"] for line in lines)
    async with open_db(":memory:") as fresh:
        restored = await import_log(fresh, lines)
        assert restored.chat_ids == (chat_id,)
        copy = [b.text for b in await Views(fresh).beats(chat_id)]
    assert copy == await texts(world, chat_id)


async def test_character_export_v3_png_round_trips(world: StoryWorld) -> None:
    guild_id = world.channel.guild.id
    avatar = make_png()
    await world.engine.characters.author(
        {"id": "mira", "name": "Mira", "persona": "A lighthouse keeper."},
        guild_id=guild_id,
        avatar=(avatar, "image/png"),
    )

    (answered,) = await slash(
        world, "Characters", "export", world.stranger, character="mira", version="v3"
    )

    (card,) = answered.files
    assert card.filename == "mira.png"
    imported = load_character(file_bytes(card), card.filename)
    assert imported.fields["name"] == "Mira"
    assert imported.fields["persona"] == "A lighthouse keeper."
    assert imported.avatar_content_type == "image/png"


# -- where Discord says no, and meanwhile threads ------------------------------------------------


async def test_a_player_message_the_bot_may_not_delete_is_marked_instead(
    deleting_world: StoryWorld, llm: ScriptedLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = deleting_world
    await world.story()
    line, _ = await turn(world, llm, "One", "BotA one.")
    second, _ = await turn(world, llm, "Two", "BotA two.")

    async def forbidden(*args: Any, **kwargs: Any) -> None:
        raise discord.Forbidden(FakeRequest(403, "Missing Permissions"), "Missing Permissions")

    monkeypatch.setattr(FakeHttp, "delete_message", forbidden)
    asked = make_interaction(world.bot, world.owner, world.channel)
    await invoke_menu(rewind_menu(world), asked, line)

    assert reactions(world, second.id) == [REWOUND]
    assert "Two" in channel_texts(world.channel.id)


async def test_regenerate_in_a_meanwhile_thread_replaces_the_reply_there(
    world: StoryWorld, llm: ScriptedLLM
) -> None:
    chat_id = await world.story(guest=True)
    meanwhile = world.bot.get_cog("Meanwhile")
    assert meanwhile is not None
    opened = make_interaction(world.bot, world.owner, world.channel)
    start = meanwhile.meanwhile  # type: ignore[attr-defined]
    await invoke(meanwhile, start, opened, premise="after hours")
    (thread,) = world.channel.threads
    llm.script(
        narrate="BotA whispers.",
        classify=parse_answer("they talk"),
        state=[zero_state(), zero_state()],
    )
    await dpytest.message("they talk", channel=thread, member=world.owner)
    llm.script(narrate="BotA laughs softly.", state=[zero_state(), zero_state()])

    history = cog(world, "History")
    asked = make_interaction(world.bot, world.owner, thread)
    await invoke(history, history.regenerate, asked)  # type: ignore[attr-defined]

    old, new = world.gaps.posts_in(thread.id)
    assert old.content == "~~BotA whispers.~~ *(rewound)*"
    assert (new.username, new.content) == ("BotA", "BotA laughs softly.")
    assert (await texts(world, chat_id))[-1] == "BotA laughs softly."


async def test_the_regenerate_offer_takes_itself_away_after_its_time(
    world: StoryWorld, llm: ScriptedLLM
) -> None:
    chat_id = await world.story()
    line, _ = await turn(world, llm, "Hi", "BotA waves.")
    chat = await world.engine.queries.chat(chat_id)
    assert chat is not None
    offers: dict[int, RegenerateOffer] = {}

    await RegenerateOffer.post(line, chat, offers, lasting=0.05)
    assert channel_texts(world.channel.id)[-1].startswith("Your line changed")
    await wait_until(lambda: not offers)

    assert channel_texts(world.channel.id) == ["Hi", "BotA waves."]
