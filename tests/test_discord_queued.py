"""Lines that wait in a chat's turn queue: played where they were written, or refused; shutdown.

A line waits behind the reply streaming before it. By the time its turn comes a meanwhile scene
may have started or ended; the line is then refused with a short answer, never played in the
other scene. Shutting down stops the streaming reply (written, marked stopped) and starts no
new one for the lines still waiting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import discord
import discord.ext.test as dpytest
import pytest

import bot.app
from bot.llm import Message, ScriptedLLM
from bot.store.events import AssistantTurn
from tests.helpers.discord_fakes import (
    StoryWorld,
    channel_texts,
    invoke,
    make_interaction,
    post_message,
    stored_message,
    wait_until,
)
from tests.helpers.engine_helpers import (
    GUEST,
    HOST,
    parse_answer,
    summary_answer,
    threads_answer,
    zero_state,
)
from tests.helpers.events import then_events


class GatedLLM(ScriptedLLM):
    """The scripted LLM; its streams wait after each word while ``gate`` is closed."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.gate.set()

    async def stream(  # type: ignore[override]
        self, messages: Sequence[Message], *, model: str, **params: Any
    ) -> AsyncIterator[str]:
        async for piece in super().stream(messages, model=model, **params):
            yield piece
            await self.gate.wait()

    def streams(self) -> int:
        return sum(call.kind == "stream" for call in self.calls)


@pytest.fixture
def llm() -> GatedLLM:
    return GatedLLM()


def queued(world: StoryWorld, chat_id: str) -> int:
    """Turns running or waiting in the chat's queue (the engine's FIFO lock)."""
    return world.engine.turns.queued(chat_id)


async def open_meanwhile(world: StoryWorld) -> discord.Thread:
    cog = world.bot.get_cog("Meanwhile")
    assert cog is not None
    asked = make_interaction(world.bot, world.owner, world.channel)
    await invoke(cog, cog.meanwhile, asked, premise="after hours")  # type: ignore[attr-defined]
    (thread,) = world.channel.threads
    return thread


async def streaming(world: StoryWorld, llm: GatedLLM, where: Any, prose: str, chat_id: str) -> None:
    """The owner writes ``prose`` and the reply to it is held mid-stream."""
    llm.gate.clear()
    post_message(where, world.owner, prose)
    await wait_until(lambda: chat_id in world.engine.turns.in_flight)


async def test_a_thread_line_queued_behind_the_end_button_is_refused(
    world: StoryWorld, llm: GatedLLM
) -> None:
    chat_id = await world.story(guest=True)
    thread = await open_meanwhile(world)
    llm.script(
        narrate="BotA leans in.",
        classify=parse_answer("they talk"),
        state=[zero_state(), zero_state()],
    )
    await streaming(world, llm, thread, "they talk", chat_id)

    # The owner presses End meanwhile, then writes one more line in the thread: both wait
    pressed = make_interaction(world.bot, world.owner, thread)
    ending = asyncio.create_task(world.bot.persistent_views[0].end.callback(pressed))  # type: ignore[attr-defined]
    await wait_until(lambda: queued(world, chat_id) == 2)
    post_message(thread, world.owner, "one more thing")
    await wait_until(lambda: queued(world, chat_id) == 3)
    llm.script(
        summary={HOST: summary_answer("BotA remembers."), GUEST: summary_answer("BotB remembers.")},
        digest=summary_answer("While you were away, they talked."),
        threads=threads_answer(),
    )
    llm.gate.set()
    await ending
    await dpytest.run_all_events()

    # The late line is refused, not played as a line of the you-scene
    assert llm.streams() == 1
    said = channel_texts(thread.id) + channel_texts(world.channel.id)
    assert any("ended before your line was played" in text for text in said), said
    texts = [beat.text for beat in await world.engine.queries.beats(chat_id)]
    assert "one more thing" not in texts
    assert llm.unused == {}


async def test_a_channel_line_queued_while_meanwhile_starts_is_refused(
    world: StoryWorld, llm: GatedLLM
) -> None:
    chat_id = await world.story(guest=True)
    llm.script(
        narrate="BotA smiles.", classify=parse_answer("hello"), state=[zero_state(), zero_state()]
    )
    await streaming(world, llm, world.channel, "hello", chat_id)

    # /meanwhile opens its thread and waits to start the scene; a line in the channel waits too
    cog = world.bot.get_cog("Meanwhile")
    assert cog is not None
    asked = make_interaction(world.bot, world.owner, world.channel)
    opening = asyncio.create_task(invoke(cog, cog.meanwhile, asked, premise="after hours"))  # type: ignore[attr-defined]
    await wait_until(lambda: queued(world, chat_id) == 2)
    post_message(world.channel, world.owner, "and then?")
    await wait_until(lambda: queued(world, chat_id) == 3)
    llm.gate.set()
    await opening
    await dpytest.run_all_events()

    assert llm.streams() == 1
    assert any(
        "a meanwhile scene started before your line" in text
        for text in channel_texts(world.channel.id)
    )
    assert "and then?" not in [beat.text for beat in await world.engine.queries.beats(chat_id)]
    assert (await world.engine.queries.status(chat_id)).meanwhile is not None
    assert llm.unused == {}


async def test_shutdown_stops_the_streaming_reply_and_starts_none_of_the_waiting_ones(
    world: StoryWorld, llm: GatedLLM, caplog: pytest.LogCaptureFixture
) -> None:
    chat_id = await world.story()
    llm.script(narrate="BotA begins a long story", classify=parse_answer("hello"))
    await streaming(world, llm, world.channel, "hello", chat_id)
    await wait_until(lambda: bool(world.gaps.posts))
    second = post_message(world.channel, world.owner, "second")
    post_message(world.channel, world.owner, "third")
    await wait_until(lambda: queued(world, chat_id) == 3)

    story = world.bot.get_cog("Story")  # closing unloads the cogs
    assert story is not None
    world.bot.ws = None  # type: ignore[assignment]  # dpytest's websocket has no socket to close
    with caplog.at_level(logging.INFO):
        await world.bot.close()
        await dpytest.run_all_events()
        await story.on_message(second)  # type: ignore[attr-defined]  # sent again: ignored now

    assert world.engine.closing
    assert llm.streams() == 1
    turn = (await then_events(world.db, AssistantTurn))[-1]
    assert turn.cancelled is True
    (reply,) = world.gaps.posts_in(world.channel.id)
    assert stored_message(world.channel.id, reply.message_id)["content"].endswith("*(stopped)*")
    assert [b.text for b in await world.engine.queries.beats(chat_id)][-2] == "hello"
    shutting = [t for t in channel_texts(world.channel.id) if "shutting down" in t]
    assert len(shutting) == 2  # "second" and "third" are answered once, nothing more
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert world.bot.turns_running == 0


async def test_a_turn_still_running_after_the_grace_is_cancelled_before_the_store_closes(
    world: StoryWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bot.app, "SHUTDOWN_GRACE_SECONDS", 0.05)
    started = asyncio.Event()

    async def stuck() -> None:
        with world.bot.turn_running():
            started.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(stuck())
    await started.wait()

    world.bot.ws = None  # type: ignore[assignment]
    await world.bot.close()

    assert task.cancelled()
    assert world.bot.turns_running == 0
