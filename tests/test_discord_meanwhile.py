"""/meanwhile in Discord: a thread where host and guest go on without you, then the digest.

The meanwhile rules (witness flags 0/1/1, exactly two state updates a beat, host then guest,
per-POV summaries for host and guest only, a digest) checked end to end through Discord.
"""

from __future__ import annotations

import itertools
from typing import Any

import discord
import discord.ext.test as dpytest
import pytest

from bot.llm import ScriptedLLM
from tests.helpers.discord_fakes import (
    GUEST,
    HOST,
    StoryWorld,
    channel_texts,
    invoke,
    make_interaction,
)
from tests.helpers.engine_helpers import parse_answer, summary_answer, threads_answer, zero_state
from tests.helpers.events import whole_log


@pytest.fixture
def world(world_on_each_store: StoryWorld) -> StoryWorld:
    """Every story here plays on SQLite and on PostgreSQL (``-m postgres``)."""
    return world_on_each_store


async def events(world: StoryWorld) -> list[tuple[int, str, dict[str, Any]]]:
    return [(e.id, e.kind, e.payload.model_dump(mode="json")) for e in await whole_log(world.db)]


def end_button(world: StoryWorld) -> Any:
    """The End meanwhile view as the bot registered it (extensions load as their own modules)."""
    return world.bot.persistent_views[0]


async def open_meanwhile(world: StoryWorld) -> discord.Thread:
    cog = world.bot.get_cog("Meanwhile")
    assert cog is not None
    asked = make_interaction(world.bot, world.owner, world.channel)
    answered = await invoke(cog, cog.meanwhile, asked, premise="the office after hours")  # type: ignore[attr-defined]
    assert "Meanwhile… opened in" in answered[-1].content, answered
    (thread,) = world.channel.threads
    return thread


async def test_the_end_button_is_a_persistent_view(world: StoryWorld) -> None:
    view = end_button(world)
    assert type(view).__name__ == "EndMeanwhileView"
    assert [item.custom_id for item in view.children] == ["storybot:meanwhile:end"]


async def test_meanwhile_thread_turns_alternate_and_end_with_a_digest(
    world: StoryWorld, llm: ScriptedLLM
) -> None:
    chat_id = await world.story(guest=True)
    thread = await open_meanwhile(world)
    assert thread.parent_id == world.channel.id
    assert "End meanwhile" not in channel_texts(world.channel.id)[-1]

    # When the owner writes twice in the thread
    for prose, reply in (("they exchange a glance", "BotA leans in."), ("and again", "BotB nods.")):
        llm.script(narrate=reply, classify=parse_answer(prose), state=[zero_state(), zero_state()])
        await dpytest.message(prose, channel=thread, member=world.owner)

    # Then host and guest answer in turn, in the thread, with their own names
    assert [(p.username, p.content) for p in world.gaps.posts_in(thread.id)] == [
        ("BotA", "BotA leans in."),
        ("BotB", "BotB nods."),
    ]
    log = await events(world)
    beats = [(i, p) for i, kind, p in log if kind == "assistant_turn" and p["meanwhile_scene_id"]]
    assert [p["speaker_id"] for _, p in beats] == [HOST, GUEST]
    memories = [p for _, kind, p in log if kind == "memory_written" and p["scene_id"] != 1]
    assert sorted(m["owner_id"] for m in memories) == sorted([HOST, GUEST] * 2)
    assert {(m["witness_you"], m["witness_host"], m["witness_guest"]) for m in memories} == {
        (0, 1, 1)
    }
    bounds = [i for i, _ in beats] + [log[-1][0] + 1]
    for start, end in itertools.pairwise(bounds):
        edges = [p for i, kind, p in log if kind == "edge_update" and start < i < end]
        assert sorted((e["source_id"], e["target_id"]) for e in edges) == [
            (HOST, GUEST),
            (GUEST, HOST),
        ]

    # While it is open, the story's channel points to the thread instead of playing a turn
    await dpytest.message("where is everyone?", channel=world.channel, member=world.owner)
    assert f"<#{thread.id}>" in channel_texts(world.channel.id)[-1]

    # When the owner presses "End meanwhile"
    llm.script(
        summary={
            HOST: summary_answer("BotA reflects on the quiet moment."),
            GUEST: summary_answer("BotB notices BotA's reserve."),
        },
        digest=summary_answer("While you were away, BotA and BotB talked quietly."),
        threads=threads_answer(),
    )
    view = end_button(world)
    await view.end.callback(make_interaction(world.bot, world.owner, thread))

    # Then the digest is in the story's channel, summaries are per POV, the thread is archived
    digest = channel_texts(world.channel.id)[-1]
    assert digest.startswith("**While you were away…**")
    assert "BotA and BotB talked quietly" in digest
    owner_of = {m.id: m.owner_id for m in await world.engine.queries.chat_memories(chat_id)}
    owners = []
    for _, kind, payload in await events(world):
        if kind == "manual_edit" and payload["target_kind"] == "memory_pov_summary":
            owners.append(owner_of[payload["target_id"]])
    assert sorted(owners) == sorted([HOST, GUEST])
    assert world.gaps.thread_edits == [(thread.id, {"archived": True})]
    assert await world.engine.queries.story_of_thread(thread.id) is None
    assert llm.unused == {}
    assert chat_id


async def test_archiving_the_thread_by_hand_ends_the_meanwhile_scene(
    world: StoryWorld, llm: ScriptedLLM
) -> None:
    await world.story(guest=True)
    thread = await open_meanwhile(world)
    llm.script(
        digest=summary_answer("While you were away, nothing much happened."),
        threads=threads_answer(),
    )

    await thread.edit(archived=True)
    await dpytest.run_all_events()

    assert "nothing much happened" in channel_texts(world.channel.id)[-1]
    assert await world.engine.queries.story_of_thread(thread.id) is None
    assert llm.unused == {}


async def test_only_the_owner_can_end_the_meanwhile_scene(
    world: StoryWorld, llm: ScriptedLLM
) -> None:
    await world.story(guest=True)
    thread = await open_meanwhile(world)
    pressed = make_interaction(world.bot, world.stranger, thread)

    view = end_button(world)
    try:
        await view.end.callback(pressed)
    except Exception as error:  # the view's error handler answers, as discord.py would route it
        await view.on_error(pressed, error, view.end)

    (refusal,) = pressed.answers
    assert refusal.ephemeral
    assert refusal.content.startswith("only the owner of this story can")
    assert await world.engine.queries.story_of_thread(thread.id) is not None


async def test_scene_close_inside_the_thread_ends_the_meanwhile_scene(
    world: StoryWorld, llm: ScriptedLLM
) -> None:
    await world.story(guest=True)
    thread = await open_meanwhile(world)
    chats = world.bot.get_cog("Chats")
    assert chats is not None
    llm.script(
        digest=summary_answer("While you were away, they tidied the office."),
        threads=threads_answer(),
    )

    asked = make_interaction(world.bot, world.owner, thread)
    (answered,) = await invoke(chats, chats.close, asked)  # type: ignore[attr-defined]

    assert answered.content == "The meanwhile scene ends."
    digest = channel_texts(world.channel.id)[-1]
    assert digest == "**While you were away…**\nWhile you were away, they tidied the office."
    assert world.gaps.thread_edits == [(thread.id, {"archived": True})]
    assert await world.engine.queries.story_of_thread(thread.id) is None
    assert llm.unused == {}


async def test_meanwhile_with_beats_plays_them_alternating_host_and_guest(
    world: StoryWorld, llm: ScriptedLLM
) -> None:
    await world.story(guest=True)
    llm.script(narrate="BotA starts sorting files.", state=[zero_state(), zero_state()])
    llm.script(narrate="BotB hands her a folder.", state=[zero_state(), zero_state()])
    cog = world.bot.get_cog("Meanwhile")
    assert cog is not None

    asked = make_interaction(world.bot, world.owner, world.channel)
    await invoke(cog, cog.meanwhile, asked, premise="filing", beats=2)  # type: ignore[attr-defined]

    (thread,) = world.channel.threads
    assert [(p.username, p.content) for p in world.gaps.posts_in(thread.id)] == [
        ("BotA", "BotA starts sorting files."),
        ("BotB", "BotB hands her a folder."),
    ]
    assert llm.unused == {}
