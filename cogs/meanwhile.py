"""Meanwhile: host and guest go on without you in a thread, and you read the digest after.

The thread's first message carries an "End meanwhile" button (a persistent view, registered at
every start so old threads keep working). The button, /scene close, or archiving or deleting the
thread ends the scene: summaries per point of view, the digest in the story's channel.
"""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import StoryBot
from bot.engine import StoryError
from bot.store.views import Chat
from cogs._base import (
    Interaction,
    Refusal,
    StoryCog,
    answer,
    answer_error,
    defer,
    refuse_while_closing,
)
from cogs._closing import show_meanwhile_closed
from cogs._guards import may_steer, steered_story

log = logging.getLogger(__name__)

END_MEANWHILE_ID = "storybot:meanwhile:end"
THREAD_NAME_LIMIT = 100
THREAD_INTRO = (
    "Host and guest go on without you. Write here to steer them (your lines are narration); "
    "end it with the button below or /scene close."
)


class EndMeanwhileView(discord.ui.View):
    """The "End meanwhile" button of every meanwhile thread (one persistent view serves all)."""

    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(
        label="End meanwhile", style=discord.ButtonStyle.danger, custom_id=END_MEANWHILE_ID
    )
    async def end(
        self, interaction: Interaction, button: discord.ui.Button[EndMeanwhileView]
    ) -> None:
        bot = interaction.client
        refuse_while_closing(interaction)
        found = await bot.engine.queries.story_of_thread(interaction.channel_id or 0)
        if found is None:
            raise Refusal("this meanwhile scene has ended already")
        chat = found[0]
        if not may_steer(interaction.user.id, chat, interaction.permissions):
            raise Refusal("only the owner of this story can end the meanwhile scene")
        await defer(interaction, ephemeral=False)
        closed = await bot.engine.scenes.end_meanwhile(chat.id)
        # The "thinking…" message lives in the thread: answer before the thread is archived.
        await answer(interaction, "The meanwhile scene ends.", ephemeral=False)
        await show_meanwhile_closed(bot, chat, closed)

    async def on_error(  # type: ignore[override]
        self, interaction: Interaction, error: Exception, item: discord.ui.Item[EndMeanwhileView], /
    ) -> None:
        await answer_error(interaction, error)


class Meanwhile(StoryCog):
    async def cog_load(self) -> None:
        self.bot.add_view(EndMeanwhileView())

    @app_commands.command(name="meanwhile", description="Host and guest go on without you")
    @app_commands.describe(
        premise="what they are doing, e.g. 'closing up the shop together'",
        beats="how many beats they take on their own right away (0: wait for your lines)",
    )
    @app_commands.guild_only()
    async def meanwhile(
        self, interaction: Interaction, premise: str = "", beats: app_commands.Range[int, 0, 20] = 0
    ) -> None:
        place = await steered_story(interaction, "open a meanwhile scene")
        channel = interaction.channel
        if place.meanwhile_scene_id is not None or not isinstance(channel, discord.TextChannel):
            raise Refusal("open a meanwhile scene from the story's own channel")
        await defer(interaction, ephemeral=True)
        thread = await self._open(place.chat, channel, premise)
        await answer(interaction, f"Meanwhile… opened in {thread.mention}")
        if beats:
            await self._play_beats(place.chat, thread, beats)

    async def _open(self, chat: Chat, channel: discord.TextChannel, premise: str) -> discord.Thread:
        """The thread first, then the scene bound to it; no scene is left without its thread."""
        starter = await channel.send(f"Meanwhile… {premise}".strip())
        thread = await starter.create_thread(name=f"Meanwhile… {premise}"[:THREAD_NAME_LIMIT])
        try:
            await self.engine.scenes.start_meanwhile(chat.id, thread_id=thread.id, premise=premise)
        except StoryError:
            await thread.delete()
            await starter.delete()
            raise
        await self.renderer.announce(thread, THREAD_INTRO, view=EndMeanwhileView())
        return thread

    async def _play_beats(self, chat: Chat, thread: discord.Thread, beats: int) -> None:
        with self.bot.turn_running():
            await self.engine.turns.meanwhile_beats(
                chat.id,
                beats,
                lambda: self.renderer.sink(thread, chat_id=chat.id, owner_id=chat.owner_id),
            )

    @commands.Cog.listener()
    async def on_thread_update(self, before: discord.Thread, after: discord.Thread) -> None:
        if after.archived and not before.archived and not self.engine.closing:
            await self._thread_gone(after.id)

    @commands.Cog.listener()
    async def on_raw_thread_delete(self, payload: discord.RawThreadDeleteEvent) -> None:
        if not self.engine.closing:
            await self._thread_gone(payload.thread_id)

    async def _thread_gone(self, thread_id: int) -> None:
        """A meanwhile thread archived or deleted by hand ends its scene like the button does."""
        found = await self.engine.queries.story_of_thread(thread_id)
        if found is None:
            return
        chat = found[0]
        try:
            with self.bot.turn_running():
                closed = await self.engine.scenes.end_meanwhile(chat.id)
        except StoryError as exc:
            log.info("meanwhile thread %d went away: %s", thread_id, exc)
            return
        await show_meanwhile_closed(self.bot, chat, closed)


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, StoryBot)
    await bot.add_cog(Meanwhile(bot))
