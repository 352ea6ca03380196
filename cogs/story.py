"""The story in a channel: the owner's messages are turns, and ⛔ (or /stop) stops a reply.

Each message is its own event task; the engine queues a chat's turns in arrival order, so a
message sent while a reply streams waits its turn and nothing is lost. A line is played in the
scene it was written in (the story's channel: the you-scene; a meanwhile thread: that scene):
one that waited while a meanwhile scene started or ended is refused, not misplaced.
"""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import StoryBot
from bot.engine import SceneChoice, StoryError
from cogs._base import Interaction, Refusal, StoryCog, answer
from cogs._errors import END_MEANWHILE, describe
from cogs._guards import StoryPlace, may_steer, steered_story, story_place
from cogs._partial import by_a_person
from cogs._render import QUIET, STOP_EMOJI, StoryChannel
from cogs._render._typing import TypingIndicator
from cogs._steering import take_reaction_back

log = logging.getLogger(__name__)


class Story(StoryCog):
    def __init__(self, bot: StoryBot) -> None:
        super().__init__(bot)
        self._busy_typing: dict[str, TypingIndicator] = {}

    async def cog_load(self) -> None:
        self.engine.on_busy(self._show_busy)

    async def _show_busy(self, chat_id: str, where: int, busy: bool) -> None:
        """Typing in the story's channel (or thread) while the world moves on after a reply."""
        shown = self._busy_typing.pop(chat_id, None)
        if shown is not None:
            await shown.close()
        channel = self.bot.get_channel(where) if busy else None
        if isinstance(channel, discord.abc.Messageable):
            self._busy_typing[chat_id] = indicator = TypingIndicator(channel)
            indicator.start()

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if not by_a_person(message):
            return
        if self.engine.closing or not isinstance(message.channel, StoryChannel):
            return
        place = await story_place(self.engine, message.channel.id)
        if place is None or message.author.id != place.chat.owner_id:
            return
        if (await self.bot.get_context(message)).valid:
            return
        if place.meanwhile_scene_id is None and await self._point_to_meanwhile(message, place):
            return
        await self.play_turn(message, message.channel, place)

    async def _point_to_meanwhile(self, message: discord.Message, place: StoryPlace) -> bool:
        """While a meanwhile scene is open the story goes on in its thread, not here."""
        meanwhile = await self.engine.queries.open_meanwhile(place.chat.id)
        if meanwhile is None:
            return False
        await _tell(
            message,
            f"Meanwhile… the story goes on in <#{meanwhile.thread_id}> for now; write there, "
            f"or {END_MEANWHILE}",
        )
        return True

    async def play_turn(
        self, message: discord.Message, where: StoryChannel, place: StoryPlace
    ) -> None:
        chat = place.chat
        scene: SceneChoice = "you" if place.meanwhile_scene_id is None else place.meanwhile_scene_id
        sink = self.renderer.sink(where, chat_id=chat.id, owner_id=chat.owner_id)
        with self.bot.turn_running():
            try:
                await self.engine.turns.take(
                    chat.id,
                    message.content,
                    sink,
                    author_id=message.author.id,
                    message_id=message.id,
                    scene=scene,
                )
            except StoryError as exc:
                await _tell(message, describe(exc))

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        if (
            str(payload.emoji) != STOP_EMOJI
            or self.bot.user is None
            or payload.user_id == self.bot.user.id
            or self.engine.closing
        ):
            return
        chat_id = self.renderer.streaming_chat(payload.message_id)
        channel = self.bot.get_channel(payload.channel_id)
        if chat_id is None or payload.member is None or not isinstance(channel, StoryChannel):
            return
        chat = await self.engine.queries.chat(chat_id)
        if chat is not None and may_steer(
            payload.member.id, chat, channel.permissions_for(payload.member)
        ):
            self.engine.turns.cancel(chat_id)
            return
        await take_reaction_back(channel, payload)

    @app_commands.command(name="stop", description="Stop the reply streaming in this story")
    @app_commands.guild_only()
    async def stop(self, interaction: Interaction) -> None:
        place = await steered_story(interaction, "stop its replies")
        if not self.engine.turns.cancel(place.chat.id):
            raise Refusal("no reply is streaming in this story right now")
        await answer(interaction, f"{STOP_EMOJI} stopped")


async def _tell(message: discord.Message, text: str) -> None:
    """Answer the player under their line; where that is impossible, only log it.

    A refused line in a meanwhile thread that has been archived since is answered in the story's
    channel instead: a message in an archived thread would unarchive it.
    """
    where = message.channel
    try:
        home = where.parent if isinstance(where, discord.Thread) and where.archived else None
        if isinstance(home, discord.TextChannel):
            await home.send(
                f"Your line {message.jump_url} was left out: {text}", allowed_mentions=QUIET
            )
        else:
            await message.reply(text, mention_author=False, allowed_mentions=QUIET)
    except discord.HTTPException as exc:
        log.info("could not answer message %d (%s): %s", message.id, text, exc)


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, StoryBot)
    await bot.add_cog(Story(bot))
