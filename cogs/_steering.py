"""Steering the story back in Discord: regenerate a reply, and retire the rewound beats' messages.

The engine decides what leaves the story; this module finds where those beats are shown (the
story's channel, or the thread of their meanwhile scene) and has the renderer retire them the
way ``[discord] rewound_messages`` says.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

import discord

from bot.engine import Rewound
from bot.store.views import Beat, Chat
from cogs._base import Refusal
from cogs._render import StoryChannel

if TYPE_CHECKING:
    from bot.app import StoryBot

log = logging.getLogger(__name__)

REGENERATE_EMOJI = "🔄"


async def channel_of(bot: StoryBot, channel_id: int) -> StoryChannel | None:
    """A story channel or thread, from the cache or else from Discord (archived threads)."""
    channel = bot.get_channel(channel_id)
    if channel is None:
        try:
            channel = await bot.fetch_channel(channel_id)
        except discord.HTTPException as exc:
            log.info("channel %d of a story is gone: %s", channel_id, exc)
            return None
    return channel if isinstance(channel, StoryChannel) else None


async def playing_channel(bot: StoryBot, chat: Chat) -> StoryChannel | None:
    """Where the story's next beat shows: the open meanwhile thread, else the story's channel."""
    meanwhile = await bot.engine.queries.open_meanwhile(chat.id)
    return await channel_of(bot, meanwhile.thread_id if meanwhile else chat.channel_id)


async def regenerate_reply(bot: StoryBot, chat: Chat) -> Rewound:
    """A new latest reply streams in; the old one's messages are retired."""
    channel = await playing_channel(bot, chat)
    if channel is None:
        raise Refusal("I can't find this story's channel any more")
    sink = bot.renderer.sink(channel, chat_id=chat.id, owner_id=chat.owner_id)
    with bot.turn_running():
        rewound, _ = await bot.engine.history.regenerate(chat.id, sink)
    await retire_beats(bot, chat, rewound.beats)
    return rewound


async def retire_beats(
    bot: StoryBot, chat: Chat, beats: Iterable[Beat], *, skip: int | None = None
) -> None:
    """Strike through or delete the messages of beats that left the story (``skip``: gone)."""
    by_channel: dict[int, list[int]] = {}
    threads: dict[int, int] = {}  # meanwhile scene -> where it shows, looked up once
    for beat in beats:
        ids = [i for i in beat.message_ids if i != skip]
        if not ids:
            continue
        scene_id = beat.meanwhile_scene_id
        if scene_id is None:
            channel_id = chat.channel_id
        elif scene_id in threads:
            channel_id = threads[scene_id]
        else:
            channel_id = threads[scene_id] = await _thread_of(bot, chat, scene_id)
        by_channel.setdefault(channel_id, []).extend(ids)
    mode = bot.settings.discord.rewound_messages
    for channel_id, message_ids in by_channel.items():
        channel = await channel_of(bot, channel_id) if message_ids else None
        if channel is not None:
            await bot.renderer.retire(channel, message_ids, mode=mode)


async def _thread_of(bot: StoryBot, chat: Chat, meanwhile_scene_id: int) -> int:
    scene = await bot.engine.queries.scene(meanwhile_scene_id)
    return scene.thread_id if scene is not None and scene.thread_id else chat.channel_id


async def is_latest_reply(bot: StoryBot, chat: Chat, message_id: int) -> bool:
    """The message shows the story's newest beat, a character's finished reply."""
    if chat.id in bot.engine.turns.in_flight:
        return False
    beat = await bot.engine.queries.last_beat(chat.id)
    return beat is not None and beat.role == "assistant" and message_id in beat.message_ids


async def take_reaction_back(
    channel: StoryChannel, payload: discord.RawReactionActionEvent
) -> None:
    """Remove a reaction that asks for something it may not (needs Manage Messages)."""
    if payload.member is None:
        return
    try:
        await channel.get_partial_message(payload.message_id).remove_reaction(
            payload.emoji, payload.member
        )
    except discord.HTTPException as exc:
        log.info("could not remove %s's %s: %s", payload.member, payload.emoji, exc)


def rewound_note(rewound: Rewound) -> str:
    count = len(rewound.beats)
    return f"⏪ rewound {count} beat{'s' if count != 1 else ''}"
