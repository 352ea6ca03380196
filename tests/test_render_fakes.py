"""The render tests' fake Discord keeps Discord's rules (tests/render_fakes.py)."""

from __future__ import annotations

import discord
import pytest

from tests.helpers.render_fakes import FakeDiscord, VirtualClock


async def test_fake_refuses_a_sixteenth_webhook() -> None:
    fake = FakeDiscord()
    channel = fake.channel(foreign_webhooks=15)
    with pytest.raises(discord.HTTPException) as caught:
        await channel.create_webhook(name="x")
    assert caught.value.code == 30007


async def test_fake_answers_429_beyond_five_edits_in_five_seconds() -> None:
    clock = VirtualClock()
    fake = FakeDiscord(clock=clock, edits_per_window=5)
    channel = fake.channel()
    webhook = await channel.create_webhook(name="storybot:a")
    sent = await webhook.send(
        "hi", username="A", allowed_mentions=discord.AllowedMentions.none(), wait=True
    )
    for _ in range(5):
        await webhook.edit_message(sent.id, content="hi again")
    with pytest.raises(discord.HTTPException) as caught:
        await webhook.edit_message(sent.id, content="too soon")
    assert caught.value.status == 429
    clock.now += 5.0
    await webhook.edit_message(sent.id, content="later")
    assert fake.rate_limited == 1


async def test_fake_webhooks_are_specced_from_discord() -> None:
    fake = FakeDiscord()
    webhook = await fake.channel().create_webhook(name="storybot:a")
    with pytest.raises(AttributeError):
        webhook.send_message  # noqa: B018
