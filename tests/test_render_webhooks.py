"""Characters on screen: a webhook per (channel, character), found again, recreated, capped."""

from __future__ import annotations

import asyncio

import discord
import pytest

from bot.engine import BeatEnd, Speaker
from cogs._render import MAX_WEBHOOKS_PER_CHANNEL, Renderer
from cogs._render._webhooks import display_name
from tests.helpers.render_fakes import BOT_ID, PNG, FakeDiscord, VirtualClock, settings

MIRA = Speaker("mira", "Mira", "a1b2c3d4")
JUN = Speaker("jun", "Jun", "")


def world(fake: FakeDiscord | None = None, avatars: dict[str, bytes] | None = None) -> Renderer:
    clock = VirtualClock()
    fake = fake or FakeDiscord(clock=clock)
    source = fake.avatar_source({MIRA.avatar: PNG} if avatars is None else avatars)
    return Renderer(source, settings(1.0), clock=clock, sleep=clock.sleep)


async def stream(renderer: Renderer, place: object, speaker: Speaker, text: str) -> list[int]:
    sink = renderer.sink(place, chat_id="c1", owner_id=7)  # type: ignore[arg-type]
    await sink.begin(speaker)
    await sink.append(text)
    for _ in range(10):
        await asyncio.sleep(0)
    return list(await sink.end(BeatEnd(text, "done")))


async def test_each_character_gets_one_webhook_per_channel_reused_across_beats() -> None:
    fake = FakeDiscord()
    renderer = world(fake)
    channel = fake.channel()
    await stream(renderer, channel, MIRA, "One.")
    await stream(renderer, channel, JUN, "Two.")
    await stream(renderer, channel, MIRA, "Three.")
    names = sorted(w.name for w in fake.webhooks[channel.id])
    assert names == ["storybot:jun", "storybot:mira~a1b2c3"]
    assert [m.author for m in fake.shown(channel.id)] == ["Mira", "Jun", "Mira"]
    avatars = {w.name: fake.avatars[w.id] for w in fake.webhooks[channel.id]}
    assert avatars == {"storybot:mira~a1b2c3": PNG, "storybot:jun": None}


async def test_webhooks_are_found_again_after_a_restart() -> None:
    fake = FakeDiscord()
    channel = fake.channel()
    await stream(world(fake), channel, MIRA, "Before.")
    await stream(world(fake), channel, MIRA, "After.")  # a new Renderer: a restarted bot
    assert len(fake.webhooks[channel.id]) == 1
    assert fake.verbs(channel.id).count("create") == 1


async def test_a_new_avatar_is_put_on_the_existing_webhook() -> None:
    fake = FakeDiscord()
    channel = fake.channel()
    new_png = PNG + b"new"
    renderer = world(fake, {MIRA.avatar: PNG, "ffff0000": new_png})
    await stream(renderer, channel, MIRA, "Old face.")
    await stream(renderer, channel, Speaker("mira", "Mira", "ffff0000"), "New face.")
    [webhook] = fake.webhooks[channel.id]
    assert webhook.name == "storybot:mira~ffff00"
    assert [m.avatar for m in fake.shown(channel.id)] == [PNG, new_png]


async def test_a_thread_speaks_through_the_parent_channels_webhook() -> None:
    fake = FakeDiscord()
    renderer = world(fake)
    channel = fake.channel()
    thread = fake.thread(channel)
    ids = await stream(renderer, thread, MIRA, "Meanwhile…")
    [message] = fake.shown(thread.id)
    assert ids == [message.id]
    assert message.author == "Mira"
    assert len(fake.webhooks[channel.id]) == 1
    assert fake.shown(channel.id) == []


async def test_a_deleted_webhook_is_recreated_once_and_the_send_retried() -> None:
    fake = FakeDiscord()
    renderer = world(fake)
    channel = fake.channel()
    await stream(renderer, channel, MIRA, "First.")
    [old] = fake.webhooks[channel.id]
    fake.delete_webhook(old)

    ids = await stream(renderer, channel, MIRA, "Second.")

    [new] = fake.webhooks[channel.id]
    assert new.id != old.id
    assert fake.verbs(channel.id).count("create") == 2
    assert fake.messages[ids[0]].content == "Second."
    assert fake.messages[ids[0]].webhook_id == new.id
    assert fake.messages[ids[0]].avatar == PNG


async def test_a_webhook_deleted_mid_reply_still_shows_the_whole_reply() -> None:
    fake = FakeDiscord()
    renderer = world(fake)
    channel = fake.channel()
    sink = renderer.sink(channel, chat_id="c1", owner_id=7)
    await sink.begin(MIRA)
    await sink.append("Half")
    for _ in range(10):
        await asyncio.sleep(0)
    fake.delete_webhook(fake.webhooks[channel.id][0])
    ids = await sink.end(BeatEnd("Half and whole.", "done"))
    assert [fake.messages[i].content for i in ids] == ["Half and whole."]
    assert fake.messages[ids[0]].webhook_id == fake.webhooks[channel.id][0].id


@pytest.mark.parametrize("how", ["role lacks it", "channel listing forbidden"])
async def test_without_manage_webhooks_the_bot_speaks_and_tells_the_owner_once(how: str) -> None:
    fake = FakeDiscord()
    renderer = world(fake)
    if how == "role lacks it":
        channel = fake.channel(manage_webhooks=False)
    else:  # the role has it, but a channel overwrite takes it away
        channel = fake.channel(manage_webhooks=False)
        channel.permissions_for.return_value = discord.Permissions(manage_webhooks=True)

    await stream(renderer, channel, MIRA, "Hello.")
    await stream(renderer, channel, JUN, "Hi.")

    contents = [m.content for m in fake.shown(channel.id)]
    notices = [c for c in contents if "Manage Webhooks" in c]
    assert len(notices) == 1
    assert notices[0].startswith("<@7>")
    assert "**Mira**: Hello." in contents
    assert "**Jun**: Hi." in contents
    assert all(m.author == "storybot" for m in fake.shown(channel.id))


async def test_sixteen_characters_never_make_more_than_fifteen_webhooks() -> None:
    fake = FakeDiscord()
    renderer = world(fake, {})
    channel = fake.channel()
    cast = [Speaker(f"c{n}", f"Character {n}") for n in range(16)]
    for speaker in [*cast, cast[0], cast[15]]:
        await renderer.post(channel, speaker, f"I am {speaker.name}.", owner_id=7)
        assert len(fake.webhooks[channel.id]) <= MAX_WEBHOOKS_PER_CHANNEL
    assert fake.verbs(channel.id).count("create") == MAX_WEBHOOKS_PER_CHANNEL
    shown = fake.shown(channel.id)
    assert [m.author for m in shown] == [s.name for s in [*cast, cast[0], cast[15]]]
    assert all(m.content == f"I am {m.author}." for m in shown)
    assert not any("Manage Webhooks" in m.content for m in shown)


async def test_foreign_webhooks_are_never_touched() -> None:
    fake = FakeDiscord()
    renderer = world(fake, {})
    channel = fake.channel(foreign_webhooks=13)
    foreign = {w.id: w.name for w in fake.webhooks[channel.id]}
    for n in range(5):
        await renderer.post(channel, Speaker(f"c{n}", f"C{n}"), "Hi.", owner_id=7)
    assert len(fake.webhooks[channel.id]) == MAX_WEBHOOKS_PER_CHANNEL
    for webhook in fake.webhooks[channel.id]:
        if webhook.id in foreign:
            assert webhook.name == foreign[webhook.id]
            assert webhook.edit.await_count == 0
            assert webhook.send.await_count == 0
        else:
            assert webhook.user.id == BOT_ID


async def test_a_channel_full_of_foreign_webhooks_falls_back_and_says_why_once() -> None:
    fake = FakeDiscord()
    renderer = world(fake, {})
    channel = fake.channel(foreign_webhooks=15)
    await renderer.post(channel, MIRA, "One.", owner_id=7)
    await renderer.post(channel, JUN, "Two.", owner_id=7)
    contents = [m.content for m in fake.shown(channel.id)]
    assert sum("15 webhooks" in c for c in contents) == 1
    assert contents[-2:] == ["**Mira**: One.", "**Jun**: Two."]


def test_display_names_avoid_the_words_discord_refuses() -> None:
    assert "clyde" not in display_name("Clyde the Bard").lower()
    assert "discord" not in display_name("Discord Dan").lower()
    assert display_name("Mira") == "Mira"
    assert len(display_name("x" * 200)) == 80


async def test_the_stale_copy_of_a_reply_is_cleared_when_it_is_sent_again() -> None:
    fake = FakeDiscord()
    renderer = world(fake)
    channel = fake.channel()
    sink = renderer.sink(channel, chat_id="c1", owner_id=7)
    await sink.begin(MIRA)
    await sink.append("Half")
    for _ in range(10):
        await asyncio.sleep(0)
    fake.delete_webhook(fake.webhooks[channel.id][0])
    await sink.end(BeatEnd("Half and whole.", "done"))
    assert [m.content for m in fake.shown(channel.id)] == ["Half and whole."]
    assert "delete" in fake.verbs(channel.id)
