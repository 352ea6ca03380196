"""A streamed reply as players see it: typing, one growing message, paced edits, clean endings."""

from __future__ import annotations

import asyncio
import itertools
import logging

import discord
import pytest

from bot.engine import BeatEnd, Speaker
from bot.llm import (
    LLMConnectionError,
    LLMError,
    LLMHTTPError,
    LLMProtocolError,
    LLMRateLimitedError,
    LLMStreamError,
    LLMTimeoutError,
)
from cogs._render import STOP_EMOJI, Renderer
from tests.helpers.render_fakes import PNG, FakeDiscord, VirtualClock, settings

MARKER = " ▌"
MIRA = Speaker("mira", "Mira", "a1b2c3d4")
JUN = Speaker("jun", "Jun", "")


async def settle() -> None:
    """Let the reply's background tasks catch up."""
    for _ in range(30):
        await asyncio.sleep(0)


def world(interval: float = 1.0) -> tuple[FakeDiscord, Renderer, VirtualClock]:
    clock = VirtualClock()
    fake = FakeDiscord(clock=clock)
    avatars = fake.avatar_source({MIRA.avatar: PNG})
    renderer = Renderer(avatars, settings(interval, MARKER), clock=clock, sleep=clock.sleep)
    return fake, renderer, clock


async def test_a_streamed_reply_is_one_webhook_message_that_grows() -> None:
    fake, renderer, _ = world()
    channel = fake.channel()
    sink = renderer.sink(channel, chat_id="c1", owner_id=7)

    await sink.begin(MIRA)
    await settle()
    assert "typing_on" in fake.verbs(channel.id)
    assert fake.shown(channel.id) == []

    await sink.append("Hello")
    await settle()
    [message] = fake.shown(channel.id)
    assert message.content == "Hello" + MARKER
    assert message.author == "Mira"
    assert message.avatar == PNG
    assert fake.webhooks[channel.id][0].name == "storybot:mira~a1b2c3"
    assert fake.reactions[message.id] == {STOP_EMOJI}
    assert "typing_off" in fake.verbs(channel.id)

    await sink.append(" there,")
    await settle()
    await sink.append(" traveller.")
    ids = await sink.end(BeatEnd("Hello there, traveller.", "done"))

    assert ids == [message.id]
    assert message.content == "Hello there, traveller."
    assert all(edit.endswith(MARKER) for edit in message.edits[:-1])
    assert fake.reactions[message.id] == set()
    verbs = fake.verbs(channel.id)
    assert verbs.index("typing_on") < verbs.index("send") < verbs.index("react")
    assert verbs.index("react") < verbs.index("unreact")
    assert verbs.count("send") == 1


async def test_typing_stops_cleanly_when_nothing_is_said() -> None:
    fake, renderer, _ = world()
    channel = fake.channel()
    sink = renderer.sink(channel, chat_id="c1", owner_id=7)
    await sink.begin(MIRA)
    await settle()
    assert await sink.end(BeatEnd("", "done")) == []
    assert fake.verbs(channel.id).count("typing_off") == 1
    assert fake.shown(channel.id) == []


async def test_a_long_reply_continues_in_follow_ups_at_sentence_ends() -> None:
    fake, renderer, _ = world()
    channel = fake.channel()
    sentences = [f"Sentence number {n} goes on for a little while, as they do." for n in range(80)]
    text = " ".join(sentences)
    assert len(text) > 4000
    sink = renderer.sink(channel, chat_id="c1", owner_id=7)
    await sink.begin(MIRA)
    for start in range(0, len(text), 7):
        await sink.append(text[start : start + 7])
        await settle()
    ids = await sink.end(BeatEnd(text, "done"))

    shown = fake.shown(channel.id)
    assert [m.id for m in shown] == ids
    assert len(ids) == 3
    assert all(len(m.content) <= 2000 for m in shown)
    assert all(m.content.endswith("as they do.") for m in shown)
    assert " ".join(m.content for m in shown) == text
    assert all(m.author == "Mira" for m in shown)


async def test_edits_are_paced_per_channel_across_two_characters() -> None:
    fake, renderer, clock = world(interval=1.0)
    channel = fake.channel()
    other = fake.channel()
    mira = renderer.sink(channel, chat_id="c1", owner_id=7)
    jun = renderer.sink(channel, chat_id="c2", owner_id=7)
    elsewhere = renderer.sink(other, chat_id="c3", owner_id=7)
    for sink, speaker in ((mira, MIRA), (jun, JUN), (elsewhere, JUN)):
        await sink.begin(speaker)
    for n in range(150):  # 3 s of tokens, one every 20 ms
        for sink in (mira, jun, elsewhere):
            await sink.append(f"w{n} ")
        clock.now += 0.02
        await settle()
    for sink in (mira, jun, elsewhere):
        await sink.end(BeatEnd(" ".join(f"w{n}" for n in range(150)), "done"))

    times = fake.edit_times(channel.id)
    assert len(times) >= 4
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 1.0, gaps
    assert {m.author for m in fake.shown(channel.id)} == {"Mira", "Jun"}
    assert all(not m.content.endswith(MARKER) for m in fake.shown(channel.id))
    # the other channel has its own pace: it edited while this one was waiting
    assert len(fake.edit_times(other.id)) >= 2


async def test_the_first_message_does_not_wait_for_the_edit_interval() -> None:
    fake, renderer, clock = world(interval=1.0)
    channel = fake.channel()
    first = renderer.sink(channel, chat_id="c1", owner_id=7)
    await first.begin(MIRA)
    await first.append("One")
    await settle()
    second = renderer.sink(channel, chat_id="c2", owner_id=7)
    await second.begin(JUN)
    await second.append("Two")
    await settle()
    assert clock.now == 0.0
    assert [m.content for m in fake.shown(channel.id)] == ["One" + MARKER, "Two" + MARKER]
    await first.end(BeatEnd("One", "done"))
    await second.end(BeatEnd("Two", "done"))


@pytest.mark.parametrize(
    ("outcome", "shown"),
    [
        (BeatEnd("She turns", "stopped"), "She turns *(stopped)*"),
        (
            BeatEnd(
                "She turns",
                "failed",
                "the LLM server went silent for 30 s",
                "the model took too long to answer",
            ),
            "She turns *(the reply failed: the model took too long to answer)*",
        ),
        (BeatEnd("", "stopped"), "*(stopped before a word was said)*"),
        (
            BeatEnd("", "failed", "boom"),
            "*(the reply failed before a word was said: something went wrong on the model's side)*",
        ),
    ],
)
async def test_stopped_and_failed_endings(outcome: BeatEnd, shown: str) -> None:
    fake, renderer, _ = world()
    channel = fake.channel()
    sink = renderer.sink(channel, chat_id="c1", owner_id=7)
    await sink.begin(MIRA)
    if outcome.text:
        await sink.append(outcome.text)
        await settle()
    ids = await sink.end(outcome)
    [message] = fake.shown(channel.id)
    assert ids == [message.id]
    assert message.content == shown
    assert fake.reactions.get(message.id, set()) == set()


async def test_streaming_chat_knows_the_message_only_while_streaming() -> None:
    fake, renderer, _ = world()
    channel = fake.channel()
    sink = renderer.sink(channel, chat_id="c1", owner_id=7)
    await sink.begin(MIRA)
    await sink.append("Wait")
    await settle()
    [message] = fake.shown(channel.id)
    assert renderer.streaming_chat(message.id) == "c1"
    assert renderer.streaming_chat(message.id + 1) is None
    await sink.end(BeatEnd("Wait", "stopped"))
    assert renderer.streaming_chat(message.id) is None


async def test_discord_errors_while_streaming_do_not_end_the_stream(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake, renderer, _ = world()
    channel = fake.channel()
    sink = renderer.sink(channel, chat_id="c1", owner_id=7)
    await sink.begin(MIRA)
    await sink.append("One")
    await settle()
    fake.fail_edits = 1
    await sink.append(" two")
    await settle()
    await sink.append(" three.")
    await settle()
    fake.fail_edits = 1  # the final edit fails once and is retried
    with caplog.at_level(logging.WARNING):
        ids = await sink.end(BeatEnd("One two three.", "done"))
    [message] = fake.shown(channel.id)
    assert ids == [message.id]
    assert message.content == "One two three."
    assert fake.verbs(channel.id).count("500") == 2
    assert "editing a reply" in caplog.text


async def test_a_failed_stop_reaction_is_logged_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    fake, renderer, _ = world()
    fake.fail_reactions = True
    channel = fake.channel()
    sink = renderer.sink(channel, chat_id="c1", owner_id=7)
    await sink.begin(MIRA)
    await sink.append("Hi.")
    with caplog.at_level(logging.WARNING):
        ids = await sink.end(BeatEnd("Hi.", "done"))
    assert [m.content for m in fake.shown(channel.id)] == ["Hi."]
    assert len(ids) == 1
    assert "could not add" in caplog.text


async def test_post_and_announce_split_whole_texts() -> None:
    fake, renderer, _ = world()
    channel = fake.channel()
    kickoff = "The inn is warm. " * 200
    ids = await renderer.post(channel, MIRA, kickoff, owner_id=7)
    assert len(ids) == 2
    assert all(m.author == "Mira" and m.avatar == PNG for m in fake.shown(channel.id))
    digest = await renderer.announce(channel, "While you were away… " * 150)
    assert len(digest) == 2
    assert all(fake.messages[i].author == "storybot" for i in digest)


async def test_a_long_error_shows_only_a_short_reason() -> None:
    fake, renderer, _ = world()
    channel = fake.channel()
    sink = renderer.sink(channel, chat_id="c1", owner_id=7)
    await sink.begin(MIRA)
    text = "word " * 420
    await sink.append(text)
    await sink.end(BeatEnd(text, "failed", "*bold* error\n" * 100))
    last = fake.shown(channel.id)[-1].content
    assert len(last) <= 2000
    assert last.endswith("*(the reply failed: something went wrong on the model's side)*")
    assert "bold" not in last


@pytest.mark.parametrize(
    "error",
    [
        LLMRateLimitedError("slow down, see https://internal/q"),
        LLMTimeoutError("first_token", 30),
        LLMConnectionError("could not reach the LLM server at http://10.0.0.7:8000/v1: refused"),
        LLMHTTPError(502, "upstream http://gpu-3/ died"),
        LLMHTTPError(401, "bad key sk-secret"),
        LLMStreamError("the LLM server reported an error mid-stream: {'secret': 1}"),
        LLMProtocolError("the LLM server sent a malformed stream chunk (not JSON): 'x'"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_a_failed_reply_shows_a_short_reason_and_never_the_raw_error(
    error: LLMError, caplog: pytest.LogCaptureFixture
) -> None:
    fake, renderer, _ = world()
    channel = fake.channel()
    sink = renderer.sink(channel, chat_id="c1", owner_id=7)
    await sink.begin(MIRA)
    await sink.append("She turns")
    with caplog.at_level(logging.INFO):
        await sink.end(BeatEnd("She turns", "failed", str(error), error.public_reason))
    [message] = fake.shown(channel.id)
    assert message.content == f"She turns *(the reply failed: {error.public_reason})*"
    for leak in ("http", "LLM", "secret", "api_key", "Errno", "10.0.0.7"):
        assert leak not in message.content
    assert str(error) in caplog.text  # the details are in the log


async def test_the_opening_line_and_the_digest_survive_a_server_error() -> None:
    """A 500 on a story message (the host's opening, a digest) is tried again, not lost."""
    fake, renderer, _ = world()
    channel = fake.channel()
    fake.fail_sends = 1
    ids = await renderer.post(channel, MIRA, "The inn is warm tonight.", owner_id=7)
    assert [fake.messages[i].content for i in ids] == ["The inn is warm tonight."]
    fake.fail_sends = 1
    digest = await renderer.announce(channel, "While you were away…")
    assert [fake.messages[i].content for i in digest] == ["While you were away…"]
    assert fake.verbs(channel.id).count("500") == 2


async def test_a_story_message_is_not_sent_a_third_time() -> None:
    fake, renderer, _ = world()
    channel = fake.channel()
    fake.fail_sends = 2
    with pytest.raises(discord.DiscordServerError):
        await renderer.post(channel, MIRA, "The inn is warm tonight.", owner_id=7)
    assert fake.shown(channel.id) == []


async def test_a_reply_whose_last_piece_fails_once_still_shows_whole() -> None:
    fake, renderer, _ = world()
    channel = fake.channel()
    sink = renderer.sink(channel, chat_id="c1", owner_id=7)
    await sink.begin(MIRA)
    fake.fail_sends = 1
    ids = await sink.end(BeatEnd("Quick and done.", "done"))
    assert [fake.messages[i].content for i in ids] == ["Quick and done."]
