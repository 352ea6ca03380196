"""Stories and scenes: start, show, export and end a channel's story; close, join, leave scenes."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import StoryBot
from bot.engine import SceneClose
from cogs._base import Interaction, Refusal, StoryCog, answer, defer
from cogs._choices import character_choices, greeting_choices
from cogs._closing import archive_thread, scene_closed_note, show_meanwhile_closed
from cogs._embeds import status_embed
from cogs._files import story_files
from cogs._guards import StoryPlace, guild_of, require_speech, steered_story, story_here


class Chats(StoryCog):
    chat = app_commands.Group(name="chat", description="The story in this channel", guild_only=True)
    scene = app_commands.Group(name="scene", description="The scene being played", guild_only=True)

    @chat.command(name="start", description="Start a story in this channel")
    @app_commands.autocomplete(host=character_choices, guest=character_choices)
    @app_commands.autocomplete(greeting=greeting_choices)
    @app_commands.describe(
        host="the character whose story it is",
        greeting="how the host opens: its first message (0) or an alternate greeting",
        guest="a second character, who can join, leave and go on without you",
        place="where it opens",
        time="in-world time it opens at, e.g. 2026-04-26T20:00",
        weather="the weather",
    )
    async def start(
        self,
        interaction: Interaction,
        *,
        host: str,
        guest: str | None = None,
        place: str = "",
        time: str = "",
        weather: str = "",
        greeting: int = 0,
    ) -> None:
        guild_id = guild_of(interaction)
        channel = interaction.channel
        if not isinstance(channel, discord.TextChannel):
            raise Refusal("a story needs a text channel of its own (not a thread)")
        missing = require_speech(interaction.app_permissions)
        started = await self.engine.chats.start(
            guild_id=guild_id,
            channel_id=channel.id,
            owner_id=interaction.user.id,
            host_id=host,
            guest_id=guest,
            place=place,
            time=time,
            weather=weather,
            greeting=greeting,
        )
        note = f"A story begins with {started.kickoff.name}. Write here to play."
        if missing:
            note += "\nI'm missing some permissions here: " + "; ".join(missing)
        await answer(interaction, note, ephemeral=False)
        if started.kickoff_text:
            ids = await self.renderer.post(
                channel, started.kickoff, started.kickoff_text, owner_id=interaction.user.id
            )
            if ids and started.kickoff_turn_id is not None:
                await self.engine.turns.link_messages(
                    started.chat.id, started.kickoff_turn_id, list(ids)
                )

    @chat.command(name="status", description="Where and when the story is, and who is doing what")
    async def status(self, interaction: Interaction) -> None:
        place = await story_here(interaction)
        await answer(
            interaction, embed=status_embed(await self.engine.queries.status(place.chat.id))
        )

    @chat.command(name="set", description="Move the story's clock, place or weather on")
    @app_commands.describe(
        time="the in-world time now",
        place="where the story is now",
        weather="the weather now",
        day="the day, e.g. Day 2",
    )
    async def set_world(
        self,
        interaction: Interaction,
        time: str | None = None,
        place: str | None = None,
        weather: str | None = None,
        day: str | None = None,
    ) -> None:
        story = await steered_story(interaction, "change its world")
        await defer(interaction, ephemeral=False)
        chat = await self.engine.chats.set_world(
            story.chat.id, time=time, place=place, weather=weather, narrative_anchor=day
        )
        await answer(
            interaction,
            f"Now: {chat.narrative_anchor}, {chat.world_time}, {chat.place or 'somewhere'}"
            + (f", {chat.weather}" if chat.weather else ""),
            ephemeral=False,
        )

    @chat.command(name="end", description="End the story in this channel")
    async def end(self, interaction: Interaction) -> None:
        place = await steered_story(interaction, "end it")
        await defer(interaction, ephemeral=False)
        ended = await self.engine.chats.end(place.chat.id)
        await answer(interaction, "The story ends here.", ephemeral=False)
        if ended.meanwhile_thread_id:
            await archive_thread(self.bot, ended.meanwhile_thread_id)

    @chat.command(name="export", description="The story as Markdown, and its log to restore it")
    async def export(self, interaction: Interaction) -> None:
        place = await steered_story(interaction, "export it")
        await defer(interaction, ephemeral=True)
        markdown, log = await self.engine.queries.export(place.chat.id)
        files = story_files(place.chat.id, markdown, log)
        await answer(
            interaction, "The story so far, and its log (restore: import-log)", files=files
        )

    @scene.command(name="close", description="Close the scene (in a meanwhile thread: end it)")
    async def close(self, interaction: Interaction) -> None:
        place = await steered_story(interaction, "close its scenes")
        await defer(interaction, ephemeral=False)
        await self._closed(place, await self.engine.scenes.close(place.chat.id), interaction)

    @scene.command(name="join", description="A character joins the scene (a new scene opens)")
    @app_commands.autocomplete(character=character_choices)
    async def join(self, interaction: Interaction, character: str | None = None) -> None:
        place = await steered_story(interaction, "change who is in the scene")
        await defer(interaction, ephemeral=False)
        closed = await self.engine.scenes.guest_join(place.chat.id, character)
        await self._closed(place, closed, interaction)

    @scene.command(name="leave", description="The guest leaves the scene (a new scene opens)")
    async def leave(self, interaction: Interaction) -> None:
        place = await steered_story(interaction, "change who is in the scene")
        await defer(interaction, ephemeral=False)
        await self._closed(place, await self.engine.scenes.guest_leave(place.chat.id), interaction)

    async def _closed(
        self, place: StoryPlace, closed: SceneClose, interaction: Interaction
    ) -> None:
        if closed.thread_id:
            await answer(interaction, "The meanwhile scene ends.", ephemeral=False)
            await show_meanwhile_closed(self.bot, place.chat, closed)
        else:
            await answer(interaction, scene_closed_note(closed), ephemeral=False)


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, StoryBot)
    await bot.add_cog(Chats(bot))
