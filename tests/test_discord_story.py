"""Turns from messages, streaming through webhooks, and ⛔: the story as a player sees it.

Given a story bound to a channel (through the engine), when the player writes or reacts (through
dpytest), then the channel shows what Discord would show and the log holds the beat.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import discord.ext.test as dpytest
import discord.ext.test.backend as dpytest_backend
import pytest

from bot.llm import OpenAICompatibleClient, ScriptedLLM
from bot.store.events import AssistantTurn, MemoryWritten, TurnStarted
from cogs._render import STOP_EMOJI
from tests.helpers.discord_fakes import (
    StoryWorld,
    Wiring,
    cached_message,
    channel_texts,
    post_message,
    stored_message,
    wait_until,
)
from tests.helpers.engine_helpers import parse_answer, zero_state
from tests.helpers.events import then_events
from tests.helpers.llm_server import LoopbackLLMServer, RecordedRequest, Reply


async def test_the_owners_message_is_a_turn_shown_through_the_characters_webhook(
    world: StoryWorld, llm: ScriptedLLM
) -> None:
    chat_id = await world.story()
    llm.script(
        narrate="BotA smiles. Good evening.",
        classify=parse_answer("Hello there"),
        state=zero_state(),
    )

    await dpytest.message("Hello there", channel=world.channel, member=world.owner)

    (reply,) = world.gaps.posts_in(world.channel.id)
    assert reply.username == "BotA"
    assert reply.content == "BotA smiles. Good evening."
    beats = await world.engine.queries.beats(chat_id)
    assert beats[-1].text == "BotA smiles. Good evening."
    assert beats[-1].message_ids == (reply.message_id,)
    assert llm.unused == {}


async def test_bots_webhooks_strangers_and_unbound_channels_are_not_turns(
    world: StoryWorld, llm: ScriptedLLM
) -> None:
    await dpytest.message("no story here yet", channel=world.channel, member=world.owner)
    await world.story()

    await dpytest.message("I am not the owner", channel=world.channel, member=world.stranger)
    await world.channel.send("the bot's own words")
    await dpytest.run_all_events()

    assert world.gaps.posts == {}
    assert llm.calls == []


async def test_a_reply_longer_than_2000_characters_is_split(
    world: StoryWorld, llm: ScriptedLLM
) -> None:
    await world.story()
    long_reply = " ".join(f"word{i}" for i in range(600))  # about 4,000 characters
    llm.script(narrate=long_reply, classify=parse_answer("Tell me everything"), state=zero_state())

    await dpytest.message("Tell me everything", channel=world.channel, member=world.owner)

    posts = world.gaps.posts_in(world.channel.id)
    assert len(posts) >= 2
    assert all(len(p.content) <= 2000 for p in posts)
    assert " ".join(p.content for p in posts).split() == long_reply.split()
    assert {p.username for p in posts} == {"BotA"}


async def test_edits_are_no_faster_than_the_edit_interval(
    world: StoryWorld, llm: ScriptedLLM
) -> None:
    await world.story()
    llm.chunk_delay = 0.02
    llm.script(
        narrate=" ".join(f"w{i}" for i in range(60)),
        classify=parse_answer("Go on"),
        state=zero_state(),
    )

    await dpytest.message("Go on", channel=world.channel, member=world.owner)

    (reply,) = world.gaps.posts_in(world.channel.id)
    times = [reply.at, *(at for at, _ in reply.edits)]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(reply.edits) >= 3, reply.edits
    assert min(gaps) >= 0.2 - 0.02, gaps


async def test_a_story_error_is_answered_to_the_player(world: StoryWorld, llm: ScriptedLLM) -> None:
    await world.story()

    await dpytest.message("x" * 4001, channel=world.channel, member=world.owner)

    assert "a turn can be at most 4,000" in channel_texts(world.channel.id)[-1]
    assert llm.calls == []


async def test_an_out_of_character_line_is_acknowledged_not_played(
    world: StoryWorld, llm: ScriptedLLM
) -> None:
    chat_id = await world.story()

    await dpytest.message("(( brb, phone ))", channel=world.channel, member=world.owner)

    assert channel_texts(world.channel.id)[-1].startswith("(( out of character: noted.")
    assert llm.calls == [] and await then_events(world.db, TurnStarted) == []
    assert [b.text for b in await world.engine.queries.beats(chat_id)][-1] != "(( brb, phone ))"


async def test_without_manage_webhooks_characters_speak_through_the_bot(
    world: StoryWorld, llm: ScriptedLLM
) -> None:
    await dpytest.set_permission_overrides(
        world.channel.guild.me, world.channel, manage_webhooks=False
    )
    await world.story()
    llm.script(narrate="BotA waves.", classify=parse_answer("Hi"), state=zero_state())

    await dpytest.message("Hi", channel=world.channel, member=world.owner)

    texts = channel_texts(world.channel.id)
    assert world.gaps.posts == {}
    assert any("Manage Webhooks" in t for t in texts)
    assert texts[-1] == "**BotA**: BotA waves."


async def test_a_deleted_webhook_is_recreated(world: StoryWorld, llm: ScriptedLLM) -> None:
    await world.story()
    llm.script(narrate="First reply.", classify=parse_answer("One"), state=zero_state())
    await dpytest.message("One", channel=world.channel, member=world.owner)
    (first,) = world.gaps.posts_in(world.channel.id)
    world.gaps.delete_webhook(first.webhook_id)

    llm.script(narrate="Second reply.", classify=parse_answer("Two"), state=zero_state())
    await dpytest.message("Two", channel=world.channel, member=world.owner)

    second = world.gaps.posts_in(world.channel.id)[-1]
    assert second.content == "Second reply."
    assert second.username == "BotA"
    assert second.webhook_id != first.webhook_id
    assert second.webhook_id in world.gaps.webhooks


# -- ⛔ on a real, slow stream ---------------------------------------------------------------------

SLOW_REPLY = " ".join(f"word{i}" for i in range(200))


def slow_server(request: RecordedRequest) -> Reply:
    """The narrative streams slowly; the classifier and state updates answer at once."""
    if request.stream:
        return Reply.text(SLOW_REPLY, chunk_delay=0.05)
    return Reply.text(parse_answer("Hello"))


@pytest.fixture
async def streaming_world(
    monkeypatch: pytest.MonkeyPatch, llm_server: LoopbackLLMServer
) -> AsyncIterator[StoryWorld]:
    llm_server.default = slow_server
    client = OpenAICompatibleClient(llm_server.base_url, "sk-test", max_retries=0)
    async with client:
        async for built in Wiring(monkeypatch).world(client):
            yield built


async def test_stop_by_the_owner_cancels_a_slow_stream_and_a_strangers_is_removed(
    streaming_world: StoryWorld,
) -> None:
    world = streaming_world
    chat_id = await world.story()
    streaming = world.bot.renderer.streaming_chat

    post_message(world.channel, world.owner, "Hello")
    await wait_until(lambda: any(streaming(m) == chat_id for m in world.gaps.posts))
    reply_id = next(iter(world.gaps.posts))
    reply = cached_message(world.bot, reply_id)

    dpytest_backend.add_reaction(reply, world.stranger, STOP_EMOJI)
    await wait_until(lambda: bool(world.gaps.removed_reactions))
    assert world.gaps.removed_reactions == [(reply_id, STOP_EMOJI, world.stranger.id)]
    assert chat_id in world.engine.turns.in_flight

    dpytest_backend.add_reaction(reply, world.owner, STOP_EMOJI)
    await wait_until(lambda: chat_id not in world.engine.turns.in_flight)
    await dpytest.run_all_events()

    assert world.engine.turns.in_flight == {}
    turn = (await then_events(world.db, AssistantTurn))[-1]
    assert turn.cancelled is True
    assert 0 < len(turn.text) < len(SLOW_REPLY)
    assert stored_message(world.channel.id, reply_id)["content"].endswith("*(stopped)*")
    assert await then_events(world.db, MemoryWritten) == []


async def test_shutdown_stops_replies_in_flight_and_writes_them(
    streaming_world: StoryWorld,
) -> None:
    world = streaming_world
    chat_id = await world.story()
    post_message(world.channel, world.owner, "Hello")
    await wait_until(lambda: chat_id in world.engine.turns.in_flight and bool(world.gaps.posts))

    world.bot.ws = None  # type: ignore[assignment]  # dpytest's websocket has no socket to close
    await world.bot.close()

    assert world.engine.turns.in_flight == {}
    turn = (await then_events(world.db, AssistantTurn))[-1]
    assert turn.cancelled is True
    reply_id = next(iter(world.gaps.posts))
    assert stored_message(world.channel.id, reply_id)["content"].endswith("*(stopped)*")
