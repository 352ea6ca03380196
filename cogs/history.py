"""Steering the story back: 🔄 and /regenerate, "Rewind story to here", and your edits and deletes.

Editing your line changes it in the story (and, for the latest, offers to regenerate the reply);
deleting your latest line takes it back. The rewound beats' messages are struck through or
deleted (``[discord] rewound_messages``); the engine decides what leaves the story.
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
    defer,
    refuse_while_closing,
)
from cogs._guards import may_steer, steered_story, story_place
from cogs._partial import author_of, by_a_person
from cogs._regenerate import RegenerateOffer
from cogs._render import StoryChannel
from cogs._steering import (
    REGENERATE_EMOJI,
    is_latest_reply,
    regenerate_reply,
    retire_beats,
    rewound_note,
    take_reaction_back,
)

log = logging.getLogger(__name__)

REWIND_MENU = "Rewind story to here"


class History(StoryCog):
    def __init__(self, bot: StoryBot) -> None:
        super().__init__(bot)
        self.offers: dict[int, RegenerateOffer] = {}
        self.rewind_menu = app_commands.ContextMenu(name=REWIND_MENU, callback=self.rewind_here)
        self.rewind_menu.guild_only = True

    async def cog_load(self) -> None:
        # A context menu cannot live inside a cog class; it is added to the tree by hand.
        self.bot.tree.add_command(self.rewind_menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(REWIND_MENU, type=discord.AppCommandType.message)
        for offer in list(self.offers.values()):
            await offer.close()

    @app_commands.command(name="regenerate", description="Replace the latest reply with a new one")
    @app_commands.guild_only()
    async def regenerate(self, interaction: Interaction) -> None:
        place = await steered_story(interaction, "regenerate its replies")
        await defer(interaction, ephemeral=True)
        await regenerate_reply(self.bot, place.chat)
        await answer(interaction, f"{REGENERATE_EMOJI} the latest reply was regenerated")

    @app_commands.command(name="rewind", description="Take your last lines back, and what followed")
    @app_commands.describe(lines="How many of your lines to take back (1 = the latest)")
    @app_commands.guild_only()
    async def rewind(
        self, interaction: Interaction, lines: app_commands.Range[int, 1, 50] = 1
    ) -> None:
        refuse_while_closing(interaction)
        place = await steered_story(interaction, "rewind it")
        await defer(interaction, ephemeral=True)
        rewound = await self.engine.history.rewind_lines(place.chat.id, lines)
        await retire_beats(self.bot, place.chat, rewound.beats)
        await answer(interaction, rewound_note(rewound))

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        member = payload.member
        if (
            str(payload.emoji) != REGENERATE_EMOJI
            or member is None
            or member.bot
            or self.engine.closing
        ):
            return
        channel = self.bot.get_channel(payload.channel_id)
        place = await story_place(self.engine, payload.channel_id)
        if place is None or not isinstance(channel, StoryChannel):
            return
        if may_steer(member.id, place.chat, channel.permissions_for(member)) and (
            await is_latest_reply(self.bot, place.chat, payload.message_id)
        ):
            await self._regenerate_quietly(place.chat)
        else:
            await take_reaction_back(channel, payload)

    async def _regenerate_quietly(self, chat: Chat) -> None:
        """A 🔄 has no one to answer: a story rule that stops it is only logged."""
        try:
            await regenerate_reply(self.bot, chat)
        except (StoryError, Refusal) as exc:
            log.info("🔄 in chat %s did nothing: %s", chat.id, exc)

    async def rewind_here(self, interaction: Interaction, message: discord.Message) -> None:
        """The "Rewind story to here" message command: later beats leave the story."""
        refuse_while_closing(interaction)
        place = await steered_story(interaction, "rewind it")
        await defer(interaction, ephemeral=True)
        rewound = await self.engine.history.rewind_to_message(place.chat.id, message.id)
        await retire_beats(self.bot, place.chat, rewound.beats)
        await answer(interaction, rewound_note(rewound))

    @commands.Cog.listener()
    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        message = payload.message
        before = payload.cached_message
        if self.engine.closing or "content" not in payload.data:
            return
        if before is not None and before.content == message.content:
            return  # an embed unfurled, or a pin: the words did not change
        place = await story_place(self.engine, payload.channel_id)
        if place is None:
            return
        if author_of(message) is None:  # a partial update: ask who wrote it
            whole = await self._whole(message)
            if whole is None:
                return
            message = whole
        if not by_a_person(message) or message.author.id != place.chat.owner_id:
            return
        try:
            latest = await self.engine.history.edit_message(
                place.chat.id, message.id, message.content
            )
        except StoryError as exc:
            log.debug("edit of message %d is not a story edit: %s", message.id, exc)
            return
        if latest:
            try:
                await RegenerateOffer.post(message, place.chat, self.offers)
            except discord.HTTPException as exc:  # the line was deleted, or we may not reply
                log.info("could not offer to regenerate under message %d: %s", message.id, exc)

    async def _whole(self, partial: discord.Message) -> discord.Message | None:
        """The whole message behind a partial update (None if it is gone or out of reach)."""
        try:
            return await partial.channel.fetch_message(partial.id)
        except discord.HTTPException as exc:
            log.info("could not read edited message %d: %s", partial.id, exc)
            return None

    @commands.Cog.listener()
    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        if self.engine.closing:
            return
        place = await story_place(self.engine, payload.channel_id)
        if place is None:
            return
        try:
            rewound = await self.engine.history.take_back_message(place.chat.id, payload.message_id)
        except StoryError as exc:
            log.debug("deleted message %d takes nothing back: %s", payload.message_id, exc)
            return
        await retire_beats(self.bot, place.chat, rewound.beats, skip=payload.message_id)


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, StoryBot)
    await bot.add_cog(History(bot))
