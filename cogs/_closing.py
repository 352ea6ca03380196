"""Showing a closed meanwhile scene: the digest in the story's channel, the thread archived.

Shared by every way a meanwhile scene ends: its button, /scene close, or its thread archived or
deleted by hand.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord

from bot.engine import SceneClose
from bot.engine.views import Chat

if TYPE_CHECKING:
    from bot.app import StoryBot

log = logging.getLogger(__name__)

DIGEST_TITLE = "**While you were away…**"


async def show_meanwhile_closed(bot: StoryBot, chat: Chat, closed: SceneClose) -> None:
    channel = bot.get_channel(chat.channel_id)
    if isinstance(channel, discord.TextChannel):
        await bot.renderer.announce(channel, f"{DIGEST_TITLE}\n{closed.digest}")
    thread = bot.get_channel(closed.thread_id) if closed.thread_id else None
    if isinstance(thread, discord.Thread) and not thread.archived:
        try:
            await thread.edit(archived=True)
        except discord.HTTPException as exc:
            log.info("could not archive the meanwhile thread %d: %s", thread.id, exc)


def scene_closed_note(closed: SceneClose) -> str:
    note = "The scene closes."
    if closed.threads:
        note += " Threads to follow: " + "; ".join(closed.threads)
    return note
