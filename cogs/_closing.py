"""Showing a closed meanwhile scene: the digest in the story's channel, the thread archived.

Shared by every way a meanwhile scene ends: its button, /scene close, or its thread archived or
deleted by hand.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord

from bot.engine import SceneClose
from bot.store.views import Chat

if TYPE_CHECKING:
    from bot.app import StoryBot

log = logging.getLogger(__name__)

DIGEST_TITLE = "**While you were away…**"


async def show_meanwhile_closed(bot: StoryBot, chat: Chat, closed: SceneClose) -> None:
    """The digest in the story's channel, then the thread archived; both best effort, logged.

    The scene is closed in the story already, so failing to show it must not look like failing
    to close it.
    """
    channel = bot.get_channel(chat.channel_id)
    if isinstance(channel, discord.TextChannel):
        try:
            await bot.renderer.announce(channel, f"{DIGEST_TITLE}\n{closed.digest}")
        except discord.HTTPException as exc:
            log.warning("could not post the digest of chat %s: %s", chat.id, exc)
    if closed.thread_id:
        await archive_thread(bot, closed.thread_id)


async def archive_thread(bot: StoryBot, thread_id: int) -> None:
    """Archive a closed meanwhile scene's thread, if it is still there and open (best effort)."""
    thread = bot.get_channel(thread_id)
    if not isinstance(thread, discord.Thread) or thread.archived:
        return
    try:
        await thread.edit(archived=True)
    except discord.HTTPException as exc:
        log.info("could not archive the meanwhile thread %d: %s", thread_id, exc)


def scene_closed_note(closed: SceneClose) -> str:
    note = "The scene closes."
    if closed.threads:
        note += " Threads to follow: " + "; ".join(closed.threads)
    return note
